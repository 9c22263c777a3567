"""Linear attention: a constant per-head state instead of a growing KV cache. Three state
shapes, chosen by the layer's `variant`:

- ``plain``: causal linear attention (Katharopoulos et al. 2020, "Transformers are RNNs",
  arXiv:2006.16236), recurrent form. Each KV head keeps S = sum phi(k) v^T (d_h x d_h) and
  z = sum phi(k) (d_h). Per token: update H_kv (2 d_h^2 + 2 d_h) FLOPs, readout
  H (2 d_h^2 + 2 d_h). State H_kv (d_h^2 + d_h). q, k, v, o projections as attention.
- ``lightning``: lightning attention (MiniMax-01, arXiv:2501.08313 Sec. 2.2; Lightning
  Attention-2, arXiv:2401.04658): decayed linear attention without a normaliser, one
  d_h x d_h state per query head. Per token: update k v^T and readout q S, 2 d_h^2 MACs per
  head -> 4 H d_h^2 FLOPs. State H d_h^2. Projections: q, k and v over all H heads (no
  grouped K/V: MiniMax's `qkv_proj` is d x 3 H d_h, transformers minimax/modeling_minimax.py
  `MiniMaxLightningAttention`, even where its softmax layers use GQA), o, an output gate
  (d x H d_h) and a norm (H d_h).
- ``gated_deltanet``: Gated DeltaNet (Yang et al. 2024, arXiv:2412.06464; Qwen3-Next's
  linear layers). H_k key heads of d_k, H_v value heads of d_vl; each value head keeps
  S (d_k x d_vl), updated by the gated delta rule S <- a S (I - b k k^T) + b v k^T: S^T k,
  the rank-1 update and the readout S^T q are 3 d_k d_vl MACs -> 6 H_v d_k d_vl FLOPs per
  token. A causal short conv (width K_l) runs over q, k, v (conv_dim = 2 H_k d_k + H_v d_vl
  channels). State H_v d_k d_vl + conv_dim (K_l - 1). Weights: in_proj_qkvz
  d x (2 H_k d_k + 2 H_v d_vl), in_proj_ba d x 2 H_v, conv conv_dim x K_l, dt_bias and A_log
  (H_v each), a gated RMSNorm (d_vl), out_proj H_v d_vl x d.

Prefill runs the chunked parallel form: the same FLOPs as the recurrence up to its
intra-chunk blocks, which we do not count.
"""

from simkit.costs import symbols as S
from simkit.costs.families.base import (MixerCosts, matmul_flops_per_token, mha_projection_params,
                                        recurrent_costs)


def _plain(model, layer) -> MixerCosts:
    params, values = mha_projection_params(model, layer)
    proj = matmul_flops_per_token(model, layer)
    per_token = S.H_kv * (2 * S.d_h**2 + 2 * S.d_h) + S.H * (2 * S.d_h**2 + 2 * S.d_h)
    state = S.H_kv * (S.d_h**2 + S.d_h)
    return recurrent_costs("linear", params, proj, per_token, state, values,
                           "parallel (chunked) form; same FLOPs as the recurrence")


def _lightning(model, layer) -> MixerCosts:
    qkvo = 3 * S.d * S.H * S.d_h + S.H * S.d_h * S.d
    gate = S.d * S.H * S.d_h
    params = qkvo + gate + S.H * S.d_h
    if model.attn_bias:
        params += 3 * S.H * S.d_h + S.d
    values = {S.d: model.d_model, S.H: model.n_heads, S.d_h: model.head_dim}
    proj = 2 * (qkvo + gate)
    per_token = 4 * S.H * S.d_h**2
    state = S.H * S.d_h**2
    return recurrent_costs("linear", params, proj, per_token, state, values,
                           "lightning attention: tiled intra/inter-block form")


def _gated_deltanet(model, layer) -> MixerCosts:
    hk = model.linear_key_heads or model.n_kv_heads
    hv = model.linear_value_heads or model.n_heads
    dk = model.linear_key_dim or model.head_dim
    dv = model.linear_value_dim or model.head_dim
    conv_w = model.linear_conv or 4
    conv_dim = 2 * S.H_k * S.d_k + S.H_v * S.d_vl
    weights = S.d * (2 * S.H_k * S.d_k + 2 * S.H_v * S.d_vl) + S.d * 2 * S.H_v \
        + S.H_v * S.d_vl * S.d
    params = weights + conv_dim * S.K_l + 2 * S.H_v + S.d_vl
    per_token = 2 * S.K_l * conv_dim + 6 * S.H_v * S.d_k * S.d_vl
    state = S.H_v * S.d_k * S.d_vl + conv_dim * (S.K_l - 1)
    values = {S.d: model.d_model, S.H_k: hk, S.H_v: hv, S.d_k: dk, S.d_vl: dv,
              S.K_l: conv_w}
    return recurrent_costs("linear", params, 2 * weights, per_token, state, values,
                           "chunked gated delta rule; same FLOPs as the recurrence")


_VARIANTS = {"plain": _plain, "lightning": _lightning, "gated_deltanet": _gated_deltanet}


def costs(model, layer) -> MixerCosts:
    return _VARIANTS[layer.variant or "plain"](model, layer)
