"""`ArchSpec`: which attention/memory architecture a model runs, and its settings.

The model config says what the network's shapes are; the ArchSpec says how its token mixer
behaves (full, window, ...), how its cache is stored (dtype, cross-layer sharing) and how it
is mixed with SSM layers. Kind-specific keys (`window`, `global_tokens`, `memory_slots`) apply
where they mean something: `resolve()` fills defaults for the kind and drops the rest, so a
sweep may vary the kind freely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from simkit.errors import SimkitError
from simkit.units import DTYPE_BYTES, KV_DTYPES, WEIGHT_DTYPES

KINDS = ("full", "window", "sparse", "linear", "memory", "ssm", "mla")

#: defaults for kind-specific settings (DESIGN.md's example values)
DEFAULT_WINDOW = 4096
DEFAULT_GLOBAL_TOKENS = 16
DEFAULT_MEMORY_SLOTS = 512
DEFAULT_SEGMENT_TOKENS = 512

DESCRIPTION = {
    "full": "full causal attention (MHA/GQA/MQA): cache grows with every token",
    "window": "sliding-window attention (rolling buffer of w tokens)",
    "sparse": "sliding window + g global tokens (Longformer/BigBird, causal: first g tokens)",
    "linear": "causal linear attention: a constant d_k x d_v state per KV head",
    "memory": "fixed-size memory: m slots + the current segment of s tokens",
    "ssm": "selective state-space mixer (Mamba-1): conv + SSM state, constant in t",
    "mla": "multi-head latent attention (DeepSeek-V2): cache of a rank-r_kv latent + RoPE key",
}


@dataclass(frozen=True)
class ArchSpec:
    """Token-mixer kind and cache settings. `None` settings take the kind's default."""

    attention: str = "full"
    window: int | None = None
    global_tokens: int | None = None
    memory_slots: int | None = None
    segment_tokens: int | None = None
    kv_dtype: str = "bf16"
    weight_dtype: str = "bf16"
    attention_every: int = 1  # hybrid: one token-mixer layer in k is `attention`, rest SSM
    kv_share: int = 1  # cross-layer KV sharing: k consecutive layers share one cache
    weight_share: int = 1  # cross-layer weight sharing: k consecutive layers share weights

    def validate(self, where: str = "model") -> "ArchSpec":
        errs = []
        if self.attention not in KINDS:
            errs.append(f"{where}.attention: unknown kind {self.attention!r}; choose one of "
                        f"{', '.join(KINDS)}")
        if self.kv_dtype not in KV_DTYPES:
            errs.append(f"{where}.kv_dtype: unknown dtype {self.kv_dtype!r}; choose one of "
                        f"{', '.join(KV_DTYPES)}")
        if self.weight_dtype not in WEIGHT_DTYPES:
            errs.append(f"{where}.weight_dtype: unknown dtype {self.weight_dtype!r}; choose "
                        f"one of {', '.join(WEIGHT_DTYPES)}")
        for k in ("window", "memory_slots", "segment_tokens"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                errs.append(f"{where}.{k}: must be a positive integer, got {v!r}")
        g = self.global_tokens
        if g is not None and (not isinstance(g, int) or isinstance(g, bool) or g < 0):
            errs.append(f"{where}.global_tokens: must be an integer >= 0, got {g!r}")
        for k in ("attention_every", "kv_share", "weight_share"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                errs.append(f"{where}.{k}: must be a positive integer, got {v!r}")
        if errs:
            raise SimkitError(*errs)
        return self

    def resolve(self, model: Any = None) -> "ArchSpec":
        """Fill the kind's defaults (from the model where it has its own, e.g. Mistral's
        4096 window) and drop settings the kind does not use."""
        self.validate()
        k = self.attention
        own_window = getattr(model, "default_window", 0) or DEFAULT_WINDOW
        return replace(
            self,
            window=(self.window or own_window) if k in ("window", "sparse") else None,
            global_tokens=(DEFAULT_GLOBAL_TOKENS if self.global_tokens is None
                           else self.global_tokens) if k == "sparse" else None,
            memory_slots=(self.memory_slots or DEFAULT_MEMORY_SLOTS) if k == "memory" else None,
            segment_tokens=(self.segment_tokens or DEFAULT_SEGMENT_TOKENS)
            if k == "memory" else None,
        )

    @property
    def kv_bytes_per_element(self) -> float:
        return DTYPE_BYTES[self.kv_dtype]

    @property
    def weight_bytes_per_element(self) -> float:
        return DTYPE_BYTES[self.weight_dtype]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_model(cls, model: Any, attention: str | None = None, **kw: Any) -> "ArchSpec":
        """The model's own architecture (its default kind/window) unless overridden."""
        kind = attention or getattr(model, "default_attention", "full")
        if kind == "mla" and not getattr(model, "kv_lora_rank", 0):
            raise SimkitError(f"attention: mla needs a model with an MLA config "
                              f"(kv_lora_rank); {model.name} has none")
        return cls(attention=kind, **{k: v for k, v in kw.items() if v is not None}).resolve(model)

    @classmethod
    def from_scenario_model(cls, model: Any, section: Any) -> "ArchSpec":
        """Build from a scenario's `[model]` section (duck-typed: the fields of ArchSpec)."""
        kw = {f: getattr(section, f, None) for f in
              ("window", "global_tokens", "memory_slots", "segment_tokens", "kv_dtype",
               "weight_dtype", "attention_every", "kv_share", "weight_share")}
        return cls.for_model(model, getattr(section, "attention", None), **kw)
