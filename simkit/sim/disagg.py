"""Prefill/decode disaggregation: two pools of replicas and the KV moved between them.

Splitwise (Patel et al., ISCA 2024, arXiv:2311.18677) and DistServe (Zhong et al., OSDI
2024, arXiv:2401.09670) run a request's prompt on one pool of replicas and its answer on
another, so prefills never stall the running decodes, and each pool can take its own GPU
and tensor parallelism. Production stacks do it with a KV connector (vLLM's NixlConnector,
under NVIDIA Dynamo and llm-d; SGLang; Mooncake).

A request's life here (`simkit.sim.simulator` wires it):
1. The prefill pool's router picks a prefill replica (the scenario's router; its prefix cache,
   if on, saves prefill work there). It prefills the prompt with the scenario's scheduler and
   emits the first token there: TTFT ends at the prefill. A one-token answer is done.
2. The request leaves the prefill batch; its blocks stay held on the prefill replica
   (`Replica.held`). The decode pool's router picks a decode replica (least loaded; round
   robin if the scenario says so), which allocates the request's blocks at an iteration
   boundary, after growing its running decodes and serving its own queue (preempted
   requests first), first come first served, when memory and batch slots allow
   (`Replica._accept_incoming`): it waits while blocks are short. Then the KV moves.
3. Once moved, the prefill replica frees the blocks and the request joins the decode batch
   at the decode replica's next boundary. Preempted there, it is recomputed or swapped like
   any decode (its KV is not fetched again).

What moves: the prompt's KV on the prefill side's layout, every layer group exact (the
positions each group holds at the prompt's length: a window group moves its window, an SSM
its state; `StepCostModel.kv_bytes`, physical: what the prefill GPUs hold and send, each GPU
its own shard). The decode replicas do not look up prefixes: they receive whole caches.

When it moves (`transfer`):
- ``after_prefill`` (the default): the decode replica pulls the whole prompt's KV once it
  has allocated the blocks, after the prefill: vLLM's NixlConnector ("when a prefill
  request finishes, its KV blocks are held ... waiting for the decoder to read them",
  docs/features/nixl_connector_usage.md, `kv_lease_duration`) and DistServe (Sec. 4.3:
  decoding instances pull the KV, the prefill GPUs' memory acting as the queue). Transfer
  time = bytes / bandwidth + latency, after the link is free.
- ``layerwise``: Splitwise (Sec. IV-C) and Mooncake (Qin et al., FAST 2025,
  arXiv:2407.00079, "layer-wise prefill") stream each layer's KV as soon as the layer is
  computed, overlapping the transfer with the rest of the prefill. The decode replica is
  chosen when the prefill's last iteration starts (s, lasting T over L layers), and the
  transfer of layer i cannot start before the layer is done (s + i T / L), before the
  previous layer's transfer ends, or before the decode replica holds the blocks (r): with
  X = bytes / bandwidth split evenly over the layers, the last layer arrives at
      max(r + X, s + T / L + X, s + T + X / L) + latency
  (the layers' start times rise linearly, so the latest of the chains is one of its ends).
  Layers are taken as equal in time and bytes (a window layer holds fewer bytes than a
  full one: an approximation for mixed stacks). Earlier chunks of a chunked prefill are
  counted with the last iteration (a lower bound on the overlap).
Why both: the pull after the prefill is what the open-source stacks ship; the layer-wise
push hides all but one layer's transfer when the link keeps up with the prefill (X / L <=
T / L), which is what makes disaggregation pay across nodes for long prompts. Which one
holds decides at which prompt length the transfer stops paying
(scenarios/disaggregation-long-prompts.toml).

The link (`link`): ``nvlink`` puts both pools in one node, each GPU moving its shard over
its own peer link (the hardware profile's `interconnect_bytes_per_s`, per GPU and direction,
and its latency); ``network`` joins nodes, `link_bytes_per_s` per GPU (one NIC each, as in
DGX H100's eight 400 Gb/s ConnectX-7) and `link_latency_s`. A transfer uses min(prefill
GPUs, decode GPUs) such links in parallel. Each replica's links carry one transfer at a time
(first come first served): a transfer waits for both ends' links to be free, and holds them
for bytes / bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from simkit.errors import SimkitError
from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.metrics import dist_stats


@dataclass(frozen=True)
class Link:
    """Bandwidth (bytes/s) and latency (s) of one transfer between two replicas."""

    bytes_per_s: float
    latency_s: float


def link_of(d, prefill_sm, decode_sm) -> Link:
    """The link of a `DisaggregationSpec` between replicas of the two step models."""
    ways = min(prefill_sm.gpus, decode_sm.gpus)
    if d.link == "nvlink":
        hw = prefill_sm.hardware
        lat = d.link_latency_s if d.link_latency_s is not None else hw.interconnect_latency_s
        bw = float(hw.interconnect_bytes_per_s)
    else:
        bw, lat = float(d.link_bytes_per_s or 0.0), float(d.link_latency_s or 0.0)
    if not bw > 0:
        raise SimkitError("serving.disaggregation.link_bytes_per_s: must be > 0 (a link with "
                          "no bandwidth never delivers the KV)")
    return Link(bytes_per_s=bw * ways, latency_s=float(lat))


def transfer_end_s(*, ready_s: float, bytes_: float, link: Link, layerwise: bool,
                   last_start_s: float = math.nan, last_s: float = 0.0, layers: int = 1
                   ) -> float:
    """When the KV has arrived (see the module docstring). `ready_s`: when both links are
    free and the decode replica holds the blocks; `last_start_s`, `last_s`: start and
    duration of the prefill's last iteration (layer-wise only), over `layers` layers."""
    x = bytes_ / link.bytes_per_s
    if not layerwise:
        return ready_s + x + link.latency_s
    s, t, n = last_start_s, last_s, max(1, layers)
    return max(ready_s + x, s + t / n + x, s + t + x / n) + link.latency_s


class Transfers:
    """Moves prompts' KV from prefill to decode replicas (the event side of the model)."""

    def __init__(self, engine, table, link: Link, decode_router, kv_bytes: Callable,
                 layerwise: bool, layers: int) -> None:
        self.engine = engine
        self.table = table
        self.link = link
        self.router = decode_router
        self.kv_bytes = kv_bytes  # prompt tokens -> bytes moved
        self.layerwise = layerwise
        self.layers = int(layers)
        self.source: dict[int, object] = {}  # rid -> prefill replica holding its KV
        self.last: dict[int, tuple[float, float]] = {}  # rid -> (start, duration) of its
        # prefill's last iteration (layer-wise)
        self.link_free: dict[int, float] = {}  # replica index -> when its links are free
        self.busy_s: dict[int, float] = {}  # prefill replica index -> seconds its links sent
        self.moved = 0

    # -- prefill side ------------------------------------------------------------------
    def hand_off(self, prefill, rid: int, cached: int, now_s: float) -> None:
        """`prefill` finished `rid`'s prompt (`cached` tokens of KV) and holds its blocks."""
        self.source[rid] = prefill
        if not self.layerwise:
            self.router.route(rid).receive(rid, cached, now_s)

    def announce(self, prefill, step, now_s: float, dt: float) -> None:
        """Layer-wise: an iteration of `prefill` starting now completes these prompts; their
        decode replicas are chosen now and may take the KV while it is computed."""
        from simkit.sim.replica import CACHED, ID, NLEFT, PRE, MixedStep, SpecStep, TailStep

        R, n = prefill.R, prefill.n
        kind = type(step)
        if kind is TailStep:
            done = np.arange(step.first, n)
        elif kind in (MixedStep, SpecStep) and step.chunks is not None:
            done = np.flatnonzero((step.chunks > 0) & (step.chunks == R[PRE, :n]))
        else:
            return
        for i in done.tolist():
            if -int(R[NLEFT, i]) <= 1:
                continue  # its one token is its answer: nothing to move
            rid = int(R[ID, i])
            self.last[rid] = (now_s, dt)
            self.source[rid] = prefill
            cached = int(R[CACHED, i] + R[PRE, i])  # the prompt's length once prefilled
            self.router.route(rid).receive(rid, cached, now_s)

    # -- decode side ---------------------------------------------------------------------
    def start(self, decode, rid: int, now_s: float) -> None:
        """`decode` holds `rid`'s blocks: move its KV; both ends' links carry it in turn."""
        tab = self.table
        src = self.source[rid]
        cached = decode.xfer[rid][0]
        b = float(self.kv_bytes(cached))
        free = self.link_free
        begin = max(now_s, free.get(src.index, 0.0), free.get(decode.index, 0.0))
        x = b / self.link.bytes_per_s
        if self.layerwise:
            s, t = self.last.pop(rid)
            end = transfer_end_s(ready_s=begin, bytes_=b, link=self.link, layerwise=True,
                                 last_start_s=s, last_s=t, layers=self.layers)
        else:
            end = transfer_end_s(ready_s=begin, bytes_=b, link=self.link, layerwise=False)
        free[src.index] = free[decode.index] = max(begin + x, end - self.link.latency_s)
        self.busy_s[src.index] = self.busy_s.get(src.index, 0.0) + x
        tab.xfer_bytes[rid] = b
        tab.xfer_start_s[rid] = begin
        tab.xfer_end_s[rid] = end
        # (a step's priority: at a tie the prefill's own boundary, scheduled earlier, hands
        # the request off first)
        self.engine.schedule(end, PRIORITY_STEP, self._done, (rid, decode))

    def _done(self, arg) -> None:
        rid, decode = arg
        now_s = self.engine.now_s
        self.source.pop(rid).release_held(rid, now_s)
        self.moved += 1
        decode.transfer_done(rid, now_s)


def router_with_origin(router, table) -> Callable:
    """The prefill pool's router, recording each request's prefill replica."""
    def route(rid: int):
        r = router.route(rid)
        table.prefill_replica[rid] = r.index
        return r
    return route


def summary(run, logs: list, end_s: float) -> dict:
    """KV moved and how long it took; each pool's size, GPUs and how busy it was."""
    table = run.table
    moved = ~np.isnan(table.xfer_end_s)
    d = run.scenario.serving.disaggregation
    pools, i = {}, 0
    for p in run.pools:
        k = len(p.replicas)
        busy = float(sum(float(log["dt"].sum()) for log in logs[i:i + k]))
        peaks = [float(log["reserved"].max()) if len(log["reserved"]) else 0.0
                 for log in logs[i:i + k]]
        pools[p.name] = {
            "replicas": k, "hardware": p.hardware.replace("\\", "/").rsplit("/", 1)[-1],
            "gpus_per_replica": p.gpus, "gpus": k * p.gpus,
            "busy_fraction": busy / (end_s * k) if end_s > 0 and k else None,
            "kv_capacity_bytes": float(p.capacity_bytes),
            "kv_peak_bytes": max(peaks, default=0.0),
            "iterations": int(sum(r.iterations for r in p.replicas)),
        }
        i += k
    link = run.transfers.link
    busy = run.transfers.busy_s
    sends = [busy.get(r.index, 0.0) / end_s for r in run.pools[0].replicas] if end_s > 0 \
        else []
    return {
        # the busiest prefill replica's links: the fraction of the run they were sending
        # (near 1, the link is the bottleneck and prefilled KV piles up waiting for it)
        "kv_link_busy_fraction": max(sends, default=None),
        "kv_transfer_bytes": float(table.xfer_bytes[moved].sum()),
        "kv_transfers": int(np.count_nonzero(moved)),
        # from the start of the move (both links free, decode blocks held) to the last byte
        "kv_transfer_s": dist_stats(table.xfer_end_s[moved] - table.xfer_start_s[moved]),
        # from the first token (the prefill's end) to the start of the move: waiting for
        # room on a decode replica and for the links
        "kv_transfer_wait_s": dist_stats(
            np.maximum(table.xfer_start_s[moved] - table.first_token_s[moved], 0.0)),
        "disaggregation": {"transfer": d.transfer, "link": d.link,
                           "link_bytes_per_s": link.bytes_per_s,
                           "link_latency_s": link.latency_s},
        "pools": pools,
    }
