"""The scenario's sections ([model], [hardware], [workload], [serving], [slo], [plan],
[report]) as frozen dataclasses, each key with its default, its checker and what it means;
and `SweepGrid`, the [sweep] and [plan.search] grids."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterator, Mapping

from simkit.scenario.checks import (_BAD, ADMISSIONS, ARRIVAL_PROCESSES, KV_MEMORY, LENGTH_DISTS,
                                    LINKS, PREEMPTION, ROUTERS, SCHEDULERS, TIME_DISTS,
                                    TRANSFERS, _bool, _Ctx, _engine_name, _enum, _f, _file,
                                    _float, _hardware_name, _int, _is_num, _layer_pattern,
                                    _model_name, _str, _tuple_of)
from simkit.stack import KINDS as ATTENTION_KINDS  # the one registry of mixer kinds
from simkit.units import KV_DTYPES, WEIGHT_DTYPES

@dataclass(frozen=True)
class ModelSection:
    """[model]: which model, which attention architecture, which dtypes."""

    #: catalog name, or a path to a Hugging Face config.json (relative paths resolve against
    #: the scenario file's folder; the resolved scenario holds the absolute path)
    name: str = _f("llama-3-8b", _model_name)
    #: full|window|sparse|linear|memory|ssm|mla; None -> the model's own default kind
    attention: str | None = _f(None, _enum(ATTENTION_KINDS, optional=True))
    kv_dtype: str = _f("bf16", _enum(KV_DTYPES))
    #: None -> the checkpoint's own: bf16, or what its config.json quantizes the weights to
    #: (DeepSeek-V3 fp8, gpt-oss's routed experts mxfp4; `simkit.catalog.hf_quant`)
    weight_dtype: str | None = _f(None, _enum(WEIGHT_DTYPES, optional=True))
    #: window / sparse kinds: tokens each query attends back over (None -> the model's own
    #: window, else the cost layer's default, `simkit.costs.arch.DEFAULT_WINDOW`)
    window: int | None = _f(None, _int(optional=True))
    #: sparse kind: tokens that attend to / are attended by every position (0 allowed: a
    #: plain window; None -> the cost layer's default)
    global_tokens: int | None = _f(None, _int(lo=0, optional=True))
    #: memory kind: fixed number of memory slots (None -> the cost layer's default)
    memory_slots: int | None = _f(None, _int(optional=True))
    #: memory kind: segment length processed between memory updates (None -> cost layer's)
    segment_tokens: int | None = _f(None, _int(optional=True))
    #: chunked kind: tokens per attention chunk (None -> the model's own, else 8192)
    chunk: int | None = _f(None, _int(optional=True))
    #: hybrid: 1 = every layer attention; k = one layer in k attention, the rest SSM (Jamba 8)
    attention_every: int = _f(1, _int())
    #: cross-layer KV sharing: every k consecutive layers share one cache
    kv_share: int = _f(1, _int())
    #: cross-layer weight sharing: every k consecutive layers share one set of weights
    weight_share: int = _f(1, _int())
    #: a layer stack by hand: tables of `kind` (+ its settings, `ffn`, `count`), repeated to
    #: the layer count, e.g. [{ kind = "window", window = 1024, count = 5 }, { kind = "full" }]
    #: (None -> the model's own layers)
    layer_pattern: tuple | None = _f(None, _layer_pattern)
    #: the deployed context (e.g. RoPE-scaled); longer lengths are what-ifs, with a warning
    #: (None -> the model's trained context)
    max_context: int | None = _f(None, _int(optional=True))


@dataclass(frozen=True)
class HardwareSection:
    """[hardware]: the accelerator, how many per replica (tensor parallel), what it costs."""

    #: catalog name or a profile .toml path (from `simkit calibrate`)
    name: str = _f("h100-sxm", _hardware_name)
    gpus_per_replica: int = _f(1, _int())
    #: USD per GPU-hour; None -> the catalog's dated list price for this GPU
    #: (`simkit.plan.prices`); a plan that needs a cost and finds no price says so
    cost_per_gpu_hour: float | None = _f(None, _float(gt=0, optional=True))
    #: the pure roofline (efficiencies 1, no fixed overheads)
    ideal: bool = _f(False, _bool)
    #: serving-engine profile: a name from `simkit engines` or an ENGINE.toml path (from
    #: `simkit calibrate --measurements`); relative paths resolve against the scenario's folder.
    #: Default: simkit.costs.engine.DEFAULT_ENGINE (written out: this module imports nothing heavy)
    engine: str = _f("vllm", _engine_name)


@dataclass(frozen=True)
class ArrivalSpec:
    """workload.arrival: when requests arrive."""

    #: poisson, gamma, fixed (evenly spaced) at `rate`; trace; burst: every request at
    #: t = 0 (a benchmark client's request rate of inf; with workload.max_concurrency, a
    #: closed loop of that many clients)
    process: str = _f("poisson", _enum(ARRIVAL_PROCESSES))
    #: requests/s (not used by burst). For process = "trace": optional rescale to this mean
    #: rate; when the key is absent from a trace arrival the loader uses None (= the recorded
    #: timing)
    rate: float | None = _f(1.0, _float(gt=0, optional=True))
    #: gamma: coefficient of variation of the inter-arrival times (1 = Poisson)
    cv: float = _f(1.0, _float(gt=0))
    #: trace: CSV with arrived_at (and num_prefill_tokens, num_decode_tokens) columns
    path: str | None = _f(None, _file)


@dataclass(frozen=True)
class LengthSpec:
    """workload.prompt_tokens / workload.output_tokens: a token-length distribution.

    fixed: value; uniform: low..high (inclusive); lognormal: median, sigma; empirical: draw
    from `column` of the CSV at `path`; trace: the lengths recorded in the arrival trace.
    Every draw is clipped to [min, max]. `paired` (output_tokens only, empirical from the
    prompt's file): each answer comes from its prompt's row, keeping the file's joint
    distribution of the two (by default each column is drawn on its own).
    """

    dist: str = _f("fixed", _enum(LENGTH_DISTS))
    value: int | None = _f(None, _int(optional=True))
    low: int | None = _f(None, _int(optional=True))
    high: int | None = _f(None, _int(optional=True))
    median: float | None = _f(None, _float(optional=True))
    sigma: float | None = _f(None, _float(optional=True))
    min: int = _f(1, _int())
    max: int | None = _f(None, _int(optional=True))
    path: str | None = _f(None, _file)
    #: empirical: CSV column (None -> num_prefill_tokens / num_decode_tokens, as the
    #: simulator's trace reader names them)
    column: str | None = _f(None, _str(optional=True))
    #: empirical output_tokens: take each answer from the row its prompt was drawn from
    paired: bool = _f(False, _bool)


@dataclass(frozen=True)
class TimeSpec:
    """A duration distribution in seconds (workload.sessions.think_time_s).

    fixed: value; exponential: mean; lognormal: median, sigma. Every draw is clipped to
    [min, max].
    """

    dist: str = _f("fixed", _enum(TIME_DISTS))
    value: float | None = _f(None, _float(ge=0, optional=True))
    mean: float | None = _f(None, _float(gt=0, optional=True))
    median: float | None = _f(None, _float(gt=0, optional=True))
    sigma: float | None = _f(None, _float(ge=0, optional=True))
    min: float = _f(0.0, _float(ge=0))
    max: float | None = _f(None, _float(ge=0, optional=True))


@dataclass(frozen=True)
class SessionsSpec:
    """workload.sessions: multi-turn conversations (see `simkit.sim.sessions`).

    The arrival process then draws new sessions; a session has `turns` turns; turn k's prompt
    is the system prompt + the history (earlier prompts and answers) + new user tokens drawn
    from workload.prompt_tokens; turn k+1 arrives `think_time_s` after turn k's answer ends.
    """

    turns: LengthSpec = _f(factory=partial(LengthSpec, dist="fixed", value=1),
                              section=LengthSpec)
    think_time_s: TimeSpec = _f(factory=partial(TimeSpec, dist="fixed", value=0.0),
                                section=TimeSpec)


@dataclass(frozen=True)
class TenantSpec:
    """One entry of workload.tenants: a share of the traffic with its own system prompt."""

    weight: float = _f(1.0, _float(gt=0))
    system_prompt_tokens: int = _f(0, _int(lo=0))


def _tenants(v: Any, path: str, ctx: _Ctx) -> Any:
    """workload.tenants: a non-empty list of { weight, system_prompt_tokens } tables."""
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not v:
        return ctx.err(path, f"must be a non-empty list of tables, got {v!r}")
    from simkit.scenario.load import _build  # (the loader builds every section)

    out = [_build(TenantSpec, x, f"{path}[{i}]", ctx) for i, x in enumerate(v)]
    return _BAD if any(x is None for x in out) else tuple(out)


@dataclass(frozen=True)
class WorkloadSection:
    """[workload]: how many requests, when they arrive, how long they are."""

    requests: int = _f(1000, _int())
    arrival: ArrivalSpec = _f(factory=ArrivalSpec, section=ArrivalSpec)
    #: default: every prompt 1000 tokens
    prompt_tokens: LengthSpec = _f(factory=partial(LengthSpec, dist="fixed", value=1000),
                                    section=LengthSpec)
    #: default: every answer 256 tokens
    output_tokens: LengthSpec = _f(factory=partial(LengthSpec, dist="fixed", value=256),
                                    section=LengthSpec)
    #: multi-turn sessions (None: every request is independent); requests counts turns
    sessions: SessionsSpec | None = _f(None, section=SessionsSpec)
    #: a system prompt of this many tokens opens every request (one tenant); with sessions
    #: it opens every session. Replaying a trace, the first this many tokens of each recorded
    #: prompt are the system prompt
    system_prompt_tokens: int = _f(0, _int(lo=0))
    #: several tenants, each with its own system prompt and share of the sessions
    #: (instead of system_prompt_tokens), e.g. [{ weight = 0.7, system_prompt_tokens = 2000 }]
    tenants: tuple | None = _f(None, _tenants)
    #: at most this many requests unanswered at once (a benchmark client's
    #: --max-concurrency, `simkit.sim.concurrency`): a request is sent at its arrival time,
    #: or when that many are still unanswered, as soon as one is answered; its TTFT and
    #: latency count from when it is sent. None: no cap
    max_concurrency: int | None = _f(None, _int(optional=True))
    #: every request's token limit (the API's max_tokens / max_new_tokens): longer answers
    #: stop there. None: each request's own output length (benchmark clients send the
    #: sampled length). SGLang's admission (serving.admission = new_token_ratio) reserves
    #: room by it
    max_new_tokens: int | None = _f(None, _int(optional=True))


def _hardware_or_none(v: Any, path: str, ctx: _Ctx) -> Any:
    return None if v is None else _hardware_name(v, path, ctx)


@dataclass(frozen=True)
class DisaggregationSpec:
    """[serving.disaggregation]: prefill and decode pools, the prompt's KV moved between them
    (`simkit.sim.disagg`). Each pool defaults to [hardware]'s GPU and gpus_per_replica;
    `serving.replicas` copies the whole group (replicas x (prefill + decode) instances)."""

    prefill_replicas: int = _f(1, _int())
    decode_replicas: int = _f(1, _int())
    #: heterogeneous pools (Splitwise): another GPU or TP degree for one pool
    prefill_hardware: str | None = _f(None, _hardware_or_none)
    decode_hardware: str | None = _f(None, _hardware_or_none)
    prefill_gpus_per_replica: int | None = _f(None, _int(optional=True))
    decode_gpus_per_replica: int | None = _f(None, _int(optional=True))
    #: "nvlink": both pools in one node, over the GPUs' own peer link (the hardware
    #: profile's interconnect); "network": between nodes, link_bytes_per_s per GPU
    link: str = _f("nvlink", _enum(LINKS))
    #: network bandwidth per GPU and direction, bytes/s (each GPU its own NIC)
    link_bytes_per_s: float | None = _f(None, _float(optional=True))
    #: one-way latency of a transfer, s (None: the hardware's interconnect latency for
    #: nvlink; required for a network)
    link_latency_s: float | None = _f(None, _float(ge=0, optional=True))
    #: "after_prefill": the decode replica pulls the whole prompt's KV once it has room
    #: (vLLM's NixlConnector, DistServe); "layerwise": layer by layer during the prefill's
    #: last iteration (Splitwise, Mooncake)
    transfer: str = _f("after_prefill", _enum(TRANSFERS))


def _acceptance(v: Any, path: str, ctx: _Ctx) -> Any:
    if v is None:
        return None
    if not _is_num(v) or not 0 <= v < 1:
        return ctx.err(path, f"must be a number in [0, 1) (the chance each drafted token is "
                       f"accepted), got {v!r}")
    return float(v)


def _probabilities(v: Any, path: str, ctx: _Ctx) -> Any:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) < 2 or \
            not all(_is_num(x) and x >= 0 for x in v):
        return ctx.err(path, f"must be a list of probabilities [p0, ..., pk] (k >= 1), got "
                       f"{v!r}")
    if abs(sum(v) - 1.0) > 1e-6:
        return ctx.err(path, f"probabilities must sum to 1, got {sum(v):.6g}")
    return tuple(float(x) for x in v)


@dataclass(frozen=True)
class SpeculativeSpec:
    """[serving.speculative]: a draft model proposes `tokens` tokens per decode iteration, the
    target verifies them in one step (`simkit.sim.speculative`). Give `acceptance` (the
    chance each drafted token is accepted, independently) or `acceptance_lengths` (the
    probabilities of accepting 0, 1, ..., k drafted tokens)."""

    #: catalog name or a Hugging Face config.json path; its vocabulary must be the target's
    draft: str = _f("", _model_name)
    tokens: int = _f(4, _int())
    acceptance: float | None = _f(None, _acceptance)
    acceptance_lengths: tuple | None = _f(None, _probabilities)


@dataclass(frozen=True)
class ServingSection:
    """[serving]: batching, KV-cache memory management, replicas and routing."""

    scheduler: str = _f("continuous", _enum(SCHEDULERS))
    max_batch: int = _f(256, _int())
    kv_memory: str = _f("paged", _enum(KV_MEMORY))
    block_size: int = _f(16, _int())
    #: KV capacity = device memory x gpus x fraction - weights (vLLM's gpu_memory_utilization)
    memory_fraction: float = _f(0.9, _float(gt=0, le=1))
    #: KV cache bytes per GPU, replacing memory_fraction's share (vLLM's
    #: --kv-cache-memory-bytes, which "ignores gpu_memory_utilization"); None -> device memory
    #: x memory_fraction - weights - the engine's activation reserve
    kv_cache_bytes: int | None = _f(None, _int(optional=True))
    #: longest sequence admitted; contiguous memory reserves this much per request
    #: (None -> the model's max context)
    max_seq_len: int | None = _f(None, _int(optional=True))
    replicas: int = _f(1, _int())
    router: str = _f("least_loaded", _enum(ROUTERS))
    preemption: str = _f("recompute", _enum(PREEMPTION))
    #: what a request needs free to join a running batch: its prompt's blocks (greedy:
    #: vLLM, TensorRT-LLM's MAX_UTILIZATION), or room for its whole answer beside what the
    #: running sequences will still grow by (no_evict: TensorRT-LLM's GUARANTEED_NO_EVICT,
    #: trtllm-bench's default), or room for its answer estimated from the answers' token
    #: limits (new_token_ratio: SGLang's scheduler): `simkit.sim.scheduler`
    admission: str = _f("greedy", _enum(ADMISSIONS))
    #: admission = new_token_ratio: SGLang's --schedule-conservativeness, which scales the
    #: share of each running answer's remaining token limit the admission reserves
    schedule_conservativeness: float = _f(1.0, _float(ge=0))
    #: share of the KV memory an admission must leave free while others run (vLLM's
    #: watermark: V0's block manager kept 0.01; V1 keeps none unless its scheduler's
    #: `watermark` is set, vllm-project/vllm#44594); None -> the scheduler's own
    #: (`simkit.sim.scheduler`)
    watermark: float | None = _f(None, _float(ge=0, lt=1, optional=True))
    #: chunked scheduler: prompt tokens prefilled per step
    chunk_tokens: int = _f(512, _int())
    #: cap on tokens (prefill + decode) per step; None -> no cap
    max_batch_tokens: int | None = _f(None, _int(optional=True))
    #: decode iterations per scheduler call (vLLM 0.6's --num-scheduler-steps, multi-step
    #: scheduling: `simkit.sim.scheduler`); 1 -> the scheduler runs at every iteration
    scheduler_steps: int = _f(1, _int())
    #: with scheduler_steps > 1: each step's tokens reach the client when the step ends
    #: (vLLM's --multi-step-stream-outputs, on by default since v0.6.3, PR #9047), or the
    #: whole round's at its end (false: vLLM 0.6.0-0.6.2)
    multi_step_stream_outputs: bool = _f(True, _bool)
    #: evict each sequence's cache down to sinks + recent window of this many tokens
    kv_budget_tokens: int | None = _f(None, _int(optional=True))
    #: attention sinks kept by the eviction above (StreamingLLM: the first 4 tokens)
    sink_tokens: int = _f(4, _int(lo=0))
    #: automatic prefix caching (vLLM v1's default: on; see `simkit.sim.prefix`)
    prefix_caching: bool = _f(True, _bool)
    #: prefill and decode on separate pools (None: every replica does both)
    disaggregation: DisaggregationSpec | None = _f(None, section=DisaggregationSpec)
    #: speculative decoding with a draft model (None: one token per decode step)
    speculative: SpeculativeSpec | None = _f(None, section=SpeculativeSpec)


@dataclass(frozen=True)
class SLOSection:
    """[slo]: latency targets at the 99th percentile; None = no target."""

    ttft_p99_s: float | None = _f(None, _float(gt=0, optional=True))
    tpot_p99_s: float | None = _f(None, _float(gt=0, optional=True))
    e2e_p99_s: float | None = _f(None, _float(gt=0, optional=True))

    def targets(self) -> dict[str, float]:
        """The SLOs that are set: metric name (ttft_s, tpot_s, e2e_s) -> p99 bound in s."""
        out = {"ttft_s": self.ttft_p99_s, "tpot_s": self.tpot_p99_s, "e2e_s": self.e2e_p99_s}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class PlanSection:
    """[plan]: what a capacity plan must meet and how hard it searches."""

    #: requests/s the service must carry; None -> report max_qps for one replica only
    target_qps: float | None = _f(None, _float(gt=0, optional=True))
    #: bisection stops when the bracket is within this fraction of the rate
    qps_rel_tol: float = _f(0.05, _float(gt=0, le=0.5))
    #: requests simulated per probe; None -> the workload's request count, at least 1,112
    #: (a p99 on 10 requests); fewer than 112 cannot measure a p99 and are refused
    requests: int | None = _f(None, _int(optional=True))
    #: attention kinds to compare for the same workload (fewest GPUs wins)
    compare: tuple[str, ...] = _f((), _tuple_of(_enum(ATTENTION_KINDS)))
    max_replicas: int = _f(1024, _int())
    #: [plan.search]: dotted scenario key -> values; every combination is planned for
    #: target_qps and the cheapest feasible one wins (`simkit.plan.search`). Validated like
    #: [sweep], by building every combination (the loader fills it in: no checker here)
    search: "SweepGrid" = _f(factory=lambda: SweepGrid())
    #: skip (not simulate) a configuration whose cost-model lower bound on cost is above
    #: the cheapest feasible one found; false: simulate every feasible one
    prune: bool = _f(True, _bool)


@dataclass(frozen=True)
class ReportSection:
    """[report]: what the PDF report compares."""

    #: [sweep] keys whose values the report draws side by side (each must be a sweep key)
    compare: tuple[str, ...] = _f((), _tuple_of(_str()))
    #: context lengths (tokens) at which the report tabulates costs; () -> report's default
    context_lengths: tuple[int, ...] = _f((), _tuple_of(_int()))
    #: run the associative-recall retention experiment (`simkit fidelity`) and draw it
    fidelity: bool = _f(False, _bool)
    #: lengths (tokens) for the retention experiment; () -> 512, 2048, 8192, 32768
    fidelity_lengths: tuple[int, ...] = _f((), _tuple_of(_int(lo=32)))


class SweepGrid(Mapping):
    """An immutable, hashable, picklable ordered mapping: dotted key -> tuple of values."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None):
        self._items = tuple((k, tuple(v)) for k, v in dict(items or {}).items())

    def __getitem__(self, key: str) -> tuple:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, SweepGrid):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"SweepGrid({dict(self._items)!r})"

    def __getstate__(self) -> tuple:
        return self._items

    def __setstate__(self, state: tuple) -> None:
        self._items = state

    def points(self) -> list[dict[str, Any]]:
        """The grid: the product of the value lists, in file order (last key varies fastest)."""
        keys = list(self)
        if not keys:
            return []
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self[k] for k in keys))]

