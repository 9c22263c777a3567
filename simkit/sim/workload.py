"""Request streams: arrival processes and length distributions, from seeded streams.

Arrivals: ``poisson`` (exponential gaps), ``gamma`` (gaps with a coefficient of variation
``cv``: cv > 1 is burstier than Poisson), ``fixed`` (one request every 1/rate s, the first at
t = 0), ``trace`` (replay a CSV's arrival times, optionally rescaled to a mean ``rate``),
``burst`` (every request at t = 0; with ``max_concurrency`` a closed loop:
`simkit.sim.concurrency`).
Lengths: ``fixed``, ``uniform`` (inclusive), ``lognormal`` (median, sigma), ``empirical``
(resampled with replacement from a CSV column; an empirical ``output_tokens`` with
``paired = true`` takes each answer from its prompt's row of the same file, keeping the
file's correlation of the two) and ``trace`` (the arrival trace's own
lengths, row by row). Every length is clipped to [min, max] where max defaults to the
model's context; a ``max`` beyond the context is a user error. Outputs are then cut so
that prompt + output - 1 <= context (generation stops at the model's maximum length).

Common random numbers (CRN): every workload component draws from its OWN stream,
``numpy.random.SeedSequence(seed, spawn_key=(STREAMS[name],))``. The same seed therefore gives
the same arrivals and the same lengths at every point of a sweep or search, and changing one
component (the arrival rate or process, the prompt distribution) never shifts another
component's draws: differences between points come from the configuration, not from the
luck of the draw (Law, "Simulation Modeling and Analysis", 5th ed., section 11.2). Poisson
and gamma gaps at a new rate are the same unit draws rescaled, so a faster stream is the
same pattern compressed in time. A new component (sessions, shared prefixes) takes a new
key at the end of `STREAMS`; the existing streams do not move.

Trace CSVs may use ``arrival_s, prompt_tokens, output_tokens`` or the published traces' own
``arrived_at, num_prefill_tokens, num_decode_tokens`` (see scenarios/traces/README.md).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simkit.errors import SimkitError, what_if

ARRIVAL_COLUMNS = ("arrival_s", "arrived_at")
PROMPT_COLUMNS = ("prompt_tokens", "num_prefill_tokens")
OUTPUT_COLUMNS = ("output_tokens", "num_decode_tokens")

_CSV_CACHE: dict[tuple[str, float], dict[str, np.ndarray]] = {}

#: workload component -> spawn key of its random stream (never renumber: see the docstring)
STREAMS = {"arrival": 0, "prompt": 1, "output": 2,
           # sessions and tenants (`simkit.sim.sessions`)
           "turns": 3, "think": 4, "tenant": 5,
           # speculative decoding's accepted lengths, one stream per request
           # (`simkit.sim.speculative`)
           "speculative": 6}


def stream_key(component: str) -> int:
    """The spawn key of a component's stream (sub-streams append their own keys)."""
    return STREAMS[component]


def stream(seed: int, component: str) -> np.random.Generator:
    """The random stream of one workload component for `seed` (independent of the others)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed),
                                                        spawn_key=(STREAMS[component],)))


@dataclass(frozen=True)
class Workload:
    """A generated request stream (arrival times sorted ascending)."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """A setting of a scenario section, loaded (an object) or given as a dict."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def resolve_path(path: str, base_dir: Any, where: str) -> Path:
    """A CSV path, relative paths against the scenario's folder; a missing file is an error."""
    if not path:
        raise SimkitError(f"{where}: a CSV path is required")
    p = Path(os.path.expanduser(str(path)))
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not p.is_file():
        raise SimkitError(f"{where}: no such file {str(path)!r}")
    return p


def read_csv_columns(p: Path, where: str) -> dict[str, np.ndarray]:
    """All numeric columns of a CSV with a header row (cached by path and mtime)."""
    key = (str(p.resolve()), p.stat().st_mtime)
    if key in _CSV_CACHE:
        return _CSV_CACHE[key]
    try:
        with open(p, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise SimkitError(f"{where}: {p.name} is empty")
            header = [h.strip() for h in header]
            rows = [r for r in reader if r and any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise SimkitError(f"{where}: {p.name} is not a text CSV file") from None
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        vals = np.empty(len(rows))
        ok = True
        for i, r in enumerate(rows):
            try:
                vals[i] = float(r[j])
            except (ValueError, IndexError):
                ok = False
                bad = (i + 2, r[j] if j < len(r) else "")
                break
        if ok:
            cols[name] = vals
        else:
            cols[name] = None  # type: ignore[assignment]  # non-numeric; error only if used
            cols["__bad__" + name] = bad  # type: ignore[assignment]
    if not rows:
        raise SimkitError(f"{where}: {p.name} has no data rows")
    _CSV_CACHE[key] = cols
    return cols


def _column(cols: dict[str, Any], names: tuple[str, ...], p: Path, where: str) -> np.ndarray:
    for n in names:
        if n in cols:
            if cols[n] is None:
                line, text = cols["__bad__" + n]
                raise SimkitError(f"{where}: {p.name} line {line}: column {n!r} is not a "
                                  f"number: {text!r}")
            v = cols[n]
            if not np.all(np.isfinite(v)):
                raise SimkitError(f"{where}: {p.name}: column {n!r} has non-finite values")
            return v
    have = ", ".join(k for k in cols if not k.startswith("__bad__"))
    raise SimkitError(f"{where}: {p.name} has no column {' or '.join(map(repr, names))} "
                      f"(columns: {have})")


def _lengths_of(v: np.ndarray, p: Path, col: str, where: str) -> np.ndarray:
    if np.any(v < 1) or np.any(v != np.round(v)):
        raise SimkitError(f"{where}: {p.name}: column {col!r} must hold whole token counts >= 1")
    return v.astype(np.int64)


class _Trace:
    """An arrival trace: times and (when present) its own lengths."""

    def __init__(self, spec: Any, base_dir: Any) -> None:
        where = "workload.arrival.path"
        p = resolve_path(_get(spec, "path"), base_dir, where)
        cols = read_csv_columns(p, where)
        self.path = p
        t = _column(cols, ARRIVAL_COLUMNS, p, where)
        if np.any(np.diff(t) < 0):
            raise SimkitError(f"{where}: {p.name}: arrival times must be non-decreasing")
        if t[0] < 0:
            raise SimkitError(f"{where}: {p.name}: arrival times must be >= 0")
        self.arrival_s = t
        self.prompt = self.output = None
        for attr, names in (("prompt", PROMPT_COLUMNS), ("output", OUTPUT_COLUMNS)):
            name = next((n for n in names if n in cols), None)
            if name is not None:
                setattr(self, attr, _lengths_of(_column(cols, (name,), p, where), p, name,
                                                where))

    def rows(self, n: int) -> np.ndarray:
        """Row indices for n requests: the trace in order, repeated end to end if needed."""
        return np.arange(n) % len(self.arrival_s)

    def times(self, n: int, rate: float | None) -> np.ndarray:
        t = self.arrival_s - self.arrival_s[0]
        m = len(t)
        reps = math.ceil(n / m)
        if reps > 1:
            # repeat end to end, the next copy one mean gap after the last arrival
            span = t[-1] + (t[-1] / (m - 1) if m > 1 and t[-1] > 0 else 1.0)
            t = np.concatenate([t + r * span for r in range(reps)])
        t = t[:n]
        if rate is not None and n > 1 and t[-1] > 0:
            observed = (n - 1) / t[-1]
            t = t * (observed / float(rate))
        return t


def generate_arrivals(spec: Any, n: int, rng: np.random.Generator,
                      trace: _Trace | None) -> np.ndarray:
    process = _get(spec, "process", "poisson")
    rate = _get(spec, "rate", 1.0)
    if process == "trace":
        assert trace is not None
        return trace.times(n, rate)
    if process == "burst":  # every request at once (a client's request rate of inf)
        return np.zeros(n, dtype=np.float64)
    if rate is None or not (float(rate) > 0 and math.isfinite(float(rate))):
        raise SimkitError(f"workload.arrival.rate: must be > 0, got {rate!r}")
    rate = float(rate)
    if process == "poisson":
        gaps = rng.exponential(1.0 / rate, size=n)
        return np.cumsum(gaps)
    if process == "gamma":
        cv = float(_get(spec, "cv", 1.0))
        if not (cv > 0 and math.isfinite(cv)):
            raise SimkitError(f"workload.arrival.cv: must be > 0, got {cv!r}")
        shape = 1.0 / (cv * cv)
        gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
        return np.cumsum(gaps)
    if process == "fixed":
        return np.arange(n, dtype=np.float64) / rate
    raise SimkitError(f"workload.arrival.process: unknown process {process!r}; choose one of "
                      "poisson, gamma, fixed, trace, burst")


def _int_field(spec: Any, key: str, where: str, required: bool = True) -> int | None:
    v = _get(spec, key)
    if v is None:
        if required:
            raise SimkitError(f"{where}.{key}: required")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(v)):
        raise SimkitError(f"{where}.{key}: must be a number, got {v!r}")
    return int(v)


def beyond_context(what: str, context: int, model_name: str) -> None:
    """A length beyond the deployed context: a what-if, said once (`simkit.errors.what_if`)."""
    what_if(what, context, model_name)


def generate_lengths(spec: Any, n: int, rng: np.random.Generator, where: str,
                     context: int, model_name: str, base_dir: Any,
                     trace: _Trace | None, trace_rows: np.ndarray | None,
                     trace_attr: str, rows: np.ndarray | None = None) -> np.ndarray:
    """n token lengths drawn from `spec`, clipped to [min, max]. Without a max, draws are
    clipped to the deployed context (as servers truncate at their max length); an explicit
    length beyond that context is a what-if (one warning), not an error. `rows`: an
    empirical file's rows to take (`paired_rows`) instead of drawing them."""
    dist = _get(spec, "dist", "fixed")
    lo = _int_field(spec, "min", where, required=False)
    lo = 1 if lo is None else lo
    hi = _int_field(spec, "max", where, required=False)
    if hi is not None and hi > context:
        beyond_context(f"{where}.max {hi}", context, model_name)
    if lo < 1:
        raise SimkitError(f"{where}.min: must be >= 1, got {lo}")
    top = context if hi is None else hi
    if lo > top:
        raise SimkitError(f"{where}.min: {lo} exceeds the largest allowed length {top}")

    if dist == "fixed":
        v = _int_field(spec, "value", where)
        if v < 1:
            raise SimkitError(f"{where}.value: must be >= 1, got {v}")
        if v > context:
            beyond_context(f"{where}.value {v}", context, model_name)
            top = max(top, v) if hi is None else top
        x = np.full(n, v, dtype=np.float64)
    elif dist == "uniform":
        a, b = _int_field(spec, "low", where), _int_field(spec, "high", where)
        if a < 1 or b < a:
            raise SimkitError(f"{where}: need 1 <= low <= high, got low={a}, high={b}")
        if b > context:
            beyond_context(f"{where}.high {b}", context, model_name)
            top = max(top, b) if hi is None else top
        x = rng.integers(a, b + 1, size=n).astype(np.float64)
    elif dist == "lognormal":
        med = _get(spec, "median")
        sigma = _get(spec, "sigma")
        if med is None or not float(med) > 0:
            raise SimkitError(f"{where}.median: must be > 0, got {med!r}")
        if sigma is None or not float(sigma) >= 0:
            raise SimkitError(f"{where}.sigma: must be >= 0, got {sigma!r}")
        x = np.rint(rng.lognormal(math.log(float(med)), float(sigma), size=n))
    elif dist == "empirical":
        data = _empirical_column(spec, where, base_dir, trace_attr)
        x = data[_draw_rows(len(data), n, rng) if rows is None else rows].astype(np.float64)
    elif dist == "trace":
        if trace is None:
            raise SimkitError(f"{where}.dist: 'trace' takes lengths from the arrival trace; "
                              "set workload.arrival.process = \"trace\"")
        data = getattr(trace, trace_attr)
        if data is None:
            cols = PROMPT_COLUMNS if trace_attr == "prompt" else OUTPUT_COLUMNS
            raise SimkitError(f"{where}.dist: the arrival trace {trace.path.name} has no "
                              f"{' or '.join(cols)} column")
        x = data[trace_rows].astype(np.float64)
    else:
        raise SimkitError(f"{where}.dist: unknown distribution {dist!r}; choose one of fixed, "
                          "uniform, lognormal, empirical, trace")
    return np.clip(x, lo, top).astype(np.int64)


def _empirical_column(spec: Any, where: str, base_dir: Any, trace_attr: str) -> np.ndarray:
    """The lengths of an empirical spec's file column, one per row."""
    p = resolve_path(_get(spec, "path"), base_dir, f"{where}.path")
    cols = read_csv_columns(p, f"{where}.path")
    col = _get(spec, "column")
    names = (col,) if col else (PROMPT_COLUMNS if trace_attr == "prompt" else OUTPUT_COLUMNS)
    return _lengths_of(_column(cols, names, p, f"{where}.column"), p, col or names[0],
                       f"{where}.column")


def _draw_rows(n_rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n rows of an empirical file, resampled with replacement."""
    return rng.integers(0, n_rows, size=n)


def paired_rows(workload: Any, n: int, seed: int, base_dir: Any = None) -> np.ndarray | None:
    """The file rows both lengths of each request come from when output_tokens is `paired`
    (None otherwise): the rows the prompt stream draws anyway, so pairing moves no prompt
    (common random numbers) and each answer is its prompt's row's. The scenario checks
    that both come from one file (`simkit.scenario.load._check_workload`)."""
    p_spec, o_spec = _get(workload, "prompt_tokens"), _get(workload, "output_tokens")
    if not _get(o_spec, "paired", False):
        return None
    n_rows = len(_empirical_column(p_spec, "workload.prompt_tokens", base_dir, "prompt"))
    return _draw_rows(n_rows, n, stream(seed, "prompt"))


def generate_workload(workload: Any, *, n_requests: int, seed: int, context: int,
                      model_name: str, base_dir: Any = None) -> Workload:
    """The scenario's request stream: n arrivals with prompt and output lengths, each
    component from its own stream of `seed` (see the module docstring)."""
    if n_requests < 0:
        raise SimkitError(f"workload.requests: must be >= 0, got {n_requests}")
    arrival = _get(workload, "arrival")
    trace = _Trace(arrival, base_dir) if _get(arrival, "process") == "trace" else None
    rows = trace.rows(n_requests) if trace is not None else None
    t = generate_arrivals(arrival, n_requests, stream(seed, "arrival"), trace)
    pair = paired_rows(workload, n_requests, seed, base_dir)
    prompt = generate_lengths(_get(workload, "prompt_tokens"), n_requests,
                              stream(seed, "prompt"), "workload.prompt_tokens", context,
                              model_name, base_dir, trace, rows, "prompt", pair)
    output = generate_lengths(_get(workload, "output_tokens"), n_requests,
                              stream(seed, "output"), "workload.output_tokens", context,
                              model_name, base_dir, trace, rows, "output", pair)
    # a sequence holds at most prompt + output - 1 token positions (the last token is never
    # fed back); generation stops at the deployed context, as servers truncate at max
    # length -- unless the workload itself asks for lengths beyond it (a what-if)
    if int(prompt.max(initial=0)) <= context:
        output = np.minimum(output, np.maximum(context - prompt + 1, 1))
    return Workload(np.asarray(t, dtype=np.float64), prompt, capped_outputs(workload, output))


def capped_outputs(workload: Any, output: np.ndarray) -> np.ndarray:
    """Answers stop at the requests' token limit (``workload.max_new_tokens``), if any."""
    cap = _get(workload, "max_new_tokens", None)
    return output if cap is None else np.minimum(output, int(cap))
