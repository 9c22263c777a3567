"""A tiny, exactly predictable stand-in for the cost layer's StepCostModel, and its checks.

Other tests import `ToyStepModel` from here: its step time is a known closed form, so queueing
theory (M/D/1, M/G/1) can be checked against the simulator without depending on roofline
numbers, and runs are fast.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from simkit.costs.compiled import KVGroup, KVLayout


class ToyStepModel:
    """step time = base + per_seq * decodes + per_ctx * sum(cached positions read)
    + per_prefill_token * prompt tokens; KV bytes per token and capacity are set directly."""

    def __init__(self, *, kv_bytes_per_token=1000.0, kv_fixed_bytes=0.0, capacity_bytes=4e6,
                 max_context=4096, window=None, base_s=0.01, per_seq_s=1e-3, per_ctx_s=1e-6,
                 per_prefill_token_s=1e-5, weight_bytes=1e9, host_link_bytes_per_s=1e9,
                 name="toy"):
        self.kv_bytes_per_token = float(kv_bytes_per_token)
        self.kv_fixed_bytes = float(kv_fixed_bytes)
        self.capacity_bytes = float(capacity_bytes)
        self.max_context = int(max_context)
        self.window = window
        self.base_s, self.per_seq_s, self.per_ctx_s = base_s, per_seq_s, per_ctx_s
        self.per_prefill_token_s = per_prefill_token_s
        self.weight_bytes = float(weight_bytes)
        self.hardware = SimpleNamespace(host_link_bytes_per_s=host_link_bytes_per_s)
        self.model = SimpleNamespace(name=name, max_context=max_context)
        # the KV manager's view: one group of positions (none when the toy holds only state)
        groups = () if self.kv_bytes_per_token == 0 else (KVGroup(
            "toy", "window" if window else "full", self.kv_bytes_per_token,
            positions=self.kv_tokens, window=window),)
        self.kv_layout = KVLayout(groups, self.kv_fixed_bytes)

    def kv_tokens(self, t):
        t = np.asarray(t, dtype=np.float64)
        if self.kv_bytes_per_token == 0:
            return np.zeros_like(t)
        return t if self.window is None else np.minimum(t, self.window)

    def kv_bytes(self, t):
        return self.kv_tokens(t) * self.kv_bytes_per_token + self.kv_fixed_bytes

    def kv_capacity_bytes(self, memory_fraction=0.9):
        return self.capacity_bytes

    def _time(self, n_dec, ctx_sum, prefill_tokens):
        return (self.base_s + self.per_seq_s * n_dec + self.per_ctx_s * ctx_sum
                + self.per_prefill_token_s * prefill_tokens)

    def step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()):
        dc = np.asarray(decode_ctx, dtype=np.int64).reshape(-1)
        pl = np.asarray(prefill_len, dtype=np.int64).reshape(-1)
        if dc.size == 0 and pl.size == 0:
            return 0.0
        ctx_sum = float(self.kv_tokens(dc).sum()) if dc.size else 0.0
        return float(self._time(dc.size, ctx_sum, float(pl.sum())))

    def sequence_host_time_s(self, sequences):
        """The toy's per-sequence cost, which a multi-step round pays once per round."""
        return self.per_seq_s * sequences

    def decode_steps_s(self, ctx, k):
        ctx = np.asarray(ctx, dtype=np.int64)
        grid = ctx[None, :] + np.arange(int(k))[:, None]
        return self._time(ctx.size, self.kv_tokens(grid).sum(axis=1), 0.0)


def length(dist="fixed", **kw):
    """A duck-typed LengthSpec."""
    base = dict(dist=dist, value=None, low=None, high=None, median=None, sigma=None, min=1,
                max=None, path=None, column=None)
    return SimpleNamespace(**{**base, **kw})


def duration(dist="fixed", **kw):
    """A duck-typed TimeSpec (seconds)."""
    base = dict(dist=dist, value=None, mean=None, median=None, sigma=None, min=0.0, max=None)
    return SimpleNamespace(**{**base, **kw})


def sessions(turns, think):
    """A duck-typed workload.sessions table."""
    return SimpleNamespace(turns=turns, think_time_s=think)


def toy_scenario(**over):
    """A duck-typed Scenario with small defaults; `over` maps "section.key" -> value."""
    sc = SimpleNamespace(
        name="toy", seed=0, base_dir=".",
        model=SimpleNamespace(name="toy"),
        hardware=SimpleNamespace(name="toy", gpus_per_replica=1, ideal=False),
        workload=SimpleNamespace(
            requests=200,
            arrival=SimpleNamespace(process="poisson", rate=5.0, cv=1.0, path=None),
            prompt_tokens=SimpleNamespace(dist="uniform", low=10, high=300, min=1, max=None,
                                          value=None, median=None, sigma=None, path=None,
                                          column=None),
            output_tokens=SimpleNamespace(dist="uniform", low=1, high=200, min=1, max=None,
                                          value=None, median=None, sigma=None, path=None,
                                          column=None),
            sessions=None, system_prompt_tokens=0, tenants=None, max_concurrency=None),
        serving=SimpleNamespace(scheduler="continuous", max_batch=16, kv_memory="paged",
                                block_size=16, memory_fraction=0.9, max_seq_len=None,
                                replicas=1, router="least_loaded", preemption="recompute",
                                chunk_tokens=128, max_batch_tokens=None,
                                kv_budget_tokens=None, sink_tokens=4, prefix_caching=True),
        slo=SimpleNamespace(ttft_p99_s=None, tpot_p99_s=None, e2e_p99_s=None))
    for key, v in over.items():
        obj = sc
        parts = key.split(".")
        for p in parts[:-1]:
            obj = getattr(obj, p)
        setattr(obj, parts[-1], v)
    return sc


def test_decode_steps_equal_step_by_step():
    m = ToyStepModel(window=50)
    ctx = np.array([3, 40, 77, 120])
    rows = m.decode_steps_s(ctx, 30)
    for j in range(30):
        assert rows[j] == m.step_time_s(ctx + j)


def test_step_time_closed_form():
    m = ToyStepModel()
    assert m.step_time_s([10, 20], [0], [5]) == 0.01 + 2e-3 + 30e-6 + 5e-5
    assert m.step_time_s() == 0.0
