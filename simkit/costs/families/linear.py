"""Causal linear attention (Katharopoulos et al. 2020, "Transformers are RNNs",
arXiv:2006.16236), in its recurrent form.

Each KV head keeps S = sum phi(k) v^T (d_h x d_h) and z = sum phi(k) (d_h). Per token:
  update : S += phi(k) v^T, z += phi(k)   -> H_kv (2 d_h^2 + 2 d_h) FLOPs
  readout: phi(q)^T S / phi(q)^T z         -> H (2 d_h^2 + 2 d_h) FLOPs
  prefill is n times that (the chunked parallel form does the same work up to its c x c
  intra-chunk blocks); state = H_kv (d_h^2 + d_h) elements, constant in t.
"""

from simkit.costs import symbols as S
from simkit.costs.families.base import MixerCosts, matmul_flops_per_token, mha_projection_params


def costs(model, arch) -> MixerCosts:
    params, values = mha_projection_params(model)
    proj = matmul_flops_per_token(model)
    per_token = S.H_kv * (2 * S.d_h**2 + 2 * S.d_h) + S.H * (2 * S.d_h**2 + 2 * S.d_h)
    state = S.H_kv * (S.d_h**2 + S.d_h)
    return MixerCosts(
        kind="linear", params=params,
        proj_prefill_flops_per_token=proj, proj_decode_flops_per_token=proj,
        core_prefill_flops=S.n * per_token, core_decode_flops=per_token + 0 * S.t,
        cache_tokens=0 * S.t, cache_elems_per_token=0 * S.t, state_elems=state,
        decode_read_elems=state + 0 * S.t, decode_write_elems=state,
        big_o_time="O(n)", big_o_cache="O(1)",
        prefill_note="parallel (chunked) form; same FLOPs as the recurrence", values=values)
