"""Information retention: associative recall through the kernels, as context grows.

Cheaper architectures pay in what they can still retrieve. The task (synthetic associative
recall, in the spirit of the "associative recall" probes of Ba et al. 2016 and Zoology, Arora
et al. 2023, arXiv:2312.04927), run through the very kernels calibration times:

- a sequence of n tokens; every token's value is a random unit vector in d dims and its key
  a random unit direction times r = sqrt(sharpness * sqrt(d));
- `pairs` of those tokens, at random positions, are the stored key/value pairs;
- the last token queries one of them: q = r * (the key's direction), so the softmax logit
  q.k / sqrt(d) is `sharpness` for the right key and ~ sharpness * N(0, 1/d) for a random
  one. Query and keys share the scale r, so the linear family's feature map sees keys with
  as much contrast as the query (a unit key under elu+1 would be nearly constant); softmax
  families depend only on the logits. The query token's own key and value are zero;
- the layer's output at the query is "retrieved"; the trial is a hit when, of the `pairs`
  stored values, the right one is nearest (Euclidean) to it. Chance is 1/pairs.

Families: full (KV cache), window (w), sparse (window w + the first g tokens as globals),
linear (elu+1 feature map, state d x (d+1)), memory (m slots whose keys are random
directions at the same scale r, reading each finished segment of s tokens with those keys as
queries, and keeping the running mean of what they read). Each
trial is an independent sequence (one "head"); the context is run through the family's
prefill (or, where the prefill's only product is the cache, the cache is built from the
keys/values directly) and the query through its decode step. The SSM family is left out: its
recall depends on learned, input-dependent dt/B/C that random parameters do not have.

Nothing here is tuned to make a family look good or bad: the numbers are what the kernels do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from simkit.calibrate import kernels

FIDELITY_FAMILIES = ("full", "window", "sparse", "linear", "memory")
DEFAULT_LENGTHS = (512, 2048, 8192, 32768)


@dataclass(frozen=True)
class RecallTask:
    """The task's parameters (all stated in the result)."""

    d: int = 32  # key/value dimension (d_qk = d_v)
    pairs: int = 16  # stored key/value pairs per sequence; chance recall = 1 / pairs
    trials: int = 64  # independent sequences (queries) per length
    sharpness: float = 16.0  # attention logit of the right key
    window: int = 256
    global_tokens: int = 16
    memory_slots: int = 64
    segment: int = 256
    group: int = 8  # sequences processed at once (memory use ~ group * n * d * 12 bytes)

    def validate(self) -> None:
        from simkit.errors import SimkitError

        for name in ("d", "pairs", "trials", "window", "memory_slots", "segment", "group"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise SimkitError(f"fidelity.{name}: must be an integer >= 1, got {v!r}")
        if self.pairs < 2:
            raise SimkitError(f"fidelity.pairs: must be >= 2, got {self.pairs}")
        if not isinstance(self.global_tokens, int) or self.global_tokens < 0:
            raise SimkitError(f"fidelity.global_tokens: must be an integer >= 0, "
                              f"got {self.global_tokens!r}")
        if not (self.sharpness > 0 and np.isfinite(self.sharpness)):
            raise SimkitError(f"fidelity.sharpness: must be a number > 0, got {self.sharpness!r}")


@dataclass
class FidelityResult:
    """Recall vs context length per family: recall[family][i] is the hit rate at lengths[i]."""

    lengths: list[int]
    recall: dict[str, list[float]]
    stderr: dict[str, list[float]]  # binomial standard error sqrt(p (1 - p) / trials)
    chance: float
    task: RecallTask
    seed: int
    families: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"lengths": list(self.lengths), "recall": {f: list(v) for f, v in self.recall.items()},
                "stderr": {f: list(v) for f, v in self.stderr.items()}, "chance": self.chance,
                "task": asdict(self.task), "seed": self.seed, "families": list(self.families)}


def _key_scale(task: RecallTask) -> np.float32:
    """r with r^2 / sqrt(d) = sharpness: the logit of a key with its own direction."""
    return np.float32(np.sqrt(task.sharpness * np.sqrt(task.d)))


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def _make_group(rng: np.random.Generator, task: RecallTask, n: int, h: int):
    """h sequences of n - 1 context tokens, their stored pairs, and the query token."""
    d = task.d
    r = _key_scale(task)
    k = r * _unit(rng, (h, n - 1, d))
    v = _unit(rng, (h, n - 1, d))
    # the pair positions: distinct, anywhere in the context (before the query token)
    pos = np.stack([rng.choice(n - 1, size=task.pairs, replace=False) for _ in range(h)])
    target = rng.integers(0, task.pairs, size=h)
    rows = np.arange(h)
    q_key = k[rows, pos[rows, target]]  # (h, d) the key asked for
    q = q_key.copy()  # the key itself: logit r^2 / sqrt(d) = sharpness
    candidates = v[rows[:, None], pos]  # (h, pairs, d) the stored values
    # context queries: they only shape prefill outputs the task discards; random unit
    q_ctx = r * _unit(rng, (h, n - 1, d))
    return q_ctx, k, v, q, candidates, target


def _retrieve(family: str, task: RecallTask, q_ctx, k, v, q, rng_mem) -> np.ndarray:
    """The layer's output at the query token, (h, d), for one family."""
    h, _, d = k.shape
    zero_k = np.zeros((h, d), np.float32)
    zero_v = np.zeros((h, d), np.float32)
    if family == "full":
        cache = kernels.KVCache.from_prompt(k, v, capacity=k.shape[1] + 1)
        return kernels.full_decode(cache, q, zero_k, zero_v)
    if family in ("window", "sparse"):
        g = task.global_tokens if family == "sparse" else 0
        cache = kernels.WindowCache.from_prompt(k, v, task.window, g)
        return kernels.window_decode(cache, q, zero_k, zero_v)
    if family == "linear":
        _, state = kernels.linear_prefill(q_ctx, k, v, return_state=True)
        return kernels.linear_decode(state, q, zero_k, zero_v)
    if family == "memory":
        # Slot keys are random directions at the tokens' scale: read by the query and reading
        # a segment with the same sharpness as any token pair.
        mem_k = _key_scale(task) * _unit(rng_mem, (h, task.memory_slots, d))
        mem_v = np.zeros((h, task.memory_slots, d), np.float32)
        _, state = kernels.memory_prefill(q_ctx, k, v, mem_k, mem_v, task.segment,
                                          return_state=True)
        return kernels.memory_decode(state, q, zero_k, zero_v)
    raise ValueError(family)


def run_fidelity(lengths: Sequence[int] = DEFAULT_LENGTHS, seed: int = 0,
                 task: RecallTask | None = None,
                 families: Sequence[str] = FIDELITY_FAMILIES) -> FidelityResult:
    """Recall at each length for each family. Same seed -> the same numbers, bit for bit."""
    from simkit.errors import SimkitError

    task = task or RecallTask()
    task.validate()
    lengths = [int(n) for n in lengths]
    if not lengths:
        raise SimkitError("fidelity.lengths: give at least one length")
    for n in lengths:
        if n <= task.pairs:
            raise SimkitError(f"fidelity.lengths: each length must exceed pairs "
                              f"({task.pairs}), got {n}")
    for f in families:
        if f not in FIDELITY_FAMILIES:
            raise SimkitError(f"fidelity.families: unknown family {f!r}; choose from "
                              f"{', '.join(FIDELITY_FAMILIES)}")
    hits = {f: [] for f in families}
    for n in lengths:
        rng = np.random.default_rng([seed, n])  # a length's data does not depend on the list
        counts = dict.fromkeys(families, 0)
        done = 0
        while done < task.trials:
            h = min(task.group, task.trials - done)
            q_ctx, k, v, q, cand, target = _make_group(rng, task, n, h)
            mem_seed = rng.integers(2**32)
            for f in families:
                y = _retrieve(f, task, q_ctx, k, v, q, np.random.default_rng(mem_seed))
                dist = np.linalg.norm(cand - y[:, None, :], axis=-1)  # (h, pairs)
                counts[f] += int(np.sum(np.argmin(dist, axis=1) == target))
            done += h
        for f in families:
            hits[f].append(counts[f] / task.trials)
    stderr = {f: [float(np.sqrt(p * (1 - p) / task.trials)) for p in hits[f]] for f in families}
    return FidelityResult(lengths, hits, stderr, 1.0 / task.pairs, task, seed, list(families))
