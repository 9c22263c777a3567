"""Options shared by `cost`, `formula` and `crossover`: model, architecture, dtypes."""

from __future__ import annotations

from simkit.commands._common import nonneg_int, positive_int

KINDS = ("full", "window", "sparse", "linear", "memory", "ssm", "mla")
DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")


def add_arch_options(p, attention: bool = True) -> None:
    if attention:
        p.add_argument("--attention", choices=KINDS, default=None,
                       help="token-mixer kind (default: the model's own)")
    p.add_argument("--window", type=positive_int, help="window W (window/sparse)")
    p.add_argument("--global-tokens", type=nonneg_int, help="global tokens G (sparse)")
    p.add_argument("--memory-slots", type=positive_int, help="memory slots M (memory)")
    p.add_argument("--segment", type=positive_int, help="segment length S (memory)")
    p.add_argument("--attention-every", type=positive_int, default=1,
                   help="hybrid: one attention layer every K, the rest SSM (Jamba K=8)")
    p.add_argument("--kv-share", type=positive_int, default=1,
                   help="cross-layer KV sharing: K layers share one cache")
    p.add_argument("--weight-share", type=positive_int, default=1,
                   help="cross-layer weight sharing: K layers share weights")
    p.add_argument("--kv-dtype", choices=DTYPES, default="bf16")
    p.add_argument("--weight-dtype", choices=DTYPES, default="bf16")


def arch_from_args(model, args, attention: str | None = None):
    """Build and check the ArchSpec; a kind-specific option on a kind without it errors."""
    from simkit.costs.arch import ArchSpec
    from simkit.errors import SimkitError

    kind = attention or getattr(args, "attention", None) or model.default_attention
    uses = {"window": ("window", "sparse"), "global_tokens": ("sparse",),
            "memory_slots": ("memory",), "segment": ("memory",)}
    if attention is None:  # for crossover both kinds are checked by the caller
        for opt, kinds in uses.items():
            if getattr(args, opt, None) is not None and kind not in kinds:
                raise SimkitError(f"--{opt.replace('_', '-')}: {kind} attention has no "
                                  f"{opt.replace('_', ' ')} (it applies to "
                                  f"{' / '.join(kinds)})")
    return ArchSpec.for_model(
        model, kind, window=args.window if kind in uses["window"] else None,
        global_tokens=args.global_tokens if kind == "sparse" else None,
        memory_slots=args.memory_slots if kind == "memory" else None,
        segment_tokens=args.segment if kind == "memory" else None,
        kv_dtype=args.kv_dtype, weight_dtype=args.weight_dtype,
        attention_every=args.attention_every, kv_share=args.kv_share,
        weight_share=args.weight_share)
