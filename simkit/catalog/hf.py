"""Hugging Face `config.json` -> `ModelConfig`, with the model's own layer stack built layer by
layer. The one place that knows each family's layout: the catalog builds its recent entries
through `from_hf_config` too.

Supported `model_type`s (`SUPPORTED`): llama, mistral, mixtral, qwen2, qwen3, qwen2_moe,
qwen3_moe, gemma2, gemma3 / gemma3_text, gpt_oss, llama4 (its `text_config`), deepseek_v2 /
deepseek_v3, jamba, zamba2, qwen3_next, minimax, mamba, mamba2, falcon_mamba, nemotron_h,
phi3, opt, falcon, gpt2, gpt_neox, minimax_m2, qwen3_5 / qwen3_5_moe and kimi_k25 (their
`text_config`).
`ALIASES` are other spellings of the same architectures in published checkpoints (MiniMax-M1's
`minimax_m1`, Falcon's old `RefinedWebModel`, Kimi-K2's `kimi_k2`, a DeepSeek-V3 by its own
`architectures`). Anything else is an error naming the type: never a silent llama.

A config without `model_type` is accepted only in mamba_ssm's checkpoint format
(state-spaces/mamba2-*: `d_model`, `n_layer`, `ssm_cfg`), detected by those keys and said so.

Per-layer keys (`PER_LAYER_KEYS`) are the keys that decide which mixer or which FFN a layer
runs. Each family lists the ones it reads; a config carrying another one (with a value other
than null / false / []) is an error, because its layout would otherwise be guessed. Where
`layer_types` is present it decides the mixers, whatever the older keys say (as transformers
does). The per-family rules, with the transformers lines they follow, are in
`simkit/catalog/hf_attention.py` and `simkit/catalog/hf_hybrid.py`.

Every size is validated where it is read (`Keys`): NaN, infinities, booleans, strings and
fractional numbers are one `SimkitError` line naming the file and key, as are heads that do
not divide the hidden size (without a head_dim), KV heads that do not divide the query
heads, more experts per token than experts, per-layer lists of the wrong length and
patterns with unknown characters.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from simkit.catalog.hf_quant import checkpoint_dtypes, sibling_quantization
from simkit.errors import SimkitError, SimkitWarning
from simkit.stack import LayerSpec

if TYPE_CHECKING:
    from simkit.catalog.models import ModelConfig

#: keys that decide a layer's mixer or FFN (see the module docstring)
PER_LAYER_KEYS = (
    "layer_types", "sliding_window", "sliding_window_size", "sliding_window_pattern",
    "_sliding_window_pattern", "use_sliding_window", "max_window_layers",
    "attention_chunk_size", "no_rope_layers", "no_rope_layer_interval",
    "full_attention_interval", "attn_layer_period", "attn_layer_offset",
    "expert_layer_period", "expert_layer_offset", "hybrid_layer_ids", "layers_block_type",
    "hybrid_override_pattern", "first_k_dense_replace", "moe_layer_freq",
    "decoder_sparse_step", "mlp_only_layers", "interleave_moe_layer_step", "moe_layers",
    "attn_type_list", "attn_layer_idx", "num_mem_blocks", "global_attn_every_n_layers",
    "cross_attention_layers", "use_bidirectional_attention")

_REQUIRED = object()
#: bounds far above any real model, so a typo cannot build a stack that fills memory
MAX_SIZE = 2**32
MAX_LAYERS = 100_000
_LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def _show(v: Any) -> str:
    """A value as the user wrote it in JSON (NaN, Infinity, true, "x")."""
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)


class Keys:
    """Typed access to one config mapping; every bad value is one line naming file and key."""

    def __init__(self, cfg: Mapping[str, Any], where: str, prefix: str = ""):
        self.cfg, self.where, self.prefix = cfg, where, prefix

    def error(self, key: str, message: str) -> SimkitError:
        return SimkitError(f"{self.where}: {self.prefix}{key}: {message}")

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def carries(self, key: str) -> bool:
        """Present with a value that does something (not null, false or an empty list)."""
        v = self.cfg.get(key)
        return v is not None and v is not False and v != [] and v != ""

    def _first(self, keys: tuple[str, ...]) -> tuple[str, Any]:
        for k in keys:
            if self.has(k):
                return k, self.cfg[k]
        return keys[0], None

    def int(self, *keys: str, default: Any = _REQUIRED, minimum: int = 1) -> Any:
        """The first of `keys` present, as an integer >= minimum (else `default`)."""
        k, v = self._first(keys)
        if v is None:
            if default is _REQUIRED:
                alt = f" (or {', '.join(keys[1:])})" if len(keys) > 1 else ""
                raise self.error(keys[0], f"missing{alt}")
            return default
        return self.check_int(k, v, minimum)

    def check_int(self, key: str, v: Any, minimum: int = 1) -> int:
        want = "a positive integer" if minimum == 1 else \
            "an integer >= 0" if minimum == 0 else f"an integer >= {minimum}"
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"must be {want}, got {_show(v)}")
        if v < minimum:
            raise self.error(key, f"must be {want}, got {v}")
        limit = MAX_LAYERS if key in _LAYER_COUNT_KEYS else MAX_SIZE
        if v > limit:
            raise self.error(key, f"{v} is implausibly large (at most {limit:,})")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.cfg.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, got {_show(v)}")
        return v

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        v = self.cfg.get(key)
        if v is None:
            if default is _REQUIRED:
                raise self.error(key, "missing")
            return default
        if not isinstance(v, str):
            raise self.error(key, f"must be a string, got {_show(v)}")
        return v

    def int_list(self, key: str, n_layers: int | None = None, minimum: int = 0,
                 below: int | None = None) -> list[int]:
        """A list of integers; `n_layers`: its length must be the layer count; `below`: each
        entry must be a layer index."""
        v = self.cfg.get(key)
        if not isinstance(v, list):
            raise self.error(key, f"must be a list of integers, got {_show(v)}")
        out = []
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
                raise self.error(f"{key}[{i}]", f"must be an integer >= {minimum}, got "
                                 f"{_show(x)}")
            if below is not None and x >= below:
                raise self.error(f"{key}[{i}]", f"layer {x} does not exist (the model has "
                                 f"{below} layers, 0-{below - 1})")
            out.append(x)
        if n_layers is not None:
            self.check_length(key, out, n_layers)
        return out

    def str_list(self, key: str, n_layers: int, choices: Iterable[str]) -> list[str]:
        v = self.cfg.get(key)
        if not isinstance(v, list):
            raise self.error(key, f"must be a list of strings, got {_show(v)}")
        choices = tuple(choices)
        for i, x in enumerate(v):
            if x not in choices:
                raise self.error(f"{key}[{i}]", f"unknown entry {_show(x)}; known: "
                                 f"{', '.join(choices)}")
        self.check_length(key, v, n_layers)
        return list(v)

    def check_length(self, key: str, v: list, n_layers: int) -> None:
        if len(v) != n_layers:
            raise self.error(key, f"has {len(v)} entries but the model has {n_layers} "
                             "layers (num_hidden_layers)")

    def check_per_layer_keys(self, model_type: str, understood: Iterable[str]) -> None:
        """A per-layer key this family does not read is an error (never guessed)."""
        known = set(understood)
        for k in PER_LAYER_KEYS:
            if k not in known and self.carries(k):
                reads = ", ".join(sorted(known)) or "none"
                raise self.error(k, f"{model_type} configs do not use this per-layer key, "
                                 f"so its meaning here is unknown (per-layer keys read for "
                                 f"{model_type}: {reads})")


# --------------------------------------------------------------------------- entry points

def load_hf_file(path: str | Path) -> "ModelConfig":
    """A Hugging Face `config.json` (or any .json of that shape, or a checkpoint folder
    holding a config.json) by path."""
    p = Path(path)
    if p.is_dir() and (p / "config.json").is_file():
        p = p / "config.json"
    key = str(path)
    if not p.is_file():
        raise SimkitError(f"model: no such config file {key!r}")
    try:
        # Python's json reads NaN/Infinity; `Keys` rejects them wherever a size is expected
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SimkitError(f"model: {key}: not valid JSON ({e})") from None
    except OSError as e:
        raise SimkitError(f"model: {key}: cannot read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise SimkitError(f"model: {key}: a config.json must hold a JSON object")
    if "quantization_config" not in data:  # a ModelOpt export: its hf_quant_config.json
        q = sibling_quantization(p)
        if q is not None:
            data = dict(data, quantization_config=q)
    fallback = p.parent.resolve().name if p.name == "config.json" else p.stem
    name = _name_from(data) or fallback or p.stem
    model = from_hf_config(data, name=name, source=key)
    if _is_mamba_ssm(data) and data.get("model_type") is None:
        warnings.warn(SimkitWarning(
            f"{key}: no model_type; read as a mamba_ssm checkpoint config (d_model, n_layer, "
            f"ssm_cfg layer {model.default_ssm_variant.replace('mamba', 'Mamba')})"))
    return model


def _name_from(cfg: Mapping[str, Any]) -> str:
    v = cfg.get("_name_or_path")
    if isinstance(v, str) and v.strip().strip("./\\"):
        return v.strip()
    return ""


def _is_mamba_ssm(cfg: Mapping[str, Any]) -> bool:
    return "d_model" in cfg and "n_layer" in cfg and isinstance(cfg.get("ssm_cfg"), dict)


def from_hf_config(cfg: Mapping[str, Any], name: str = "custom",
                   source: str = "config.json") -> "ModelConfig":
    """The `ModelConfig` (with its per-layer `layers`) of a Hugging Face config mapping."""
    from simkit.catalog.models import ModelConfig

    where = f"model: {source}"
    raw_type = cfg.get("model_type")
    if raw_type is None:
        if _is_mamba_ssm(cfg):
            mt = "mamba_ssm"
        else:
            raise SimkitError(f"{where}: model_type: missing; a Hugging Face config.json "
                              f"names its architecture (supported: {', '.join(SUPPORTED)})")
    elif not isinstance(raw_type, str):
        raise SimkitError(f"{where}: model_type: must be a string, got {_show(raw_type)}")
    else:
        mt = canonical_type(raw_type)
        if mt is None:
            raise SimkitError(f"{where}: model_type: {raw_type!r} is not supported; "
                              f"supported: {', '.join(SUPPORTED)}")
    kw = readers()[mt](Keys(cfg, where), mt)
    kw["weight_dtype"], kw["expert_weight_dtype"], kw["weight_dtype_note"] = \
        checkpoint_dtypes(cfg)
    note = kw.pop("source_note", "")
    kw.setdefault("name", name)
    kw.setdefault("source", f"{source} ({note})" if note and note not in source else source)
    _check_shapes(kw, where)
    model = ModelConfig(**kw)
    errs = []
    for i, layer in enumerate(model.layers or ()):
        errs += layer.validate(f"{where}: layer {i}")
    if errs:  # a reader built an impossible layer: ours to fix, still one line
        raise SimkitError(*errs)
    return model


def _check_shapes(kw: dict, where: str) -> None:
    """Consistency of the shapes every family shares."""
    E, k = kw.get("n_experts", 0), kw.get("experts_per_token", 0)
    key = kw.pop("_experts_key", ("num_local_experts", "num_experts_per_tok"))
    if E and not 1 <= k <= E:
        raise SimkitError(f"{where}: {key[1]}: {k} experts per token, but the model has "
                          f"{E} experts ({key[0]})")
    layers = kw.get("layers")
    if layers is not None and not layers:
        raise SimkitError(f"{where}: the config describes no layers")


def heads_and_dims(c: Keys, heads_key: str = "num_attention_heads",
                   kv_key: str = "num_key_value_heads", head_dim_keys=("head_dim",),
                   hidden_key: str = "hidden_size", kv_default: int | None = None,
                   head_dim_default: int | None = None) -> tuple[int, int, int, int]:
    """(d, H, H_kv, d_h), checked: H must divide d unless a head_dim is given; H_kv must
    divide H."""
    d = c.int(hidden_key)
    H = c.int(heads_key)
    kv = c.int(kv_key, default=kv_default or H)
    hk, hv = c._first(tuple(head_dim_keys))
    if hv is not None:
        hd = c.check_int(hk, hv)
    elif head_dim_default is not None:
        hd = head_dim_default
    else:
        if d % H:
            raise c.error(heads_key, f"{H} heads do not divide {hidden_key} {d}, and no "
                          f"{head_dim_keys[0]} is given")
        hd = d // H
    if H % kv:
        raise c.error(kv_key, f"{kv} key/value heads do not divide the {H} query heads "
                      f"({heads_key})")
    return d, H, kv, hd


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def dt_rank(c: Keys, key: str, d: int) -> int:
    """Mamba's dt rank: an integer, or "auto" = ceil(d / 16) (mamba_simple.py)."""
    v = c.cfg.get(key)
    if v is None or v == "auto":
        return math.ceil(d / 16)
    return c.check_int(key, v)


# --------------------------------------------------------------------------- shared by readers

def basics(c: Keys, *, tie_default: bool = False, **heads_kw) -> dict:
    """Layers, heads, vocabulary, context and tying of a decoder config."""
    L = c.int("num_hidden_layers")
    d, H, kv, hd = heads_and_dims(c, **heads_kw)
    return dict(n_layers=L, d_model=d, n_heads=H, n_kv_heads=kv, head_dim=hd,
                vocab_size=c.int("vocab_size"), max_context=c.int("max_position_embeddings"),
                tie_embeddings=c.flag("tie_word_embeddings", tie_default))


def stack_of(mixers: list[LayerSpec], ffns: list[str]) -> tuple[LayerSpec, ...]:
    return tuple(LayerSpec(kind=m.kind, window=m.window, chunk=m.chunk, variant=m.variant,
                           ffn=f) for m, f in zip(mixers, ffns))


FULL = LayerSpec(kind="full")


def window(w: int) -> LayerSpec:
    return LayerSpec(kind="window", window=w)


def mixers_from_layer_types(c: Keys, L: int, kinds: dict[str, Callable[[], LayerSpec]]
                             ) -> list[LayerSpec]:
    """`layer_types` (it wins over every older key): each entry mapped by `kinds`."""
    return [kinds[t]() for t in c.str_list("layer_types", L, kinds)]


def sliding(c: Keys) -> Callable[[], LayerSpec]:
    """A `sliding_attention` layer: needs `sliding_window`."""
    return lambda: window(c.int("sliding_window"))


def with_defaults(kw: dict, layers: tuple[LayerSpec, ...]) -> dict:
    """The model's default attention kind/window/chunk: its first mixer layer's."""
    first = next((s for s in layers if s.kind not in ("none", "ssm", "linear")), None)
    if first is not None:
        kw.setdefault("default_attention", first.kind)
    for s in layers:
        if s.kind == "window" and not kw.get("default_window"):
            kw["default_window"] = s.window
        if s.kind == "chunked" and not kw.get("default_chunk"):
            kw["default_chunk"] = s.chunk
    kw["layers"] = layers
    return kw


# --------------------------------------------------------------------------- registry

def readers() -> dict[str, Callable[[Keys, str], dict]]:
    """model_type -> reader (imported here: the reader modules import this one)."""
    from simkit.catalog.hf_attention import (deepseek, falcon, gemma, gpt2, gpt_neox, gpt_oss,
                                             kimi_k25, llama4, llama_like, minimax_m2,
                                             opt, qwen, qwen3_5)
    from simkit.catalog.hf_hybrid import (jamba, mamba, mamba2, mamba_ssm, minimax,
                                          nemotron_h, zamba2)

    return {
        "llama": llama_like, "mistral": llama_like, "mixtral": llama_like, "phi3": llama_like,
        "qwen2": qwen, "qwen3": qwen, "qwen2_moe": qwen, "qwen3_moe": qwen, "qwen3_next": qwen,
        "gemma2": gemma, "gemma3": gemma, "gemma3_text": gemma, "gpt_oss": gpt_oss,
        "llama4": llama4, "llama4_text": llama4, "deepseek_v2": deepseek, "deepseek_v3": deepseek,
        "jamba": jamba, "zamba2": zamba2, "minimax": minimax, "nemotron_h": nemotron_h,
        "mamba": mamba, "falcon_mamba": mamba, "mamba2": mamba2, "mamba_ssm": mamba_ssm,
        "opt": opt, "falcon": falcon, "gpt2": gpt2, "gpt_neox": gpt_neox,
        "minimax_m2": minimax_m2, "qwen3_5": qwen3_5, "qwen3_5_moe": qwen3_5,
        "qwen3_5_text": qwen3_5, "qwen3_5_moe_text": qwen3_5, "kimi_k25": kimi_k25,
    }


#: the model_types of the issue, in its order (llama4_text / gemma3_text: the nested types)
SUPPORTED = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe",
             "gemma2", "gemma3", "gemma3_text", "gpt_oss", "llama4", "deepseek_v2",
             "deepseek_v3", "jamba", "zamba2", "qwen3_next", "minimax", "mamba", "mamba2",
             "falcon_mamba", "nemotron_h", "phi3", "opt", "falcon", "gpt2", "gpt_neox",
             "minimax_m2", "qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text",
             "kimi_k25")

#: other spellings of supported architectures in published configs
ALIASES = {
    "llama4_text": "llama4_text",  # Llama-4's nested text_config, on its own
    "minimax_m1": "minimax",  # MiniMaxAI/MiniMax-M1-* (remote code, attn_type_list)
    "minimaxtext01": "minimax",  # MiniMaxAI/MiniMax-Text-01 (remote code)
    "refinedweb": "falcon", "refinedwebmodel": "falcon",  # older tiiuae/falcon-* revisions
    # moonshotai/Kimi-K2-*: its config names DeepseekV3ForCausalLM and DeepseekV3Config
    # (`architectures`, `auto_map`); the same layout with 384 experts and 64 heads
    "kimi_k2": "deepseek_v3",
}


def canonical_type(model_type: str) -> str | None:
    """The reader key of a model_type (case-insensitive), or None if unsupported."""
    t = model_type.strip().lower()
    if t in SUPPORTED:
        return t
    return ALIASES.get(t)
