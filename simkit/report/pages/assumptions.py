"""The last page: conventions, the profile's efficiency constants, how the simulation and the
planner decide, every source, and how to reproduce the report."""

from __future__ import annotations

from simkit.report.costlayer import engine_of, hardware_of
from simkit.report.formats import basename


def assumptions_data(s) -> list[tuple[str, list[str]]]:
    """Section 9: conventions, the profile's efficiency constants and every source."""
    from simkit import __version__
    from simkit.catalog import hardware as hwcat
    from simkit.plan.slo import MIN_COMPLETED_FRACTION, MIN_SERVED_FRACTION
    from simkit.sim.stats import MIN_TAIL_SAMPLES, WARMUP_FRACTION
    from simkit.units import fmt_bytes, fmt_seconds

    model = s.model_config()
    hw = hardware_of(s)
    ideal = s.hardware.ideal
    eff = []
    if ideal:
        eff.append("hardware.ideal = true: the pure roofline (efficiencies 1, no step "
                   "overhead, no link latency), the bound LLM-Viewer and llm-analysis report.")
    e = None if ideal else engine_of(s)
    # the fixed costs the step-time formula charges: the engine's where it states them
    step_s = e.step_overhead_on(hw) if e else hw.step_overhead_s
    latency_s = e.allreduce_latency_on(hw) if e else hw.interconnect_latency_s
    own = e is not None and (e.step_overhead_s is not None
                             or e.allreduce_latency_s is not None)
    eff += [
        f"compute_efficiency = {hw.compute_efficiency:g}, memory_efficiency = "
        f"{hw.memory_efficiency:g}, step overhead {fmt_seconds(step_s)}, "
        f"{fmt_seconds(latency_s)} latency per all-reduce"
        + (" (profile values; replaced by the ideal roofline above)" if ideal else "")
        + (f" (the fixed costs are engine {e.name}'s)" if own else "") + ".",
    ]
    if e is not None:
        eff.append(f"Serving engine {e.name} ({e.description}): its constants scale the "
                   f"hardware's rates and add its fixed costs; fitted on {e.source}"
                   + (f" (data of {e.data_date})" if e.data_date else "") + ".")
        factor = dict(e.fp8_gemm_by_hardware).get(hw.name)
        if factor is not None:
            eff.append(f"On {hw.name} its fp8 GEMMs run at {factor:.3g} x its fp8 efficiency "
                       f"elsewhere: {e.fp8_gemm_source}.")
    if hw.calibrated:
        eff.append("These were measured by `simkit calibrate` on the machine the profile "
                   "describes (see the calibration page).")
    else:
        same = (hw.compute_efficiency == hwcat.DEFAULT_COMPUTE_EFFICIENCY
                and hw.memory_efficiency == hwcat.DEFAULT_MEMORY_EFFICIENCY)
        if hw.efficiency_source:  # per-GPU published measurements (catalog entries)
            eff.append(f"Efficiencies of {hw.name} (fractions of the dense datasheet peaks "
                       f"that published kernels reach): {hw.efficiency_source}.")
        elif same:
            eff.append(
                "They are simkit's stated assumptions (simkit/catalog/hardware.py): large "
                "bf16 GEMMs in cuBLAS reach roughly 70-80% of the dense tensor peak "
                "(NVIDIA, Matrix Multiplication Background User's Guide), so 0.7; streaming "
                "kernels reach about 80-90% of HBM peak (Jia et al., arXiv:1804.06826, ~83% "
                "on V100), so 0.8.")
        if (not own and hw.step_overhead_s == hwcat.DEFAULT_STEP_OVERHEAD_S
                and hw.interconnect_latency_s == hwcat.DEFAULT_INTERCONNECT_LATENCY_S):
            eff.append("A flat 1 ms per forward step for scheduling, sampling and kernel "
                       "launches, and 10 us per all-reduce (NCCL small-message latency), are "
                       "assumptions.")
        if hw.efficiency_source or same:
            eff.append("`simkit calibrate` measures them for the machine at hand.")
    sources = [
        f"Model {model.name}: {model.source}.",
        f"Hardware {hw.name}: {hw.source}.",
        f"Dense peaks: {', '.join(f'{k} {v / 1e12:g} TFLOP/s' for k, v in sorted(hw.peak_flops_per_s.items()))}; "
        f"memory {hw.memory_bandwidth_bytes_per_s / 1e9:,.0f} GB/s, "
        f"{fmt_bytes(hw.memory_capacity_bytes)} ({hw.memory_capacity_bytes / 1e9:g} GB).",
        _price_line(s),
    ]
    a = s.workload.arrival
    if a.process == "trace" or s.workload.prompt_tokens.dist in ("empirical", "trace"):
        sources.append("Workload traces: see scenarios/traces/README.md for each file's "
                       "origin and licence (arrival "
                       f"{basename(a.path) if a.path else '-'}).")
    return [
        ("Conventions", [
            "A multiply-add counts as 2 FLOPs. Causal prefill attention counts the causal "
            "half: n(n+1)/2 query-key pairs, the diagonal included. Softmax is not counted.",
            "Decode at context t: the new token attends to t keys (itself included), so t is "
            "the cache length after it is appended.",
            "Rates are SI (1 GB/s = 1e9 B/s, 1 TFLOP/s = 1e12 FLOP/s); memory sizes are "
            "binary (1 GiB = 2^30 B) and always printed with their unit.",
            "A step is timed as two roofline operators (weight matmuls; token mixing with "
            "its cache traffic), each max(FLOPs / compute roof, bytes / bandwidth roof), "
            "plus a fixed step overhead and tensor-parallel all-reduces "
            "(Williams et al. 2009, 'Roofline', CACM 52(4); LLM-Viewer, arXiv:2402.16363).",
            ("KV memory per replica = serving.kv_cache_bytes x GPUs (vLLM's "
             "--kv-cache-memory-bytes, set by the scenario)."
             if s.serving.kv_cache_bytes is not None else
             "KV memory per replica = device memory x GPUs x serving.memory_fraction - weights "
             "(vLLM's gpu_memory_utilization)" + _reserve_line(s, e) + "."),
        ]),
        ("Efficiency constants of the profile", eff),
        ("Simulation and planning", [
            "TTFT = first token - arrival; TPOT = (finish - first token) / (output tokens - "
            "1), over outputs longer than one token; end-to-end = finish - arrival. "
            "Percentiles are numpy's linear interpolation over completed requests.",
            "Goodput counts completed requests that met every SLO, per simulated second "
            "(DistServe, Zhong et al. 2024, arXiv:2401.09670).",
            f"Steady state: the first {WARMUP_FRACTION:.0%} of arrivals (warm-up: empty "
            "replicas flatter the latencies) are left out of the p99s, and throughput and "
            "cost per million tokens count the window from the first counted arrival to the "
            "last arrival (the drain after it is left out). Each p99 carries a 95% "
            "confidence interval by sectioning: the counted requests in arrival order cut "
            "into up to 10 sections, the interval from the spread of the sections' p99s "
            "around the overall one with Student's t (Asmussen & Glynn 2007, 'Stochastic "
            "Simulation', III.5; Nakayama 2014, ACM TOMACS 24(4)). A p99 resting on fewer "
            f"than {MIN_TAIL_SAMPLES} requests beyond it carries a warning.",
            "Common random numbers: every workload component (arrivals, prompt lengths, "
            "output lengths) draws from its own stream of the scenario's seed, and every "
            "sweep point, probe and searched configuration uses that seed, so they all see "
            "the same requests (a faster stream is the same pattern compressed in time); "
            "differences between them come from their settings.",
            "Meeting the SLOs: every p99 estimate within its target, at least "
            f"{MIN_COMPLETED_FRACTION:.0%} of requests completed, and completions at least "
            f"{MIN_SERVED_FRACTION:.0%} of arrivals over the steady window (the replicas "
            "keep up). The decision uses the point estimate; where a 95% interval "
            "straddles its target the result is flagged marginal.",
            "Capacity: the highest arrival rate one replica sustains with the SLOs met, "
            "bracketed from the cost-model estimate and bisected geometrically to "
            "plan.qps_rel_tol; a passing probe too short for its request lifetimes is rerun "
            "longer. Replicas for a target: the fewest that meet the SLOs there, bisected by "
            "simulating all of them behind the router (the planned count meets them, one "
            "fewer does not), starting from a lower bound of the cost model.",
        ]),
        *_serving_sections(s),
        ("Sources of published numbers", sources),
        ("Reproduce", [
            f"simkit {__version__}, seed {s.seed}. This report holds no timestamps: the same "
            "scenario and simkit version give the same bytes.",
            f"Command: simkit report <{s.name}.toml> -o <file.pdf>",
        ]),
    ]


def _price_line(s) -> str:
    from simkit.plan.prices import gpu_price

    p = gpu_price(s)
    if p is None:
        return ("Cost per GPU-hour: none known for this GPU (the catalog has no price and "
                "the scenario sets no hardware.cost_per_gpu_hour), so no cost is shown.")
    return f"Cost per GPU-hour: {p.per_gpu_hour:g} USD, from {p.source}."


def _serving_sections(s) -> list[tuple[str, list[str]]]:
    """What disaggregated serving and speculative decoding assume, when the scenario uses
    them."""
    out = []
    d = getattr(s.serving, "disaggregation", None)
    if d is not None:
        out.append(("Disaggregated prefill and decode", [
            "A request is prefilled on the prefill pool (TTFT ends there) and decoded on the "
            "decode pool; its prompt's KV, every layer group exact at the prompt's length on "
            "the prefill side's layout, moves between them over min(prefill GPUs, decode "
            "GPUs) links in parallel, one transfer at a time per replica's links. The "
            "decode replica allocates the blocks when it has room (after growing its running "
            "decodes and serving its own queue), and the prefill replica holds the KV until "
            "it has moved: DistServe's pull (Zhong et al. 2024, arXiv:2401.09670) and vLLM's "
            "NixlConnector (docs/features/nixl_connector_usage.md: the prefiller's blocks "
            "wait for the decoder to read them).",
            "transfer = after_prefill: bytes / bandwidth + latency once the decode replica "
            "holds the blocks. transfer = layerwise (Splitwise, Patel et al., ISCA 2024, "
            "arXiv:2311.18677; Mooncake, arXiv:2407.00079): layer i's KV leaves once layer i "
            "of the prefill's last iteration is computed, the layers taken as equal in time "
            "and bytes.",
            "link = nvlink: the GPUs' own peer link (the hardware profile's interconnect, per "
            "GPU and direction); link = network: serving.disaggregation.link_bytes_per_s per "
            "GPU. Decode replicas do not look up prefixes: they receive whole caches.",
            "Planning: a replica is one group of prefill_replicas + decode_replicas "
            "replicas; the planner finds the fewest groups, and [plan.search] over the two "
            "counts compares ratios.",
        ]))
    sp = getattr(s.serving, "speculative", None)
    if sp is not None:
        out.append(("Speculative decoding", [
            "A decode iteration runs the draft k times (its own cost model on the same GPUs, "
            "without the per-step and per-sequence fixed costs: the passes run inside the "
            "iteration, as vLLM v1's proposer does) and verifies k + 1 tokens per sequence "
            "on the target as a prompt chunk of THE step-time formula (with all k + 1 "
            "positions' logits). Each sequence emits its accepted drafts + 1, never past its "
            "answer (Leviathan, Kalman & Matias 2023, arXiv:2211.17192).",
            "Accepted lengths: each draft accepted independently with probability alpha "
            "(E[tokens] = (1 - alpha^(k+1)) / (1 - alpha), eq. 1), or the given "
            "acceptance_lengths distribution; each request draws from its own random stream "
            "of the seed. Both caches and both models' weights share the memory; every "
            "sequence has room for its k drafted tokens before an iteration (vLLM's "
            "lookahead slots).",
        ]))
    return out


def _reserve_line(s, e) -> str:
    """What the KV memory also leaves out: the engine's activation reserve, if it takes one
    (`simkit.costs.activations`)."""
    if e is None or not e.reserves_activations:
        return ""
    from simkit.costs.activations import profile_pass
    from simkit.report.costlayer import step_model
    from simkit.units import fmt_bytes

    sm = step_model(s)
    tokens, sequences = profile_pass(s.serving, sm.max_context)
    return (f" - the {e.name} engine's activation reserve, "
            f"{fmt_bytes(sm.activation_reserve_bytes(tokens, sequences))}: the tensors of its "
            f"profiling pass of {tokens:,} tokens and {sequences:,} sampled sequences at "
            "the widest layer, or their logits (simkit/costs/activations.py)")
