"""Numeric step-cost models for the simulator: lambdified once per configuration, cached.

`build_step_model(model, arch, hw, gpus, ideal)` turns the sympy `ModelCosts` into numpy
functions of the context length and wraps them in a `StepCostModel` whose `step_time_s` times
one forward iteration of a batch with *different* context lengths exactly (the sum of every
request's attention and cache traffic), never an average. Nothing here simplifies sympy
expressions in a loop: that happens once, in `build_step_model`.

Conventions: decode context `t` = keys attended by the new token (itself included) = the
cache length after it is appended. A prefill chunk of `len` tokens after `start` cached ones
does core(start+len) - core(start) mixing FLOPs (the causal sums telescope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from simkit.catalog.hardware import HardwareProfile
from simkit.costs import symbols as S
from simkit.costs.arch import ArchSpec
from simkit.costs.model import ModelCosts, model_costs
from simkit.costs.roofline import ACTIVATION_BYTES, Roofline, kv_replication, roofline_for
from simkit.errors import SimkitError


def _lambdify(mc: ModelCosts, expr, var) -> Callable[[np.ndarray], np.ndarray]:
    """A float64 numpy function of one length variable (inputs cast: no int overflow)."""
    import sympy as sp

    e = mc.numeric(expr)
    free = e.free_symbols - {var}
    if free:  # a bug in a family module, never user input
        raise RuntimeError(f"unsubstituted symbols {free} in {e}")
    f = sp.lambdify((var,), e, modules="numpy")
    if not e.has(var):
        c = float(e)
        return lambda x: np.full(np.shape(x), c, dtype=np.float64)
    return lambda x: np.asarray(f(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _roof_s(flops: float, bytes_: float, flops_per_s: float, bytes_per_s: float) -> float:
    """`Roofline.op_time_s` on Python floats: the same IEEE operations as its numpy
    version (so the same bits) without the cost of numpy scalars."""
    return max(flops / flops_per_s, bytes_ / bytes_per_s)


#: lengths tabulated at most for the prefill terms (8 bytes each, two tables)
_MAX_TABLE = 1 << 22

#: integers up to this are exact in float64, and so are sums and products that stay below it
_EXACT = float(2**53)


def _affine(mc: ModelCosts, expr, var, f: Callable) -> tuple[float, float] | None:
    """(a, b) when `expr` is a*var + b with integer a and b and its lambdified `f` gives
    exactly a*t + b at integer t; None otherwise (windows, Min, Piecewise...).

    Why: then f(t) is an exact integer at every integer context, so any sum of f over a batch
    is exact (below 2**53) and equals a * sum(t) + b * size whatever the order of the
    additions: one row sum costs O(1) instead of evaluating f on the whole batch."""
    import sympy as sp

    e = mc.numeric(expr)
    if e.has(sp.Min, sp.Max, sp.Piecewise, sp.Mod, sp.floor, sp.ceiling, sp.Abs):
        return None
    try:
        p = sp.Poly(e, var)
    except sp.PolynomialError:
        return None
    if p.free_symbols - {var} or p.degree() > 1:
        return None
    a, b = float(p.coeff_monomial(var)), float(p.coeff_monomial(1))
    if not (a.is_integer() and b.is_integer() and abs(a) < 2**40 and abs(b) < 2**52):
        return None
    probe = np.array([0, 1, 2, 3, 7, 100, 1023, 1024, 4095, 4096, 4097, 32767, 131073,
                      10**6 + 1, 2**24 + 3], dtype=np.float64)
    if not np.array_equal(f(probe), a * probe + b):  # the numeric function agrees exactly
        return None
    return a, b


def _elementwise(e) -> bool:
    """Whether the lambdified `e` uses only arithmetic, Min/Max, Mod and Piecewise: numpy
    ufuncs exact per element (no transcendental whose vector loop might round differently
    from a scalar one), so a table of its values equals calling it on any array."""
    import sympy as sp

    ok = (sp.Min, sp.Max, sp.Mod, sp.Piecewise)
    return all(isinstance(f, ok) for f in e.atoms(sp.Function)) and all(
        p.exp.is_Integer and 0 <= p.exp <= 2 for p in e.atoms(sp.Pow))


@dataclass
class StepCostModel:
    """Plain-numpy costs of one model/arch on one TP group of a hardware profile."""

    model: object
    arch: ArchSpec
    hardware: HardwareProfile
    gpus: int
    ideal: bool
    roof: Roofline
    weight_bytes: float
    expert_bytes: float
    n_experts: int
    experts_per_token: int
    kv_bytes_per_token: float
    kv_fixed_bytes: float
    kv_replication: float
    lin_prefill_flops_per_token: float
    lin_decode_flops_per_token: float
    lm_head_flops: float
    allreduces_per_step: int
    d_model: int
    _kv_tokens: Callable
    _core_prefill: Callable  # n -> FLOPs
    _core_decode: Callable  # t -> FLOPs
    _read_bytes: Callable  # t -> bytes read per decode token
    write_bytes: float  # bytes written per decode token
    # -- derived at build time for the simulator's hot loop (not constructor arguments;
    # -- build_step_model sets them, and nothing may change the model afterwards) --------
    #: ((a, b), (a', b')): per-token decode FLOPs = a t + b and read + write bytes = a' t + b'
    #: exactly, with integer coefficients (None: evaluate the functions on every context)
    _decode_affine: tuple | None = field(default=None, init=False, repr=False, compare=False)
    #: (max |a|, max |b|) over both: bounds the row sums (they must stay exact in float64)
    _decode_bound: tuple | None = field(default=None, init=False, repr=False, compare=False)
    #: per decode batch size: its linear-layer time and constants (see _decode_consts)
    _lin_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    #: whether the prefill FLOPs and cache-token functions may be tabulated (built from
    #: elementwise arithmetic only), and the tables (see _length_tables)
    _tabulable: bool = field(default=False, init=False, repr=False, compare=False)
    _tables: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def weight_bytes_per_gpu(self) -> float:
        return self.weight_bytes / self.gpus

    @property
    def max_context(self) -> int:
        return int(self.model.max_context)

    # -- memory ---------------------------------------------------------------------
    def kv_tokens(self, t) -> np.ndarray:
        return self._kv_tokens(t)

    def kv_bytes(self, t) -> np.ndarray:
        """Cache + state bytes one sequence holds at context t (whole model, one copy)."""
        return self._kv_tokens(t) * self.kv_bytes_per_token + self.kv_fixed_bytes

    def kv_capacity_bytes(self, memory_fraction: float = 0.9) -> float:
        """Cache bytes (one copy, whole model) the TP group can hold: device memory x gpus
        x fraction - weights (vLLM's gpu_memory_utilization), less KV-head replication."""
        free = self.hardware.memory_capacity_bytes * self.gpus * memory_fraction \
            - self.weight_bytes
        if free <= 0:
            need = self.gpus
            while self.hardware.memory_capacity_bytes * need * memory_fraction \
                    <= self.weight_bytes:
                need += 1
            raise SimkitError(
                f"{self.model.name} does not fit: its weights take "
                f"{self.weight_bytes / 2**30:.1f} GiB but {self.gpus} x {self.hardware.name} "
                f"x memory_fraction {memory_fraction} hold "
                f"{self.hardware.memory_capacity_bytes * self.gpus * memory_fraction / 2**30:.1f}"
                f" GiB; it needs at least {need} GPUs (hardware.gpus_per_replica / --gpus)")
        return free / self.kv_replication

    # -- time -----------------------------------------------------------------------
    def _weight_read_bytes(self, tokens: float) -> float:
        """Weights streamed once per step; MoE reads only the experts its tokens touch:
        E (1 - (1 - k/E)^tokens) of E per layer in expectation (uniform routing)."""
        if not self.n_experts:
            return self.weight_bytes
        frac = 1.0 - (1.0 - self.experts_per_token / self.n_experts) ** tokens
        return self.weight_bytes - self.expert_bytes * (1.0 - frac)

    def _linear_time_s(self, n_decode: int, n_prefill_tokens: int, n_chunks: int) -> float:
        tokens = n_decode + n_prefill_tokens
        if tokens == 0:
            return 0.0
        flops = (n_decode * self.lin_decode_flops_per_token
                 + n_prefill_tokens * self.lin_prefill_flops_per_token
                 + (n_decode + n_chunks) * self.lm_head_flops)
        t = _roof_s(flops, self._weight_read_bytes(tokens), self.roof.matmul_flops_per_s,
                    self.roof.bytes_per_s)
        t += self.allreduces_per_step * float(
            self.roof.allreduce_time_s(tokens * self.d_model * ACTIVATION_BYTES))
        return t + self.roof.overhead_s

    def _decode_lin_s(self, n_decode: int) -> float:
        hit = self._lin_cache.get(n_decode)
        return (hit or self._decode_consts(n_decode))[0]

    def _decode_consts(self, size: int) -> tuple:
        """What a decode-only step of `size` sequences needs besides the contexts' sum:
        its linear-layer time and, when affine, b x size terms and the rates (cached)."""
        lin = self._linear_time_s(size, 0, 0)
        if self._decode_affine is None:
            out = (lin,)
        else:
            (af, bf), (ab, bb) = self._decode_affine
            out = (lin, af, bf * size, ab, bb * size, self.kv_replication,
                   self.roof.attn_flops_per_s, self.roof.bytes_per_s)
        self._lin_cache[size] = out
        return out

    def decode_steps_sum_s(self, total: int, size: int, k: int) -> list[float] | None:
        """`decode_steps_s` from the contexts' sum alone, as a list: k decode-only iterations
        of `size` sequences whose integer contexts sum to `total` (row j: total + j size).
        None when this model cannot (per-token costs not affine, or sums beyond exact
        float64): then call `decode_steps_s`. The simulator's hot loop keeps such sums."""
        bound = self._decode_bound
        if bound is None or size <= 0 or total < 0 \
                or bound[0] * (total + (k - 1) * size) + bound[1] * size >= _EXACT:
            return None
        per_size = self._lin_cache.get(size)
        if per_size is None:
            per_size = self._decode_consts(size)
        lin, af, bf_size, ab, bb_size, rep, attn_fps, bps = per_size
        # row j sums to a (S + j B) + b B exactly (see _affine): O(k), not O(k x batch), and
        # the same float64 operations, element for element, as the general branch
        if k <= 16:  # few rows: Python floats (they round exactly as float64 does)
            return [max((af * st + bf_size) / attn_fps, (ab * st + bb_size) * rep / bps) + lin
                    for st in range(total, total + k * size, size)]
        (af, bf), (ab, bb) = self._decode_affine
        st = total + np.arange(k, dtype=np.float64) * size
        flops = af * st + bf * size
        bytes_ = (ab * st + bb * size) * rep
        return (np.maximum(flops / attn_fps, bytes_ / bps) + lin).tolist()

    def decode_steps_s(self, ctx, k: int) -> np.ndarray:
        """Times of k consecutive decode-only iterations; row j has contexts ctx + j."""
        ctx = np.asarray(ctx)
        k = int(k)
        if ctx.size == 0:
            return np.zeros(k)
        if self._decode_bound is not None and ctx.dtype.kind in "iu":
            out = self.decode_steps_sum_s(int(np.add.reduce(ctx, axis=None)), ctx.size, k)
            if out is not None:
                return np.array(out)
        lin = self._decode_lin_s(ctx.size)
        attn_fps = self.roof.attn_flops_per_s
        ctx = ctx.astype(np.float64, copy=False)
        out = np.empty(k)
        rows = max(1, 2_000_000 // ctx.size)  # bound the (k, batch) temporaries
        for j0 in range(0, k, rows):
            j1 = min(k, j0 + rows)
            t = ctx[None, :] + np.arange(j0, j1, dtype=np.float64)[:, None]
            flops = self._core_decode(t).sum(axis=1)
            bytes_ = (self._read_bytes(t) + self.write_bytes).sum(axis=1) * self.kv_replication
            out[j0:j1] = self.roof.op_time_s(flops, bytes_, attn_fps) + lin
        return out

    def _length_tables(self, hi: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Prefill core FLOPs and cache bytes (kv_tokens x bytes per token) at every integer
        length 0..hi at least, or None when they are not tabulated.

        The table entries are the numeric functions evaluated element by element, so a
        lookup gives the very bits a call would; it saves two numpy calls per function and
        step, which add up in the simulator's hot loop."""
        tab = self._tables
        if tab is not None and hi < len(tab[0]):
            return tab
        if not self._tabulable or hi >= _MAX_TABLE:
            return None
        size = min(_MAX_TABLE, max(hi + 1, 4096, 2 * len(tab[0]) if tab is not None else 0))
        x = np.arange(size, dtype=np.float64)
        self._tables = (self._core_prefill(x), self._kv_tokens(x) * self.kv_bytes_per_token)
        return self._tables

    def _prefill_sums(self, ps: np.ndarray, pl: np.ndarray) -> tuple[float, float]:
        """Attention FLOPs and cache bytes (one copy, fixed state included) of prefill
        chunks of pl tokens after ps cached ones."""
        if ps.dtype.kind in "iu" and pl.dtype.kind in "iu" and int(ps.min()) >= 0:
            end = ps + pl
            tab = self._length_tables(int(end.max()))
            if tab is not None:
                core, kvb = tab
                return (float((core[end] - core[ps]).sum()),
                        float((kvb[end] + kvb[ps]).sum() + 2 * self.kv_fixed_bytes * ps.size))
        ps = ps.astype(np.float64, copy=False)
        end = ps + pl
        flops = float((self._core_prefill(end) - self._core_prefill(ps)).sum())
        # a chunk writes its tokens' cache and reads the prefix already cached
        bytes_ = float((self._kv_tokens(end) * self.kv_bytes_per_token
                        + self._kv_tokens(ps) * self.kv_bytes_per_token).sum()
                       + 2 * self.kv_fixed_bytes * ps.size)
        return flops, bytes_

    def step_sum_s(self, dec_total: int, dec_size: int, start: int, length: int
                   ) -> float | None:
        """`step_time_s` from integers alone: `dec_size` decodes whose contexts sum to
        `dec_total` plus one prefill chunk of `length` tokens after `start` cached ones.
        None when this model cannot (see decode_steps_sum_s): then call `step_time_s`."""
        if start < 0 or length < 0:
            return None
        if dec_size and (self._decode_bound is None or dec_total < 0 or self._decode_bound[0]
                         * dec_total + self._decode_bound[1] * dec_size >= _EXACT):
            return None
        hi = start + length
        tab = self._length_tables(hi)
        if tab is None:
            return None
        core, kvb = tab
        lin = self._linear_time_s(dec_size, float(length), 1)
        flops = float(core[hi] - core[start])
        # a chunk writes its tokens' cache and reads the prefix already cached
        bytes_ = float(kvb[hi] + kvb[start]) + 2 * self.kv_fixed_bytes
        if dec_size:  # the exact sums, as in decode_steps_sum_s
            (af, bf), (ab, bb) = self._decode_affine
            flops += af * dec_total + bf * dec_size
            bytes_ += ab * dec_total + bb * dec_size
        return _roof_s(flops, bytes_ * self.kv_replication, self.roof.attn_flops_per_s,
                       self.roof.bytes_per_s) + lin

    def step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()) -> float:
        """One forward iteration: decodes at contexts `decode_ctx` plus prefill chunks."""
        dc = np.asarray(decode_ctx).reshape(-1)
        ps = np.asarray(prefill_start).reshape(-1)
        pl = np.asarray(prefill_len).reshape(-1)
        if ps.size != pl.size:
            raise ValueError("prefill_start and prefill_len differ in length")
        if ps.size == 0:
            if dc.size == 0:
                return 0.0
            return float(self.decode_steps_s(dc, 1)[0])
        ints = dc.dtype.kind in "iu" or dc.size == 0
        if ps.size == 1 and ints and ps.dtype.kind in "iu" and pl.dtype.kind in "iu":
            t = self.step_sum_s(int(np.add.reduce(dc)), dc.size, int(ps[0]), int(pl[0]))
            if t is not None:
                return t
        if pl.dtype.kind not in "iu":
            pl = pl.astype(np.float64)
        n_tok = float(pl.sum())  # exact either way: token counts are integers
        lin = self._linear_time_s(dc.size, n_tok, ps.size)
        flops, bytes_ = self._prefill_sums(ps, pl)
        if dc.size:
            dc_total = int(np.add.reduce(dc)) if ints else -1
            if self._decode_bound is not None and dc_total >= 0 and self._decode_bound[0] \
                    * dc_total + self._decode_bound[1] * dc.size < _EXACT:
                (af, bf), (ab, bb) = self._decode_affine  # the exact sums, as above
                flops += af * dc_total + bf * dc.size
                bytes_ += ab * dc_total + bb * dc.size
            else:
                dc = dc.astype(np.float64, copy=False)
                flops += float(self._core_decode(dc).sum())
                bytes_ += float((self._read_bytes(dc) + self.write_bytes).sum())
        return _roof_s(flops, bytes_ * self.kv_replication, self.roof.attn_flops_per_s,
                       self.roof.bytes_per_s) + lin

    def prefill_time_s(self, n, start: int = 0) -> float:
        return self.step_time_s((), [start], [n])

    def decode_time_s(self, ctx, batch: int = 1) -> float:
        """One decode step of `batch` sequences all at context `ctx`."""
        return self.step_time_s(np.full(int(batch), float(ctx)))


_CACHE: dict = {}


def _hw_key(hw: HardwareProfile) -> tuple:
    return (hw.name, tuple(sorted(hw.peak_flops_per_s.items())), hw.memory_bandwidth_bytes_per_s,
            hw.memory_capacity_bytes, hw.interconnect_bytes_per_s, hw.host_link_bytes_per_s,
            hw.interconnect_latency_s, hw.compute_efficiency, hw.memory_efficiency,
            hw.step_overhead_s)


def build_step_model(model, arch: ArchSpec, hw: HardwareProfile, gpus: int = 1,
                     ideal: bool = False) -> StepCostModel:
    """The numeric step model of `model` with `arch` on `gpus` x `hw` (cached)."""
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus <= 0:
        raise SimkitError(f"gpus: must be a positive integer, got {gpus!r}")
    arch = arch.resolve(model)
    key = (model, arch, _hw_key(hw), gpus, bool(ideal))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    mc = model_costs(model, arch)
    n, t = S.n, S.t
    num = lambda e: float(mc.numeric(e))  # noqa: E731
    sm = StepCostModel(
        model=model, arch=arch, hardware=hw, gpus=gpus, ideal=bool(ideal),
        roof=roofline_for(hw, arch.weight_dtype, arch.kv_dtype, gpus, ideal),
        weight_bytes=num(mc.weight_bytes), expert_bytes=num(mc.expert_bytes),
        n_experts=model.n_experts, experts_per_token=model.experts_per_token,
        kv_bytes_per_token=num(mc.cache_bytes_per_token), kv_fixed_bytes=num(mc.state_bytes),
        kv_replication=kv_replication(model, arch.attention, gpus),
        lin_prefill_flops_per_token=num(mc.linear_prefill_flops_per_token),
        lin_decode_flops_per_token=num(mc.linear_decode_flops_per_token),
        lm_head_flops=num(mc.lm_head_flops), allreduces_per_step=2 * model.n_layers,
        d_model=model.d_model,
        _kv_tokens=_lambdify(mc, mc.cache_tokens, t),
        _core_prefill=_lambdify(mc, mc.attn_prefill_flops, n),
        _core_decode=_lambdify(mc, mc.attn_decode_flops, t),
        _read_bytes=_lambdify(mc, mc.decode_cache_read_bytes, t),
        write_bytes=num(mc.decode_cache_write_bytes))
    fl = _affine(mc, mc.attn_decode_flops, t, sm._core_decode)
    rd = _affine(mc, mc.decode_cache_read_bytes, t, sm._read_bytes)
    if fl is not None and rd is not None and sm.write_bytes.is_integer():
        # read + write bytes per token: a t + (b + write), still exact integers
        sm._decode_affine = (fl, (rd[0], rd[1] + sm.write_bytes))
        sm._decode_bound = (max(abs(fl[0]), abs(rd[0])),
                            max(abs(fl[1]), abs(rd[1] + sm.write_bytes)))
    sm._tabulable = _elementwise(mc.numeric(mc.attn_prefill_flops)) \
        and _elementwise(mc.numeric(mc.cache_tokens))
    if len(_CACHE) > 512:
        _CACHE.clear()
    _CACHE[key] = sm
    return sm


def min_gpus(model, arch: ArchSpec, hw: HardwareProfile, memory_fraction: float = 0.9) -> int:
    """Fewest GPUs whose memory x fraction exceeds the weights."""
    wb = float(model_costs(model, arch.resolve(model)).numeric(
        model_costs(model, arch.resolve(model)).weight_bytes))
    return max(1, math.floor(wb / (hw.memory_capacity_bytes * memory_fraction)) + 1)


def step_breakdown(sm: StepCostModel, decode_ctx=(), prefill_start=(), prefill_len=()) -> dict:
    """FLOPs, bytes and times of one iteration split by operator (for reports and `cost`).

    Uses the same formulas as `StepCostModel.step_time_s`; `total_s` equals it.
    """
    dc = np.asarray(decode_ctx, dtype=np.float64).reshape(-1)
    ps = np.asarray(prefill_start, dtype=np.float64).reshape(-1)
    pl = np.asarray(prefill_len, dtype=np.float64).reshape(-1)
    tokens = dc.size + float(pl.sum())
    lin_flops = (dc.size * sm.lin_decode_flops_per_token
                 + float(pl.sum()) * sm.lin_prefill_flops_per_token
                 + (dc.size + ps.size) * sm.lm_head_flops)
    lin_bytes = sm._weight_read_bytes(tokens) if tokens else 0.0
    end = ps + pl
    attn_flops = float((sm._core_prefill(end) - sm._core_prefill(ps)).sum()) \
        + float(sm._core_decode(dc).sum())
    attn_bytes = (float((sm._kv_tokens(end) * sm.kv_bytes_per_token
                         + sm._kv_tokens(ps) * sm.kv_bytes_per_token).sum())
                  + 2 * sm.kv_fixed_bytes * ps.size
                  + float((sm._read_bytes(dc) + sm.write_bytes).sum())) * sm.kv_replication
    r = sm.roof
    comm_s = sm.allreduces_per_step * float(
        r.allreduce_time_s(tokens * sm.d_model * ACTIVATION_BYTES)) if tokens else 0.0
    lin_c, lin_m = lin_flops / r.matmul_flops_per_s, lin_bytes / r.bytes_per_s
    att_c, att_m = attn_flops / r.attn_flops_per_s, attn_bytes / r.bytes_per_s
    compute_s, memory_s = lin_c + att_c, lin_m + att_m
    return {
        "linear_flops": lin_flops, "linear_bytes": lin_bytes,
        "attention_flops": attn_flops, "attention_bytes": attn_bytes,
        "linear_compute_s": lin_c, "linear_memory_s": lin_m,
        "attention_compute_s": att_c, "attention_memory_s": att_m,
        "communication_s": comm_s, "overhead_s": r.overhead_s if tokens else 0.0,
        "compute_s": compute_s, "memory_s": memory_s,
        "bound": "compute" if compute_s >= memory_s else "memory",
        "total_s": sm.step_time_s(dc, ps, pl),
    }
