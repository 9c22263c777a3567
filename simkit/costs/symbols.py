"""Every sympy symbol the cost models use, defined once.

Lengths: `n` is the prompt length of a prefill, `t` the context length of a decode step
(keys attended, the new token included). Shapes follow the model config; `beta_w`/`beta_kv`
are bytes per stored element of weights and of the KV cache/state.
"""

import sympy as sp

_p = dict(positive=True)
_i = dict(positive=True, integer=True)

# lengths
n = sp.Symbol("n", **_i)  # prompt tokens in a prefill
t = sp.Symbol("t", **_i)  # context length at a decode step (keys attended)
b = sp.Symbol("b", **_i)  # batch (sequences)

# transformer shapes
L = sp.Symbol("L", **_i)  # layers
d = sp.Symbol("d", **_i)  # hidden size d_model
H = sp.Symbol("H", **_i)  # query heads
H_kv = sp.Symbol("H_kv", **_i)  # key/value heads (GQA/MQA)
d_h = sp.Symbol("d_h", **_i)  # head dim (q/k and v)
V = sp.Symbol("V", **_i)  # vocabulary
F = sp.Symbol("F", **_i)  # FFN hidden size
d_a = sp.Symbol("d_a", **_i)  # attention input width where a layer overrides it (Zamba2)
r_a = sp.Symbol("r_a", **_i)  # rank of a shared block's per-invocation LoRA adapters (Zamba2)
P_pos = sp.Symbol("P_pos", integer=True, nonnegative=True)  # learned position rows

# attention-kind settings
w = sp.Symbol("w", **_i)  # sliding window
g = sp.Symbol("g", integer=True, nonnegative=True)  # global tokens
m = sp.Symbol("m", **_i)  # memory slots
s = sp.Symbol("s", **_i)  # memory segment length
c = sp.Symbol("c", **_i)  # attention chunk (Llama-4 chunked local attention)

# MLA (DeepSeek-V2)
r_q = sp.Symbol("r_q", **_i)  # query LoRA rank d_c'
r_kv = sp.Symbol("r_kv", **_i)  # KV latent rank d_c
d_r = sp.Symbol("d_r", **_i)  # decoupled RoPE head dim d_h^R
d_v = sp.Symbol("d_v", **_i)  # value head dim

# SSM (Mamba)
d_in = sp.Symbol("d_in", **_i)  # d_inner = expand * d
N_st = sp.Symbol("N", **_i)  # d_state
K_cv = sp.Symbol("K", **_i)  # conv kernel width d_conv
R_dt = sp.Symbol("R", **_i)  # dt rank
H_s = sp.Symbol("H_s", **_i)  # Mamba-2 heads (d_in / head dim)
G_s = sp.Symbol("G_s", **_i)  # Mamba-2 groups of B and C

# linear attention with separate key/value heads (Gated DeltaNet)
H_k = sp.Symbol("H_k", **_i)  # key heads
H_v = sp.Symbol("H_v", **_i)  # value heads
d_k = sp.Symbol("d_k", **_i)  # key head dim
d_vl = sp.Symbol("d_vl", **_i)  # value head dim of the linear mixer
K_l = sp.Symbol("K_l", **_i)  # short-conv width

# MoE
E = sp.Symbol("E", **_i)  # routed experts
k_e = sp.Symbol("k", **_i)  # experts per token
F_e = sp.Symbol("F_e", **_i)  # expert FFN width
F_s = sp.Symbol("F_s", **_i)  # shared-expert FFN width (one shared expert)

# bytes per element
beta_w = sp.Symbol("beta_w", **_p)  # weight bytes / element
beta_e = sp.Symbol("beta_e", **_p)  # routed-expert weight bytes / element (MX FP4 gpt-oss)
beta_v = sp.Symbol("beta_v", **_p)  # token embedding and LM head bytes / element (16-bit)
beta_kv = sp.Symbol("beta_kv", **_p)  # cache bytes / element

#: a one-line meaning for each symbol (printed by `simkit formula`)
# speculative decoding (Leviathan et al. 2023, arXiv:2211.17192)
alpha_s = sp.Symbol("alpha", nonnegative=True)  # chance each drafted token is accepted
k_s = sp.Symbol("k", **_i)  # tokens drafted per iteration

MEANING = {
    alpha_s: "acceptance per drafted token", k_s: "tokens drafted per iteration",
    n: "prompt tokens (prefill length)", t: "context length at a decode step",
    b: "batch size", L: "layers", d: "hidden size", H: "query heads", H_kv: "key/value heads",
    d_h: "head dim", d_a: "attention input width", r_a: "shared-block adapter rank", V: "vocabulary", F: "FFN hidden size", P_pos: "learned positions",
    w: "window", g: "global tokens", m: "memory slots", s: "memory segment length",
    c: "attention chunk", H_s: "SSM heads", G_s: "SSM B/C groups", H_k: "linear key heads",
    H_v: "linear value heads", d_k: "linear key dim", d_vl: "linear value dim",
    K_l: "linear conv width",
    r_q: "MLA query rank", r_kv: "MLA KV latent rank", d_r: "MLA RoPE dim",
    d_v: "value head dim", d_in: "SSM inner width", N_st: "SSM state size",
    K_cv: "SSM conv width", R_dt: "SSM dt rank", E: "routed experts",
    k_e: "experts per token", F_e: "expert FFN width", F_s: "shared expert FFN width",
    beta_w: "weight bytes/element", beta_e: "routed-expert weight bytes/element",
    beta_v: "embedding and LM head bytes/element",
    beta_kv: "cache bytes/element",
}
