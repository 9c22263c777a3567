"""Small numpy forward passes of one attention/memory layer, one per architecture family.

These kernels are the ground truth that calibration times and the fidelity experiment runs.
Each family has a prefill (a whole prompt at once) and a single-token decode step that reads
and extends a cache or state:

| family  | prefill                                   | decode state                          |
|---------|-------------------------------------------|---------------------------------------|
| full    | causal softmax attention, query-tiled     | `KVCache` (grows with t)               |
| window  | sliding window w                          | `WindowCache` ring buffer of w         |
| sparse  | window w + the first g tokens as globals  | `WindowCache` (w ring + g globals)     |
| linear  | causal linear attention, chunked          | `LinearState` d_k x (d_v + 1)          |
| memory  | m memory slots + causal in-segment (s)    | `MemoryState` m slots + segment buffer |
| ssm     | Mamba-1 selective scan + causal conv      | `SSMState` conv buffer + d_inner x N   |

Shapes: attention kernels take q (h, n, d_qk), k (h, n, d_qk), v (h, n, d_v) where h is
batch x heads flattened (every head is an independent sequence) and return (h, n, d_v).
Decode steps take q, k (h, d_qk), v (h, d_v) for the new token and return (h, d_v).
Any float dtype works; calibration uses float32, the equivalence tests float64.

Speed: prefill runs the heads on a small thread pool with BLAS pinned to one thread per head
(numpy's element-wise softmax is single-threaded, so parallelising over heads is what lets a
2-core machine use both cores for the exp/max/sum passes; the same split as a GPU kernel's
grid over (batch, head)). Each full-attention query tile of T rows holds a T x n score block,
so memory stays O(n * T), never O(n^2).

FLOPs each kernel computes versus what the cost model counts are in `simkit.calibrate.counts`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

FAMILIES = ("full", "window", "sparse", "linear", "memory", "ssm")

DEFAULT_TILE = 256  # query rows per tile: ~fastest on a 2-core AVX-512 CPU at d = 64..128
DEFAULT_LINEAR_CHUNK = 128  # tokens per chunk of chunked linear attention
DEFAULT_SSM_CHUNK = 256  # tokens whose decay/input terms are precomputed at once

_POOL: ThreadPoolExecutor | None = None


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _map_heads(fn: Callable[[int], None], heads: int, workers: int | None) -> None:
    """Run fn(i) for every head i, on `workers` threads with single-threaded BLAS each."""
    global _POOL
    workers = available_cores() if workers is None else int(workers)
    if workers <= 1 or heads == 1:
        for i in range(heads):
            fn(i)
        return
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="simkit-kernel")
    # Pin BLAS to one thread per head so the two levels of parallelism do not fight.
    with threadpool_limits(limits=1, user_api="blas"):
        list(_POOL.map(fn, range(heads)))


def _check_qkv(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[int, int, int, int]:
    if q.ndim != 3 or k.shape != q.shape or v.ndim != 3 or v.shape[:2] != q.shape[:2]:
        raise ValueError(f"expected q, k (h, n, d_qk) and v (h, n, d_v); got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    h, n, d_qk = q.shape
    return h, n, d_qk, v.shape[2]


def _softmax_rows_inplace(s: np.ndarray) -> np.ndarray:
    """exp(s - rowmax) in place; returns the row sums (the softmax denominators), shape (T, 1)."""
    s -= s.max(axis=-1, keepdims=True)  # subtract the row max so exp never overflows
    np.exp(s, out=s)
    return s.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------
# Full, sliding-window and window + global attention: one banded, tiled kernel
# --------------------------------------------------------------------------------------------

def _banded_head(q: np.ndarray, k: np.ndarray, v1: np.ndarray, out: np.ndarray,
                 window: int | None, global_tokens: int, tile: int) -> None:
    """One head of causal attention where query i sees keys j <= i with i - w < j (window),
    plus j < g (global tokens = the first g positions). window=None means no window (full).

    q, k: (n, d_qk) with q already scaled by 1/sqrt(d_qk); v1: (n, d_v + 1) = [v, 1], so the
    P V product also yields the softmax denominators (one pass over P fewer); out: (n, d_v).
    """
    n, d_v = out.shape
    w = n if window is None else window
    g = global_tokens
    for i0 in range(0, n, tile):
        i1 = min(n, i0 + tile)
        lo = max(0, i0 - w + 1)  # first key any query of this tile sees through its window
        gl = min(g, lo)  # global tokens strictly before the window block
        if gl:
            keys = np.concatenate([k[:gl], k[lo:i1]])  # (gl + L, d_qk)
            vals = np.concatenate([v1[:gl], v1[lo:i1]])
        else:
            keys, vals = k[lo:i1], v1[lo:i1]
        s = q[i0:i1] @ keys.T  # (T, gl + L): every pair the tile might need
        # Mask only the columns where some pair can be illegal: the causal edge (j > i0) and
        # the window's trailing edge (j <= i1 - 1 - w); everything between is all-visible.
        rows = np.arange(i0, i1)[:, None]
        for c0, c1 in ((i0 + 1, i1), (lo, min(i1 - w, i1))):
            c0 = max(c0, lo)
            if c1 <= c0:
                continue
            cols = np.arange(c0, c1)[None, :]
            ok = (cols <= rows) & ((cols > rows - w) | (cols < g))
            block = s[:, gl + c0 - lo: gl + c1 - lo]
            block[~ok] = -np.inf
        s -= s.max(axis=-1, keepdims=True)  # subtract the row max so exp never overflows
        np.exp(s, out=s)
        y = s @ vals  # (T, d_v + 1): numerators and, in the last column, the row sums
        np.divide(y[:, :d_v], y[:, d_v:], out=out[i0:i1])


def _banded_prefill(q, k, v, window, global_tokens, tile, workers):
    h, n, d_qk, d_v = _check_qkv(q, k, v)
    out = np.empty((h, n, d_v), dtype=np.result_type(q, v))
    qs = q * q.dtype.type(1.0 / math.sqrt(d_qk))  # fold the 1/sqrt(d) scale into q once
    v1 = _with_ones(v)
    _map_heads(lambda i: _banded_head(qs[i], k[i], v1[i], out[i], window, global_tokens, tile),
               h, workers)
    return out


def full_prefill(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, tile: int = DEFAULT_TILE,
                 workers: int | None = None) -> np.ndarray:
    """Causal softmax attention, query-tiled: query i attends to keys 0..i.

    Each tile of T queries computes its T x (i1) scores with one GEMM (the diagonal T x T
    block computes its masked upper half too; see counts.full_kernel_flops)."""
    return _banded_prefill(q, k, v, None, 0, tile, workers)


def window_prefill(q: np.ndarray, k: np.ndarray, v: np.ndarray, window: int, *,
                   tile: int = DEFAULT_TILE, workers: int | None = None) -> np.ndarray:
    """Sliding-window attention: query i attends to keys max(0, i-w+1)..i (min(i+1, w) keys)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return _banded_prefill(q, k, v, int(window), 0, tile, workers)


def sparse_prefill(q: np.ndarray, k: np.ndarray, v: np.ndarray, window: int,
                   global_tokens: int, *, tile: int = DEFAULT_TILE,
                   workers: int | None = None) -> np.ndarray:
    """Window + global tokens (causal Longformer/BigBird, attention sinks): the first g
    positions are globals that every later query sees; otherwise as `window_prefill`."""
    if window < 1 or global_tokens < 0:
        raise ValueError(f"need window >= 1 and global_tokens >= 0, got {window}, "
                         f"{global_tokens}")
    return _banded_prefill(q, k, v, int(window), int(global_tokens), tile, workers)


class KVCache:
    """Full-attention KV cache: preallocated to `capacity` tokens, grows by `append`."""

    def __init__(self, heads: int, capacity: int, d_qk: int, d_v: int, dtype=np.float32):
        self.k = np.empty((heads, capacity, d_qk), dtype)
        self.v = np.empty((heads, capacity, d_v), dtype)
        self.length = 0

    @classmethod
    def from_prompt(cls, k: np.ndarray, v: np.ndarray, capacity: int | None = None) -> "KVCache":
        h, n, d_qk = k.shape
        c = cls(h, max(n, capacity or n), d_qk, v.shape[2], np.result_type(k, v))
        c.k[:, :n], c.v[:, :n], c.length = k, v, n
        return c

    def append(self, k: np.ndarray, v: np.ndarray) -> None:
        if self.length >= self.k.shape[1]:
            raise ValueError("KVCache is full")
        self.k[:, self.length], self.v[:, self.length] = k, v
        self.length += 1


def attend(q: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One query per head against a cache: q (h, d_qk), keys (h, t, d_qk), values (h, t, d_v).

    This is the memory-bound decode read: every cached byte is read once per step."""
    scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))
    s = np.matmul(keys, (q * scale)[:, :, None])[:, :, 0]  # (h, t) = K q
    denom = _softmax_rows_inplace(s)
    return np.matmul(s[:, None, :], values)[:, 0, :] / denom  # (h, d_v)


def full_decode(cache: KVCache, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Append the new token's k, v to the cache and attend to all t cached tokens."""
    cache.append(k, v)
    t = cache.length
    return attend(q, cache.k[:, :t], cache.v[:, :t])


class WindowCache:
    """Rolling buffer of the last w tokens plus the first g tokens kept as globals.

    Holds min(t, w) + min(g, max(0, t - w)) tokens at context t, the cost model's count."""

    def __init__(self, heads: int, window: int, global_tokens: int, d_qk: int, d_v: int,
                 dtype=np.float32):
        self.window, self.global_tokens = int(window), int(global_tokens)
        self.k = np.empty((heads, window, d_qk), dtype)
        self.v = np.empty((heads, window, d_v), dtype)
        self.gk = np.empty((heads, global_tokens, d_qk), dtype)
        self.gv = np.empty((heads, global_tokens, d_v), dtype)
        self.length = 0  # tokens seen so far (t)

    @classmethod
    def from_prompt(cls, k: np.ndarray, v: np.ndarray, window: int,
                    global_tokens: int = 0) -> "WindowCache":
        h, n, d_qk = k.shape
        c = cls(h, window, global_tokens, d_qk, v.shape[2], np.result_type(k, v))
        g = min(global_tokens, n)
        c.gk[:, :g], c.gv[:, :g] = k[:, :g], v[:, :g]
        last = np.arange(max(0, n - window), n)
        c.k[:, last % window], c.v[:, last % window] = k[:, last], v[:, last]
        c.length = n
        return c

    def append(self, k: np.ndarray, v: np.ndarray) -> None:
        t = self.length
        if t < self.global_tokens:
            self.gk[:, t], self.gv[:, t] = k, v
        self.k[:, t % self.window], self.v[:, t % self.window] = k, v  # overwrite the oldest
        self.length = t + 1

    def keys_values(self) -> tuple[np.ndarray, np.ndarray]:
        """The tokens the next query sees: the window, then globals that left the window."""
        t, w = self.length, self.window
        held = min(t, w)
        k, v = self.k[:, :held], self.v[:, :held]
        outside = min(self.global_tokens, max(0, t - w))
        if outside:
            k = np.concatenate([self.gk[:, :outside], k], axis=1)
            v = np.concatenate([self.gv[:, :outside], v], axis=1)
        return k, v


def window_decode(cache: WindowCache, q: np.ndarray, k: np.ndarray,
                  v: np.ndarray) -> np.ndarray:
    """Append the new token, attend to the window (and globals, for the sparse family)."""
    cache.append(k, v)
    keys, values = cache.keys_values()
    return attend(q, keys, values)


# --------------------------------------------------------------------------------------------
# Causal linear attention (Katharopoulos et al. 2020, "Transformers are RNNs", arXiv:2006.16236)
# --------------------------------------------------------------------------------------------

def feature_map(x: np.ndarray) -> np.ndarray:
    """phi(x) = elu(x) + 1, positive (Katharopoulos et al. 2020, eq. 7)."""
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))


def _with_ones(v: np.ndarray) -> np.ndarray:
    """[v, 1]: one matmul then yields the numerator (first d_v columns) and the normaliser."""
    return np.concatenate([v, np.ones(v.shape[:-1] + (1,), v.dtype)], axis=-1)


@dataclass
class LinearState:
    """S = sum_j phi(k_j) [v_j, 1]^T, shape (h, d_k, d_v + 1): the state and normaliser z."""

    s: np.ndarray


def _linear_head(fq: np.ndarray, fk: np.ndarray, v1: np.ndarray, out: np.ndarray,
                 state: np.ndarray, chunk: int) -> None:
    """One head, chunked: inside a chunk of c tokens the causal c x c block is computed
    densely (masked), across chunks the d_k x (d_v+1) state carries the past.

    fq, fk: (n, d_k) feature-mapped; v1: (n, d_v + 1); state: (d_k, d_v + 1), updated."""
    n = fq.shape[0]
    d_v = out.shape[1]
    tri = np.tril(np.ones((chunk, chunk), fq.dtype))
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        L = c1 - c0
        a = fq[c0:c1] @ fk[c0:c1].T  # (L, L) phi(q_i).phi(k_j)
        a *= tri[:L, :L]  # causal: j <= i
        y = a @ v1[c0:c1] + fq[c0:c1] @ state  # (L, d_v + 1): this chunk + all before it
        state += fk[c0:c1].T @ v1[c0:c1]  # S += phi(K_c)^T [V_c, 1]
        np.divide(y[:, :d_v], y[:, d_v:], out=out[c0:c1])


def linear_prefill(q: np.ndarray, k: np.ndarray, v: np.ndarray, *,
                   chunk: int = DEFAULT_LINEAR_CHUNK, workers: int | None = None,
                   return_state: bool = False):
    """Causal linear attention y_i = phi(q_i)^T S_i / phi(q_i)^T z_i, computed chunk-wise.

    Returns out (h, n, d_v), or (out, LinearState) with return_state=True."""
    h, n, d_k, d_v = _check_qkv(q, k, v)
    dtype = np.result_type(q, v)
    fq, fk, v1 = feature_map(q), feature_map(k), _with_ones(v)
    out = np.empty((h, n, d_v), dtype)
    state = np.zeros((h, d_k, d_v + 1), dtype)
    _map_heads(lambda i: _linear_head(fq[i], fk[i], v1[i], out[i], state[i], chunk), h, workers)
    return (out, LinearState(state)) if return_state else out


def linear_decode(state: LinearState, q: np.ndarray, k: np.ndarray,
                  v: np.ndarray) -> np.ndarray:
    """The recurrent form, one token: S += phi(k)[v, 1]^T; y = phi(q)^T S (num / den)."""
    fk, fq = feature_map(k), feature_map(q)
    state.s += fk[:, :, None] * _with_ones(v)[:, None, :]  # (h, d_k, d_v + 1)
    y = np.matmul(fq[:, None, :], state.s)[:, 0, :]  # (h, d_v + 1)
    return y[:, :-1] / y[:, -1:]


def linear_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Reference: the token-by-token recurrent form (what `linear_prefill` must equal)."""
    h, n, d_k, d_v = _check_qkv(q, k, v)
    state = LinearState(np.zeros((h, d_k, d_v + 1), np.result_type(q, v)))
    return np.stack([linear_decode(state, q[:, i], k[:, i], v[:, i]) for i in range(n)], axis=1)


# --------------------------------------------------------------------------------------------
# Fixed-size memory: m slots + causal attention inside segments of s tokens
# --------------------------------------------------------------------------------------------

@dataclass
class MemoryState:
    """m memory slots with fixed keys (addresses) and written values, plus the current
    segment's tokens. `updates` counts the segments written so far."""

    mem_k: np.ndarray  # (h, m, d_qk) slot keys: fixed addresses (learned in a real model)
    mem_v: np.ndarray  # (h, m, d_v) slot contents, rewritten after each full segment
    mem_q: np.ndarray  # (h, m, d_qk) slot queries for the write (a model's own projection)
    seg_k: np.ndarray  # (h, s, d_qk) current segment buffer
    seg_v: np.ndarray  # (h, s, d_v)
    seg_len: int = 0
    updates: int = 0

    @classmethod
    def empty(cls, mem_k: np.ndarray, mem_v: np.ndarray, segment: int,
              mem_q: np.ndarray | None = None) -> "MemoryState":
        h, _, d_qk = mem_k.shape
        return cls(mem_k.copy(), mem_v.copy(), (mem_k if mem_q is None else mem_q).copy(),
                   np.empty((h, segment, d_qk), mem_k.dtype),
                   np.empty((h, segment, mem_v.shape[2]), mem_v.dtype))


def _memory_write(mem_q: np.ndarray, mem_v: np.ndarray, seg_k: np.ndarray,
                  seg_v: np.ndarray, updates: int) -> None:
    """The m slots attend to the segment's s tokens (softmax over the segment) and each slot
    keeps the running mean of what it read over all segments so far (the first write
    replaces the initial contents). One head: mem_q (m, d_qk), seg_k (s, d_qk); mem_v updated.
    FLOPs: 2*m*s*d_qk (scores) + 2*m*s*d_v (read) per head, the cost model's count."""
    s = mem_q @ seg_k.T * mem_q.dtype.type(1.0 / math.sqrt(mem_q.shape[1]))  # (m, s)
    denom = _softmax_rows_inplace(s)
    read = (s @ seg_v) / denom  # (m, d_v)
    mem_v += (read - mem_v) / (updates + 1)


def _memory_head(q, k, v, out, mem_k, mem_v, mem_q, segment) -> int:
    """One head: per segment, queries see [m slots ; causal in-segment]; after a full segment
    the memory is written. mem_v is updated in place; returns the number of writes."""
    n, d_qk = q.shape
    m = mem_k.shape[0]
    updates = 0
    for s0 in range(0, n, segment):
        s1 = min(n, s0 + segment)
        L = s1 - s0
        keys = np.concatenate([mem_k, k[s0:s1]])  # (m + L, d_qk)
        vals = np.concatenate([mem_v, v[s0:s1]])
        s = q[s0:s1] @ keys.T  # (L, m + L), q pre-scaled
        seg = s[:, m:]
        seg[np.triu(np.ones((L, L), bool), 1)] = -np.inf  # causal inside the segment
        denom = _softmax_rows_inplace(s)
        np.divide(s @ vals, denom, out=out[s0:s1])
        if L == segment:
            _memory_write(mem_q, mem_v, k[s0:s1], v[s0:s1], updates)
            updates += 1
    return updates


def memory_prefill(q: np.ndarray, k: np.ndarray, v: np.ndarray, mem_k: np.ndarray,
                   mem_v: np.ndarray, segment: int, *, mem_q: np.ndarray | None = None,
                   workers: int | None = None, return_state: bool = False):
    """Fixed-size memory attention (memory tokens / recurrent-memory style): each token
    attends to the m memory slots plus causally within its own segment of `segment` tokens.

    mem_k (h, m, d_qk): slot keys (fixed addresses); mem_v (h, m, d_v): initial contents;
    mem_q (h, m, d_qk): the slots' queries when they read a segment (default: mem_k).
    Returns out (h, n, d_v), or (out, MemoryState) with return_state=True."""
    h, n, d_qk, d_v = _check_qkv(q, k, v)
    if mem_k.shape[0] != h or mem_v.shape[:2] != mem_k.shape[:2] or mem_k.shape[2] != d_qk:
        raise ValueError(f"memory shapes {mem_k.shape}, {mem_v.shape} do not fit q {q.shape}")
    if segment < 1:
        raise ValueError(f"segment must be >= 1, got {segment}")
    qs = q * q.dtype.type(1.0 / math.sqrt(d_qk))
    if mem_q is not None and mem_q.shape != mem_k.shape:
        raise ValueError(f"mem_q shape {mem_q.shape} != mem_k shape {mem_k.shape}")
    state = MemoryState.empty(mem_k, mem_v, segment, mem_q)
    out = np.empty((h, n, d_v), np.result_type(q, v))
    updates = [0] * h
    def head(i):
        updates[i] = _memory_head(qs[i], k[i], v[i], out[i], state.mem_k[i], state.mem_v[i],
                                  state.mem_q[i], segment)
    _map_heads(head, h, workers)
    state.updates = updates[0]
    tail = n - (n // segment) * segment  # tokens of the unfinished segment stay buffered
    if tail:
        state.seg_k[:, :tail], state.seg_v[:, :tail] = k[:, n - tail:], v[:, n - tail:]
    state.seg_len = tail
    return (out, state) if return_state else out


def memory_decode(state: MemoryState, q: np.ndarray, k: np.ndarray,
                  v: np.ndarray) -> np.ndarray:
    """One token: attend to [m slots ; segment so far incl. itself]; write when full."""
    j = state.seg_len
    state.seg_k[:, j], state.seg_v[:, j] = k, v
    state.seg_len = j + 1
    keys = np.concatenate([state.mem_k, state.seg_k[:, :j + 1]], axis=1)
    vals = np.concatenate([state.mem_v, state.seg_v[:, :j + 1]], axis=1)
    out = attend(q, keys, vals)
    if state.seg_len == state.seg_k.shape[1]:
        for i in range(q.shape[0]):
            _memory_write(state.mem_q[i], state.mem_v[i], state.seg_k[i], state.seg_v[i],
                          state.updates)
        state.updates += 1
        state.seg_len = 0
    return out


# --------------------------------------------------------------------------------------------
# Selective state-space scan (Mamba-1: Gu & Dao 2023, arXiv:2312.00752, Algorithm 2)
# --------------------------------------------------------------------------------------------

@dataclass
class SSMParams:
    """The layer's fixed parameters (input-independent); the selective dt, B, C come per token."""

    a: np.ndarray  # (d_inner, N), negative reals: the continuous-time decay
    conv_w: np.ndarray  # (d_inner, d_conv) depthwise causal conv weights
    conv_b: np.ndarray  # (d_inner,)
    d_skip: np.ndarray  # (d_inner,) the D skip connection

    @classmethod
    def random(cls, d_inner: int, d_state: int, d_conv: int, rng: np.random.Generator,
               dtype=np.float32) -> "SSMParams":
        # Mamba's S4D-real init: A[:, n] = -(n + 1) (Gu & Dao 2023, section 3.6).
        a = -np.tile(np.arange(1, d_state + 1, dtype=dtype), (d_inner, 1))
        return cls(a, (rng.standard_normal((d_inner, d_conv)) / d_conv).astype(dtype),
                   np.zeros(d_inner, dtype), np.ones(d_inner, dtype))


@dataclass
class SSMState:
    conv: np.ndarray  # (b, d_conv - 1, d_inner) the last inputs the causal conv needs
    h: np.ndarray  # (b, d_inner, N) the SSM state


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def _conv_silu(x: np.ndarray, prev: np.ndarray, p: SSMParams) -> np.ndarray:
    """Causal depthwise conv over time then SiLU. x (b, n, d_inner); prev (b, d_conv-1, d_inner)."""
    d_conv = p.conv_w.shape[1]
    xp = np.concatenate([prev, x], axis=1)  # (b, n + d_conv - 1, d_inner)
    n = x.shape[1]
    y = np.broadcast_to(p.conv_b, x.shape).copy()
    for j in range(d_conv):  # 2 * d_conv * d_inner FLOPs per token
        y += xp[:, j:j + n] * p.conv_w[:, j]
    return _silu(y)


def ssm_prefill(x: np.ndarray, dt: np.ndarray, b: np.ndarray, c: np.ndarray, p: SSMParams,
                *, chunk: int = DEFAULT_SSM_CHUNK, return_state: bool = False):
    """Selective scan over a prompt: u = SiLU(conv(x)); h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t;
    y_t = C_t h_t + D u_t.

    x, dt: (batch, n, d_inner) with dt > 0; b, c: (batch, n, N). The recurrence is
    sequential in t (an SSM's prefill may be); per chunk the decay and input
    terms are computed at once, then a two-op loop per token carries the state."""
    bsz, n, d_inner = x.shape
    d_conv = p.conv_w.shape[1]
    prev = np.zeros((bsz, d_conv - 1, d_inner), x.dtype)
    u = _conv_silu(x, prev, p)
    hs = np.zeros((bsz, d_inner, p.a.shape[1]), x.dtype)
    y = np.empty_like(x)
    for t0 in range(0, n, chunk):
        t1 = min(n, t0 + chunk)
        da = np.exp(dt[:, t0:t1, :, None] * p.a)  # (b, L, d_inner, N) discretised decay
        dbu = (dt[:, t0:t1] * u[:, t0:t1])[..., None] * b[:, t0:t1, None, :]  # dt u B
        for t in range(t1 - t0):  # h_t = exp(dt A) h_{t-1} + dt u B, in place: 2 ops/token
            np.multiply(da[:, t], hs, out=da[:, t])
            da[:, t] += dbu[:, t]
            hs = da[:, t]  # da now holds every h_t of the chunk, for the readout below
        y[:, t0:t1] = np.einsum("bldn,bln->bld", da, c[:, t0:t1])  # C h
    y += u * p.d_skip
    if not return_state:
        return y
    hs = hs.copy()
    tail = np.concatenate([prev, x], axis=1)[:, -(d_conv - 1):] if d_conv > 1 else prev
    return y, SSMState(tail.copy(), hs)


def ssm_decode(state: SSMState, x: np.ndarray, dt: np.ndarray, b: np.ndarray, c: np.ndarray,
               p: SSMParams) -> np.ndarray:
    """One token: x, dt (batch, d_inner); b, c (batch, N). Updates the state; returns y."""
    u = _conv_silu(x[:, None], state.conv, p)[:, 0]
    if state.conv.shape[1]:
        state.conv = np.concatenate([state.conv[:, 1:], x[:, None]], axis=1)
    state.h = np.exp(dt[:, :, None] * p.a) * state.h + (dt * u)[:, :, None] * b[:, None, :]
    return np.einsum("bdn,bn->bd", state.h, c) + u * p.d_skip


# --------------------------------------------------------------------------------------------
# Naive references (dense n x n masks) for the equivalence tests
# --------------------------------------------------------------------------------------------

def family_mask(n: int, window: int | None = None, global_tokens: int = 0) -> np.ndarray:
    """Dense (n, n) boolean mask: query i may attend key j (full / window / window+globals)."""
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    w = n if window is None else window
    return (j <= i) & ((j > i - w) | (j < global_tokens))


def reference_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                        mask: np.ndarray) -> np.ndarray:
    """Dense masked softmax attention, O(n^2) memory: softmax(q k^T / sqrt(d) + mask) v."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    s = np.where(mask, s, -np.inf)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    return (s / s.sum(axis=-1, keepdims=True)) @ v


def ssm_reference(x: np.ndarray, dt: np.ndarray, b: np.ndarray, c: np.ndarray,
                  p: SSMParams) -> np.ndarray:
    """Token-by-token loop of the same equations, written out plainly."""
    bsz, n, d_inner = x.shape
    d_conv = p.conv_w.shape[1]
    out = np.empty_like(x)
    for bi in range(bsz):
        h = np.zeros((d_inner, p.a.shape[1]), x.dtype)
        for t in range(n):
            acc = p.conv_b.copy()
            for j in range(d_conv):  # tap j multiplies x[t - (d_conv - 1) + j]
                src = t - (d_conv - 1) + j
                if src >= 0:
                    acc = acc + p.conv_w[:, j] * x[bi, src]
            u = acc / (1 + np.exp(-acc))
            h = np.exp(dt[bi, t][:, None] * p.a) * h + (dt[bi, t] * u)[:, None] * b[bi, t][None]
            out[bi, t] = h @ c[bi, t] + p.d_skip * u
    return out
