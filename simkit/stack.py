"""The layer stack: which token mixer and which FFN every layer of a model runs.

Real models choose their long-context trade layer by layer (Gemma-2/3 local:global windows,
gpt-oss alternating window/full, Llama-4 chunked + global, Jamba/Zamba2/Nemotron-H attention
+ Mamba, Qwen3-Next and MiniMax linear + full), so a model is an ordered stack of
`LayerSpec`s. This module is plain data (no sympy, no numpy): the catalog, the scenario
loader, the CLI and the cost layer all read the ONE registry of mixer kinds below.

- `MIXERS`: every token-mixer kind, the settings it takes, what its cache does with the
  context (grows / bounded / constant) and whether `--attention` may swap it.
- `LayerSpec`: one layer (or one block of a layer): mixer kind + its settings, FFN kind,
  cross-layer KV sharing, shared weight blocks (Zamba2) and per-layer shape overrides.
- `groups(stack)`: identical layers collapsed to (spec, count), in order of first appearance;
  every cost is a sum over these groups.
- `parse_pattern(...)`: the strict reader of `model.layer_pattern` / `--layer-pattern`
  (tables of known keys with typed values; never evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping, Sequence

from simkit.errors import SimkitError


@dataclass(frozen=True)
class MixerKind:
    """One token-mixer kind of the registry."""

    name: str
    description: str
    settings: tuple[str, ...]  # LayerSpec fields the kind uses (others are dropped)
    cache: str  # "grows" with t | "bounded" by a window/chunk | "constant" state
    variants: tuple[str, ...] = ()  # variant names (first = default)


#: The registry of token-mixer kinds (the ONE list every layer reads).
MIXERS: dict[str, MixerKind] = {k.name: k for k in (
    MixerKind("full", "full causal attention (MHA/GQA/MQA): cache grows with every token",
              (), "grows"),
    MixerKind("mla", "multi-head latent attention (DeepSeek-V2/V3): cache of a rank-r_kv "
              "latent + a shared RoPE key", (), "grows"),
    MixerKind("window", "sliding-window attention (rolling buffer of w tokens)",
              ("window",), "bounded"),
    MixerKind("chunked", "chunked local attention (Llama-4): attends within its chunk of c "
              "tokens", ("chunk",), "bounded"),
    MixerKind("sparse", "sliding window + g global tokens (Longformer/BigBird, causal: the "
              "first g tokens)", ("window", "global_tokens"), "bounded"),
    MixerKind("linear", "linear attention: a constant per-head state (plain, Gated DeltaNet, "
              "lightning)", ("variant",), "constant",
              variants=("plain", "gated_deltanet", "lightning")),
    MixerKind("ssm", "selective state-space mixer (Mamba-1, Mamba-2): conv + SSM state",
              ("variant",), "constant", variants=("mamba1", "mamba2")),
    MixerKind("memory", "fixed-size memory: m slots + the current segment of s tokens",
              ("memory_slots", "segment_tokens"), "constant"),
)}

#: the kinds `--attention` and `model.attention` accept, in registry order
KINDS: tuple[str, ...] = tuple(MIXERS)
#: a layer with no token mixer (an FFN-only block, Nemotron-H's '-')
NO_MIXER = "none"
FFN_KINDS = ("dense", "moe", "none")

#: defaults for kind-specific settings
DEFAULT_WINDOW = 4096
DEFAULT_CHUNK = 8192
DEFAULT_GLOBAL_TOKENS = 16
DEFAULT_MEMORY_SLOTS = 512
DEFAULT_SEGMENT_TOKENS = 512

_SETTING_DEFAULTS = {"window": DEFAULT_WINDOW, "chunk": DEFAULT_CHUNK,
                     "global_tokens": DEFAULT_GLOBAL_TOKENS,
                     "memory_slots": DEFAULT_MEMORY_SLOTS,
                     "segment_tokens": DEFAULT_SEGMENT_TOKENS}
_KIND_SETTINGS = ("window", "chunk", "global_tokens", "memory_slots", "segment_tokens",
                  "variant")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the stack. `None` settings take the kind's (or the model's) default."""

    kind: str = "full"  # a MIXERS kind, or "none" (no token mixer)
    window: int | None = None  # window, sparse
    chunk: int | None = None  # chunked
    global_tokens: int | None = None  # sparse
    memory_slots: int | None = None  # memory
    segment_tokens: int | None = None  # memory
    variant: str | None = None  # linear: plain|gated_deltanet|lightning; ssm: mamba1|mamba2
    ffn: str = "dense"  # dense | moe | none
    #: cross-layer KV sharing (CLA, arXiv:2405.12981): this many consecutive layers of the
    #: group share one cache (the group stores ceil(count / kv_share) caches)
    kv_share: int = 1
    #: layers naming the same shared block store its weights once; each invocation keeps its
    #: own cache (Zamba2's shared attention blocks, arXiv:2411.15242)
    shared_block: str | None = None
    #: shape overrides for this layer's attention (None: the model's): Zamba2's shared block
    #: attends over the concatenated [hidden, embedding] input of width 2 d
    input_dim: int | None = None
    head_dim: int | None = None

    @property
    def mixer(self) -> MixerKind | None:
        return MIXERS.get(self.kind)

    def label(self) -> str:
        """Short name: `window(128)`, `chunked(8192)`, `ssm(mamba2)`, `full`."""
        k = self.kind
        if k == "window":
            s = f"window({self.window})"
        elif k == "chunked":
            s = f"chunked({self.chunk})"
        elif k == "sparse":
            s = f"sparse({self.window}+{self.global_tokens})"
        elif k == "memory":
            s = f"memory({self.memory_slots}x{self.segment_tokens})"
        elif k in ("linear", "ssm") and self.variant:
            s = f"{k}({self.variant})"
        else:
            s = k
        if self.kv_share > 1:
            s += f"/kv{self.kv_share}"
        if self.shared_block:
            s += f"[shared {self.shared_block}]"
        return s

    def validate(self, where: str) -> list[str]:
        """Messages for every invalid field (empty when valid)."""
        errs = []
        if self.kind != NO_MIXER and self.kind not in MIXERS:
            errs.append(f"{where}.kind: unknown kind {self.kind!r}; choose one of "
                        f"{', '.join(KINDS)} or {NO_MIXER}")
        if self.ffn not in FFN_KINDS:
            errs.append(f"{where}.ffn: must be one of {', '.join(FFN_KINDS)}; got {self.ffn!r}")
        for k in ("window", "chunk", "memory_slots", "segment_tokens", "input_dim",
                  "head_dim"):
            v = getattr(self, k)
            if v is not None and not _pos_int(v):
                errs.append(f"{where}.{k}: must be a positive integer, got {v!r}")
        g = self.global_tokens
        if g is not None and not (_int(g) and g >= 0):
            errs.append(f"{where}.global_tokens: must be an integer >= 0, got {g!r}")
        if not _pos_int(self.kv_share):
            errs.append(f"{where}.kv_share: must be a positive integer, got {self.kv_share!r}")
        mk = MIXERS.get(self.kind)
        if self.variant is not None and (mk is None or self.variant not in mk.variants):
            what = f"one of {', '.join(mk.variants)}" if mk and mk.variants else "not set"
            errs.append(f"{where}.variant: {self.kind} takes {what}; got {self.variant!r}")
        if self.shared_block is not None and not (isinstance(self.shared_block, str)
                                                   and self.shared_block):
            errs.append(f"{where}.shared_block: must be a non-empty name, got "
                        f"{self.shared_block!r}")
        return errs

    def resolved(self, model: Any = None) -> "LayerSpec":
        """The kind's defaults filled in (from the model where it has its own) and the
        settings the kind does not use dropped, so equal layers compare equal."""
        mk = MIXERS.get(self.kind)
        used = set(mk.settings) if mk else set()
        kw: dict[str, Any] = {}
        for k in _KIND_SETTINGS:
            v = getattr(self, k)
            if k not in used:
                kw[k] = None
            elif v is None:
                if k == "variant":
                    own = getattr(model, f"default_{self.kind}_variant", None)
                    kw[k] = own if own in mk.variants else mk.variants[0]
                else:
                    own = getattr(model, f"default_{k}", 0) if k in ("window", "chunk") else 0
                    kw[k] = own or _SETTING_DEFAULTS[k]
        if self.kind == NO_MIXER or (mk is not None and mk.cache == "constant"):
            kw["kv_share"] = 1
        return replace(self, **kw)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v: Any) -> bool:
    return _int(v) and v > 0


# --------------------------------------------------------------------------- stacks

Stack = tuple[LayerSpec, ...]


def groups(stack: Sequence[LayerSpec]) -> list[tuple[LayerSpec, int]]:
    """Identical layers collapsed to (spec, count), in order of first appearance."""
    counts: dict[LayerSpec, int] = {}
    for layer in stack:
        counts[layer] = counts.get(layer, 0) + 1
    return list(counts.items())


def describe(stack: Sequence[LayerSpec], unit: str = "layers") -> str:
    """`24 layers: 12 full + 12 window(128)` (FFN kinds shown when they differ)."""
    gs = groups(stack)
    ffns = {s.ffn for s, _ in gs}
    merged: dict[str, int] = {}
    for s, c in gs:
        lab = s.label() if s.kind != NO_MIXER else "FFN-only"
        if len(ffns) > 1 and s.kind != NO_MIXER:
            lab += {"moe": "+MoE", "dense": "+dense", "none": ""}[s.ffn]
        merged[lab] = merged.get(lab, 0) + c
    parts = " + ".join(f"{c} {lab}" for lab, c in merged.items())
    return f"{len(stack)} {unit}: {parts}" if len(merged) > 1 else \
        f"{len(stack)} {unit}: {parts.split(' ', 1)[1] if merged else 'none'}"


def is_uniform(stack: Sequence[LayerSpec]) -> bool:
    """One mixer kind (with one setting) over every layer that has a mixer."""
    return len({s.label() for s in stack if s.kind != NO_MIXER}) <= 1


def tile(pattern: Sequence[LayerSpec], n_layers: int, where: str) -> Stack:
    """Repeat `pattern` to exactly `n_layers`; its length must divide the layer count."""
    p = len(pattern)
    if p == 0:
        raise SimkitError(f"{where}: must list at least one layer")
    if p > n_layers or n_layers % p:
        raise SimkitError(f"{where}: a pattern of {p} layers does not tile the model's "
                          f"{n_layers} layers (its length must divide {n_layers})")
    return tuple(pattern) * (n_layers // p)


_PATTERN_KEYS = {f.name for f in fields(LayerSpec)} | {"count"}


def parse_pattern(raw: Any, where: str = "model.layer_pattern") -> tuple[LayerSpec, ...]:
    """A `layer_pattern` (list of tables, each `kind` + settings + optional `count`) as
    LayerSpecs, counts expanded. Every problem is reported at once; values are type-checked,
    never evaluated."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise SimkitError(f"{where}: must be a non-empty list of tables such as "
                          "{ kind = \"window\", window = 1024, count = 5 }")
    errs: list[str] = []
    out: list[LayerSpec] = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        if isinstance(item, LayerSpec):
            errs += item.validate(w)
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            errs.append(f"{w}: must be a table, got {item!r}")
            continue
        bad = [k for k in item if k not in _PATTERN_KEYS]
        for k in bad:
            errs.append(f"{w}.{k}: unknown key; known keys: {', '.join(sorted(_PATTERN_KEYS))}")
        if "kind" not in item:
            errs.append(f"{w}.kind: required")
            continue
        if bad:
            continue
        count = item.get("count", 1)
        if not _pos_int(count):
            errs.append(f"{w}.count: must be a positive integer, got {count!r}")
            continue
        kw = {k: v for k, v in item.items() if k != "count"}
        for k in ("kind", "variant", "ffn", "shared_block"):
            if k in kw and kw[k] is not None and not isinstance(kw[k], str):
                errs.append(f"{w}.{k}: must be a string, got {kw[k]!r}")
        if len(errs):
            continue
        spec = LayerSpec(**kw)
        e = spec.validate(w)
        if e:
            errs += e
            continue
        mk = MIXERS.get(spec.kind)
        unused = [k for k in _KIND_SETTINGS if getattr(spec, k) is not None
                  and (mk is None or k not in mk.settings)]
        for k in unused:
            errs.append(f"{w}.{k}: {spec.kind} takes no {k}")
        out += [spec] * count
    if errs:
        raise SimkitError(*errs)
    return tuple(out)


def parse_pattern_text(text: str, where: str = "--layer-pattern") -> tuple[LayerSpec, ...]:
    """The CLI form: comma-separated `[COUNTx]KIND[:SETTING]`, e.g. `5xwindow:1024,full`,
    `3xlinear:gated_deltanet,full`, `7xssm,full`, `chunked:8192`, `sparse:1024+16`.
    Parsed by splitting and int(); never evaluated."""
    if not isinstance(text, str) or not text.strip():
        raise SimkitError(f"{where}: give comma-separated layers such as 5xwindow:1024,full")
    items: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise SimkitError(f"{where}: empty entry in {text!r}")
        count = 1
        head, sep, rest = part.partition("x")
        if sep and head.isdigit():
            count, part = int(head), rest
        kind, _, arg = part.partition(":")
        item: dict[str, Any] = {"kind": kind, "count": count}
        mk = MIXERS.get(kind)
        if arg:
            if mk is None or not mk.settings:
                raise SimkitError(f"{where}: {kind!r} takes no setting (got {part!r})")
            first = mk.settings[0]
            if first == "variant":
                item["variant"] = arg
            elif kind == "sparse":
                w_, plus, g_ = arg.partition("+")
                if not (w_.isdigit() and (not plus or g_.isdigit())):
                    raise SimkitError(f"{where}: sparse takes WINDOW+GLOBALS, got {arg!r}")
                item["window"] = int(w_)
                if plus:
                    item["global_tokens"] = int(g_)
            elif kind == "memory":
                m_, times, s_ = arg.partition("x")
                if not (m_.isdigit() and (not times or s_.isdigit())):
                    raise SimkitError(f"{where}: memory takes SLOTSxSEGMENT, got {arg!r}")
                item["memory_slots"] = int(m_)
                if times:
                    item["segment_tokens"] = int(s_)
            else:
                if not arg.isdigit():
                    raise SimkitError(f"{where}: {kind} takes a positive integer {first}, "
                                      f"got {arg!r}")
                item[first] = int(arg)
        items.append(item)
    return parse_pattern(items, where)


def pattern_to_tables(stack: Iterable[LayerSpec]) -> list[dict[str, Any]]:
    """Run-length tables (TOML-writable, loads back with `parse_pattern`)."""
    out: list[dict[str, Any]] = []
    for spec in stack:
        d = {f.name: getattr(spec, f.name) for f in fields(LayerSpec)
             if getattr(spec, f.name) != f.default}
        d.setdefault("kind", spec.kind)
        if out and {k: v for k, v in out[-1].items() if k != "count"} == d:
            out[-1]["count"] = out[-1].get("count", 1) + 1
        else:
            out.append(d)
    return out
