"""The event kernel orders by time, then priority, then insertion."""

from __future__ import annotations

import pytest

from simkit.sim.engine import Engine


def test_order_time_priority_sequence():
    e = Engine()
    seen = []
    for t, prio, tag in [(2.0, 1, "c"), (1.0, 1, "b"), (1.0, 0, "a"), (2.0, 1, "d"),
                         (0.5, 5, "first")]:
        e.schedule(t, prio, seen.append, tag)
    e.run()
    assert seen == ["first", "a", "b", "c", "d"]
    assert e.now_s == 2.0 and e.events_processed == 5


def test_events_scheduled_from_callbacks_and_until():
    e = Engine()
    seen = []

    def tick(i):
        seen.append((e.now_s, i))
        if i < 5:
            e.schedule(e.now_s + 1.0, 0, tick, i + 1)

    e.schedule(0.0, 0, tick, 0)
    e.run(until_s=2.5)
    assert seen == [(0.0, 0), (1.0, 1), (2.0, 2)]
    assert e.peek_s() == 3.0
    e.run()
    assert seen[-1] == (5.0, 5)


def test_no_scheduling_in_the_past():
    e = Engine()
    e.schedule(1.0, 0, lambda _: e.schedule(0.5, 0, print))
    with pytest.raises(RuntimeError):
        e.run()
