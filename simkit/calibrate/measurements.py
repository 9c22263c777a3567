"""Measured step times of a serving engine: the CSV format, its checks, and the design that
turns measurements into the step-time formula's inputs.

`simkit calibrate --measurements FILE.csv` reads columns
`model,hardware,tensor_parallel,phase,batch_size,prompt_tokens,context_tokens,seconds`
(optional: `weight_dtype`, default the checkpoint's own -- bf16 unless its config quantizes
the weights, `simkit.catalog.hf_quant` -- and `kv_dtype`, default bf16):

- phase `prefill`: one iteration that prefills `batch_size` prompts of `prompt_tokens` each,
  on top of `context_tokens` already cached per sequence;
- phase `decode`: one iteration of `batch_size` sequences, each attending to
  `context_tokens` tokens (the cache plus the token being decoded); `prompt_tokens` is 0;
- `model`: a catalog name or a Hugging Face config.json path (relative paths are read from
  the CSV's folder); `hardware`: a catalog name or a hardware profile .toml.

A bad file gives one line naming the file, line and column (`simkit.errors.SimkitError`).

A `Measurement` is more general than a CSV row: its time is a sum of steps (count x step), so
a static batch's wall time (its prefill plus its decode steps) is fitted by the same code
(`benchmarks/fit_engines.py`). `Design` computes, once, what every step does (FLOPs, bytes,
tokens, sequences: `StepCostModel.step_terms`), and `Design.predict(engine)` evaluates THE
step-time formula (`simkit.costs.compiled.base_time_s` + `attention_time_s`) on all of them
at once for any engine profile.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simkit.errors import SimkitError

COLUMNS = ("model", "hardware", "tensor_parallel", "phase", "batch_size", "prompt_tokens",
           "context_tokens", "seconds")
OPTIONAL_COLUMNS = ("weight_dtype", "kv_dtype")
PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class Setup:
    """What a measurement ran: model, GPU, tensor-parallel degree, dtypes."""

    model: str  # catalog name or config path
    hardware: str  # catalog name or profile path
    tensor_parallel: int
    weight_dtype: str | None = None  # None: the checkpoint's own
    kv_dtype: str = "bf16"


@dataclass(frozen=True)
class Step:
    """One forward iteration: `decode_batch` decodes at `decode_context` each, plus
    `prefill_batch` prompts of `prompt_tokens` after `cached_tokens` each."""

    decode_batch: int = 0
    decode_context: int = 0
    prefill_batch: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True)
class Measurement:
    """A measured time = sum over `steps` of count x that step's time."""

    setup: Setup
    phase: str  # prefill | decode (step rows); e2e, ttft, ... (composite rows)
    seconds: float
    steps: tuple[tuple[float, Step], ...]
    where: str = ""  # file:line, for messages

    @classmethod
    def step(cls, setup: Setup, phase: str, batch: int, prompt: int, context: int,
             seconds: float, where: str = "") -> "Measurement":
        """One CSV row: a single prefill or decode iteration."""
        s = Step(prefill_batch=batch, prompt_tokens=prompt, cached_tokens=context) \
            if phase == "prefill" else Step(decode_batch=batch, decode_context=context)
        return cls(setup, phase, float(seconds), ((1.0, s),), where)

    @classmethod
    def static_batch(cls, setup: Setup, batch: int, input_tokens: int, output_tokens: int,
                     seconds: float, prefill_tokens: int = 8192, where: str = "",
                     phase: str = "e2e") -> "Measurement":
        """The wall time of one static batch: `batch` requests of `input_tokens` started
        together, each generating `output_tokens` (the first by the prefill).

        Closed form: the prompts are prefilled whole, as many per step as fit in
        `prefill_tokens` (at least one), then output_tokens - 1 decode steps of the whole
        batch at contexts input+1 .. input+output-1, counted at their mean context
        input + output/2 -- exact when the decode attention cost is affine in the context
        and one side of its roofline holds throughout (memory-bound: every dense model in
        the shipped data). Valid while the batch's cache fits in memory; a batch that does
        not fit runs in waves or preempts, which only the simulator models."""
        per = max(1, prefill_tokens // input_tokens)
        full, rest = divmod(batch, per)
        steps: list[tuple[float, Step]] = []
        if full:
            steps.append((float(full), Step(prefill_batch=per, prompt_tokens=input_tokens)))
        if rest:
            steps.append((1.0, Step(prefill_batch=rest, prompt_tokens=input_tokens)))
        if output_tokens > 1:
            steps.append((float(output_tokens - 1),
                          Step(decode_batch=batch,
                               decode_context=input_tokens + output_tokens // 2)))
        return cls(setup, phase, float(seconds), tuple(steps), where)


    @classmethod
    def mean_step(cls, setup: Setup, decodes: int, context: int, prompts: float,
                  prompt_tokens: int, seconds: float, where: str = "",
                  phase: str = "server", prompts_alone: bool = False,
                  cached_tokens: int = 0) -> "Measurement":
        """The mean iteration of a serving run in steady state: `decodes` sequences decoding
        at `context` each, plus `prompts` (a mean, fractional) prompts of `prompt_tokens`
        prefilled per iteration -- as the average of an iteration with floor(prompts) and one
        with ceil(prompts), weighted so the mean prompt count is `prompts`. Exact for step
        times linear in the prompt count between the two (one side of the roofline).
        `cached_tokens`: each prompt's opening that a prefix cache already holds (computed
        prompt tokens start there: `prompt_tokens` counts only the ones computed).

        `prompts_alone`: the engine runs prompts in iterations of their own (vLLM V0 without
        chunked prefill, SGLang), so the time between two decode iterations is the decode step
        plus the prompt-only iterations run in between: with Poisson arrivals one whenever a
        prompt arrived during the last, 1 - exp(-prompts) per decode iteration, holding
        prompts / (1 - exp(-prompts)) each."""
        if not prompts_alone or prompts <= 0:
            return cls(setup, phase, float(seconds),
                       _split(prompts, lambda k: Step(decode_batch=decodes,
                                                      decode_context=context,
                                                      prefill_batch=k,
                                                      prompt_tokens=prompt_tokens,
                                                      cached_tokens=cached_tokens)), where)
        runs = 1.0 - math.exp(-prompts)
        per = prompts / runs
        alone = _split(per, lambda k: Step(prefill_batch=k, prompt_tokens=prompt_tokens,
                                           cached_tokens=cached_tokens))
        steps = ((1.0, Step(decode_batch=decodes, decode_context=context)),) + tuple(
            (runs * w, s) for w, s in alone if s.prefill_batch)
        return cls(setup, phase, float(seconds), steps, where)


def _split(mean: float, step) -> tuple:
    """(weight, step(k)) for k = floor(mean) and ceil(mean), weighted so the mean k is
    `mean` (the second left out when `mean` is whole)."""
    lo = math.floor(mean)
    frac = mean - lo
    return tuple((w, step(k)) for k, w in ((lo, 1.0 - frac), (lo + 1, frac)) if w > 0)


def _int(text: str, col: str, where: str, lo: int) -> int:
    try:
        v = int(text)
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            f = math.nan
        if not (math.isfinite(f) and f == int(f)):
            raise SimkitError(f"{where}: {col}: must be an integer >= {lo}, got {text!r}") \
                from None
        v = int(f)
    if v < lo:
        raise SimkitError(f"{where}: {col}: must be an integer >= {lo}, got {text!r}")
    return v


def read_measurements(path: str | Path) -> list[Measurement]:
    """Read and check a measurement CSV (see the module docstring); one bad cell, one line."""
    from simkit.units import KV_DTYPES, WEIGHT_DTYPES

    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise SimkitError(f"--measurements: no such file {name!r}")
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise SimkitError(f"{name}: not a text (UTF-8) CSV file") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(c.strip() for c in rows[0]):
        raise SimkitError(f"{name}: empty; the first line must name the columns "
                          f"{','.join(COLUMNS)}")
    header = [c.strip() for c in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SimkitError(f"{name}: missing column {missing[0]!r} (the columns are "
                          f"{','.join(COLUMNS)}; optional {','.join(OPTIONAL_COLUMNS)})")
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise SimkitError(f"{name}: unknown column {unknown[0]!r} (the columns are "
                          f"{','.join(COLUMNS)}; optional {','.join(OPTIONAL_COLUMNS)})")
    if len(set(header)) != len(header):
        dup = next(c for c in header if header.count(c) > 1)
        raise SimkitError(f"{name}: column {dup!r} appears twice")
    col = {c: header.index(c) for c in header}
    out: list[Measurement] = []
    checked: dict[Setup, None] = {}
    for i, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue  # blank line
        where = f"{name}:{i}"
        if len(row) != len(header):
            raise SimkitError(f"{where}: {len(row)} cells, the header has {len(header)}")
        cell = {c: row[j].strip() for c, j in col.items()}
        phase = cell["phase"]
        if phase not in PHASES:
            raise SimkitError(f"{where}: phase: must be prefill or decode, got {phase!r}")
        tp = _int(cell["tensor_parallel"], "tensor_parallel", where, 1)
        batch = _int(cell["batch_size"], "batch_size", where, 1)
        prompt = _int(cell["prompt_tokens"], "prompt_tokens", where, 0)
        context = _int(cell["context_tokens"], "context_tokens", where, 0)
        if phase == "prefill" and prompt < 1:
            raise SimkitError(f"{where}: prompt_tokens: a prefill needs at least 1 prompt "
                              f"token, got {cell['prompt_tokens']!r}")
        if phase == "decode" and prompt != 0:
            raise SimkitError(f"{where}: prompt_tokens: must be 0 for a decode row (its "
                              f"context is context_tokens), got {cell['prompt_tokens']!r}")
        if phase == "decode" and context < 1:
            raise SimkitError(f"{where}: context_tokens: a decode attends to at least 1 token "
                              f"(itself), got {cell['context_tokens']!r}")
        try:
            sec = float(cell["seconds"])
        except ValueError:
            sec = math.nan
        if not (math.isfinite(sec) and sec > 0):
            raise SimkitError(f"{where}: seconds: must be a number > 0, got "
                              f"{cell['seconds']!r}")
        wd = cell.get("weight_dtype") or None
        kd = cell.get("kv_dtype") or "bf16"
        if wd is not None and wd not in WEIGHT_DTYPES:
            raise SimkitError(f"{where}: weight_dtype: unknown dtype {wd!r}; choose one of "
                              f"{', '.join(WEIGHT_DTYPES)}")
        if kd not in KV_DTYPES:
            raise SimkitError(f"{where}: kv_dtype: unknown dtype {kd!r}; choose one of "
                              f"{', '.join(KV_DTYPES)}")
        model = cell["model"]
        if model.endswith(".json") and not Path(model).is_absolute():
            model = str(p.parent / model)
        hw = cell["hardware"]
        if hw.endswith(".toml") and not Path(hw).is_absolute():
            hw = str(p.parent / hw)
        setup = Setup(model, hw, tp, wd, kd)
        if setup not in checked:
            _check_setup(setup, where)
            checked[setup] = None
        out.append(Measurement.step(setup, phase, batch, prompt, context, sec, where))
    if not out:
        raise SimkitError(f"{name}: no measurements below the header")
    return out


def _check_setup(setup: Setup, where: str) -> None:
    """The model, hardware and TP degree load (one line naming the row otherwise)."""
    try:
        step_model(setup)
    except SimkitError as e:
        raise SimkitError(f"{where}: {e.messages[0]}", *e.messages[1:]) from None


def step_model(setup: Setup, engine=None):
    """The step model of a setup (engine-independent terms; cached by the cost layer), with
    `engine`'s memory rules where given (default: the roofline)."""
    from simkit.catalog import load_hardware, load_model
    from simkit.costs.arch import ArchSpec
    from simkit.costs.compiled import build_step_model
    from simkit.costs.engine import ROOFLINE

    model = load_model(setup.model)
    arch = ArchSpec(kv_dtype=setup.kv_dtype, weight_dtype=setup.weight_dtype)
    return build_step_model(model, arch, load_hardware(setup.hardware),
                            gpus=setup.tensor_parallel, engine=engine or ROOFLINE)


_TERMS = ("tokens", "sequences", "lin_flops", "head_flops", "weight_bytes", "pre_flops",
          "pre_bytes", "dec_flops", "dec_bytes")


@dataclass
class _Group:
    setup: Setup
    sm: object  # StepCostModel
    rows: np.ndarray  # measurement index of each step
    counts: np.ndarray  # how many times each step runs in its measurement
    terms: dict  # term name -> array over the steps


class Design:
    """The measurements' steps, evaluated once; `predict(engine)` gives every measurement's
    time under an engine profile through THE step-time formula."""

    def __init__(self, measurements: list[Measurement]):
        self.measurements = list(measurements)
        self.seconds = np.array([m.seconds for m in self.measurements], dtype=float)
        self.phase = np.array([m.phase for m in self.measurements])
        by: dict[Setup, list] = {}
        for i, m in enumerate(self.measurements):
            for count, s in m.steps:
                by.setdefault(m.setup, []).append((i, count, s))
        self.groups: list[_Group] = []
        for setup, items in by.items():
            sm = step_model(setup)
            terms = {k: np.empty(len(items)) for k in _TERMS}
            for j, (_, _, s) in enumerate(items):
                t = sm.step_terms(np.full(s.decode_batch, s.decode_context, dtype=np.int64),
                                  np.full(s.prefill_batch, s.cached_tokens, dtype=np.int64),
                                  np.full(s.prefill_batch, s.prompt_tokens, dtype=np.int64))
                for k in _TERMS:
                    terms[k][j] = t[k]
            self.groups.append(_Group(
                setup, sm, np.array([i for i, _, _ in items], dtype=np.int64),
                np.array([c for _, c, _ in items], dtype=float), terms))

    def __len__(self) -> int:
        return len(self.measurements)

    def labels(self, key: str) -> np.ndarray:
        """Per measurement: its model, hardware or tensor_parallel -- or `source`, the file
        its `where` names (file:line) -- for held-out splits."""
        if key == "source":
            return np.array([m.where.rsplit(":", 1)[0] for m in self.measurements])
        return np.array([str(getattr(m.setup, key)) for m in self.measurements])

    def predict(self, engine) -> np.ndarray:
        """Seconds of every measurement under `engine` (an EngineProfile)."""
        from simkit.costs.compiled import attention_time_s, base_time_s
        from simkit.costs.roofline import roofline_for

        out = np.zeros(len(self.measurements))
        for g in self.groups:
            sm, T = g.sm, g.terms
            r = roofline_for(sm.hardware, sm.arch.gemm_weight_dtype, g.setup.kv_dtype, sm.gpus,
                             engine=engine, head_dtype=sm.arch.vocab_dtype)
            t = base_time_s(r, T["tokens"], T["sequences"], T["lin_flops"], T["weight_bytes"],
                            sm.allreduces_per_step, sm.d_model, sm.blocks, mx=np.maximum,
                            moe_blocks=sm.moe_blocks, experts_per_token=sm.experts_per_token,
                            head_flops=T["head_flops"]) \
                + attention_time_s(r, T["pre_flops"], T["pre_bytes"], T["dec_flops"],
                                   T["dec_bytes"], mx=np.maximum)
            np.add.at(out, g.rows, g.counts * t)
        return out
