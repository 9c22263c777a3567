"""What a replica does in a disaggregated deployment (`simkit.sim.disagg`): the prefill
side hands prefilled requests on and holds their blocks until their KV has moved; the decode
side receives them, allocates their blocks at an iteration boundary, has their KV moved and
joins them to its batch once it has arrived.

A mixin of `simkit.sim.replica.Replica` (batch layout `simkit.sim.rows`). A replica that
takes part in neither pool never touches it: its queues stay empty and its hooks None.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from simkit.sim.decoderun import DecodeRun
from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.request import RUNNING, TRANSFERRING
from simkit.sim.rows import CACHED, ID, NLEFT, PRE, UNITS


class Handoff:
    """The prefill side (`handoff`, `announce`, `held`) and the decode side (`incoming`,
    `xfer`, `ready`, `transfers`) of moving a request between pools."""

    def _init_handoff(self) -> None:
        # prefill side: `handoff(replica, rid, cached, now_s)` takes each prefilled request
        # on; with layer-wise transfers `announce(replica, step, now_s, dt)` says at an
        # iteration's start which requests it completes; `held`: rid -> (cached, units) of
        # the requests whose blocks stay here until their KV has moved
        self.handoff = self.announce = None
        self.held: dict[int, tuple[int, int]] = {}
        # decode side: `incoming` (rid, cached) waiting for blocks; `xfer` rid -> (cached,
        # units) holding blocks, KV on its way (each takes a batch slot); `ready` rids whose
        # KV arrived, joining at the next boundary; `transfers` starts the moves
        self.incoming: deque[tuple[int, int]] = deque()
        self.ready: deque[int] = deque()
        self.xfer: dict[int, tuple[int, int]] = {}
        self.transfers = None
        #: arrivals from outside reach it (decode replicas are fed by the prefill pool only:
        #: their planned runs look to no arrival horizon)
        self.external = True
        #: arrivals a planned decode run looks past (see `simulate`'s set-up)
        self.lookahead = 0

    # ---- prefill side --------------------------------------------------------------------
    def _hand_off(self, now_s: float) -> None:
        """Prefill replica: every sequence whose prompt is done leaves the batch; a one-token
        answer is complete, the others go on to the decode pool while their blocks stay
        held here until their KV has moved (`release_held`)."""
        R, n = self.R, self.n
        out = R[PRE, :n] == 0
        if not out.any():
            return
        fin = out & (R[NLEFT, :n] == 0)
        if fin.any():
            self._release(fin, now_s)
            R, n = self.R, self.n
            out = R[PRE, :n] == 0
            if not out.any():
                return
        tab = self.table
        for i in np.flatnonzero(out):
            rid, cached, nleft, units = (int(R[ID, i]), int(R[CACHED, i]), int(R[NLEFT, i]),
                                         int(R[UNITS, i]))
            tab.generated[rid] = tab.output_tokens[rid] + nleft
            tab.last_token_s[rid] = now_s
            tab.status[rid] = TRANSFERRING
            self.held[rid] = (cached, units)
            if self.spec is not None:  # it decodes elsewhere from here
                self.spec.release(rid)
            self.handoff(self, rid, cached, now_s)
        self._keep(~out)

    def release_held(self, rid: int, now_s: float) -> None:
        """Prefill replica: `rid`'s KV has moved; its blocks are freed (or stay cached), and
        a queue that waited for memory may go on."""
        cached, units = self.held.pop(rid)
        if self.cache is not None:
            self.cache.release(rid, cached, units)
        else:
            self.pool.release(units)
        if not self.busy and self.waiting:
            self._wake(now_s)

    def _wake(self, now_s: float) -> None:
        """Something arrived: an idle replica starts an iteration now; a planned decode
        run ends at its first boundary after now (stepping would see it there)."""
        if not self.busy:
            self.busy = True
            self._token += 1
            self.engine.schedule(now_s, PRIORITY_STEP, self._on_boundary, self._token)
        elif type(self._pending) is DecodeRun:
            self._cut_run(now_s)

    # ---- decode side ---------------------------------------------------------------------
    def receive(self, rid: int, cached: int, now_s: float) -> None:
        """Decode replica: a request whose first `cached` tokens' KV is on a prefill
        replica asks for room; it gets it at an iteration boundary (`_accept_incoming`)."""
        self.incoming.append((rid, cached))
        self.table.replica[rid] = self.index
        self.sim.queue_log(now_s, 1)
        self._wake(now_s)

    def transfer_done(self, rid: int, now_s: float) -> None:
        """Decode replica: `rid`'s KV has arrived; it joins the batch at the next boundary."""
        self.ready.append(rid)
        self._wake(now_s)

    def _accept_incoming(self, now_s: float) -> None:
        """Decode replica, after the batch grew and the queue was served: allocate the
        blocks of arriving requests, first come first served, while they fit memory and
        batch slots, and start moving their KV."""
        pool, units_one, cap = self.pool, self.policy.units_one, self.scheduler.max_batch
        while self.incoming and self.n + len(self.xfer) < cap:
            rid, cached = self.incoming[0]
            need = units_one(cached)
            if need > pool.free_units(1):
                break
            self.incoming.popleft()
            pool.admit(need)
            pool.held_units += need
            self.xfer[rid] = (cached, need)
            self.sim.queue_log(now_s, -1)
            self.transfers.start(self, rid, now_s)

    def _join_ready(self, now_s: float) -> None:
        """Decode replica: requests whose KV arrived join the batch as decodes."""
        tab = self.table
        while self.ready:
            rid = self.ready.popleft()
            cached, units = self.xfer.pop(rid)
            self.pool.held_units -= units
            left = int(tab.output_tokens[rid] - tab.generated[rid])
            # (its last token is the prefill's first: the next one has a gap to count)
            self._append(rid, cached, units, left, 0, tab.last_token_s[rid])
            tab.status[rid] = RUNNING

