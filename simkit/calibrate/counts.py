"""FLOP and byte counts of the calibration kernels, in the cost layer's conventions.

Conventions (the same as `simkit.costs`): a multiply-add is 2 FLOPs; softmax, exp,
normalisation, masks and feature maps are not counted (they are not matmul FLOPs).

Two counts per family:
- `model_flops`: what the cost model counts (causal pairs only). Calibration fits achieved
  FLOP/s against this count, so a fitted rate turns the cost model's FLOPs into seconds.
- `kernel_flops`: what the numpy kernel actually multiplies. It is larger where a kernel
  computes a whole square and masks half of it:
  * full/window/sparse: each query tile computes its diagonal T x T block (and the window's
    trailing edge block) whole, and multiplies P by [V, 1] (d_v + 1 columns: the extra one
    yields the softmax denominators);
  * linear (chunked): each chunk computes its c x c block whole (c^2 instead of c(c+1)/2
    pairs) and carries the normaliser as an extra value column (d_v + 1);
  * memory: each segment's L x L block is computed whole;
  * ssm: the kernel also forms dt*A (one multiply per state element) and the D skip, neither
    counted by the model.

Decode byte counts are the KV bytes a full-attention step reads (keys and values of all t
cached tokens); calibration fits achieved bytes/s against them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelShape:
    """Sizes of one layer's kernel call. heads is batch x heads (independent sequences)."""

    heads: int = 8
    d_qk: int = 128
    d_v: int = 128
    window: int = 512
    global_tokens: int = 64
    memory_slots: int = 128
    segment: int = 512
    linear_chunk: int = 128
    tile: int = 256
    d_inner: int = 256  # SSM channels (batch x d_inner is what the scan iterates over)
    d_state: int = 16
    d_conv: int = 4
    ssm_batch: int = 1


def causal_pairs(n: int) -> int:
    """sum_{i=1..n} i: (query, key) pairs of causal full attention."""
    return n * (n + 1) // 2


def window_pairs(n: int, w: int) -> int:
    """sum_{i=1..n} min(i, w)."""
    if n <= w:
        return causal_pairs(n)
    return causal_pairs(w) + (n - w) * w


def global_pairs(n: int, w: int, g: int) -> int:
    """sum_{i=1..n} min(g, max(0, i - w)): globals seen outside the window."""
    r = max(0, n - w)  # queries with i - w = 1..r
    if r <= g:
        return causal_pairs(r)
    return causal_pairs(g) + (r - g) * g


def memory_pairs(n: int, m: int, s: int) -> int:
    """Each token attends to m slots plus causally within its segment of s tokens."""
    full, tail = divmod(n, s)
    return full * (s * m + causal_pairs(s)) + tail * m + causal_pairs(tail)


def model_flops(family: str, n: int, sh: KernelShape) -> float:
    """Prefill FLOPs of one layer over n tokens as the cost model counts them."""
    per_pair = 2 * sh.heads * (sh.d_qk + sh.d_v)  # QK^T and PV, one multiply-add each
    if family == "full":
        return per_pair * causal_pairs(n)
    if family == "window":
        return per_pair * window_pairs(n, sh.window)
    if family == "sparse":
        return per_pair * (window_pairs(n, sh.window)
                           + global_pairs(n, sh.window, sh.global_tokens))
    if family == "linear":
        # per token and head: S += phi(k) v^T (2 d_k d_v), phi(q)^T S (2 d_k d_v),
        # z += phi(k) (2 d_k), phi(q)^T z (2 d_k)
        return n * sh.heads * (4 * sh.d_qk * sh.d_v + 4 * sh.d_qk)
    if family == "memory":
        updates = n // sh.segment  # after each full segment the m slots read its s tokens
        return per_pair * (memory_pairs(n, sh.memory_slots, sh.segment)
                           + updates * sh.memory_slots * sh.segment)
    if family == "ssm":
        # Mamba-1: 6 d_inner N per token (2 multiply-adds per state element for the update,
        # 1 for the readout) + 2 d_conv d_inner for the causal conv
        return n * sh.ssm_batch * (6 * sh.d_inner * sh.d_state + 2 * sh.d_conv * sh.d_inner)
    raise ValueError(f"unknown family {family!r}")


def _tiled_pairs(n: int, tile: int, w: int | None, g: int) -> int:
    """Score entries the banded tiled kernel computes: per tile, T x (globals + key block)."""
    total = 0
    for i0 in range(0, n, tile):
        i1 = min(n, i0 + tile)
        lo = 0 if w is None else max(0, i0 - w + 1)
        total += (i1 - i0) * (min(g, lo) + i1 - lo)
    return total


def kernel_flops(family: str, n: int, sh: KernelShape) -> float:
    """FLOPs the numpy kernel actually performs (>= model_flops; see the module docstring)."""
    per_pair = 2 * sh.heads * (sh.d_qk + sh.d_v)
    per_tiled_pair = 2 * sh.heads * (sh.d_qk + sh.d_v + 1)  # P [V, 1]
    if family == "full":
        return per_tiled_pair * _tiled_pairs(n, sh.tile, None, 0)
    if family == "window":
        return per_tiled_pair * _tiled_pairs(n, sh.tile, sh.window, 0)
    if family == "sparse":
        return per_tiled_pair * _tiled_pairs(n, sh.tile, sh.window, sh.global_tokens)
    if family == "linear":
        c = sh.linear_chunk
        full, tail = divmod(n, c)
        total = 0
        for L, count in ((c, full), (tail, 1 if tail else 0)):
            # L x L block of phi(q).phi(k) (2 L^2 d_k), times [V,1] (2 L^2 (d_v+1)),
            # phi(Q) S (2 L d_k (d_v+1)), S += phi(K)^T [V,1] (2 L d_k (d_v+1))
            total += count * (2 * L * L * sh.d_qk + 2 * L * L * (sh.d_v + 1)
                              + 4 * L * sh.d_qk * (sh.d_v + 1))
        return sh.heads * total
    if family == "memory":
        full, tail = divmod(n, sh.segment)
        m, s = sh.memory_slots, sh.segment
        pairs = full * s * (m + s) + tail * (m + tail) + full * m * s
        return per_pair * pairs
    if family == "ssm":
        # + dt*A (1 multiply per state element) on top of the model's count
        return model_flops("ssm", n, sh) + n * sh.ssm_batch * sh.d_inner * sh.d_state
    raise ValueError(f"unknown family {family!r}")


def decode_kv_bytes(t: int, sh: KernelShape, bytes_per_element: int = 4) -> float:
    """Bytes a full-attention decode step reads at context t: every cached key and value."""
    return t * sh.heads * (sh.d_qk + sh.d_v) * bytes_per_element


def decode_flops(t: int, sh: KernelShape) -> float:
    """FLOPs of one full-attention decode step at context t (one query, t keys)."""
    return 2 * t * sh.heads * (sh.d_qk + sh.d_v)
