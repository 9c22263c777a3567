"""Numeric step-cost models for the simulator: lambdified once per configuration, cached.

`build_step_model(model, arch, hw, gpus, ideal, engine)` turns the sympy `ModelCosts` into
numpy functions of the context length and wraps them in a `StepCostModel` whose
`step_time_s` times one forward iteration of a batch with *different* context lengths
exactly (the sum of every request's attention and cache traffic), never an average.
`step_model_for(scenario)` is the one builder from a scenario. Nothing here simplifies
sympy expressions in a loop: that happens once, in `build_step_model`.

THE step-time formula (`base_time_s` + `attention_time_s`; `StepCostModel._base_s` /
`_time_s`, the simulator's fast paths and the measurement fits in `simkit.calibrate.
measurements` all call these two functions). One forward iteration of a batch on a
tensor-parallel group of N GPUs (rates are the group's: hardware datasheet x the hardware
profile's achievable efficiency x the engine profile's fraction of it, `simkit.costs.roofline`):

  t = T_step + L x T_layer + S x T_seq                                 fixed costs
    + max(C, W') + f_s x min(C, W'),                                   weight matmuls
      C = (F_lin + h_v x F_head) / (P x eta_gemm(M, d/N)), W' = W / BW_w
    + A x (alpha + 2 (N-1) alpha_step + 2 (N-1)/N x M x d x 2 B / (link x eta_ar))  all-reduces
    + E x (T_moe + M x k x B_slot / BW_gpu)                            routed-expert kernels
    + max(F_pre / P_attn, B_pre / BW_w)                                prefill attention core
    + max(F_dec / P_attn, B_dec / BW_dec)                              decode attention core

  M = tokens in the step (decodes + prompt tokens), S = sequences in it (decodes + prefill
  chunks), L = layers launched, A = all-reduces per step (one per token mixer and per FFN;
  none on one GPU); f_s = the share of the shorter of the GEMMs' compute and their weight
  streaming that the longer does not hide (0: the roofline's max); eta_gemm(M, w) = eta_g x M / (M + M_half) x w / (w + w_half) is the GEMM
  shape factor (few tokens fill few rows of a tile; a narrow shard gives too few tiles);
  F_lin counts every projection and FFN, F_head the LM head of each sequence's last
  position, which runs in the vocabulary's dtype: h_v = the layers' GEMM rate over the head's
  (16-bit beside fp8 layers: about 1.8 on an H100 under `vllm`; 1 when the dtypes match);
  W = weights read once per step (every weight but the embedding table, whose rows are
  gathered; MoE: the experts the step's tokens touch); BW_w = the
  weight-streaming rate (the prefill's cache reads and writes stream at it too), BW_dec = the
  decode attention kernel's rate, P_attn = the attention core's FLOP rate; E = routed-expert
  (MoE) layers, k = experts per token, T_moe and B_slot their kernels' latency per layer and
  HBM bytes per token-expert slot, measured (`simkit.costs.roofline.MOE_KERNEL_COSTS`), and
  BW_gpu one GPU's datasheet bandwidth (every GPU of the group permutes every slot).
  `simkit.costs.steptime` builds this formula in sympy, the engine's terms as symbols.

Where each term comes from: the per-operator roofline (Williams, Waterman & Patterson,
CACM 52(4) 2009; as LLM-Viewer, arXiv:2402.16363, applies it to LLM layers); tensor-parallel
all-reduces (Megatron-LM, arXiv:1909.08053) with NCCL's latency-bandwidth cost
(nccl-tests doc/PERFORMANCE.md); fixed per-step, per-layer and per-sequence costs and the
GEMM shape factor as serving engines show them (the constants are fitted to published
measurements, `simkit/data/engines/*.toml`, each citing its data). `--ideal` sets every
efficiency to 1 and every fixed cost to 0: the pure roofline.

Conventions: decode context `t` = keys attended by the new token (itself included) = the
cache length after it is appended. A prefill chunk of `len` tokens after `start` cached ones
does core(start+len) - core(start) mixing FLOPs (the causal sums telescope); it reads the
cache held at `start` (the prefix its queries attend to; fixed state included), writes the
cache of its `len` new tokens, and writes the fixed state once: for full attention that is
kv(start) + len x kv/token = kv(start + len) bytes. Cache bytes here are physical: a group
whose KV heads are replicated across the tensor-parallel GPUs (H_kv < N, MLA) counts every
copy, in its decode reads and in memory.

Fast paths (the simulator's hot loop) compute the same sums exactly in other ways: per-token
decode costs that are affine in t with integer coefficients are summed from the contexts'
sum alone; integer-valued ones are tabulated and gathered; prefill costs are tabulated by
length. Sums of integers (below 2**53) are exact in float64 whatever their order, so every
path hands the formula the very same numbers and the simulator's fast and stepped paths
agree bit for bit.
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
    if not e.has(var):
        c = float(e)
        return lambda x: np.full(np.shape(x), c, dtype=np.float64)
    f = sp.lambdify((var,), e, modules="numpy")
    return lambda x: np.asarray(f(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def base_time_s(r: Roofline, tokens, sequences, lin_flops, weight_bytes, allreduces: int,
                d_model: int, blocks: int, mx=max, moe_blocks: int = 0,
                experts_per_token: int = 0, head_flops=0.0):
    """THE formula, part 1: a step's time outside the attention cores -- the weight matmuls
    against their roofline with the engine's GEMM shape factor, the tensor-parallel
    all-reduces, the routed-expert layers' kernel costs and the fixed costs (see the module
    docstring). `tokens` > 0.

    Scalars with `mx=max` (Python floats: the same IEEE operations, so the same bits as
    numpy's elementwise maximum), or numpy arrays of steps with `mx=np.maximum` (the fits).
    `lin_flops` leaves out the LM head's `head_flops`, which run at the vocabulary dtype's
    rate (`Roofline.head_flops_scale`; a scale of 1 adds them unchanged)."""
    rate = r.matmul_flops_per_s * r.engine.gemm_factor(tokens, d_model / r.gpus)
    c = (lin_flops + r.head_flops_scale * head_flops) / rate
    w = weight_bytes / r.weight_bytes_per_s
    hi = mx(c, w)
    t = hi + r.engine.gemm_serial_fraction * (c + w - hi)  # + f_s x min(c, w)
    if r.gpus > 1:
        t = t + allreduces * r.allreduce_time_s(tokens * d_model * ACTIVATION_BYTES)
    if moe_blocks:  # each routed-expert layer: its kernels' latency + traffic per slot
        t = t + r.moe_kernels_s(moe_blocks, tokens * experts_per_token)
    return t + (r.overhead_s + blocks * r.layer_overhead_s + sequences * r.sequence_overhead_s)


def attention_time_s(r: Roofline, pre_flops, pre_bytes, dec_flops, dec_bytes, mx=max):
    """THE formula, part 2: the prefill attention core against the attention rate and the
    streaming rate, plus the decode attention core (`decode_attention_time_s`) (scalars with
    `mx=max`, arrays with `mx=np.maximum`)."""
    return (mx(pre_flops / r.attn_flops_per_s, pre_bytes / r.bytes_per_s)
            + decode_attention_time_s(r, dec_flops, dec_bytes, mx))


def decode_attention_time_s(r: Roofline, dec_flops, dec_bytes, mx=max):
    """Part 2's decode term: the decode attention core against the attention rate and the
    decode kernel's streaming rate. A decode-only step's prefill term is max(0/., 0/.) = 0.0
    and 0.0 + x == x, so its attention time is this term alone, to the bit."""
    return mx(dec_flops / r.attn_flops_per_s, dec_bytes / r.attn_decode_bytes_per_s)


#: lengths tabulated at most (8 bytes each, per table)
_MAX_TABLE = 1 << 22

#: integers up to this are exact in float64, and so are sums that stay below it
_EXACT = float(2**53)


def _affine(expr, var, f: Callable) -> tuple[float, float] | None:
    """(a, b) when the numeric `expr` is a*var + b with integer a and b and its lambdified
    `f` gives exactly a*t + b at integer t; None otherwise (windows, Min, Piecewise...).

    Why: then any sum of f over a batch is exact (below 2**53) and equals a * sum(t) +
    b * size whatever the order of the additions: one row sum costs O(1)."""
    import sympy as sp

    if expr.has(sp.Min, sp.Max, sp.Piecewise, sp.Mod, sp.floor, sp.ceiling, sp.Abs):
        return None
    try:
        p = sp.Poly(expr, var)
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

    ok = (sp.Min, sp.Max, sp.Mod, sp.Piecewise, sp.floor, sp.ceiling)
    return all(isinstance(f, ok) for f in e.atoms(sp.Function)) and all(
        p.exp.is_Integer and 0 <= p.exp <= 2 for p in e.atoms(sp.Pow))


def _integral(tab: np.ndarray) -> bool:
    """Every entry a multiple of 1/2 (int4 caches hold half bytes): sums stay exact."""
    return bool(np.array_equal(tab * 2.0, np.rint(tab * 2.0)))


@dataclass(frozen=True)
class KVGroup:
    """One layer group's per-position cache, as the KV manager allocates it."""

    label: str
    kind: str  # full | mla | window | chunked | sparse (the kinds whose cache has positions)
    bytes_per_position: float  # physical bytes per held position, whole group
    positions: Callable  # t -> positions each layer of the group holds at context t
    window: int | None = None
    chunk: int | None = None
    global_tokens: int | None = None


@dataclass(frozen=True)
class KVLayout:
    """The cache of one sequence: per-position groups plus constant state (physical)."""

    groups: tuple[KVGroup, ...]
    fixed_bytes: float  # constant state per sequence (SSM, linear, memory), all groups

    @property
    def bytes_per_token(self) -> float:
        """Bytes one more position costs in every group at once (the growth of a fully
        growing stack)."""
        return float(sum(g.bytes_per_position for g in self.groups))


@dataclass
class StepCostModel:
    """Plain-numpy costs of one model/arch on one TP group of a hardware profile."""

    model: object
    arch: ArchSpec
    hardware: HardwareProfile
    gpus: int
    ideal: bool
    roof: Roofline
    weight_bytes: float  # held in memory
    streamed_weight_bytes: float  # read by every step (all but the embedding table's rows)
    expert_bytes: float
    n_experts: int
    experts_per_token: int
    kv_layout: KVLayout
    lin_prefill_flops_per_token: float
    lin_decode_flops_per_token: float
    lm_head_flops: float
    allreduces_per_step: int
    blocks: int  # layers (blocks) the engine launches per step
    d_model: int
    moe_blocks: int  # routed-expert (MoE) layers among them
    _kv_bytes: Callable  # t -> physical cache + state bytes of one sequence
    _kv_logical: Callable  # t -> the same, one copy (what papers report)
    _core_prefill: Callable  # n -> FLOPs
    _core_decode: Callable  # t -> FLOPs per decode token
    _dec_bytes: Callable  # t -> KV bytes read + written per decode token (physical)
    write_bytes_per_token: float  # cache written per prompt token (physical)
    # -- derived at build time for the hot loop (build_step_model sets them) -------------
    #: ((a, b), (a', b')): per-token decode FLOPs = a t + b and bytes = a' t + b' exactly
    _decode_affine: tuple | None = field(default=None, init=False, repr=False, compare=False)
    #: (max |a|, max |b|) over both: bounds the row sums (they must stay exact in float64)
    _decode_bound: tuple | None = field(default=None, init=False, repr=False, compare=False)
    #: per (n_dec, n_pre_tok, n_chunks): the step's time outside attention (`_base_s`)
    _base_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _tabulable: bool = field(default=False, init=False, repr=False, compare=False)
    _tables: tuple | None = field(default=None, init=False, repr=False, compare=False)
    _exact_tables: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def weight_bytes_per_gpu(self) -> float:
        return self.weight_bytes / self.gpus

    @property
    def max_context(self) -> int:
        """The deployed context: the what-if's `max_context`, else the model's own."""
        return int(self.arch.max_context or self.model.max_context)

    @property
    def engine(self):
        return self.roof.engine

    # -- memory ---------------------------------------------------------------------
    @property
    def kv_fixed_bytes(self) -> float:
        return self.kv_layout.fixed_bytes

    def kv_bytes(self, t) -> np.ndarray:
        """Physical cache + state bytes one sequence holds at context t (every TP copy)."""
        return self._kv_bytes(t)

    def kv_bytes_logical(self, t) -> np.ndarray:
        """Cache + state bytes of one sequence at context t, one copy of every group."""
        return self._kv_logical(t)

    def activation_reserve_bytes(self, tokens: int = 0, sequences: int = 0) -> float:
        """Bytes the engine holds back on the TP group for the activations of its profiling
        pass of `tokens` tokens and `sequences` sampled rows (`simkit.costs.activations`);
        0 when the engine profile reserves none."""
        if not self.engine.reserves_activations or (tokens <= 0 and sequences <= 0):
            return 0.0
        from simkit.costs.activations import profile_peak_bytes

        return self.gpus * profile_peak_bytes(self.model, self.arch.stack, self.gpus,
                                              int(tokens), int(sequences))

    @property
    def memory_after_weights_bytes(self) -> float:
        """Device memory of the tensor-parallel group less the weights (no fraction)."""
        return self.hardware.memory_capacity_bytes * self.gpus - self.weight_bytes

    def kv_capacity_bytes(self, memory_fraction: float = 0.9, tokens: int = 0,
                          sequences: int = 0) -> float:
        """Physical cache bytes the TP group can hold: device memory x gpus x fraction -
        weights (vLLM's gpu_memory_utilization) - the engine's activation reserve for a
        profiling pass of `tokens` tokens and `sequences` sequences (none by default)."""
        reserve = self.activation_reserve_bytes(tokens, sequences)
        free = self.hardware.memory_capacity_bytes * self.gpus * memory_fraction \
            - self.weight_bytes - reserve
        if free <= 0:
            need = self.gpus
            while self.hardware.memory_capacity_bytes * need * memory_fraction \
                    <= self.weight_bytes:
                need += 1
            if reserve and need == self.gpus:  # the weights fit; their activations do not
                raise SimkitError(
                    f"{self.model.name} leaves no KV memory: on {self.gpus} x "
                    f"{self.hardware.name} x memory_fraction {memory_fraction} its weights "
                    f"take {self.weight_bytes / 2**30:.1f} GiB and the {self.engine.name} "
                    f"engine's activations for {tokens} tokens and {sequences} sequences "
                    f"{reserve / 2**30:.1f} GiB of "
                    f"{self.hardware.memory_capacity_bytes * self.gpus * memory_fraction / 2**30:.1f}"
                    " GiB (serving.max_batch_tokens, serving.max_batch, or more GPUs)")
            raise SimkitError(
                f"{self.model.name} does not fit: its weights take "
                f"{self.weight_bytes / 2**30:.1f} GiB but {self.gpus} x {self.hardware.name} "
                f"x memory_fraction {memory_fraction} hold "
                f"{self.hardware.memory_capacity_bytes * self.gpus * memory_fraction / 2**30:.1f}"
                f" GiB; it needs at least {need} GPUs (hardware.gpus_per_replica / --gpus)")
        return free

    def kv_capacity_for(self, serving) -> float:
        """`kv_capacity_bytes` under a serving section: its memory fraction, and the
        profiling pass its token budget and batch limit give (`activations.profile_pass`);
        or, with `serving.kv_cache_bytes`, that much per GPU (vLLM's --kv-cache-memory-bytes),
        if it fits beside the weights. The one place a scenario's KV capacity is computed."""
        from simkit.costs.activations import profile_pass

        per_gpu = getattr(serving, "kv_cache_bytes", None)
        if per_gpu is not None:
            if per_gpu * self.gpus > self.memory_after_weights_bytes:
                raise SimkitError(
                    f"serving.kv_cache_bytes: {per_gpu / 2**30:.3g} GiB per GPU does not fit: "
                    f"{self.gpus} x {self.hardware.name} hold "
                    f"{self.hardware.memory_capacity_bytes * self.gpus / 2**30:.1f} GiB, "
                    f"{self.weight_bytes / 2**30:.1f} GiB of it {self.model.name}'s weights")
            return float(per_gpu * self.gpus)
        tokens, sequences = profile_pass(serving, self.max_context)
        return self.kv_capacity_bytes(float(serving.memory_fraction), tokens, sequences)

    def activation_reserve_for(self, serving) -> float:
        """`activation_reserve_bytes` of a serving section's profiling pass (0 with
        `serving.kv_cache_bytes`: the cache is then sized without it)."""
        from simkit.costs.activations import profile_pass

        if getattr(serving, "kv_cache_bytes", None) is not None:
            return 0.0
        return self.activation_reserve_bytes(*profile_pass(serving, self.max_context))

    # -- THE formula ------------------------------------------------------------------
    def _weight_read_bytes(self, tokens: float) -> float:
        """Weights streamed once per step (the layers and the LM head; the embedding table
        gives only its tokens' rows); MoE reads only the experts its tokens touch:
        E (1 - (1 - k/E)^tokens) of E per layer in expectation (uniform routing)."""
        if not self.n_experts:
            return self.streamed_weight_bytes
        frac = 1.0 - (1.0 - self.experts_per_token / self.n_experts) ** tokens
        return self.streamed_weight_bytes - self.expert_bytes * (1.0 - frac)

    def _base_s(self, n_dec: int, n_pre_tok: int, n_chunks: int) -> float:
        """The step's time outside the attention cores: fixed costs, the weight matmuls
        (with the LM head) and the all-reduces. Cached: a decode run asks for the same
        batch size again and again."""
        key = (n_dec, n_pre_tok, n_chunks)
        hit = self._base_cache.get(key)
        if hit is not None:
            return hit
        tokens = n_dec + n_pre_tok
        if tokens == 0:
            return 0.0
        flops = (n_dec * self.lin_decode_flops_per_token
                 + n_pre_tok * self.lin_prefill_flops_per_token)
        t = float(base_time_s(self.roof, tokens, n_dec + n_chunks, flops,
                              self._weight_read_bytes(tokens), self.allreduces_per_step,
                              self.d_model, self.blocks, moe_blocks=self.moe_blocks,
                              experts_per_token=self.experts_per_token,
                              head_flops=(n_dec + n_chunks) * self.lm_head_flops))
        if len(self._base_cache) > 65536:
            self._base_cache.clear()
        self._base_cache[key] = t
        return t

    def _time_s(self, base: float, pre_flops: float, pre_bytes: float, dec_flops: float,
                dec_bytes: float) -> float:
        """base + the prefill attention operator + the decode attention operator."""
        return base + attention_time_s(self.roof, pre_flops, pre_bytes, dec_flops, dec_bytes)

    def _decode_rows_s(self, base: float, flops: np.ndarray, bytes_: np.ndarray) -> np.ndarray:
        """`_time_s` of decode-only steps, vectorised over rows (the same bits as the scalar
        form: see `decode_attention_time_s`)."""
        return base + decode_attention_time_s(self.roof, flops, bytes_, mx=np.maximum)

    # -- exact sums -------------------------------------------------------------------
    def _affine_fits(self, total: int, size: int) -> bool:
        b = self._decode_bound
        return b is not None and total >= 0 and b[0] * total + b[1] * size < _EXACT

    def _tables_for(self, hi: int) -> tuple | None:
        """(prefill core FLOPs, kv bytes, decode FLOPs, decode bytes) at every integer
        length 0..hi at least, or None when not tabulated. Entries are the numeric
        functions evaluated element by element: a lookup gives the bits a call would."""
        tab = self._tables
        if tab is not None and hi < len(tab[0]):
            return tab
        if not self._tabulable or hi >= _MAX_TABLE:
            return None
        size = min(_MAX_TABLE, max(hi + 1, 4096, 2 * len(tab[0]) if tab is not None else 0))
        x = np.arange(size, dtype=np.float64)
        tabs = (self._core_prefill(x), self._kv_bytes(x), self._core_decode(x),
                self._dec_bytes(x))
        # sums of the decode columns stay exact when entries are integers (half bytes for
        # int4) and a whole batch's sum stays below 2**53
        big = max(float(np.abs(tabs[2]).max()), float(np.abs(tabs[3]).max()))
        self._exact_tables = _integral(tabs[2]) and _integral(tabs[3]) and big * 2 * 2**20 \
            < _EXACT
        self._tables = tabs
        return tabs

    def _decode_sums(self, ctx: np.ndarray) -> tuple[float, float]:
        """Exact decode FLOPs and bytes of a batch at integer contexts `ctx`."""
        if ctx.size and ctx.dtype.kind in "iu":
            total = int(np.add.reduce(ctx))
            if self._affine_fits(total, ctx.size):
                (af, bf), (ab, bb) = self._decode_affine
                return af * total + bf * ctx.size, ab * total + bb * ctx.size
            tab = self._tables_for(int(ctx.max()))
            if tab is not None and self._exact_tables:
                return float(tab[2][ctx].sum()), float(tab[3][ctx].sum())
        c = ctx.astype(np.float64, copy=False)
        return float(self._core_decode(c).sum()), float(self._dec_bytes(c).sum())

    def _prefill_sums(self, ps: np.ndarray, pl: np.ndarray) -> tuple[float, float]:
        """Attention FLOPs and KV bytes of prefill chunks of pl tokens after ps cached."""
        n_tok = float(pl.sum())
        fixed = self.kv_layout.fixed_bytes * ps.size
        if ps.dtype.kind in "iu" and pl.dtype.kind in "iu" and ps.size \
                and int(ps.min()) >= 0:
            end = ps + pl
            tab = self._tables_for(int(end.max()))
            if tab is not None:
                core, kvb = tab[0], tab[1]
                return (float((core[end] - core[ps]).sum()),
                        float(kvb[ps].sum()) + n_tok * self.write_bytes_per_token + fixed)
        ps = ps.astype(np.float64, copy=False)
        end = ps + pl
        flops = float((self._core_prefill(end) - self._core_prefill(ps)).sum())
        return flops, float(self._kv_bytes(ps).sum()) + n_tok * self.write_bytes_per_token \
            + fixed

    # -- time -------------------------------------------------------------------------
    def decode_steps_sum_s(self, total: int, size: int, k: int) -> list[float] | None:
        """Times of k decode-only iterations of `size` sequences whose integer contexts sum
        to `total` at the first (row j: total + j size), as a list. None when the per-token
        costs are not affine (or the sums leave exact float64): call `decode_steps_s`."""
        if size <= 0 or not self._affine_fits(total + (k - 1) * size, size):
            return None
        base = self._base_s(size, 0, 0)
        (af, bf), (ab, bb) = self._decode_affine
        # row j's FLOPs a (total + j size) + b size = f0 + f1 j, and its bytes likewise: exact
        # integers below 2**53 (`_affine_fits`) whichever way they are summed
        f0, f1 = af * total + bf * size, af * size
        b0, b1 = ab * total + bb * size, ab * size
        r = self.roof
        if k <= 16:  # few rows: Python floats (they round exactly as float64 does)
            return [base + decode_attention_time_s(r, f0 + f1 * j, b0 + b1 * j)
                    for j in range(k)]
        j = np.arange(k, dtype=np.float64)
        return self._decode_rows_s(base, j * f1 + f0, j * b1 + b0).tolist()

    def marginal_token_s(self) -> float:
        """The least time one more token can add to a step: its weight-matmul FLOPs at the
        engine's best GEMM rate (a step of unboundedly many tokens) plus its share of the
        all-reduce traffic and its routed-expert slots' traffic -- no fixed costs, no
        attention, no latency. A floor for capacity bounds (`simkit.plan.bounds`)."""
        r = self.roof
        rate = r.matmul_flops_per_s * r.engine.gemm_factor(1e18, self.d_model / self.gpus)
        t = min(self.lin_prefill_flops_per_token, self.lin_decode_flops_per_token) / rate
        t += self.moe_blocks * self.experts_per_token * r.moe_slot_s
        if self.gpus > 1:
            n = self.gpus
            t += self.allreduces_per_step * 2 * (n - 1) / n * self.d_model \
                * ACTIVATION_BYTES / r.link_bytes_per_s
        return t

    def fixed_costs_s(self) -> tuple[float, float]:
        """(fixed seconds of every step, seconds per sequence in a step): the engine's step
        and per-layer launch costs and its routed-expert layers' latency, and its
        per-sequence cost (`base_time_s`'s fixed terms). A floor for capacity bounds, beside
        `marginal_token_s`."""
        r = self.roof
        return (r.overhead_s + self.blocks * r.layer_overhead_s
                + self.moe_blocks * r.moe_layer_s), r.sequence_overhead_s

    def ensure_tables(self, hi: int) -> bool:
        """Tabulate every length up to `hi` now (the simulator knows its longest request);
        True when the decode columns are exact integers (then `decode_grid_s` and
        `step_ctx_s` apply)."""
        return self._tables_for(int(hi)) is not None and self._exact_tables

    def decode_grid_s(self, grid: np.ndarray) -> list[float]:
        """`decode_steps_s` of a (steps x batch) integer grid of contexts whose every entry
        is tabulated (`ensure_tables`): the simulator builds that grid for its memory
        figures anyway, so the rows' exact sums cost two gathers."""
        tab = self._tables
        base = self._base_s(grid.shape[1], 0, 0)
        return self._decode_rows_s(base, np.add.reduce(tab[2][grid], axis=1),
                                   np.add.reduce(tab[3][grid], axis=1)).tolist()

    def step_ctx_s(self, dec_ctx: np.ndarray, start: int, length: int) -> float:
        """`step_time_s` of integer decode contexts `dec_ctx` (tabulated, exact) plus one
        prefill chunk: the table lookups of `step_sum_s` for stacks whose per-token decode
        costs are not affine (windows, chunks)."""
        tab = self._tables
        hi = start + length
        pre_f = float(tab[0][hi] - tab[0][start])
        pre_b = float(tab[1][start]) + float(length) * self.write_bytes_per_token \
            + self.kv_layout.fixed_bytes
        if dec_ctx.size:
            dec_f = float(np.add.reduce(tab[2][dec_ctx]))
            dec_b = float(np.add.reduce(tab[3][dec_ctx]))
        else:
            dec_f = dec_b = 0.0
        return self._time_s(self._base_s(dec_ctx.size, length, 1), pre_f, pre_b, dec_f, dec_b)

    def decode_steps_s(self, ctx, k: int) -> np.ndarray:
        """Times of k consecutive decode-only iterations; row j has contexts ctx + j."""
        ctx = np.asarray(ctx)
        k = int(k)
        if ctx.size == 0:
            return np.zeros(k)
        if ctx.dtype.kind in "iu" and self._decode_affine is not None:
            out = self.decode_steps_sum_s(int(np.add.reduce(ctx)), ctx.size, k)
            if out is not None:
                return np.array(out)
        base = self._base_s(ctx.size, 0, 0)
        ints = ctx.dtype.kind in "iu"
        tab = self._tables_for(int(ctx.max()) + k) if ints else None
        exact = tab is not None and self._exact_tables
        out = np.empty(k)
        rows = max(1, 2_000_000 // ctx.size)  # bound the (k, batch) temporaries
        for j0 in range(0, k, rows):
            j1 = min(k, j0 + rows)
            if exact:
                t = ctx[None, :] + np.arange(j0, j1, dtype=ctx.dtype)[:, None]
                flops, bytes_ = tab[2][t].sum(axis=1), tab[3][t].sum(axis=1)
            else:
                t = ctx.astype(np.float64)[None, :] + np.arange(j0, j1, dtype=np.float64)[:, None]
                flops = self._core_decode(t).sum(axis=1)
                bytes_ = self._dec_bytes(t).sum(axis=1)
            out[j0:j1] = self._decode_rows_s(base, flops, bytes_)
        return out

    def step_sum_s(self, dec_total: int, dec_size: int, start: int, length: int
                   ) -> float | None:
        """`step_time_s` from integers alone: `dec_size` decodes whose contexts sum to
        `dec_total` plus one prefill chunk of `length` tokens after `start` cached ones.
        None when this model cannot (decode costs not affine, or no tables)."""
        if start < 0 or length < 0:
            return None
        if dec_size and not self._affine_fits(dec_total, dec_size):
            return None
        hi = start + length
        tab = self._tables_for(hi)
        if tab is None:
            return None
        core, kvb = tab[0], tab[1]
        pre_f = float(core[hi] - core[start])
        pre_b = float(kvb[start]) + float(length) * self.write_bytes_per_token \
            + self.kv_layout.fixed_bytes
        dec_f = dec_b = 0.0
        if dec_size:
            (af, bf), (ab, bb) = self._decode_affine
            dec_f, dec_b = af * dec_total + bf * dec_size, ab * dec_total + bb * dec_size
        return self._time_s(self._base_s(dec_size, length, 1), pre_f, pre_b, dec_f, dec_b)

    def step_prefills_sum_s(self, dec_total: int, dec_size: int, starts: np.ndarray,
                            lens: np.ndarray) -> float | None:
        """`step_sum_s` with several prefill chunks (integer arrays `starts`, `lens`, every
        end tabulated): the very sums `step_time_s` forms, without its conversions. None when
        the decode costs are not affine."""
        if dec_size and not self._affine_fits(dec_total, dec_size):
            return None
        tab = self._tables
        end = starts + lens
        if tab is None or int(end.max()) >= len(tab[0]):
            return None
        core, kvb = tab[0], tab[1]
        n_tok = int(np.add.reduce(lens))
        pre_f = float((core[end] - core[starts]).sum())
        pre_b = float(kvb[starts].sum()) + n_tok * self.write_bytes_per_token \
            + self.kv_layout.fixed_bytes * starts.size
        dec_f = dec_b = 0.0
        if dec_size:
            (af, bf), (ab, bb) = self._decode_affine
            dec_f, dec_b = af * dec_total + bf * dec_size, ab * dec_total + bb * dec_size
        return self._time_s(self._base_s(dec_size, n_tok, starts.size), pre_f, pre_b, dec_f,
                            dec_b)

    def step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()) -> float:
        """One forward iteration: decodes at contexts `decode_ctx` plus prefill chunks."""
        dc = np.asarray(decode_ctx).reshape(-1)
        ps = np.asarray(prefill_start).reshape(-1)
        pl = np.asarray(prefill_len).reshape(-1)
        if ps.size != pl.size:
            raise ValueError("prefill_start and prefill_len differ in length")
        if ps.size == 0 and dc.size == 0:
            return 0.0
        if pl.dtype.kind not in "iu":
            pl = pl.astype(np.float64)
        n_tok = pl.sum()
        n_tok = int(n_tok) if pl.dtype.kind in "iu" else float(n_tok)
        pre_f, pre_b = self._prefill_sums(ps, pl) if ps.size else (0.0, 0.0)
        dec_f, dec_b = self._decode_sums(dc) if dc.size else (0.0, 0.0)
        return self._time_s(self._base_s(dc.size, n_tok, ps.size), pre_f, pre_b, dec_f, dec_b)

    def inner_step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()) -> float:
        """`step_time_s` of a forward pass run inside another iteration (a speculative
        draft's passes: vLLM v1's proposer runs them in the same model-runner call, on GPU
        tensors): THE formula without the per-step and per-sequence fixed costs (scheduling,
        input preparation, per-request bookkeeping), which the iteration pays once; launches
        per layer, the roofline terms and the all-reduces stay."""
        dc = np.asarray(decode_ctx).reshape(-1)
        seqs = dc.size + np.asarray(prefill_start).reshape(-1).size
        t = self.step_time_s(decode_ctx, prefill_start, prefill_len)
        if t == 0.0:
            return 0.0
        return t - (self.roof.overhead_s + self.sequence_host_time_s(seqs))

    def sequence_host_time_s(self, sequences: int) -> float:
        """The per-sequence fixed costs of an iteration of `sequences` sequences (the
        engine's `sequence_overhead_s`: scheduling each sequence, building its inputs,
        processing its output). vLLM's multi-step rounds do that work once per round: their
        later iterations take it off the critical path, while the engine loop, the model
        runner and the sampler (`step_overhead_s`) still run at every step."""
        return sequences * self.roof.sequence_overhead_s

    def verify_time_s(self, start, length, prefill_start=(), prefill_len=()) -> float:
        """One speculative verification iteration (Leviathan et al. 2023, arXiv:2211.17192,
        Sec. 2.3): each decoding sequence runs `length` = k + 1 query tokens (its last
        token and k drafted ones) after its `start` cached tokens, as a prefill chunk of THE
        formula -- linear FLOPs of k + 1 tokens, attention core(start + k + 1) - core(start),
        the cache at `start` read once, k + 1 positions written -- except that every
        verified position needs its logits (the LM head k + 1 times, where a prompt chunk
        needs only its last). Real prompt chunks (`prefill_start`, `prefill_len`) may share
        the iteration."""
        vs = np.asarray(start, dtype=np.int64).reshape(-1)
        vl = np.asarray(length, dtype=np.int64).reshape(-1)
        ps = np.concatenate([vs, np.asarray(prefill_start, dtype=np.int64).reshape(-1)])
        pl = np.concatenate([vl, np.asarray(prefill_len, dtype=np.int64).reshape(-1)])
        if ps.size == 0:
            return 0.0
        n_tok = int(pl.sum())
        pre_f, pre_b = self._prefill_sums(ps, pl)
        logits = int(vl.sum()) + (ps.size - vs.size)
        base = float(base_time_s(self.roof, n_tok, ps.size,
                                 n_tok * self.lin_prefill_flops_per_token,
                                 self._weight_read_bytes(n_tok), self.allreduces_per_step,
                                 self.d_model, self.blocks, moe_blocks=self.moe_blocks,
                                 experts_per_token=self.experts_per_token,
                                 head_flops=logits * self.lm_head_flops))
        return self._time_s(base, pre_f, pre_b, 0.0, 0.0)

    def step_terms(self, decode_ctx=(), prefill_start=(), prefill_len=()) -> dict:
        """What one iteration does, independent of the rates: the inputs of `base_time_s`
        and `attention_time_s` (for the measurement fits and `step_breakdown`)."""
        dc = np.asarray(decode_ctx).reshape(-1)
        ps = np.asarray(prefill_start).reshape(-1)
        pl = np.asarray(prefill_len).reshape(-1)
        n_tok = float(pl.sum()) if pl.size else 0.0
        tokens = dc.size + n_tok
        pre_f, pre_b = self._prefill_sums(ps, pl) if ps.size else (0.0, 0.0)
        dec_f, dec_b = self._decode_sums(dc) if dc.size else (0.0, 0.0)
        return {
            "tokens": tokens, "sequences": float(dc.size + ps.size),
            "lin_flops": (dc.size * self.lin_decode_flops_per_token
                          + n_tok * self.lin_prefill_flops_per_token),
            "head_flops": (dc.size + ps.size) * self.lm_head_flops,
            "weight_bytes": self._weight_read_bytes(tokens) if tokens else 0.0,
            "pre_flops": pre_f, "pre_bytes": pre_b, "dec_flops": dec_f, "dec_bytes": dec_b}

    def prefill_time_s(self, n, start: int = 0) -> float:
        return self.step_time_s((), [start], [n])

    def decode_time_s(self, ctx, batch: int = 1) -> float:
        """One decode step of `batch` sequences all at context `ctx`."""
        return self.step_time_s(np.full(int(batch), ctx))


_CACHE: dict = {}


def _hw_key(hw: HardwareProfile) -> tuple:
    return tuple(sorted((k, tuple(sorted(v.items())) if isinstance(v, dict) else v)
                        for k, v in hw.to_dict().items() if k != "calibration"))


def build_step_model(model, arch: ArchSpec, hw: HardwareProfile, gpus: int = 1,
                     ideal: bool = False, engine=None) -> StepCostModel:
    """The numeric step model of `model` with `arch` on `gpus` x `hw` (cached)."""
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus <= 0:
        raise SimkitError(f"gpus: must be a positive integer, got {gpus!r}")
    arch = arch.resolve(model)
    roof = roofline_for(hw, arch.gemm_weight_dtype, arch.kv_dtype, gpus, ideal, engine,
                        head_dtype=arch.vocab_dtype)
    key = (model, arch, _hw_key(hw), gpus, bool(ideal), roof.engine)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    mc = model_costs(model, arch)
    _check_tensor_parallel(model, mc, gpus)
    n, t = S.n, S.t
    num = lambda e: float(mc.numeric(e))  # noqa: E731
    kv_groups, kv_phys, kv_log, dec_bytes, fixed, write = [], 0, 0, 0, 0.0, 0.0
    for g in mc.groups:
        if g.mixer is None:
            continue
        rep = kv_replication(model, g.spec.kind, gpus)
        bpp = num(g.cache_bytes_per_token) * rep
        fixed += num(g.state_bytes) * rep
        kv_phys += rep * g.cache_bytes
        kv_log += g.cache_bytes
        dec_bytes += rep * (g.count_symbol * g.mixer.decode_read_elems
                            + g.stores * g.mixer.decode_write_elems) * S.beta_kv
        write += bpp
        if bpp:
            kv_groups.append(KVGroup(label=g.label, kind=g.spec.kind, bytes_per_position=bpp,
                                     positions=_lambdify(mc, g.cache_tokens, t),
                                     window=g.spec.window, chunk=g.spec.chunk,
                                     global_tokens=g.spec.global_tokens))
    sm = StepCostModel(
        model=model, arch=arch, hardware=hw, gpus=gpus, ideal=bool(ideal), roof=roof,
        weight_bytes=num(mc.weight_bytes), streamed_weight_bytes=num(mc.streamed_weight_bytes),
        expert_bytes=num(mc.expert_bytes),
        n_experts=model.n_experts, experts_per_token=model.experts_per_token,
        kv_layout=KVLayout(tuple(kv_groups), fixed),
        lin_prefill_flops_per_token=num(mc.linear_prefill_flops_per_token),
        lin_decode_flops_per_token=num(mc.linear_decode_flops_per_token),
        lm_head_flops=num(mc.lm_head_flops), allreduces_per_step=mc.allreduces_per_step,
        blocks=len(arch.stack), d_model=model.d_model,
        moe_blocks=arch.moe_layers,
        _kv_bytes=_lambdify(mc, kv_phys, t), _kv_logical=_lambdify(mc, kv_log, t),
        _core_prefill=_lambdify(mc, mc.attn_prefill_flops, n),
        _core_decode=_lambdify(mc, mc.attn_decode_flops, t),
        _dec_bytes=_lambdify(mc, dec_bytes, t), write_bytes_per_token=write)
    fl = _affine(mc.numeric(mc.attn_decode_flops), t, sm._core_decode)
    by = _affine(mc.numeric(dec_bytes), t, sm._dec_bytes)
    if fl is not None and by is not None:
        sm._decode_affine = (fl, by)
        sm._decode_bound = (max(abs(fl[0]), abs(by[0])), max(abs(fl[1]), abs(by[1])))
    sm._tabulable = all(_elementwise(mc.numeric(e)) for e in
                        (mc.attn_prefill_flops, kv_phys, mc.attn_decode_flops, dec_bytes))
    if len(_CACHE) > 512:
        _CACHE.clear()
    _CACHE[key] = sm
    return sm


def _check_tensor_parallel(model, mc: ModelCosts, gpus: int) -> None:
    """Tensor parallelism splits attention heads: the query heads must divide evenly."""
    if gpus == 1:
        return
    heads = {model.n_heads} if any(g.spec.kind in ("full", "mla", "window", "chunked",
                                                    "sparse", "memory")
                                   for g in mc.groups) else set()
    for h in heads:
        if h % gpus:
            raise SimkitError(f"gpus: {gpus} GPUs cannot split {model.name}'s {h} query "
                              f"heads evenly (tensor parallelism needs a divisor of {h})")


def step_model_for(scenario, **overrides) -> StepCostModel:
    """THE builder: the step model of one replica of `scenario` (duck-typed: its [model]
    and [hardware] sections). `overrides` replace hardware keys (`gpus_per_replica`, `name`:
    a disaggregated pool's own GPU; `engine`: a profile object) or, with `draft`, build a
    speculative draft model (a catalog name or config path) in the scenario's dtypes, its
    own layer stack."""
    from types import SimpleNamespace

    from simkit.catalog import load_hardware, load_model

    hw_sec = scenario.hardware
    gpus = int(overrides.get("gpus_per_replica") or hw_sec.gpus_per_replica)
    hw_name = overrides.get("name") or hw_sec.name
    section = scenario.model
    if overrides.get("draft"):
        section = SimpleNamespace(name=overrides["draft"], kv_dtype=section.kv_dtype,
                                  weight_dtype=section.weight_dtype, attention_every=1,
                                  kv_share=1, weight_share=1)
    model = load_model(section.name)
    arch = ArchSpec.from_scenario_model(model, section)
    return build_step_model(model, arch, load_hardware(hw_name), gpus=gpus,
                            ideal=bool(getattr(hw_sec, "ideal", False)),
                            engine=overrides.get("engine") or getattr(hw_sec, "engine", None))


def min_gpus(model, arch: ArchSpec, hw: HardwareProfile, memory_fraction: float = 0.9) -> int:
    """Fewest GPUs whose memory x fraction exceeds the weights."""
    mc = model_costs(model, arch.resolve(model))
    wb = float(mc.numeric(mc.weight_bytes))
    return max(1, math.floor(wb / (hw.memory_capacity_bytes * memory_fraction)) + 1)


def step_breakdown(sm: StepCostModel, decode_ctx=(), prefill_start=(), prefill_len=()) -> dict:
    """FLOPs, bytes and times of one iteration split by operator (for reports and `cost`).

    Reads the same sums and rates as `StepCostModel.step_time_s`; `total_s` is that call.
    """
    term = sm.step_terms(decode_ctx, prefill_start, prefill_len)
    tokens, lin_bytes = term["tokens"], term["weight_bytes"]
    lin_flops = term["lin_flops"] + term["head_flops"]
    pre_f, pre_b, dec_f, dec_b = (term["pre_flops"], term["pre_bytes"], term["dec_flops"],
                                  term["dec_bytes"])
    r = sm.roof
    rate = r.matmul_flops_per_s * r.engine.gemm_factor(tokens, sm.d_model / sm.gpus) \
        if tokens else r.matmul_flops_per_s
    comm_s = sm.allreduces_per_step * float(
        r.allreduce_time_s(tokens * sm.d_model * ACTIVATION_BYTES)) if tokens and sm.gpus > 1 \
        else 0.0
    # engine overheads: the fixed costs and the routed-expert layers' kernels
    fixed_s = (r.overhead_s + sm.blocks * r.layer_overhead_s
               + term["sequences"] * r.sequence_overhead_s
               + r.moe_kernels_s(sm.moe_blocks, tokens * sm.experts_per_token)
               ) if tokens else 0.0
    lin_c = (term["lin_flops"] + r.head_flops_scale * term["head_flops"]) / rate
    lin_m = lin_bytes / r.weight_bytes_per_s
    att_c = (pre_f + dec_f) / r.attn_flops_per_s
    att_m = pre_b / r.bytes_per_s + dec_b / r.attn_decode_bytes_per_s
    compute_s, memory_s = lin_c + att_c, lin_m + att_m
    return {
        "linear_flops": lin_flops, "linear_bytes": lin_bytes,
        "attention_flops": pre_f + dec_f, "attention_bytes": pre_b + dec_b,
        "linear_compute_s": lin_c, "linear_memory_s": lin_m,
        "attention_compute_s": att_c, "attention_memory_s": att_m,
        "communication_s": comm_s, "overhead_s": fixed_s,
        "compute_s": compute_s, "memory_s": memory_s,
        "bound": "compute" if compute_s >= memory_s else "memory",
        "total_s": sm.step_time_s(decode_ctx, prefill_start, prefill_len),
    }
