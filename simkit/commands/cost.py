"""`simkit cost MODEL`: costs of one configuration at one context length."""

from __future__ import annotations

from simkit.commands._arch_args import add_arch_options
from simkit.commands._common import positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("cost", help="costs of one configuration at one context length",
                       description="Parameters, weights, KV cache, FLOPs and roofline times "
                       "of MODEL (catalog name or HF config.json) at context --seq.")
    p.add_argument("model", help="catalog model name or path to a Hugging Face config.json")
    p.add_argument("--seq", type=positive_int, default=2048, help="context length (tokens)")
    p.add_argument("--batch", type=positive_int, default=1, help="sequences in the batch")
    p.add_argument("--hardware", default="h100-sxm", help="catalog name or profile .toml")
    p.add_argument("--gpus", type=positive_int, default=1, help="tensor-parallel GPUs")
    p.add_argument("--memory-fraction", type=positive_float, default=0.9,
                   help="share of device memory for weights + cache (default 0.9)")
    p.add_argument("--ideal", action="store_true",
                   help="pure roofline: efficiencies 1, no overheads (LLM-Viewer's bound)")
    p.add_argument("--engine", default=None, metavar="NAME|FILE",
                   help="serving-engine profile (`simkit engines`; default: the default "
                   "engine)")
    p.add_argument("--max-batch-tokens", type=positive_int, default=None, metavar="N",
                   help="the engine's token budget per step (vLLM's max_num_batched_tokens), "
                   "which sizes its activation reserve (default: the context, at most 8192)")
    p.add_argument("--max-batch", type=positive_int, default=None, metavar="N",
                   help="the engine's batch limit (vLLM's max_num_seqs), which sizes its "
                   "sampler's share of the reserve (default: 256, or --batch if larger)")
    add_arch_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from simkit.catalog import load_model
    from simkit.commands._arch_args import arch_from_args
    from simkit.commands._common import hardware_option, print_json
    from simkit.costs.engine import check_engine
    from simkit.costs.summary import evaluate_costs
    from simkit.errors import SimkitError
    from simkit.units import fmt_bytes, fmt_flops, fmt_seconds

    if args.memory_fraction > 1:
        raise SimkitError(f"--memory-fraction: must be in (0, 1], got {args.memory_fraction}")
    model = load_model(args.model)
    hw = hardware_option(args.hardware)
    check_engine(args.engine, "--engine")
    arch = arch_from_args(model, args)
    r = evaluate_costs(model, arch, hw, args.seq, args.batch, args.gpus, args.ideal,
                       args.memory_fraction, engine=args.engine,
                       max_batch_tokens=args.max_batch_tokens, max_batch=args.max_batch)
    if args.json:
        print_json(r)
        return 0
    print(f"{model.name}: {model_summary(model, arch)}")
    print(f"{hw.name} x{args.gpus} | seq {args.seq} | batch {args.batch} | "
          f"{'ideal roofline' if args.ideal else 'engine ' + r['engine']}")
    rows = [("KV per layer group", "; ".join(
        f"{g['layers']} {g['label']}: {fmt_bytes(g['kv_cache_bytes_per_sequence'])}"
        for g in r["layer_groups"] if g["kind"] != "none"))] if len(r["layer_groups"]) > 1 \
        else []
    rows += [
        ("parameters", f"{r['param_count'] / 1e9:.3f} B (active {r['active_param_count'] / 1e9:.3f} B)"),
        ("weights", f"{fmt_bytes(r['weight_bytes'])} ({r['weight_dtype']}"
                    + (f"; routed experts {r['expert_weight_dtype']})"
                       if r["expert_weight_dtype"] != r["weight_dtype"] else ")")
                    + f"; {fmt_bytes(r['streamed_weight_bytes'])} read per step"),
        ("KV cache, batch", fmt_bytes(r["kv_cache_bytes"])),
        ("KV cache per sequence", fmt_bytes(r["kv_cache_bytes_per_sequence"])),
        ("KV cache per token", f"{fmt_bytes(r['kv_cache_bytes_per_token'])} ({args.kv_dtype})"),
        ("prefill FLOPs", f"{fmt_flops(r['prefill_flops'])} (attention "
                          f"{fmt_flops(r['attention_prefill_flops'])})"),
        ("decode FLOPs per token", f"{fmt_flops(r['decode_flops_per_token'])} (attention "
                                   f"{fmt_flops(r['attention_decode_flops_per_token'])})"),
        ("prefill time", f"{fmt_seconds(r['prefill_seconds'])} ({r['prefill_bound']}-bound)"),
        ("decode step", f"{fmt_seconds(r['decode_seconds_per_step'])} ({r['decode_bound']}-bound,"
                        f" {r['decode_tokens_per_s']:.0f} tokens/s)"),
        ("complexity", f"time {r['complexity']['time']}, cache {r['complexity']['cache']}"),
    ]
    if r["fits"] or r["fits_limit"] == "kv_cache":
        rows.append(("KV capacity", f"{fmt_bytes(r['kv_capacity_bytes'])}"
                     + (f" -> max batch {r['max_batch_at_seq']} at seq {args.seq}"
                        if r.get("max_batch_at_seq") is not None else "")
                     + (f" (after {fmt_bytes(r['activation_reserve_bytes'])} of "
                        f"{r['engine']}'s activations)" if r["activation_reserve_bytes"]
                        else "")))
        mc = r["max_context_at_batch"]
        rows.append(("longest context", "unbounded by memory (the cache stops growing)"
                     if mc is None else f"{mc} tokens for batch {args.batch}"))
        if not r["fits"]:
            rows.append(("does not fit", f"batch {args.batch} x {args.seq} tokens needs "
                         f"{fmt_bytes(r['kv_cache_bytes_physical'])} of KV cache; "
                         f"{fmt_bytes(r['kv_capacity_bytes'])} is left beside the weights"))
    elif r["fits_limit"] == "activations":
        rows.append(("does not fit", f"the weights fit, but {r['engine']}'s activation "
                     f"reserve ({fmt_bytes(r['activation_reserve_bytes'])}) leaves no KV "
                     "memory beside them"))
    else:
        rows.append(("does not fit", f"weights exceed {args.gpus} GPU(s); needs at least "
                                     f"{r['min_gpus']} {hw.name}"))
    if r["beyond_max_context"]:
        rows.append(("note", f"seq {args.seq} is beyond the {r['max_context']}-token context: "
                             "a what-if"))
    for k, v in rows:
        print(f"  {k:24} {v}")
    return 0


def model_summary(model, arch) -> str:
    """What was read: `24 layers: 12 window(128) + 12 full; MoE 32 experts, top-4; 64 heads
    / 8 KV heads of 64; context 131,072`. Each mixer family present names its own shape."""
    from simkit.stack import describe

    stack = arch.stack
    kinds = {s.kind for s in stack}
    variants = {s.variant for s in stack if s.variant}
    if len(stack) == model.n_layers:
        parts = [arch.describe()]
    else:  # shared blocks (Zamba2) run inside layers: say both counts
        parts = [f"{model.n_layers} layers = {describe(stack, 'blocks')}"]
    if model.is_moe:
        moe = f"MoE {model.n_experts} experts, top-{model.experts_per_token}"
        if model.n_shared_experts or model.shared_expert_ffn_dim:
            moe += f", {model.n_shared_experts or 1} shared"
        parts.append(moe)
    if kinds & {"full", "window", "chunked", "sparse", "memory"} or "plain" in variants \
            or "lightning" in variants:
        attn = [s for s in stack if s.kind in ("full", "window", "chunked", "sparse")]
        hd = {s.head_dim or model.head_dim for s in attn} or {model.head_dim}
        parts.append(f"{model.n_heads} heads / {model.n_kv_heads} KV heads of "
                     f"{'/'.join(str(h) for h in sorted(hd))}")
    if "mla" in kinds:
        parts.append(f"{model.n_heads} heads, MLA latent {model.kv_lora_rank} + RoPE key "
                     f"{model.qk_rope_head_dim}")
    if "gated_deltanet" in variants:
        parts.append(f"Gated DeltaNet {model.linear_key_heads} key / "
                     f"{model.linear_value_heads} value heads of {model.linear_key_dim}x"
                     f"{model.linear_value_dim}")
    if "ssm" in kinds:
        ssm = f"SSM inner {model.d_inner}, state {model.d_state}"
        if "mamba2" in variants:
            ssm += f", {model.d_inner // (model.ssm_head_dim or 64)} heads, " \
                f"{model.ssm_groups} group{'s' if model.ssm_groups > 1 else ''}"
        parts.append(ssm)
    parts.append(f"context {model.max_context:,}")
    return "; ".join(parts)
