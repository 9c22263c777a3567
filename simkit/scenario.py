"""What-if scenarios: frozen dataclasses for the TOML scenario format and its strict loader.

A scenario says which model runs on which hardware, under which stream of requests, with
which serving policy and latency targets (SLOs), and optionally which grid of variations to
sweep (`[sweep]`) and what a capacity plan must meet (`[plan]`). The dataclasses below
document every key.

- Defaults live in ONE place: the dataclass field defaults below. `Scenario.to_dict()` is the
  resolved scenario (every default filled in, every relative path made absolute); it is written
  beside every output so a result can be reproduced, and `to_toml()` loads back to an equal
  `Scenario`.
- The loader is strict and reports every problem at once, each with its key path
  (``serving.block_size: must be a positive integer, got 0``), as one `SimkitError`.
  User text is never evaluated: TOML is parsed by `tomllib` and each value's type is checked.
- A kind-specific key set for a kind that does not use it (``window`` on full attention) is
  not an error, because sweeps vary the kind; the cost layer's `ArchSpec.resolve` decides
  what applies (and fills the kind's defaults), and sweep/plan records show it.
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from simkit.errors import SimkitError
from simkit.stack import KINDS as ATTENTION_KINDS  # the one registry of mixer kinds
from simkit.units import KV_DTYPES, WEIGHT_DTYPES

ARRIVAL_PROCESSES = ("poisson", "gamma", "fixed", "trace", "burst")
LENGTH_DISTS = ("fixed", "uniform", "lognormal", "empirical", "trace")
SCHEDULERS = ("static", "continuous", "chunked", "prefill_first")
KV_MEMORY = ("paged", "contiguous")
ROUTERS = ("round_robin", "least_loaded", "session_affinity")
TIME_DISTS = ("fixed", "exponential", "lognormal")
PREEMPTION = ("recompute", "swap")
ADMISSIONS = ("greedy", "no_evict", "new_token_ratio")
LINKS = ("nvlink", "network")
TRANSFERS = ("after_prefill", "layerwise")

# --------------------------------------------------------------------------- value checkers
# A checker takes (value, key_path, ctx) and returns the converted value, or appends an error
# to ctx.errors and returns _BAD. The checker of each field is in its dataclass metadata, next
# to its default, so the default and the rule are read in one place.

class _Bad:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<invalid>"


_BAD = _Bad()


class _Ctx:
    """Loader state: the folder relative paths resolve against, and the errors so far."""

    def __init__(self, base_dir: str | Path):
        self.base_dir = Path(base_dir)
        self.errors: list[str] = []

    def err(self, path: str, msg: str) -> _Bad:
        self.errors.append(f"{path}: {msg}")
        return _BAD


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(lo: int = 1, optional: bool = False) -> Callable:
    what = "a positive integer" if lo == 1 else f"an integer >= {lo}"

    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if not _is_int(v) or v < lo:
            return ctx.err(path, f"must be {what}, got {v!r}")
        return int(v)
    return check


def _float(gt: float | None = None, ge: float | None = None, le: float | None = None,
           optional: bool = False, lt: float | None = None) -> Callable:
    parts = [f"> {gt:g}" if gt is not None else "", f">= {ge:g}" if ge is not None else "",
             f"<= {le:g}" if le is not None else "", f"< {lt:g}" if lt is not None else ""]
    what = "a number " + " and ".join(p for p in parts if p) if any(parts) else "a number"

    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if (not _is_num(v) or (gt is not None and not v > gt) or (ge is not None and not v >= ge)
                or (le is not None and not v <= le) or (lt is not None and not v < lt)):
            return ctx.err(path, f"must be {what}, got {v!r}")
        return float(v)
    return check


def _enum(choices: tuple[str, ...], optional: bool = False) -> Callable:
    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if not isinstance(v, str) or v not in choices:
            return ctx.err(path, f"must be one of {', '.join(choices)}; got {v!r}")
        return v
    return check


def _str(optional: bool = False) -> Callable:
    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if not isinstance(v, str):
            return ctx.err(path, f"must be a string, got {v!r}")
        return v
    return check


def _bool(v: Any, path: str, ctx: _Ctx) -> Any:
    if not isinstance(v, bool):
        return ctx.err(path, f"must be true or false, got {v!r}")
    return v


def _file(v: Any, path: str, ctx: _Ctx) -> Any:
    """An optional existing file; relative paths resolve against the scenario's folder."""
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be a file path (string), got {v!r}")
    p = _resolve(v, ctx.base_dir)
    if not p.is_file():
        return ctx.err(path, f"no such file {v!r} (looked for {p})")
    return str(p)


def _tuple_of(item: Callable) -> Callable:
    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if not isinstance(v, (list, tuple)):
            return ctx.err(path, f"must be a list, got {v!r}")
        out = [item(x, f"{path}[{i}]", ctx) for i, x in enumerate(v)]
        return _BAD if any(x is _BAD for x in out) else tuple(out)
    return check


def _layer_pattern(v: Any, path: str, ctx: _Ctx) -> Any:
    """model.layer_pattern: tables of known keys, type-checked (never evaluated)."""
    from simkit.stack import parse_pattern

    if v is None:
        return None
    try:
        return parse_pattern(v, path)
    except SimkitError as e:
        for m in e.messages:
            ctx.errors.append(m)
        return _BAD


def _resolve(p: str, base_dir: Path) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else (base_dir / q).resolve()


def _model_name(v: Any, path: str, ctx: _Ctx) -> Any:
    from simkit.catalog.models import CATALOG, load_model

    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be a catalog model name or a config.json path, got {v!r}")
    key = _name_or_path(v, CATALOG, ".json", ctx)
    try:
        load_model(key)
    except SimkitError as e:
        for m in e.messages:
            ctx.err(path, _strip_prefix(m, "model"))
        return _BAD
    return key


def _hardware_name(v: Any, path: str, ctx: _Ctx) -> Any:
    from simkit.catalog.hardware import CATALOG, load_hardware

    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be a hardware name or a profile .toml path, got {v!r}")
    key = _name_or_path(v, CATALOG, ".toml", ctx)
    try:
        load_hardware(key)
    except SimkitError as e:
        for m in e.messages:
            ctx.err(path, _strip_prefix(m, "hardware"))
        return _BAD
    return key


def _engine_name(v: Any, path: str, ctx: _Ctx) -> Any:
    """hardware.engine: a shipped engine profile's name or an ENGINE.toml path."""
    from simkit.costs.engine import check_engine, engines

    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be an engine name or an ENGINE.toml path, got {v!r}")
    key = _name_or_path(v, engines(), ".toml", ctx)
    try:
        check_engine(key, path)
    except SimkitError as e:
        for m in e.messages:
            ctx.errors.append(m)
        return _BAD
    return key


def _name_or_path(v: str, catalog: Mapping, suffix: str, ctx: _Ctx) -> str:
    """A catalog name as is; anything that looks like a file becomes an absolute path."""
    if v in catalog:
        return v
    p = _resolve(v, ctx.base_dir)
    if p.exists() or v.endswith(suffix) or "/" in v or "\\" in v:
        return str(p)
    return v  # an unknown name: the catalog's error lists the known ones


def _strip_prefix(msg: str, word: str) -> str:
    return msg[len(word) + 2:] if msg.startswith(word + ": ") else msg


def _f(default: Any = None, check: Callable | None = None, *, factory: Any = None,
       section: type | None = None) -> Any:
    """A dataclass field with its default and its checker (or nested section type)."""
    md = {"check": check, "section": section}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


# --------------------------------------------------------------------------- sections

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


def _default_turns() -> LengthSpec:
    return LengthSpec(dist="fixed", value=1)


def _default_think() -> TimeSpec:
    return TimeSpec(dist="fixed", value=0.0)


@dataclass(frozen=True)
class SessionsSpec:
    """workload.sessions: multi-turn conversations (see `simkit.sim.sessions`).

    The arrival process then draws new sessions; a session has `turns` turns; turn k's prompt
    is the system prompt + the history (earlier prompts and answers) + new user tokens drawn
    from workload.prompt_tokens; turn k+1 arrives `think_time_s` after turn k's answer ends.
    """

    turns: LengthSpec = _f(factory=_default_turns, section=LengthSpec)
    think_time_s: TimeSpec = _f(factory=_default_think, section=TimeSpec)


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
    out = [_build(TenantSpec, x, f"{path}[{i}]", ctx) for i, x in enumerate(v)]
    return _BAD if any(x is None for x in out) else tuple(out)


def _default_prompt() -> LengthSpec:
    return LengthSpec(dist="fixed", value=1000)


def _default_output() -> LengthSpec:
    return LengthSpec(dist="fixed", value=256)


@dataclass(frozen=True)
class WorkloadSection:
    """[workload]: how many requests, when they arrive, how long they are."""

    requests: int = _f(1000, _int())
    arrival: ArrivalSpec = _f(factory=ArrivalSpec, section=ArrivalSpec)
    #: default: every prompt 1000 tokens
    prompt_tokens: LengthSpec = _f(factory=_default_prompt, section=LengthSpec)
    #: default: every answer 256 tokens
    output_tokens: LengthSpec = _f(factory=_default_output, section=LengthSpec)
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


@dataclass(frozen=True)
class Scenario:
    """One what-if: model, hardware, workload, serving policy, SLOs, optional plan and sweep."""

    name: str = _f("scenario", _str())
    question: str = _f("", _str())
    #: every random draw derives from this seed (same seed -> bit-identical numbers)
    seed: int = _f(0, _int(lo=0))
    model: ModelSection = _f(factory=ModelSection, section=ModelSection)
    hardware: HardwareSection = _f(factory=HardwareSection, section=HardwareSection)
    workload: WorkloadSection = _f(factory=WorkloadSection, section=WorkloadSection)
    serving: ServingSection = _f(factory=ServingSection, section=ServingSection)
    slo: SLOSection = _f(factory=SLOSection, section=SLOSection)
    plan: PlanSection | None = _f(None, section=PlanSection)
    report: ReportSection = _f(factory=ReportSection, section=ReportSection)
    #: dotted key -> values; the sweep grid is their product
    sweep: SweepGrid = _f(factory=SweepGrid)
    #: folder relative paths were resolved against (not part of equality or the TOML)
    base_dir: str = field(default=".", compare=False)

    # -- what-ifs -------------------------------------------------------------------------
    def with_(self, **dotted: Any) -> "Scenario":
        """A validated copy with dotted keys changed: ``with_(**{"workload.arrival.rate": 8})``.

        A value of None restores an optional key's None (e.g. ``model.attention``). Raises
        `SimkitError` (naming the key path) for an unknown key or an invalid value, and for
        a scenario without grids, for settings that cannot run on its model and hardware
        (weights that do not fit, a TP degree that does not divide the heads, no room for
        one KV block...: `simkit.sim.setup.runtime_check`, what `simulate` checks). With a
        `[sweep]`, the loader checks every point so; with a `[plan.search]`, a configuration
        that cannot run is a row of the search's answer, not an error.
        """
        return self._with(dotted, runnable=True)

    def _with(self, dotted: Mapping[str, Any], *, runnable: bool) -> "Scenario":
        d = self.to_dict()
        for key, value in dotted.items():
            _set_dotted(d, key, value)
        s = scenario_from_dict(d, base_dir=self.base_dir)
        if runnable and not len(s.sweep) and (s.plan is None or not len(s.plan.search)):
            from simkit.sim.setup import runtime_check  # the simulator's own set-up checks

            runtime_check(s)
        return s

    def points(self) -> list[dict[str, Any]]:
        """The [sweep] grid points (dotted key -> value), in order."""
        return self.sweep.points()

    def at_point(self, params: Mapping[str, Any]) -> "Scenario":
        """This scenario with one sweep point's values applied and no [sweep] of its own."""
        bare = replace(self, sweep=SweepGrid(), report=replace(self.report, compare=()))
        return bare.with_(**dict(params))

    # -- what applies -----------------------------------------------------------------------
    def model_config(self):
        """The `ModelConfig` of [model].name."""
        from simkit.catalog.models import load_model

        return load_model(self.model.name)

    def hardware_profile(self):
        """The `HardwareProfile` of [hardware].name (the ideal roofline when ideal = true)."""
        from simkit.catalog.hardware import load_hardware

        hw = load_hardware(self.hardware.name)
        return hw.ideal() if self.hardware.ideal else hw

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario: plain JSON-able types, every default filled in."""
        out = _section_dict(self)
        out.pop("base_dir", None)
        if self.plan is None:
            out.pop("plan")
        else:
            out["plan"]["search"] = _grid_dict(self.plan.search)
        out["sweep"] = _grid_dict(self.sweep)
        return out

    def to_toml(self) -> str:
        """TOML text that `load_scenario` / `scenario_from_dict` read back to an equal Scenario."""
        d = self.to_dict()
        lines = ["# resolved scenario written by simkit (every default filled in)"]
        tables = []
        for k, v in d.items():
            if isinstance(v, dict):
                tables.append((k, v))
            elif v is not None:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in tables:
            _toml_table(k, v, lines)
        return "\n".join(lines) + "\n"


def _grid_dict(grid: "SweepGrid") -> dict[str, list]:
    return {k: [_plain(v) for v in vals] for k, vals in grid.items()}


def _plain(v: Any) -> Any:
    from simkit.stack import LayerSpec, pattern_to_tables

    if isinstance(v, tuple) and v and isinstance(v[0], LayerSpec):
        return pattern_to_tables(v)  # run-length tables; parse_pattern reads them back
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if is_dataclass(v):  # workload.tenants entries
        return _section_dict(v)
    return v


def _section_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _section_dict(v) if is_dataclass(v) else _plain(v)
    return out


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        elif not isinstance(nxt, dict):
            raise SimkitError(f"{key}: {p!r} is a setting, not a table")
        cur = nxt
    cur[parts[-1]] = list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- TOML writer

def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # shortest repr round-trips exactly; finite by validation
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table (layer_pattern entries)
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()
                                if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_table(name: str, d: Mapping[str, Any], lines: list[str]) -> None:
    lines.append(f"\n[{name}]")
    subs = []
    for k, v in d.items():
        if isinstance(v, dict):
            subs.append((k, v))
        elif v is not None:  # TOML has no null: an absent key loads as its default (None)
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in subs:
        _toml_table(f"{name}.{_toml_key(k)}", v, lines)


# --------------------------------------------------------------------------- loader

def _build(cls: type, data: Any, path: str, ctx: _Ctx) -> Any:
    """Build section `cls` from a table, checking every key; None when anything was wrong."""
    if not isinstance(data, Mapping):
        ctx.err(path, f"must be a table, got {data!r}")
        return None
    names = {f.name for f in fields(cls) if f.name != "base_dir"}
    for k in data:
        if k not in names:
            ctx.err(f"{path}.{k}" if path else str(k),
                    f"unknown key; known keys: {', '.join(sorted(names))}")
    kw: dict[str, Any] = {}
    ok = True
    for f in fields(cls):
        if f.name not in data or f.name == "base_dir":
            continue
        key = f"{path}.{f.name}" if path else f.name
        v = data[f.name]
        sec = f.metadata.get("section")
        if sec is not None and v is None and f.default is None:
            continue  # an optional section left out (as to_dict() writes it)
        if sec is not None:
            built = _build(sec, v, key, ctx)
            if built is None:
                ok = False
            else:
                kw[f.name] = built
        elif f.metadata.get("check") is not None:
            c = f.metadata["check"](v, key, ctx)
            if c is _BAD:
                ok = False
            else:
                kw[f.name] = c
    if cls is ArrivalSpec and "rate" not in data and data.get("process") == "trace":
        kw["rate"] = None  # a trace replays its recorded timing unless a rate is given
    if not ok:
        return None
    obj = cls(**kw)
    hook = _SECTION_CHECKS.get(cls)
    if hook is not None:
        hook(obj, path, ctx)
    return obj


def _check_length(s: LengthSpec, path: str, ctx: _Ctx) -> None:
    need = {"fixed": ("value",), "uniform": ("low", "high"), "lognormal": ("median", "sigma"),
            "empirical": ("path",), "trace": ()}[s.dist]
    for k in need:
        if getattr(s, k) is None:
            ctx.err(f"{path}.{k}", f"required when dist = {s.dist!r}")
    if s.dist == "uniform" and s.low is not None and s.high is not None and s.low > s.high:
        ctx.err(f"{path}.low", f"must be <= high ({s.high}), got {s.low}")
    if s.dist == "lognormal":
        if s.median is not None and not s.median > 0:
            ctx.err(f"{path}.median", f"must be > 0, got {s.median!r}")
        if s.sigma is not None and not s.sigma >= 0:
            ctx.err(f"{path}.sigma", f"must be >= 0, got {s.sigma!r}")
    if s.max is not None and s.min > s.max:
        ctx.err(f"{path}.min", f"must be <= max ({s.max}), got {s.min}")
    if s.dist == "empirical" and s.path is not None and s.column is not None:
        _check_csv_column(s.path, s.column, f"{path}.column", ctx)
    if s.paired and s.dist != "empirical":
        ctx.err(f"{path}.paired", f"pairs rows of an empirical file; dist is {s.dist!r}")


def _check_csv_column(file: str, column: str, path: str, ctx: _Ctx) -> None:
    try:
        with open(file, newline="") as fh:
            header = fh.readline().strip().split(",")
    except (OSError, UnicodeDecodeError) as e:
        ctx.err(path, f"cannot read {file}: {e}")
        return
    if column not in header:
        ctx.err(path, f"no column {column!r} in {file}; columns: {', '.join(header)}")


def _check_arrival(a: ArrivalSpec, path: str, ctx: _Ctx) -> None:
    if a.process not in ("trace", "burst") and a.rate is None:
        ctx.err(f"{path}.rate", f"required when process = {a.process!r}")
    if a.process == "trace" and a.path is None:
        ctx.err(f"{path}.path", "required when process = 'trace'")


def _check_workload(w: WorkloadSection, path: str, ctx: _Ctx) -> None:
    for nm in ("prompt_tokens", "output_tokens"):
        spec = getattr(w, nm)
        if spec.dist == "trace" and w.arrival.process != "trace":
            ctx.err(f"{path}.{nm}.dist", "'trace' takes lengths from the arrival trace; "
                    f"needs {path}.arrival.process = 'trace'")
    if w.prompt_tokens.paired:
        ctx.err(f"{path}.prompt_tokens.paired", "set paired on output_tokens: an answer is "
                "drawn from its prompt's row")
    if w.output_tokens.paired and w.output_tokens.dist == "empirical":
        p, o = w.prompt_tokens, w.output_tokens
        if p.dist != "empirical" or p.path is None or o.path is None \
                or Path(p.path).resolve() != Path(o.path).resolve():
            ctx.err(f"{path}.output_tokens.paired", "needs prompt_tokens drawn (dist = "
                    "'empirical') from the same file as output_tokens")
        if w.sessions is not None:
            ctx.err(f"{path}.output_tokens.paired", "pairs independent requests; a session "
                    "draws its turns one by one: drop paired or sessions")
    if w.tenants is not None and w.system_prompt_tokens:
        ctx.err(f"{path}.tenants", "set either tenants or system_prompt_tokens (one tenant), "
                "not both")
    if w.max_concurrency is not None and (w.sessions is not None
                                          or w.arrival.process == "trace"):
        ctx.err(f"{path}.max_concurrency", "caps independent requests drawn by an arrival "
                "process; a session or a trace already decides when each turn is sent")
    if w.sessions is not None and w.sessions.turns.dist == "trace":
        ctx.err(f"{path}.sessions.turns.dist", "a trace's sessions come from its session_id "
                "column; drop workload.sessions.turns")


def _check_time(s: TimeSpec, path: str, ctx: _Ctx) -> None:
    need = {"fixed": ("value",), "exponential": ("mean",), "lognormal": ("median", "sigma")}
    for k in need[s.dist]:
        if getattr(s, k) is None:
            ctx.err(f"{path}.{k}", f"required when dist = {s.dist!r}")
    if s.max is not None and s.min > s.max:
        ctx.err(f"{path}.min", f"must be <= max ({s.max}), got {s.min}")


def _check_model(m: ModelSection, path: str, ctx: _Ctx) -> None:
    from simkit.catalog.models import load_model
    from simkit.costs.arch import ArchSpec

    cfg = load_model(m.name)  # validated by its field checker already
    # window / global_tokens / memory_slots left unset take the cost layer's defaults for the
    # kind (ArchSpec.resolve), so they are not required here; resolving the what-if on the
    # model checks the rest (mla on a model without latents, sharing beyond the layer
    # count, a pattern that does not tile the layers)
    try:
        ArchSpec.from_scenario_model(cfg, m)
    except SimkitError as e:
        for msg in e.messages:
            ctx.errors.append(msg if msg.startswith(path) else f"{path}: {msg}")


#: cross-field rules of a section, run once the section itself built cleanly
_SECTION_CHECKS: dict[type, Callable] = {}


def _check_plan_compare(s: Scenario, ctx: _Ctx) -> None:
    """Every kind plan.compare names must be one the model can take."""
    from simkit.costs.arch import ArchSpec

    if s.plan is None or not s.plan.compare:
        return
    cfg = s.model_config()
    for i, kind in enumerate(s.plan.compare):
        try:
            ArchSpec.from_scenario_model(cfg, replace(s.model, attention=kind))
        except SimkitError as e:
            ctx.err(f"plan.compare[{i}]", f"{kind!r}: {e.messages[0].split(': ', 1)[-1]}")


def what_ifs(s: Scenario) -> tuple[list[str], int]:
    """(the lengths the scenario asks for beyond the deployed context, that context): the
    model's trained context unless model.max_context sets the deployed one."""
    cfg = s.model_config()
    context = s.model.max_context or cfg.max_context
    out = []
    if s.serving.max_seq_len is not None and s.serving.max_seq_len > context:
        out.append(f"serving.max_seq_len {s.serving.max_seq_len}")
    for nm in ("prompt_tokens", "output_tokens"):
        spec = getattr(s.workload, nm)
        for key in ("max", "value", "high"):
            v = getattr(spec, key)
            if v is not None and v > context and (key == "max" or spec.dist in
                                                  ("fixed", "uniform")):
                out.append(f"workload.{nm}.{key} {v}")
    return out, context


def _check_what_ifs(s: Scenario) -> None:
    """Say, when the scenario loads, which of its lengths are what-ifs beyond the deployed
    context: every command then says it once, sweeps and searches included, before any
    point runs."""
    from simkit.errors import what_if

    lengths, context = what_ifs(s)
    for what in lengths:
        what_if(what, context, s.model_config().name)


def _check_compare(s: Scenario, ctx: _Ctx) -> None:
    for i, k in enumerate(s.report.compare):
        if k not in s.sweep:
            ctx.err(f"report.compare[{i}]", f"{k!r} is not a [sweep] key"
                    + (f"; sweep keys: {', '.join(s.sweep)}" if s.sweep else " (no [sweep])"))


def _check_plan(p: PlanSection, path: str, ctx: _Ctx) -> None:
    from simkit.sim.stats import too_few_for_p99  # the one rule, beside the p99 statistics

    why = too_few_for_p99(p.requests) if p.requests is not None else None
    if why is not None:
        ctx.err(f"{path}.requests", why)


def _check_disaggregation(d: DisaggregationSpec, path: str, ctx: _Ctx) -> None:
    bw = d.link_bytes_per_s
    if d.link == "network":
        if bw is None:
            ctx.err(f"{path}.link_bytes_per_s", "required when link = 'network' (bytes/s per "
                    "GPU; a link with no bandwidth never delivers the KV)")
        if d.link_latency_s is None:
            ctx.err(f"{path}.link_latency_s", "required when link = 'network' (seconds, "
                    "one way)")
    elif bw is not None:
        ctx.err(f"{path}.link_bytes_per_s", "applies to link = 'network' only (link = "
                "'nvlink' uses the GPUs' own interconnect)")
    if bw is not None and not bw > 0:
        ctx.err(f"{path}.link_bytes_per_s", f"must be > 0 (a link with no bandwidth never "
                f"delivers the KV), got {bw!r}")


def _check_speculative(sp: SpeculativeSpec, path: str, ctx: _Ctx) -> None:
    if not sp.draft:
        ctx.err(f"{path}.draft", "required: the draft model (a catalog name or a "
                "config.json path)")
    if (sp.acceptance is None) == (sp.acceptance_lengths is None):
        ctx.err(f"{path}.acceptance", "set exactly one of acceptance (per drafted token) and "
                "acceptance_lengths (probabilities of accepting 0..k tokens)")
    if sp.acceptance_lengths is not None and len(sp.acceptance_lengths) != sp.tokens + 1:
        ctx.err(f"{path}.acceptance_lengths", f"needs tokens + 1 = {sp.tokens + 1} "
                f"probabilities (accepting 0..{sp.tokens} drafted tokens), got "
                f"{len(sp.acceptance_lengths)}")


def _check_serving(s: "Scenario", ctx: _Ctx) -> None:
    """Rules across sections: a draft speaks the target's vocabulary; one NVLink domain
    holds one kind of GPU."""
    from simkit.catalog.models import load_model

    sp = s.serving.speculative
    if sp is not None and sp.draft:
        target, draft = s.model_config(), load_model(sp.draft)
        if draft.vocab_size != target.vocab_size:
            ctx.err("serving.speculative.draft", f"{draft.name}'s vocabulary "
                    f"({draft.vocab_size} tokens) differs from {target.name}'s "
                    f"({target.vocab_size}): the target cannot verify its tokens")
    d = s.serving.disaggregation
    if d is not None and d.link == "nvlink":
        hw = {d.prefill_hardware or s.hardware.name, d.decode_hardware or s.hardware.name}
        if len(hw) > 1:
            ctx.err("serving.disaggregation.link", "'nvlink' joins GPUs of one node, but the "
                    f"pools run on {' and '.join(sorted(_base(h) for h in hw))}; use link = "
                    "'network' with link_bytes_per_s and link_latency_s")


def _check_serving_section(s: ServingSection, path: str, ctx: _Ctx) -> None:
    if s.admission != "new_token_ratio":
        if s.schedule_conservativeness != 1.0:
            ctx.err(f"{path}.schedule_conservativeness", "scales SGLang's admission estimate; "
                    f"needs {path}.admission = 'new_token_ratio'")
        return
    # SGLang's token pool, its retraction by recompute, one pool per engine
    for key, value, why in (("kv_memory", "contiguous", "SGLang's KV pool is paged"),
                            ("preemption", "swap", "SGLang retracts answers and recomputes "
                             "them")):
        if getattr(s, key) == value:
            ctx.err(f"{path}.{key}", f"{value!r} is not modelled with admission = "
                    f"'new_token_ratio' ({why})")
    if s.disaggregation is not None:
        ctx.err(f"{path}.disaggregation", "not modelled with admission = 'new_token_ratio' "
                "(the decode pool takes arriving caches as memory frees)")


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


_SECTION_CHECKS.update({ArrivalSpec: _check_arrival, LengthSpec: _check_length,
                        WorkloadSection: _check_workload, ModelSection: _check_model,
                        PlanSection: _check_plan, TimeSpec: _check_time,
                        DisaggregationSpec: _check_disaggregation,
                        SpeculativeSpec: _check_speculative,
                        ServingSection: _check_serving_section})


def _flatten_sweep(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """[sweep] keys may be quoted dotted strings or TOML dotted keys (nested tables)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten_sweep(v, key))
        else:
            out[key] = v
    return out


_SETTING_PATHS: set[str] | None = None


def _setting_paths() -> set[str]:
    """Every dotted key that names a setting (a leaf) a sweep may vary."""
    global _SETTING_PATHS
    if _SETTING_PATHS is None:
        paths: set[str] = set()

        def walk(cls: type, prefix: str) -> None:
            for f in fields(cls):
                if f.name in ("base_dir", "sweep", "search"):
                    continue
                sec = f.metadata.get("section")
                key = f"{prefix}{f.name}"
                if sec is not None:
                    walk(sec, key + ".")
                else:
                    paths.add(key)
        walk(Scenario, "")
        _SETTING_PATHS = paths
    return _SETTING_PATHS


def _check_grid(raw: Any, base: Scenario | None, ctx: _Ctx, where: str = "sweep",
                what: str = "point") -> SweepGrid | None:
    """A table of dotted key = [values] ([sweep] or [plan.search]): every key a setting,
    every list non-empty and without repeats, and (given the base scenario) every
    combination valid, checked by building it."""
    if not isinstance(raw, Mapping):
        ctx.err(where, f"must be a table of dotted key = [values], got {raw!r}")
        return None
    flat = _flatten_sweep(raw)
    grid: dict[str, tuple] = {}
    n_err = len(ctx.errors)
    for key, vals in flat.items():
        at = f"{where}.{json.dumps(key)}"
        if key not in _setting_paths():
            ctx.err(at, "not a scenario setting (use a dotted key such as "
                    "\"workload.arrival.rate\")")
            continue
        if where == "plan.search" and key.startswith("plan."):
            ctx.err(at, "a search varies the configuration, not the plan itself")
            continue
        if where == "plan.search" and key in ("serving.replicas", "workload.arrival.rate"):
            ctx.err(at, "the plan chooses the replicas for plan.target_qps; search the "
                    "configuration of one replica")
            continue
        if not isinstance(vals, (list, tuple)) or not vals:
            ctx.err(at, f"must be a non-empty list of values, got {vals!r}")
            continue
        vals = tuple(tuple(v) if isinstance(v, list) else v for v in vals)
        dup = [v for i, v in enumerate(vals)
               if any(v == w and type(v) is type(w) for w in vals[:i])]
        if dup:
            ctx.err(at, f"repeats the value {dup[0]!r} (every {what} must differ)")
            continue
        grid[key] = vals
    if base is None or len(ctx.errors) > n_err or not grid:
        return None if len(ctx.errors) > n_err else SweepGrid(grid)
    base = replace(base, report=replace(base.report, compare=()), sweep=SweepGrid())
    if base.plan is not None:
        base = replace(base, plan=replace(base.plan, search=SweepGrid()))
    # Validate by building every combination (values of one key may need another's, e.g. a
    # window kind needs the swept window; a sweep point must also pass the simulator's set-up
    # checks, so a sweep fails before it writes anything); each distinct problem is reported
    # once, with the first combination that shows it.
    seen: set[str] = set()
    for p in SweepGrid(grid).points():
        try:
            # a sweep point must run; a search configuration may be infeasible (its answer)
            base._with(p, runnable=where == "sweep")
        except SimkitError as e:
            for m in e.messages:
                if m not in seen:
                    seen.add(m)
                    label = ", ".join(f"{k} = {v!r}" for k, v in p.items())
                    ctx.err(f"{where} ({what} {label})", m)
    return SweepGrid(grid)


def _check_sweep(raw: Any, base: Scenario | None, ctx: _Ctx) -> SweepGrid | None:
    return _check_grid(raw, base, ctx)


def scenario_from_dict(d: Mapping[str, Any], base_dir: str | Path = ".") -> Scenario:
    """Validate a scenario table (as parsed from TOML) and build the `Scenario`.

    Relative file paths resolve against `base_dir`. Every problem is reported at once in one
    `SimkitError`, one message per problem, each starting with its key path.
    """
    base_dir_p = Path(base_dir).expanduser().resolve()
    ctx = _Ctx(base_dir_p)
    if not isinstance(d, Mapping):
        raise SimkitError(f"scenario: must be a table, got {type(d).__name__}")
    body = {k: v for k, v in d.items() if k != "sweep"}
    search_raw = None
    if isinstance(body.get("plan"), Mapping) and "search" in body["plan"]:
        search_raw = body["plan"]["search"]
        body["plan"] = {k: v for k, v in body["plan"].items() if k != "search"}
    s = _build(Scenario, body, "", ctx)
    if s is not None:
        s = replace(s, base_dir=str(base_dir_p))
        _check_plan_compare(s, ctx)
        _check_serving(s, ctx)
        if "sweep" not in d:
            _check_compare(s, ctx)
    if ctx.errors:
        if "sweep" in d:  # still report malformed sweep keys alongside the other errors
            _check_sweep(d["sweep"], None, ctx)
        if search_raw is not None:
            _check_grid(search_raw, None, ctx, "plan.search", "configuration")
        raise SimkitError(*dict.fromkeys(ctx.errors))
    assert s is not None
    _check_what_ifs(s)
    if search_raw is not None:
        search = _check_grid(search_raw, s, ctx, "plan.search", "configuration")
        if ctx.errors or search is None:
            raise SimkitError(*dict.fromkeys(ctx.errors))
        if len(search) and s.plan.target_qps is None:
            raise SimkitError("plan.target_qps: required with [plan.search] (the load every "
                              "configuration is planned for)")
        s = replace(s, plan=replace(s.plan, search=search))
    if "sweep" in d:
        grid = _check_sweep(d["sweep"], s, ctx)
        if ctx.errors or grid is None:
            raise SimkitError(*dict.fromkeys(ctx.errors))
        s = replace(s, sweep=grid)
        _check_compare(s, ctx)  # report.compare names sweep keys: check once they are known
        if ctx.errors:
            raise SimkitError(*dict.fromkeys(ctx.errors))
    return s


def load_scenario(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Scenario:
    """Read and validate a scenario TOML file (relative paths in it resolve against its folder).

    A missing `name` defaults to the file's stem. `overrides`: `KEY=VALUE` texts (`--set`,
    `simkit.overrides`) written into the file's table before it is validated, so they are
    checked exactly like the file; errors about them name `--set KEY`.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise SimkitError(f"{path}: no such scenario file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SimkitError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SimkitError(f"{path}: cannot read ({e})") from None
    data.setdefault("name", p.stem)
    if not overrides:
        return scenario_from_dict(data, base_dir=p.resolve().parent)
    from simkit.overrides import apply_sets, owns

    data, keys = apply_sets(data, overrides)
    try:
        return scenario_from_dict(data, base_dir=p.resolve().parent)
    except SimkitError as e:
        raise SimkitError(*(f"--set {m}" if owns(m, keys) else m for m in e.messages)) from None
