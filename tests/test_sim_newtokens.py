"""SGLang's admission estimate (simkit.sim.newtokens): its constants as SGLang sets them, the
ratio's decay, the retraction's victim order. Expected values are SGLang's defaults
(python/sglang/global_config.py: SGLANG_INIT_NEW_TOKEN_RATIO 0.7,
SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR 0.14, SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS 600) worked by
hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simkit.sim.newtokens import NewTokenRatio
from simkit.sim.rows import ID, NLEFT, ROWS


def _rep(iterations: int, prefill_rounds: int = 0):
    return SimpleNamespace(iterations=iterations,
                           scheduler=SimpleNamespace(prefill_rounds=prefill_rounds))


@pytest.mark.parametrize("c, start, floor", [(1.0, 0.7, 0.098), (0.5, 0.35, 0.049),
                                             (2.0, 1.0, 0.14)])
def test_the_ratio_starts_and_ends_where_sglang_puts_it(c, start, floor):
    r = NewTokenRatio(c, None)
    assert r.ratio(_rep(0)) == pytest.approx(start)
    # (start - floor) / 600 per decode iteration: halfway after 300
    assert r.ratio(_rep(300)) == pytest.approx((start + floor) / 2)
    assert r.ratio(_rep(600)) == pytest.approx(floor)
    assert r.ratio(_rep(5000)) == pytest.approx(floor)


def test_iterations_that_only_prefill_do_not_decay_the_ratio():
    r = NewTokenRatio(1.0, None)
    assert r.ratio(_rep(400, prefill_rounds=100)) == pytest.approx(0.7 - 300 * 0.602 / 600)


def test_the_ratio_starts_over_when_the_engine_idles():
    r = NewTokenRatio(1.0, None)
    r._set(_rep(100), 0.9)  # (what a retraction does)
    assert r.ratio(_rep(200)) == pytest.approx(0.9 - 100 * 0.602 / 600)
    r.idle(_rep(700))
    assert r.ratio(_rep(700)) == pytest.approx(0.7)


def test_the_victim_has_the_fewest_tokens_generated_then_the_longest_prompt():
    # four answers of 100 tokens: generated 30, 5, 5, 60 (left 70, 95, 95, 40); prompts
    # 200, 100, 300, 50 -> the third (5 generated, the 300-token prompt) goes first
    n = 4
    R = np.zeros((ROWS, n), dtype=np.int64)
    R[ID] = np.arange(n)
    R[NLEFT] = -np.array([70, 95, 95, 40])
    table = SimpleNamespace(output_tokens=np.full(n, 100),
                            prompt_tokens=np.array([200, 100, 300, 50]))
    rep = SimpleNamespace(n=n, R=R, table=table, n_done=0)
    assert NewTokenRatio(1.0, None).victim(rep) == 2
