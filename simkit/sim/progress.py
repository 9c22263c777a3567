"""A one-line progress display on stderr for long runs; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    """Call `update(done)` often; it redraws at most a few times a second."""

    def __init__(self, total: int, enabled: bool, label: str = "simulating") -> None:
        self.total = total
        self.enabled = bool(enabled) and sys.stderr.isatty()
        self.label = label
        self._t0 = time.perf_counter()
        self._last = 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.25:
            return
        self._last = now
        rate = done / max(now - self._t0, 1e-9)
        sys.stderr.write(f"\r{self.label}: {done:,}/{self.total:,} requests "
                         f"({rate:,.0f}/s)   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()
