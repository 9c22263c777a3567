"""`ArchSpec`: the what-if on top of a model's own layer stack, resolved to a stack.

The model config says what the network's shapes and its own layers are (`ModelConfig.stack`);
the ArchSpec says what to change for a what-if, and `resolve(model)` turns both into the
ordered stack of `LayerSpec`s every cost is summed over:

- `layer_pattern`: a stack by hand (repeated to the layer count; its length must divide it).
- `attention`: a shorthand that runs every token-mixer layer with this kind (FFNs kept);
  `attention_every = k` then keeps one layer in k on it and makes the rest SSM (Jamba-style).
- `window`, `chunk`, `global_tokens`, `memory_slots`, `segment_tokens`: set that setting on
  every layer of a kind that uses it (a model's own settings, e.g. Mistral's 4096 window or
  gpt-oss's 128, are defaults); settings a kind does not use are dropped, so a sweep may
  vary the kind freely.
- `kv_share`: consecutive attention layers share one cache (CLA); `weight_share`: layers
  share weights (ALBERT) -- the stored weights shrink, FLOPs do not.
- `max_context`: the deployed context (e.g. RoPE-scaled); longer lengths are what-ifs.

A window at least as long as the deployed context never slides: such a layer is full
attention, and `resolve` says so once (a `SimkitWarning`) and makes it one.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any

from simkit.errors import SimkitError, SimkitWarning
from simkit.stack import (DEFAULT_CHUNK, DEFAULT_GLOBAL_TOKENS, DEFAULT_MEMORY_SLOTS,
                          DEFAULT_SEGMENT_TOKENS, DEFAULT_WINDOW, KINDS, MIXERS, LayerSpec,
                          Stack, describe, is_uniform, tile)
from simkit.units import DTYPE_BYTES, KV_DTYPES, WEIGHT_DTYPES

__all__ = ["ArchSpec", "KINDS", "DESCRIPTION", "DEFAULT_WINDOW", "DEFAULT_CHUNK",
           "DEFAULT_GLOBAL_TOKENS", "DEFAULT_MEMORY_SLOTS", "DEFAULT_SEGMENT_TOKENS"]

#: one line per kind (from the registry)
DESCRIPTION = {k: v.description for k, v in MIXERS.items()}

_SETTINGS = ("window", "chunk", "global_tokens", "memory_slots", "segment_tokens")


@dataclass(frozen=True)
class ArchSpec:
    """What-if settings; `resolve(model)` fills `stack` (and the label in `attention`)."""

    attention: str | None = None  # None: the model's own layers
    window: int | None = None
    global_tokens: int | None = None
    memory_slots: int | None = None
    segment_tokens: int | None = None
    chunk: int | None = None
    kv_dtype: str = "bf16"
    weight_dtype: str | None = None  # None: the checkpoint's own (`ModelConfig.weight_dtype`)
    #: routed experts' weights (resolved: the checkpoint's own when `weight_dtype` is None --
    #: gpt-oss keeps them in mxfp4 beside bf16 attention --, else `weight_dtype`)
    expert_weight_dtype: str | None = None
    attention_every: int = 1  # hybrid: one token-mixer layer in k is `attention`, rest SSM
    kv_share: int = 1  # cross-layer KV sharing: k consecutive layers share one cache
    weight_share: int = 1  # cross-layer weight sharing: k consecutive layers share weights
    layer_pattern: tuple[LayerSpec, ...] | None = None  # a stack by hand (tiled to L)
    max_context: int | None = None  # deployed context (None: the model's own)
    #: the resolved stack (set by `resolve`; None before)
    stack: Stack | None = None

    @property
    def gemm_weight_dtype(self) -> str | None:
        """The dtype whose tensor cores the weight matmuls' rates follow: the routed experts'
        where they have their own (they hold most of a sparse model's weights and of its
        active FLOPs: DeepSeek-V3's 20 of 37 billion), else `weight_dtype`."""
        return self.expert_weight_dtype or self.weight_dtype

    def validate(self, where: str = "model") -> "ArchSpec":
        errs = []
        if self.attention is not None and self.attention not in KINDS \
                and not (self.stack is not None and self.attention == "hybrid"):
            errs.append(f"{where}.attention: unknown kind {self.attention!r}; choose one of "
                        f"{', '.join(KINDS)}")
        if self.kv_dtype not in KV_DTYPES:
            errs.append(f"{where}.kv_dtype: unknown dtype {self.kv_dtype!r}; choose one of "
                        f"{', '.join(KV_DTYPES)}")
        for k in ("weight_dtype", "expert_weight_dtype"):
            v = getattr(self, k)
            if v is not None and v not in WEIGHT_DTYPES:
                errs.append(f"{where}.{k}: unknown dtype {v!r}; choose one of "
                            f"{', '.join(WEIGHT_DTYPES)}")
        for k in ("window", "chunk", "memory_slots", "segment_tokens", "max_context"):
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
        if self.layer_pattern is not None:
            for i, layer in enumerate(self.layer_pattern):
                errs += layer.validate(f"{where}.layer_pattern[{i}]")
        if errs:
            raise SimkitError(*errs)
        return self

    def resolve(self, model: Any) -> "ArchSpec":
        """This what-if applied to `model`: the resolved stack in `stack`, the kind (or
        "hybrid") in `attention`, settings the stack does not use dropped."""
        if self.stack is not None:
            return self
        # both are frozen: a scenario re-checked at every probe of a plan resolves once
        # (a resolution that warns is not kept, so that it warns every time)
        try:
            hit = _RESOLVED.get((self, model))
        except TypeError:  # (a model object that cannot be hashed)
            return self._resolve(model)
        if hit is not None:
            return hit
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            out = self._resolve(model)
        for w in said:
            warnings.warn(w.message, stacklevel=2)
        if not said:
            if len(_RESOLVED) >= 64:
                _RESOLVED.clear()
            _RESOLVED[(self, model)] = out
        return out

    def _resolve(self, model: Any) -> "ArchSpec":
        self.validate()
        if self.weight_dtype is not None:  # a what-if: every weight in that dtype
            weight_dtype = self.weight_dtype
            expert_dtype = self.expert_weight_dtype or weight_dtype
        else:
            weight_dtype = _checkpoint_dtype(model)
            expert_dtype = self.expert_weight_dtype \
                or getattr(model, "expert_weight_dtype", None) or weight_dtype
        L = model.n_layers
        for k in ("attention_every", "kv_share", "weight_share"):
            if getattr(self, k) > L:
                raise SimkitError(f"model.{k}: must be <= {model.name}'s {L} layers, got "
                                  f"{getattr(self, k)}")
        if self.layer_pattern is not None:
            base = list(tile(self.layer_pattern, L, "model.layer_pattern"))
        else:
            base = list(model.stack())
        kind = self.attention
        if kind is not None or self.attention_every > 1:
            kind = kind or _own_attention_kind(base, model)
            k = self.attention_every
            base = [replace(s, kind=kind if (k == 1 or i % k == k - 1) else "ssm",
                            window=None, chunk=None, global_tokens=None, memory_slots=None,
                            segment_tokens=None, variant=None, kv_share=1)
                    if s.kind != "none" else s for i, s in enumerate(base)]
        if any(s.kind == "mla" for s in base) and not getattr(model, "kv_lora_rank", 0):
            raise SimkitError(f"model.attention: mla needs a model with an MLA config "
                              f"(kv_lora_rank); {model.name} has none")
        overrides = {k: getattr(self, k) for k in _SETTINGS if getattr(self, k) is not None}
        context = self.max_context or model.max_context
        out = []
        for s in base:
            mk = MIXERS.get(s.kind)
            if mk is not None:
                s = replace(s, **{k: v for k, v in overrides.items() if k in mk.settings})
                if self.kv_share > 1 and mk.cache != "constant":
                    s = replace(s, kv_share=self.kv_share)
            out.append(s.resolved(model))
        out = _windows_as_full(out, context, model.name)
        stack = tuple(out)
        kinds = {s.kind for s in stack if s.kind != "none"}
        label = stack[0].kind if len(kinds) == 1 else "hybrid"
        if len(kinds) == 1 and not is_uniform(stack):
            label = "hybrid"
        used = {f for s in stack for f in (MIXERS[s.kind].settings if s.kind in MIXERS else ())}
        return replace(self, attention=label, stack=stack, weight_dtype=weight_dtype,
                       expert_weight_dtype=expert_dtype,
                       **{k: (_uniform_setting(stack, k) if k in used else None)
                          for k in _SETTINGS})

    # -- views of the resolved stack ------------------------------------------------------
    def describe(self) -> str:
        """`24 layers: 12 full + 12 window(128)` (after `resolve`)."""
        if self.stack is None:
            raise RuntimeError("describe() needs a resolved ArchSpec")
        return describe(self.stack)

    @property
    def moe_layers(self) -> int:
        """Routed-expert (MoE) layers of the resolved stack."""
        if self.stack is None:
            raise RuntimeError("moe_layers needs a resolved ArchSpec")
        return sum(1 for s in self.stack if s.ffn == "moe")

    @property
    def kv_bytes_per_element(self) -> float:
        return DTYPE_BYTES[self.kv_dtype]

    @property
    def weight_bytes_per_element(self) -> float:
        return DTYPE_BYTES[self.weight_dtype]

    @property
    def expert_weight_bytes_per_element(self) -> float:
        return DTYPE_BYTES[self.expert_weight_dtype or self.weight_dtype]

    @property
    def vocab_bytes_per_element(self) -> float:
        """Bytes per element of the token embedding and the LM head (`vocab_dtype`)."""
        return DTYPE_BYTES[self.vocab_dtype]

    @property
    def vocab_dtype(self) -> str:
        """The dtype the token embedding and the LM head are stored and multiplied in:
        16-bit where the linear layers are quantized below that, as the engines keep them
        (and run the head's matmul in it). vLLM's quantization configs quantize linear
        (and fused-MoE) layers only, and its LM head is a vocabulary embedding, not a linear
        layer (vllm/model_executor/layers/quantization/fp8.py `Fp8Config.get_quant_method`;
        `ParallelLMHead` subclasses `VocabParallelEmbedding`); NVIDIA's Model Optimizer,
        which makes TensorRT-LLM's fp8 and fp4 checkpoints, leaves "*lm_head*" unquantized
        in every preset (NVIDIA/TensorRT-Model-Optimizer@0991404680 modelopt/torch/
        quantization/config.py `_default_disabled_quantizer_cfg`) and quantizes no
        embedding."""
        if self.weight_bytes_per_element >= DTYPE_BYTES["bf16"]:
            return self.weight_dtype
        return "bf16"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("stack")
        d.pop("layer_pattern")
        if self.stack is not None:
            d["layers"] = describe(self.stack)
        return d

    @classmethod
    def for_model(cls, model: Any, attention: str | None = None, **kw: Any) -> "ArchSpec":
        """The model's own architecture unless `attention` (or other settings) override it."""
        return cls(attention=attention, **{k: v for k, v in kw.items() if v is not None}
                   ).resolve(model)

    @classmethod
    def from_scenario_model(cls, model: Any, section: Any) -> "ArchSpec":
        """Build from a scenario's `[model]` section (duck-typed: the fields of ArchSpec)."""
        kw = {f: getattr(section, f, None) for f in
              ("window", "global_tokens", "memory_slots", "segment_tokens", "chunk",
               "kv_dtype", "weight_dtype", "attention_every", "kv_share", "weight_share",
               "layer_pattern", "max_context")}
        return cls.for_model(model, getattr(section, "attention", None), **kw)


def _checkpoint_dtype(model: Any) -> str:
    """The dtype the model's published weights are stored in: what `weight_dtype` None
    means (`simkit.catalog.hf_quant`)."""
    dtype = getattr(model, "weight_dtype", "bf16")
    if dtype is None:
        raise SimkitError(f"model.weight_dtype: {model.name}: its checkpoint's weight dtype "
                          f"is unknown ({model.weight_dtype_note}); say it: model.weight_dtype "
                          "in a scenario, --weight-dtype on the command line")
    return dtype


#: (ArchSpec, model) -> the resolved ArchSpec (bounded: cleared at 64 entries)
_RESOLVED: dict = {}


def _own_attention_kind(stack, model) -> str:
    """The attention kind a hybrid shorthand keeps: the model's first non-SSM mixer."""
    for s in stack:
        if s.kind in MIXERS and MIXERS[s.kind].cache != "constant":
            return s.kind
    return "full"


def _uniform_setting(stack, key: str):
    vals = {getattr(s, key) for s in stack if getattr(s, key) is not None}
    return vals.pop() if len(vals) == 1 else None


def _windows_as_full(stack: list[LayerSpec], context: int, name: str) -> list[LayerSpec]:
    """A window (or window + globals) that covers the whole deployed context never slides:
    it is full attention. Say so once and make it one."""
    out = []
    said = set()
    for s in stack:
        reach = (s.window + (s.global_tokens or 0)) if s.kind in ("window", "sparse") else \
            s.chunk if s.kind == "chunked" else None
        if reach is not None and reach >= context:
            what = f"{s.kind} {reach}"
            if what not in said:
                said.add(what)
                warnings.warn(SimkitWarning(
                    f"{name}: a {s.kind} of {reach} tokens covers the whole {context}-token "
                    "context, so it is full attention; it is modelled as full"))
            s = replace(s, kind="full", window=None, chunk=None, global_tokens=None)
        out.append(s)
    return out
