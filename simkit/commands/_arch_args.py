"""Options shared by `cost`, `formula` and `crossover`: model, architecture, dtypes."""

from __future__ import annotations

from simkit.commands._common import nonneg_int, positive_int
from simkit.stack import KINDS
from simkit.units import KV_DTYPES, WEIGHT_DTYPES

#: kind-specific options -> the LayerSpec setting they set
_KIND_OPTIONS = {"window": "window", "global_tokens": "global_tokens", "chunk": "chunk",
                 "memory_slots": "memory_slots", "segment": "segment_tokens"}


def add_arch_options(p, attention: bool = True) -> None:
    if attention:
        p.add_argument("--attention", choices=KINDS, default=None,
                       help="run every token-mixer layer with this kind (default: the "
                       "model's own layers)")
        p.add_argument("--layer-pattern", metavar="P", default=None,
                       help="a layer stack by hand, repeated to the layer count: comma-"
                       "separated [COUNTx]KIND[:SETTING], e.g. 5xwindow:1024,full or "
                       "3xlinear:gated_deltanet,full")
    p.add_argument("--window", type=positive_int, help="window W (window/sparse layers)")
    p.add_argument("--global-tokens", type=nonneg_int, help="global tokens G (sparse)")
    p.add_argument("--chunk", type=positive_int, help="attention chunk C (chunked layers)")
    p.add_argument("--memory-slots", type=positive_int, help="memory slots M (memory)")
    p.add_argument("--segment", type=positive_int, help="segment length S (memory)")
    p.add_argument("--attention-every", type=positive_int, default=1,
                   help="hybrid: one attention layer every K, the rest SSM (Jamba K=8)")
    p.add_argument("--kv-share", type=positive_int, default=1,
                   help="cross-layer KV sharing: K layers share one cache")
    p.add_argument("--weight-share", type=positive_int, default=1,
                   help="cross-layer weight sharing: K layers share weights")
    p.add_argument("--max-context", type=positive_int, default=None,
                   help="deployed context (e.g. RoPE-scaled); longer lengths are what-ifs")
    p.add_argument("--kv-dtype", choices=KV_DTYPES, default="bf16")
    p.add_argument("--weight-dtype", choices=WEIGHT_DTYPES, default=None,
                   help="every weight in this dtype (default: as the checkpoint stores "
                   "them: bf16, or its config.json's quantization -- DeepSeek-V3 fp8, "
                   "gpt-oss's routed experts mxfp4)")


#: the scenario key the cost layer names in its errors -> the option it came from here
_OPTION_OF = {"model.attention": "--attention", "model.layer_pattern": "--layer-pattern",
              "model.window": "--window", "model.global_tokens": "--global-tokens",
              "model.chunk": "--chunk", "model.memory_slots": "--memory-slots",
              "model.segment_tokens": "--segment", "model.attention_every": "--attention-every",
              "model.kv_share": "--kv-share", "model.weight_share": "--weight-share",
              "model.max_context": "--max-context", "model.kv_dtype": "--kv-dtype",
              "model.weight_dtype": "--weight-dtype"}


def _as_options(e, attention_option: str = "--attention"):
    """The cost layer's error with scenario keys (`model.kv_share: ...`) named as the
    options given on this command line (`--kv-share: ...`)."""
    from simkit.errors import SimkitError

    options = {**_OPTION_OF, "model.attention": attention_option}
    out = []
    for m in e.messages:
        for key, opt in options.items():
            if m.startswith((key + ":", key + "[", key + ".")):
                m = opt + m[len(key):]
                break
        out.append(m)
    return SimkitError(*out)


def arch_from_args(model, args, attention: str | None = None,
                   attention_option: str = "--attention"):
    """Build and resolve the ArchSpec; a kind-specific option no layer uses is an error.
    Errors name the options (`--kv-share`; the kind as `attention_option`), not the
    scenario keys the cost layer speaks of."""
    from simkit.errors import SimkitError

    try:
        return _arch_from_args(model, args, attention)
    except SimkitError as e:
        raise _as_options(e, attention_option) from None


def _arch_from_args(model, args, attention: str | None = None):
    from dataclasses import replace

    from simkit.costs.arch import ArchSpec
    from simkit.errors import SimkitError
    from simkit.stack import parse_pattern_text

    kind = attention or getattr(args, "attention", None)
    text = getattr(args, "layer_pattern", None)
    pattern = parse_pattern_text(text) if text else None
    arch = ArchSpec(
        attention=kind, window=args.window, global_tokens=args.global_tokens,
        chunk=args.chunk, memory_slots=args.memory_slots, segment_tokens=args.segment,
        kv_dtype=args.kv_dtype, weight_dtype=args.weight_dtype,
        attention_every=args.attention_every, kv_share=args.kv_share,
        weight_share=args.weight_share, layer_pattern=pattern,
        max_context=args.max_context)
    if attention is None:  # for crossover both kinds are checked by the caller
        # which layers take each option, before a window covering the context becomes full
        # attention (that layer did take the option; resolve says so in a warning)
        unbounded = replace(arch, max_context=1 << 62).resolve(model)
        used = {k for s in unbounded.stack for k in _KIND_OPTIONS.values()
                if getattr(s, k) is not None}
        for opt, key in _KIND_OPTIONS.items():
            if getattr(args, opt, None) is not None and key not in used:
                raise SimkitError(f"--{opt.replace('_', '-')}: no layer of {model.name} "
                                  f"({unbounded.describe()}) takes a {key.replace('_', ' ')}")
    return arch.resolve(model)
