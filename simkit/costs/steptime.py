"""THE step-time formula as sympy expressions: the engine and hardware terms as symbols.

`simkit.costs.compiled` evaluates the formula numerically (its docstring writes it out);
this module builds the same formula in closed form, for a uniform batch -- `b` decodes at
context `t`, or `b` prompts of `n` tokens on an empty cache -- from the model's symbolic
costs (`ModelCosts`), with every rate, efficiency and fixed cost a symbol whose value comes
from the hardware profile and the engine profile. `StepTime.numeric()` substitutes them;
the result equals `StepCostModel.step_time_s` at those batches (tests check it), so what
`simkit formula` prints is what the simulator runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from simkit.costs import symbols as S

_p = dict(positive=True)
_nn = dict(nonnegative=True)

N_tp = sp.Symbol("N_tp", positive=True, integer=True)  # tensor-parallel GPUs
P_w = sp.Symbol("P_w", **_p)  # dense peak FLOP/s per GPU, weight dtype
P_a = sp.Symbol("P_a", **_p)  # dense peak FLOP/s per GPU, attention dtype
P_v = sp.Symbol("P_v", **_p)  # dense peak FLOP/s per GPU, vocabulary dtype (the LM head)
B_m = sp.Symbol("B_m", **_p)  # memory bandwidth per GPU (bytes/s)
B_l = sp.Symbol("B_l", **_p)  # GPU link bandwidth, one direction (bytes/s)
eta_c = sp.Symbol("eta_c", **_p)  # hardware: best GEMM / peak
eta_m = sp.Symbol("eta_m", **_p)  # hardware: STREAM-like / bandwidth
eta_g = sp.Symbol("eta_g", **_p)  # engine: GEMM at large shapes / eta_c
eta_8 = sp.Symbol("eta_8", **_p)  # fp8 / fp4 GEMMs / 16-bit ones (1 unless low precision)
eta_4 = sp.Symbol("eta_4", **_p)  # hardware: NVFP4 weight streaming / 16-bit (1 unless fp4)
M_h = sp.Symbol("M_h", **_nn)  # engine: tokens at half GEMM rate
w_h = sp.Symbol("w_h", **_nn)  # engine: shard width at half GEMM rate
eta_w = sp.Symbol("eta_w", **_p)  # engine: weight streaming / eta_m
f_s = sp.Symbol("f_s", **_nn)  # engine: unhidden share of min(GEMM compute, weight streaming)
eta_pa = sp.Symbol("eta_pa", **_p)  # engine: prefill attention / eta_c
eta_da = sp.Symbol("eta_da", **_p)  # engine: decode attention / eta_m
T_s = sp.Symbol("T_s", **_nn)  # fixed cost per step
T_l = sp.Symbol("T_l", **_nn)  # per layer and step
T_q = sp.Symbol("T_q", **_nn)  # per sequence in the step
alpha = sp.Symbol("alpha", **_nn)  # all-reduce latency
alpha_r = sp.Symbol("alpha_r", **_nn)  # per ring step
eta_ar = sp.Symbol("eta_ar", **_p)  # achieved bus bandwidth / link
L_b = sp.Symbol("L_b", positive=True, integer=True)  # layers launched per step
A_r = sp.Symbol("A_r", positive=True, integer=True)  # all-reduces per step
E_l = sp.Symbol("E_l", positive=True, integer=True)  # routed-expert (MoE) layers
T_e = sp.Symbol("T_e", **_nn)  # MoE kernels' latency per layer and step
B_e = sp.Symbol("B_e", **_nn)  # MoE kernels' HBM bytes per token-expert slot, per GPU

MEANING = {
    N_tp: "tensor-parallel GPUs", P_w: "dense peak FLOP/s per GPU (weight dtype)",
    P_a: "dense peak FLOP/s per GPU (attention dtype)",
    P_v: "dense peak FLOP/s per GPU (vocabulary dtype: the LM head, 16-bit beside fp8 or fp4 "
    "layers)", B_m: "memory bandwidth per GPU",
    B_l: "GPU link bandwidth (one direction)",
    eta_c: "hardware: best GEMM / peak", eta_m: "hardware: STREAM-like kernel / bandwidth",
    eta_g: "engine: weight GEMMs at large shapes / best GEMM",
    eta_8: "engine (fp8) or hardware (NVFP4): low-precision weight GEMMs / 16-bit ones (each "
    "of its own peak)",
    eta_4: "hardware: NVFP4 weight streaming on FP4 tensor cores / a 16-bit GEMM's",
    M_h: "engine: tokens in a step at half GEMM rate",
    w_h: "engine: per-GPU shard width at half GEMM rate",
    eta_w: "engine: weight streaming / STREAM-like",
    f_s: "engine: share of the shorter of GEMM compute and weight streaming not hidden",
    eta_pa: "engine: prefill attention / best "
    "GEMM", eta_da: "engine: decode attention / STREAM-like",
    T_s: "engine: fixed cost per step (s)", T_l: "engine: fixed cost per layer and step (s)",
    T_q: "engine: fixed cost per sequence in a step (s)", alpha: "engine: all-reduce latency (s)",
    alpha_r: "engine: latency per ring step (s)", eta_ar: "engine: bus bandwidth / link",
    L_b: "layers launched per step", A_r: "all-reduces per step",
    E_l: "routed-expert (MoE) layers", T_e: "MoE kernels: latency per layer and step (s)",
    B_e: "MoE kernels: HBM bytes per token-expert slot, per GPU",
}


@dataclass
class StepTime:
    """Decode-step and prefill time of a uniform batch, symbolic, with every value."""

    decode: sp.Expr  # in b, t
    prefill: sp.Expr  # in b, n
    values: dict = field(default_factory=dict)  # symbol -> number (model, hardware, engine)
    terms: dict = field(default_factory=dict)  # name -> (decode term, prefill term)
    _fns: dict = field(default_factory=dict, repr=False)  # lambdified numeric forms

    def numeric(self, expr: sp.Expr) -> sp.Expr:
        return sp.sympify(expr).subs(self.values)

    def value(self, which: str, b: int, length: int) -> float:
        """Seconds of the decode step (length = t) or the prefill (length = n)."""
        f = self._fns.get(which)
        if f is None:
            e = self.decode if which == "decode" else self.prefill
            var = S.t if which == "decode" else S.n
            f = self._fns[which] = sp.lambdify((S.b, var), self.numeric(e), "math")
        return float(f(b, length))


def step_time_exprs(model, arch, hw, gpus: int = 1, engine=None,
                    ideal: bool = False) -> StepTime:
    """THE step-time formula of `model` with `arch` on `gpus` x `hw` under `engine`."""
    from simkit.costs.engine import IDEAL, load_engine
    from simkit.costs.model import model_costs
    from simkit.costs.roofline import ACTIVATION_BYTES, kv_replication, moe_kernel_costs
    arch = arch.resolve(model)
    mc = model_costs(model, arch)
    eng = IDEAL if ideal else load_engine(engine)
    prof = hw.ideal() if ideal else hw
    b, t, n = S.b, S.t, S.n
    # cache traffic as the numeric model counts it: every tensor-parallel copy; a prefill
    # reads the (empty) cache and its fixed state, writes the prompt's cache and the state
    dec_bytes = sp.Integer(0)
    pre_bytes_per_seq = sp.Integer(0)
    for g in mc.groups:
        if g.mixer is None:
            continue
        rep = sp.nsimplify(kv_replication(model, g.spec.kind, gpus))
        dec_bytes += rep * (g.count_symbol * g.mixer.decode_read_elems
                            + g.stores * g.mixer.decode_write_elems) * S.beta_kv
        pre_bytes_per_seq += rep * (sp.sympify(g.cache_bytes).subs(t, 0)
                                    + n * g.cache_bytes_per_token + g.state_bytes)

    def gemm(M):
        """The engine's GEMM shape factor x the hardware's GEMM efficiency."""
        w = S.d / N_tp
        return eta_c * eta_g * eta_8 * M / (M + M_h) * w / (w + w_h)

    def weights(M, flops, head_flops):
        """Weight matmuls: compute at the shaped GEMM rate (the LM head's at its dtype's
        peak) vs streaming the weights read (MoE: the experts M tokens touch, uniform
        routing), the longer plus the unhidden share of the shorter."""
        read = mc.streamed_weight_bytes
        if model.is_moe:
            read = read - mc.expert_bytes * (1 - S.k_e / S.E) ** M
        c = (flops + head_flops * P_w * eta_8 / P_v) / (N_tp * P_w * gemm(M))
        w = read / (N_tp * B_m * eta_m * eta_w * eta_4)
        return sp.Max(c, w) + f_s * sp.Min(c, w)

    def comm(M):
        if gpus == 1:
            return sp.Integer(0)
        return A_r * (alpha + 2 * (N_tp - 1) * alpha_r
                      + 2 * (N_tp - 1) / N_tp * M * S.d * ACTIVATION_BYTES / (B_l * eta_ar))

    def fixed(seqs):
        return T_s + L_b * T_l + seqs * T_q

    def moe(M):
        """Routed-expert layers' kernels: latency + traffic per token-expert slot."""
        return E_l * (T_e + M * S.k_e * B_e / B_m)

    moe_blocks = arch.moe_layers
    lin_dec = b * mc.linear_decode_flops_per_token
    lin_pre = b * n * mc.linear_prefill_flops_per_token
    head = b * mc.lm_head_flops  # one position's logits per sequence
    att_dec = sp.Max(b * mc.attn_decode_flops / (N_tp * P_a * eta_c * eta_pa),
                     b * dec_bytes / (N_tp * B_m * eta_m * eta_da))
    core_pre = mc.attn_prefill_flops - sp.sympify(mc.attn_prefill_flops).subs(n, 0)
    att_pre = sp.Max(b * core_pre / (N_tp * P_a * eta_c * eta_pa),
                     b * pre_bytes_per_seq / (N_tp * B_m * eta_m * eta_w))
    terms = {
        "fixed": (fixed(b), fixed(b)),
        "weight matmuls": (weights(b, lin_dec, head), weights(b * n, lin_pre, head)),
        "all-reduces": (comm(b), comm(b * n)),
        **({"routed-expert kernels": (moe(b), moe(b * n))} if moe_blocks else {}),
        "attention": (att_dec, att_pre),
    }
    decode = sum((v[0] for v in terms.values()), sp.Integer(0))
    prefill = sum((v[1] for v in terms.values()), sp.Integer(0))
    attn_dtype = "fp32" if arch.kv_dtype == "fp32" else "bf16"
    low, stream = prof.low_precision_factors(arch.gemm_weight_dtype,
                                           eng.fp8_gemm_efficiency_on(prof.name))
    values = dict(mc.values)
    values.update({
        N_tp: gpus, P_w: prof.peak_for(arch.gemm_weight_dtype), P_a: prof.peak_for(attn_dtype),
        P_v: prof.peak_for(arch.vocab_dtype),
        B_m: prof.memory_bandwidth_bytes_per_s, B_l: prof.interconnect_bytes_per_s,
        eta_c: prof.compute_efficiency, eta_m: prof.memory_efficiency,
        eta_g: eng.gemm_efficiency, M_h: eng.gemm_tokens_half, w_h: eng.gemm_width_half,
        eta_8: low, eta_4: stream,
        eta_w: eng.memory_efficiency, f_s: eng.gemm_serial_fraction,
        eta_pa: eng.attn_prefill_efficiency,
        eta_da: eng.attn_decode_efficiency,
        T_s: eng.step_overhead_on(prof),
        T_l: eng.layer_overhead_s, T_q: eng.sequence_overhead_s,
        alpha: eng.allreduce_latency_on(prof),
        alpha_r: eng.allreduce_step_latency_s, eta_ar: eng.allreduce_efficiency,
        L_b: len(arch.stack), A_r: mc.allreduces_per_step,
    })
    if moe_blocks:
        lat, slot_bytes = moe_kernel_costs(prof, arch.gemm_weight_dtype) if eng.moe_kernels \
            else (0.0, 0.0)
        values.update({E_l: moe_blocks, T_e: lat, B_e: slot_bytes})
    return StepTime(decode=decode, prefill=prefill, values=values, terms=terms)
