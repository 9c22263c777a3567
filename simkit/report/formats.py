"""Number formats and words of the report, in one place: tick labels, durations, ratios, token
counts, the readable log-axis ticks every chart uses, how a scenario's settings read in a
sentence, and the scrubbing that keeps absolute paths out of every page.

Sizes print in binary units (GiB), rates SI (`simkit.units`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

# --------------------------------------------------------------------------- numbers

def fmt_tokens(x: float, _pos: Any = None) -> str:
    """1,000 -> '1k', 1,048,576 -> '1.05M' (tick labels on token axes)."""
    if x <= 0:
        return "0"
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if x >= size:
            v = x / size
            return f"{v:.3g}{unit}"
    return f"{x:.3g}"


def fmt_num(x: float, _pos: Any = None) -> str:
    """Plain decimal tick labels on log axes (0.001 .. 1000), scientific beyond."""
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:g}"
    e = int(math.floor(math.log10(abs(x))))
    m = x / 10**e
    return f"1e{e}" if abs(m - 1) < 1e-9 else f"{m:g}e{e}"


def fmt_s(v: float | None) -> str:
    """A duration with its unit ('-' when missing or not finite)."""
    from simkit.units import fmt_seconds

    return "-" if v is None or not np.isfinite(v) else fmt_seconds(v)


def fmt_ratio(r: float) -> str:
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def fmt_usd(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:,.4g} USD{unit}"


def plain_value(v: Any) -> str:
    """A setting's value in a label: whole floats as integers, thousands separated."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return basename(v) if isinstance(v, str) and ("/" in v or "\\" in v) else str(v)


def short_key(key: str) -> str:
    """'workload.prompt_tokens.value' -> 'prompt_tokens.value', 'model.attention' ->
    'attention': the dotted key without its section."""
    parts = key.split(".")
    return ".".join(parts[1:]) if len(parts) > 1 else key


#: table-column labels of settings a search or sweep commonly varies
_COLUMN_LABELS = {"hardware.name": "GPU", "hardware.gpus_per_replica": "TP",
                  "hardware.engine": "engine", "serving.max_batch": "max batch",
                  "serving.scheduler": "scheduler", "serving.chunk_tokens": "chunk",
                  "serving.scheduler_steps": "steps/round",
                  "model.kv_dtype": "KV dtype", "model.weight_dtype": "weights",
                  "model.attention": "attention"}


def column_label(key: str) -> str:
    """A short header for a dotted key in a narrow table column."""
    return _COLUMN_LABELS.get(key) or short_key(key).replace("_", " ")


def pq(summary: dict, metric: str, q: str = "p99") -> str:
    """A percentile of a summary's distribution, formatted."""
    v = summary.get(metric)
    return fmt_s(v.get(q) if isinstance(v, dict) else None)


# --------------------------------------------------------------------------- log axes

class ReadableLogLocator(LogLocator):
    """Major ticks on a log axis that always label a few values: decades when the axis
    spans many, 1-2-5 steps within them when it spans one or two, 1-1.5-2-3-5-7 when it
    spans less than one (matplotlib's default leaves such an axis with one tick or none)."""

    def tick_values(self, vmin, vmax):
        if vmin > vmax:
            vmin, vmax = vmax, vmin
        if not (vmin > 0 and np.isfinite(vmin) and np.isfinite(vmax)):
            return super().tick_values(vmin, vmax)
        span = math.log10(vmax / vmin) if vmax > vmin else 0.0
        subs = (1.0,) if span > 2.5 else (1.0, 2.0, 5.0) if span > 0.8 else \
            (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
        self._subs = np.array(subs)  # what LogLocator.set_params(subs=...) stores
        ticks = super().tick_values(vmin, vmax)
        inside = ticks[(ticks >= vmin * 0.999) & (ticks <= vmax * 1.001)]
        return inside if len(inside) >= 2 else ticks


def log_axis(ax, axis: str = "both", tokens_x: bool = False) -> None:
    """Log scale with readable major ticks and plain labels; no minor labels."""
    if axis in ("x", "both"):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ReadableLogLocator(base=10, numticks=12))
        ax.xaxis.set_major_formatter(FuncFormatter(fmt_tokens if tokens_x else fmt_num))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if axis in ("y", "both"):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ReadableLogLocator(base=10, numticks=12))
        ax.yaxis.set_major_formatter(FuncFormatter(fmt_num))
        ax.yaxis.set_minor_formatter(NullFormatter())


# --------------------------------------------------------------------------- words

def describe_arch(arch) -> str:
    """'window (w = 4096); KV cache bf16, weights bf16', or for a mixed stack
    '62 layers: 52 window(1024) + 10 full; KV cache bf16, weights bf16'."""
    dtypes = f"; KV cache {arch.kv_dtype}, weights {arch.weight_dtype}"
    if arch.expert_weight_dtype not in (None, arch.weight_dtype):
        dtypes += f" (routed experts {arch.expert_weight_dtype})"
    if arch.stack is not None and arch.attention == "hybrid":
        extra = [f"{arch.kv_share} layers share a KV cache"] if arch.kv_share > 1 else []
        return arch.describe() + (" (" + ", ".join(extra) + ")" if extra else "") + dtypes
    parts = [arch.attention]
    extra = []
    for key, label in (("window", "w"), ("chunk", "c"), ("global_tokens", "g"),
                       ("memory_slots", "m"), ("segment_tokens", "s")):
        v = getattr(arch, key)
        if v is not None:
            extra.append(f"{label} = {v:,}")
    if arch.attention_every > 1:
        extra.append(f"1 layer in {arch.attention_every} attention, rest SSM")
    if arch.kv_share > 1:
        extra.append(f"{arch.kv_share} layers share a KV cache")
    if extra:
        parts.append("(" + ", ".join(extra) + ")")
    return " ".join(parts) + dtypes


def describe_lengths(spec) -> str:
    """A token-length distribution in words."""
    d = spec.dist
    if d == "fixed":
        text = f"fixed {spec.value:,}"
    elif d == "uniform":
        text = f"uniform {spec.low:,}..{spec.high:,}"
    elif d == "lognormal":
        text = f"lognormal (median {spec.median:,.0f}, sigma {spec.sigma:g})"
    elif d == "empirical":
        text = f"empirical from {basename(spec.path)}" + (f" [{spec.column}]"
                                                           if spec.column else "") \
            + (", each from its prompt's row" if spec.paired else "")
    else:
        text = "as recorded in the arrival trace"
    clip = []
    if spec.min > 1:
        clip.append(f"min {spec.min:,}")
    if spec.max is not None:
        clip.append(f"max {spec.max:,}")
    return text + (f", clipped to {' / '.join(clip)}" if clip else "") + " tokens"


def describe_arrival(a) -> str:
    if a.process == "trace":
        rate = f", rescaled to {a.rate:g} req/s" if a.rate is not None else \
            " at its recorded timing"
        return f"trace {basename(a.path)}{rate}"
    if a.process == "gamma":
        return f"gamma, {a.rate:g} req/s, cv {a.cv:g}"
    if a.process == "burst":
        return "all at t = 0"
    return f"{a.process}, {a.rate:g} req/s"


def describe_workload_arrivals(w) -> str:
    """How requests are sent: the arrival process, and a client's concurrency cap."""
    text = describe_arrival(w.arrival)
    cap = getattr(w, "max_concurrency", None)
    if cap is not None:
        text += f", at most {cap:,} unanswered at once (a closed loop)"
    return text


def basename(p: str | None) -> str:
    """A path's last part (reports never show where files live on this machine)."""
    if not p:
        return "-"
    return p.replace("\\", "/").rsplit("/", 1)[-1]


def model_basename(path: str) -> str:
    """A model's name as a page prints it: a catalog name, or the folder of a config.json
    given by path (its file name would name every Hugging Face model alike)."""
    p = path.replace("\\", "/").rstrip("/").split("/")
    return p[-2] if p[-1] == "config.json" and len(p) > 1 else p[-1]



# --------------------------------------------------------------------------- paths

#: an absolute POSIX path (at least one folder) not glued to a preceding word ("tokens/s",
#: "req/s" and "1/2" are not paths), or a Windows drive path
_ABS_PATH = re.compile(r"(?<![\w.~/-])(?:/[\w.@+-]+)+/[\w.@+-]*|[A-Za-z]:\\[^\s;,)]+")


def scrub_paths(text: str, base_dir: str | None = None) -> str:
    """`text` with absolute paths replaced: under `base_dir` (the scenario's folder) by the
    path relative to it, elsewhere by the file's name. A report shows no absolute path."""
    if "/" not in text and "\\" not in text:
        return text
    base = (str(base_dir).rstrip("/") + "/") if base_dir else None

    def repl(m: re.Match) -> str:
        p = m.group(0)
        if base and p.startswith(base):
            return p[len(base):]
        return basename(p) or p
    return _ABS_PATH.sub(repl, text)
