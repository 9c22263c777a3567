"""Metric definitions on a hand-built request table."""

from __future__ import annotations

import numpy as np
import pytest

from simkit.sim.metrics import dist_stats, latencies, slo_mask
from simkit.sim.request import COMPLETED, REJECTED, RequestTable


def _table():
    t = RequestTable(np.array([0.0, 1.0, 2.0]), np.array([10, 10, 10]), np.array([1, 5, 3]))
    t.start_s[:] = [0.5, 1.0, np.nan]
    t.first_token_s[:] = [1.0, 1.5, np.nan]
    t.finish_s[:] = [1.0, 3.5, np.nan]
    t.status[:] = [COMPLETED, COMPLETED, REJECTED]
    return t


def test_latency_definitions():
    lat = latencies(_table())
    assert lat["ttft_s"].tolist() == [1.0, 0.5]
    assert lat["e2e_s"].tolist() == [1.0, 2.5]
    assert lat["queue_wait_s"].tolist() == [0.5, 0.0]
    # TPOT leaves out the one-token output; (3.5 - 1.5) / (5 - 1)
    assert lat["tpot_s"].tolist() == [0.5]


def test_slo_mask_needs_every_target():
    t = _table()
    assert slo_mask(t, {}).tolist() == [True, True, False]
    assert slo_mask(t, {"ttft_s": 0.6}).tolist() == [False, True, False]
    assert slo_mask(t, {"tpot_s": 0.4}).tolist() == [True, False, False]


def test_dist_stats():
    s = dist_stats(np.arange(101.0))
    assert (s["mean"], s["p50"], s["p90"], s["p99"]) == (50.0, 50.0, 90.0, 99.0)
    assert dist_stats(np.array([]))["p99"] is None


def test_tokens_that_come_together_have_a_gap_of_zero():
    """A burst (tokens streamed together: speculative decoding's accepted tokens, a
    multi-step round) is gaps of 0; its quantiles read 0, not the grid's lowest edge."""
    from simkit.sim.tbt import TokenGaps

    g = TokenGaps()
    g.add_one(0.0, 3)  # three tokens with the one before them
    g.add_one(0.02, 1)  # then one 20 ms later
    p50, p99 = g.quantiles([0.5, 0.99])
    assert p50 == 0.0
    assert p99 == pytest.approx(0.02, rel=0.012)  # within a 1.16%-wide bin


def test_inter_token_latency_counts_a_burst_as_one_chunk():
    """ITL as streaming benchmarks measure it: one gap per streamed chunk, the tokens within
    a burst left out; without bursts it is the time between tokens."""
    from simkit.sim.tbt import TokenGaps, itl_stats

    g = TokenGaps()
    g.add_one(0.1, 1)  # a chunk's first token, 100 ms after the previous chunk
    g.add_one(0.0, 9)  # and the nine that came with it
    g.add_one(0.3, 1)
    # one request: first token at 1.0 s, its last at 1.4 s (two chunk gaps)
    s = itl_stats(g, np.array([1.0]), np.array([1.4]))
    assert s["mean"] == pytest.approx(0.2)
    # rank 1.5 of the two chunk gaps falls in the upper one's bin (1.16% wide); the nine
    # tokens of the burst, which would put the tokens' median at 0, do not count
    assert s["p50"] == pytest.approx(0.3, rel=0.012)
    assert g.quantiles([0.5])[0] == 0.0
    plain = TokenGaps()
    for gap in (0.01, 0.02, 0.03):
        plain.add_one(gap, 2)
    assert itl_stats(plain, np.zeros(1), np.ones(1))["p50"] == plain.quantiles([0.5])[0]
