"""A tiny discrete-event kernel: a heap of (time, priority, sequence) -> callback.

The idea of SimPy's ``core.py`` without its generator machinery: the kernel only orders
events and calls them; every policy (routing, batching, memory) lives in the modules that
schedule the events. Ties are broken by ``priority`` (lower first) and then by insertion
order (``sequence``), so a run is fully deterministic.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

#: Priorities for events at the same instant: arrivals are seen before a replica decides its
#: next iteration, so a request arriving exactly when an iteration ends joins the next one.
PRIORITY_ARRIVAL = 0
PRIORITY_STEP = 1


class Engine:
    """Event heap and simulated clock (seconds)."""

    __slots__ = ("now_s", "_heap", "_seq", "events_processed")

    def __init__(self) -> None:
        self.now_s = 0.0
        self._heap: list[tuple[float, int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self.events_processed = 0

    def schedule(self, time_s: float, priority: int, callback: Callable[[Any], None],
                 arg: Any = None) -> None:
        """Call ``callback(arg)`` at ``time_s`` (never earlier than now)."""
        if time_s < self.now_s:
            raise RuntimeError(f"event scheduled in the past: {time_s} < {self.now_s}")
        self._seq += 1
        heapq.heappush(self._heap, (time_s, priority, self._seq, callback, arg))

    def peek_s(self) -> float:
        """Time of the next event (inf when none)."""
        return self._heap[0][0] if self._heap else float("inf")

    def run(self, until_s: float = float("inf")) -> None:
        """Process events in order until the heap is empty or the next one is after until_s."""
        heap = self._heap
        pop = heapq.heappop
        n = 0
        while heap and heap[0][0] <= until_s:
            time_s, _prio, _seq, callback, arg = pop(heap)
            self.now_s = time_s
            callback(arg)
            n += 1
        self.events_processed += n
