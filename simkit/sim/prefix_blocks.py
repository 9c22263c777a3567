"""What the prefix cache keys and counts: cache classes (layer groups cached in lockstep),
the owners of cached blocks (a tenant's system prompt, a stream), what a running sequence
references, and a lookup's outcome. Semantics: `simkit.sim.prefix`."""

from __future__ import annotations

import math

import numpy as np

FULL, WINDOW, CHUNKED, STATE = "full", "window", "chunked", "state"


class CacheClass:
    """Layer groups that are cached in lockstep (same kind and span): their blocks share
    identities, holders and LRU order, and one block of the class weighs `weight` units."""

    __slots__ = ("index", "kind", "weight", "span", "need")

    def __init__(self, index: int, kind: str, weight: int, span: int = 0,
                 block_size: int = 1) -> None:
        self.index = index
        self.kind = kind
        self.weight = int(weight)
        self.span = int(span)  # window or chunk tokens
        # window: blocks that must be cached before a hit (the input token is in the window)
        self.need = -(-(self.span - 1) // block_size) if kind == WINDOW else 0

    def start_block(self, t: int, block_size: int) -> int:
        """First block a sequence at context t still holds."""
        if self.kind == WINDOW:
            return max(0, t - self.span) // block_size
        if self.kind == CHUNKED:
            return (self.span * ((t - 1) // self.span) if t > 0 else 0) // block_size
        return 0


def cache_classes(policy) -> tuple[list[CacheClass] | None, str]:
    """The layout's cache classes, or (None, why prefix caching cannot apply)."""
    if not policy.paged:
        return None, "contiguous KV memory has no blocks to share"
    if policy.budget_tokens is not None:
        return None, "eviction to serving.kv_budget_tokens drops the middle of the cache"
    groups = policy.layout.groups
    if not groups:
        return None, "a stack with only constant state has no paged blocks to key states on"
    b = policy.block_size
    full = 0
    spans: dict[tuple[str, int], int] = {}
    for i, g in enumerate(groups):
        w = policy.block_weight(i)
        if g.kind in ("full", "mla"):
            full += w
        elif g.kind == "window":
            spans[(WINDOW, int(g.window))] = spans.get((WINDOW, int(g.window)), 0) + w
        elif g.kind == "chunked":
            spans[(CHUNKED, int(g.chunk))] = spans.get((CHUNKED, int(g.chunk)), 0) + w
        else:
            return None, (f"layer group {g.label} ({g.kind}) has no prefix-cache manager in "
                          "vLLM")
    out: list[CacheClass] = []
    if full:
        out.append(CacheClass(0, FULL, full, block_size=b))
    for (kind, span), w in spans.items():
        out.append(CacheClass(len(out), kind, w, span, b))
    if policy.fixed_bytes > 0:
        out.append(CacheClass(len(out), STATE,
                              math.ceil(policy.fixed_bytes / policy.unit_bytes), block_size=b))
    return out, ""


class Owner:
    """The cached blocks of one prefix segment: a tenant's system prompt or one stream.

    Per cache class, arrays over the segment's blocks: ``live`` (cached: computed, not
    evicted), ``ref`` (running sequences holding it) and ``stamp`` (when it was last freed:
    the LRU order). ``pref`` is the length of the cached prefix of the first (full) class.
    """

    __slots__ = ("key", "size", "live", "ref", "stamp", "pref", "top", "holders", "n_live",
                 "dead", "last_run", "gen")

    def __init__(self, key: tuple, size: int, n_classes: int) -> None:
        self.key = key
        self.size = size
        self.live = [np.zeros(size, dtype=bool) for _ in range(n_classes)]
        self.ref = [np.zeros(size, dtype=np.int32) for _ in range(n_classes)]
        self.stamp = [np.zeros(size, dtype=np.int64) for _ in range(n_classes)]
        self.pref = 0
        self.top = [0] * n_classes  # per class: no block at or past this index is cached
        self.last_run: list = [None] * n_classes  # per class: its latest LRU run
        self.gen = 0  # changes whenever its arrays do (an LRU run's cached blocks go stale)
        self.holders = 0
        self.n_live = 0
        self.dead = False

    def grow_to(self, size: int) -> None:
        if size <= self.size:
            return
        extra = size - self.size
        self.live = [np.concatenate([a, np.zeros(extra, dtype=bool)]) for a in self.live]
        self.ref = [np.concatenate([a, np.zeros(extra, dtype=np.int32)]) for a in self.ref]
        self.stamp = [np.concatenate([a, np.zeros(extra, dtype=np.int64)]) for a in self.stamp]
        self.size = size


class SeqRef:
    """What one running sequence references in the cache: per class, a run of canonical
    blocks in its tenant's segment [t_lo, t_hi) and one in its stream's [s_lo, s_hi)."""

    __slots__ = ("tenant", "stream", "ft", "runs", "canon", "computed")

    def __init__(self, tenant: Owner | None, stream: Owner, ft: int, n_classes: int,
                 computed: int = 0) -> None:
        self.tenant = tenant
        self.stream = stream
        self.ft = ft
        self.computed = computed  # blocks computed (or hit) so far
        self.runs = [[0, 0, 0, 0] for _ in range(n_classes)]
        self.canon = 0  # units of canonical blocks referenced


class Hit:
    """The outcome of a lookup: hit length and the chain blocks each class would touch."""

    __slots__ = ("blocks", "tokens", "touch", "shared")

    def __init__(self, blocks: int, tokens: int, touch: list, shared: int):
        self.blocks = blocks
        self.tokens = tokens
        self.touch = touch  # per class: (lo, hi) chain blocks, or None
        self.shared = shared  # units of touched blocks other sequences hold already


_NO_HIT_TOUCH: list = []
