"""The report's pages as pure functions: plain data in, `matplotlib.figure.Figure` out.

No pyplot and no global state: each function builds a `Figure` directly (A4 portrait, Agg
canvas for text measurement) from the dataclasses of `simkit.report.data`. Text pages are
laid out by `_Flow`, which measures every line it places, wraps paragraphs to the page width
and shrinks a formula that would run off the page; a formula that mathtext cannot parse is
shown as sympy's plain text instead.

Units in every axis label; sizes in binary units (GiB), rates SI.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

A4_IN = (8.27, 11.69)
GIB = 2.0**30

#: one colour per attention kind, the same on every page
KIND_COLORS = {"full": "#1f77b4", "window": "#ff7f0e", "sparse": "#2ca02c",
               "linear": "#d62728", "memory": "#9467bd", "ssm": "#8c564b", "mla": "#e377c2"}
METRIC_LABELS = {"ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "end-to-end"}
METRIC_COLORS = {"ttft_s": "#1f77b4", "tpot_s": "#d62728", "e2e_s": "#2ca02c"}


#: measured text widths (Agg, hinted) run a few per cent short of the PDF's: wrap earlier
WRAP_SAFETY = 0.95


def _kc(kind: str) -> str:
    return KIND_COLORS.get(kind, "#333333")


def new_page() -> Figure:
    """A blank A4 portrait page with an Agg canvas (for text measurement)."""
    fig = Figure(figsize=A4_IN, dpi=110)  # = the PNG resolution: measured as drawn
    FigureCanvasAgg(fig)
    return fig


# --------------------------------------------------------------------------- number formats

def fmt_tokens(x: float, _pos: Any = None) -> str:
    """1,000 -> '1k', 1,048,576 -> '1M' (tick labels on token axes)."""
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


def _fmt_s(v: float | None) -> str:
    from simkit.units import fmt_seconds

    return "-" if v is None or not np.isfinite(v) else fmt_seconds(v)


def _log_axis(ax, axis: str = "both", tokens_x: bool = False) -> None:
    if axis in ("x", "both"):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(fmt_tokens if tokens_x else fmt_num))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if axis in ("y", "both"):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
        ax.yaxis.set_major_formatter(FuncFormatter(fmt_num))
        ax.yaxis.set_minor_formatter(NullFormatter())


# --------------------------------------------------------------------------- text layout

def mathtext_ok(s: str) -> bool:
    """Whether matplotlib mathtext parses `$s$`."""
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(f"${s}$")
        return True
    except (ValueError, RuntimeError):
        return False


class _Flow:
    """Places text top-down on a page, measuring each line (figure-fraction coordinates)."""

    def __init__(self, fig: Figure, top: float = 0.95, left: float = 0.08,
                 right: float = 0.94, bottom: float = 0.05):
        self.fig = fig
        self.y = top
        self.left, self.right, self.bottom = left, right, bottom
        self.renderer = fig.canvas.get_renderer()
        self.W = fig.bbox.width
        self.H = fig.bbox.height

    # measurement ---------------------------------------------------------------
    def _size(self, text: str, size: float, math_: bool = False,
              weight: str = "normal", family: str = "sans-serif") -> tuple[float, float]:
        prop = FontProperties(size=size, weight=weight, family=family)
        w, h, d = self.renderer.get_text_width_height_descent(
            text, prop, ismath=bool(math_))
        dpi_scale = self.fig.dpi / 72.0
        return w / self.W, max(h, size * dpi_scale) / self.H

    def wrap(self, text: str, size: float, width: float, weight: str = "normal",
             family: str = "sans-serif") -> list[str]:
        """Greedy word wrap of `text` to `width` (figure fraction), with a margin for the
        PDF's unhinted glyph widths."""
        width *= WRAP_SAFETY
        out = []
        for para in str(text).split("\n"):
            words = para.split(" ")
            line = ""
            for w in words:
                cand = w if not line else line + " " + w
                if self._size(cand, size, weight=weight, family=family)[0] <= width or not line:
                    line = cand
                else:
                    out.append(line)
                    line = w
            out.append(line)
        return out

    # placement -----------------------------------------------------------------
    def space(self, frac: float) -> None:
        self.y -= frac

    def line_height(self, size: float) -> float:
        return 1.35 * size / 72.0 / self.fig.get_figheight()

    def text(self, text: str, size: float = 9.5, weight: str = "normal", indent: float = 0.0,
             color: str = "black", family: str = "sans-serif", style: str = "normal",
             width: float | None = None) -> None:
        width = width if width is not None else self.right - self.left - indent
        for ln in self.wrap(text, size, width, weight, family):
            self.y -= self.line_height(size)
            self.fig.text(self.left + indent, self.y, ln, fontsize=size, weight=weight,
                          color=color, family=family, style=style, va="baseline")

    def heading(self, text: str, size: float = 13) -> None:
        self.space(0.006)
        self.text(text, size=size, weight="bold")
        self.space(0.004)

    def math(self, latex: str, plain: str, size: float = 10.5, indent: float = 0.02,
             suffix: str = "", min_size: float = 5.5, plain_suffix: str = "") -> None:
        """One display formula (`suffix`: mixed text after it, e.g. its Piecewise
        condition); shrunk to fit the width, else sympy's plain text."""
        avail = self.right - self.left - indent
        s = f"${latex}$" + (f"   {suffix}" if suffix else "")
        try:
            ok = mathtext_ok(latex)
            w = self._size(s, size, math_=True)[0] if ok else 0.0
        except ValueError:  # the mixed suffix did not parse
            ok = False
        if ok:
            fs = size
            if w > avail:
                fs = max(min_size, size * avail / w * 0.98)
                w = self._size(s, fs, math_=True)[0]
            if w <= avail:
                h = max(self.line_height(fs) * 1.25,
                        self._size(s, fs, math_=True)[1] * 1.15)
                self.y -= h
                self.fig.text(self.left + indent, self.y, s, fontsize=fs, va="baseline")
                return
        tail = plain_suffix or suffix.replace("$", "")
        self.text(plain + (f"   ({tail})" if tail else ""), size=min(size, 8.5),
                  indent=indent, family="monospace")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]],
              cols: Sequence[float], size: float = 8.0, align: Sequence[str] | None = None,
              math_cols: Sequence[int] = ()) -> None:
        """A table; `cols` are column widths as fractions of the text width."""
        total = self.right - self.left
        xs = [self.left]
        for c in cols[:-1]:
            xs.append(xs[-1] + c * total)
        align = align or ["left"] * len(cols)
        lh = self.line_height(size)

        def row(cells, weight="normal"):
            wrapped = []
            for i, c in enumerate(cells):
                if i in math_cols and weight == "normal":
                    wrapped.append([c])
                else:
                    wrapped.append(self.wrap(str(c), size, cols[i] * total * 0.96, weight))
            n = max(len(w) for w in wrapped)
            for k in range(n):
                self.y -= lh
                for i, w in enumerate(wrapped):
                    if k < len(w):
                        x = xs[i] if align[i] == "left" else xs[i] + cols[i] * total * 0.96
                        self.fig.text(x, self.y, w[k], fontsize=size, weight=weight,
                                      ha="left" if align[i] == "left" else "right",
                                      va="baseline")
            self.y -= lh * 0.25

        if any(str(h) for h in header):
            row(header, "bold")
        else:
            self.y -= lh * 0.3
        self.fig.add_artist(_hline(self.left, self.right, self.y + lh * 0.1))
        for r in rows:
            row(r)
        self.fig.add_artist(_hline(self.left, self.right, self.y + lh * 0.1))

    @property
    def full(self) -> bool:
        return self.y < self.bottom


def _hline(x0: float, x1: float, y: float):
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], color="#888888", lw=0.6)


def _page_title(fig: Figure, title: str, subtitle: str = "") -> None:
    fig.text(0.08, 0.962, title, fontsize=15, weight="bold", va="baseline")
    if subtitle:
        flow = _Flow(fig)
        size = 9.0
        width = (flow.right - flow.left) * WRAP_SAFETY
        w = flow._size(subtitle, size)[0]
        if w > width:  # one line under the title: shrink to fit, within reason
            size = max(6.5, size * width / w)
            if flow._size(subtitle, size)[0] > width:
                lines = flow.wrap(subtitle, size, flow.right - flow.left)
                subtitle = lines[0] + " ..."
        fig.text(0.08, 0.943, subtitle, fontsize=size, color="#444444", va="baseline")


def _note(fig: Figure, lines: Sequence[str], top: float, size: float = 8) -> float:
    """Explanatory paragraphs on a chart page, flowing down from `top` (figure fraction);
    returns where they end."""
    flow = _Flow(fig, top=top)
    for ln in lines:
        flow.text(ln, size=size, color="#222222")
        flow.space(0.003)
    return flow.y


# --------------------------------------------------------------------------- 1. title

def title_page(t, contents: Sequence[str]) -> Figure:
    """Scenario name and question, the answer in brief, the setup, the contents."""
    fig = new_page()
    f = _Flow(fig, top=0.95)
    f.text("simkit report", size=11, color="#555555")
    f.text(t.name, size=20, weight="bold")
    f.space(0.006)
    if t.question:
        f.text(t.question, size=13, style="italic")
    f.space(0.012)
    f.heading("The answer in brief", size=12)
    for a in t.answer:
        if a.startswith("    "):
            f.text(a.strip(), size=8.8, indent=0.03)
        else:
            f.text("-  " + a, size=9.5)
        f.space(0.002)
    f.space(0.01)
    f.heading("Setup", size=12)
    f.table(["", ""], [(k, v) for k, v in t.rows], cols=[0.17, 0.83], size=8.5)
    f.space(0.012)
    f.heading("Contents", size=12)
    for i, c in enumerate(contents, 1):
        f.text(f"{i:>2}.  {c}", size=9)
    f.space(0.012)
    f.text(f"simkit {t.version}; seed {t.seed}. Every number in this report comes from the "
           "scenario file and simkit's cost models, simulator and planner; the same scenario "
           "and version give the same bytes (no dates are recorded).", size=8,
           color="#444444")
    return fig


# --------------------------------------------------------------------------- 2. cost model

def cost_formulas_page(c) -> Figure:
    """The formulas that matter for the scenario's architecture, symbolic and numeric."""
    fig = new_page()
    _page_title(fig, "The cost model",
                f"{c.model}, {c.arch}. Prefill time {c.big_o_time}, cache {c.big_o_cache} "
                "in the context length n.")
    f = _Flow(fig, top=0.925)
    f.text("Symbolic (sympy) expressions of the whole model, then with the model's numbers. "
           "n = prompt tokens of a prefill; t = context length at a decode step. A "
           "multiply-add is 2 FLOPs; causal attention counts n(n+1)/2 query-key pairs."
           + (f" Prefill: {c.prefill_note}." if c.prefill_note else ""), size=8.5,
           color="#333333")
    for item in c.formulas:
        f.space(0.006)
        f.text(f"{item['title']} [{item['unit']}]", size=9.5, weight="bold")
        for ln in item["lines"]:
            f.math(ln["latex"], ln["plain"], size=10.5, suffix=_cond(ln),
                   plain_suffix=_cond_plain(ln))
        for ln in item["numeric_lines"]:
            f.math(ln["latex"], ln["plain"], size=9.5, indent=0.05, suffix=_cond(ln),
                   plain_suffix=_cond_plain(ln))
    if c.compared:
        f.space(0.012)
        f.heading("The compared architectures: one layer's token mixing and cache", size=11)
        for i, k in enumerate(c.compared):
            if f.y < 0.05 + 0.03 * (1 + len(k["lines"])):
                f.text(f"({len(c.compared) - i} more: see the table on the next page)",
                       size=8, color="#444444")
                break
            f.space(0.004)
            f.text(f"{k['kind']}: {k['big_o']}" + (f" ({k['note']})" if k["note"] else ""),
                   size=9.5, weight="bold")
            for ln in k["lines"]:
                f.math(ln["latex"], ln["plain"], size=10, suffix=_cond(ln),
                       plain_suffix=_cond_plain(ln))
    return fig


def _cond_plain(ln: dict) -> str:
    c = ln.get("condition") or ""
    return "" if not c else ("otherwise" if c == "otherwise" else f"for {c}")


def _cond(ln: dict) -> str:
    if not ln.get("condition_latex"):
        return ""
    if ln["condition_latex"] == "otherwise":
        return "otherwise"
    return f"for ${ln['condition_latex']}$"


def cost_tables_page(c) -> Figure:
    """The parameters, weights and cache per token, costs at chosen lengths, big-O."""
    fig = new_page()
    _page_title(fig, "The cost model: parameters and sizes",
                f"{c.model}, {c.arch}. Source: {c.model_source}"[:150])
    f = _Flow(fig, top=0.925)
    f.heading("Parameters of the formulas", size=11)
    rows = []
    for s in c.symbols:
        v = s["value"]
        rows.append([f"${s['latex']}$" if mathtext_ok(s["latex"]) else s["name"],
                     s["meaning"], "-" if v is None else f"{v:,.6g}"])
    f.table(["symbol", "meaning", "value"], rows, cols=[0.14, 0.56, 0.30], size=8.5,
            math_cols=(0,))
    f.space(0.01)
    f.heading("Weights and cache", size=11)
    f.table(["", ""], c.sizes, cols=[0.55, 0.45], size=8.5)
    f.space(0.01)
    f.heading("Costs at chosen context lengths (one sequence)", size=11)
    t = c.lengths_table
    f.table(t["header"], t["rows"], cols=[0.11, 0.11, 0.14, 0.10, 0.14, 0.13, 0.11, 0.16],
            size=8, align=["right"] * 8)
    for n in t["notes"]:
        f.text(n, size=7.5, color="#444444")
    f.space(0.01)
    f.heading("The compared architectures", size=11)
    rows = [[k, bt, bc, f"${lx}$" if mathtext_ok(lx) else plain]
            for k, bt, bc, lx, plain in c.kinds_big_o]
    f.table(["architecture", "prefill time", "cache held", "one layer's cache (bytes)"],
            rows, cols=[0.25, 0.15, 0.13, 0.47], size=8.5, math_cols=(3,))
    f.text("Big-O in the context length n (w window, g global tokens, m memory slots, "
           "s segment); a constant-state cache is O(1).", size=7.5, color="#444444")
    return fig


# --------------------------------------------------------------------------- 3. scaling

def scaling_figure(sc) -> Figure:
    """Prefill time, decode time per token and cache bytes vs context (log-log)."""
    fig = new_page()
    _page_title(fig, "Scaling with context length",
                f"{sc.model} on {sc.hardware}: the scenario's architecture "
                f"({sc.kinds[0]}) and the alternatives it is compared with")
    gs = fig.add_gridspec(3, 1, left=0.12, right=0.95, top=0.905, bottom=0.255, hspace=0.45)
    x = sc.lengths
    panels = [
        ("prefill", "Prefill time of one prompt", "seconds", sc.prefill_s),
        ("decode", f"Decode time per generated token (solid: batch 1; dashed: batch "
                   f"{sc.decode_batch}, step time / {sc.decode_batch})", "seconds per token",
         sc.decode_s),
        ("cache", "Cache held by one sequence", "GiB", None),
    ]
    axes = []
    for i, (key, title, ylabel, series) in enumerate(panels):
        ax = fig.add_subplot(gs[i])
        axes.append(ax)
        for k in sc.kinds:
            lw = 2.4 if k == sc.kinds[0] else 1.4
            y = sc.cache_bytes[k] / GIB if key == "cache" else series[k]
            ax.plot(x, y, color=_kc(k), lw=lw, label=sc.labels[k],
                    zorder=3 if k == sc.kinds[0] else 2)
            if key == "decode":
                ax.plot(x, sc.decode_batch_s_per_token[k], color=_kc(k), lw=1.0, ls="--")
        _log_axis(ax, tokens_x=True)
        ax.set_title(title, fontsize=9.5, loc="left")
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.set_xlabel("context length (tokens)", fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="major", color="#dddddd", lw=0.6)
        ax.axvline(sc.model_max_context, color="#777777", lw=0.8, ls=":")
        # crossovers of the scenario's kind with each alternative
        for j, cx in enumerate(sorted(sc.crossovers.get(key, []), key=lambda c: c["length"])):
            yv = cx["value"] / GIB if key == "cache" else cx["value"]
            if yv <= 0:
                continue
            ax.plot([cx["length"]], [yv], marker="o", ms=5, mfc="white", mec="black",
                    mew=1.0, zorder=5)
            ax.annotate(fmt_tokens(cx["length"]), (cx["length"], yv),
                        textcoords="offset points", xytext=(5, -11 if j % 2 == 0 else 5),
                        fontsize=7)
    ax = axes[2]
    cap = sc.kv_capacity_bytes / GIB
    ax.axhline(cap, color="black", lw=1.0, ls="--")
    fits = [f"{k} fits {m:,} tokens" for k, m in sc.max_context.items() if m is not None]
    ax.annotate(f"KV memory of one replica: {cap:.3g} GiB"
                + (f" (one sequence: {'; '.join(fits)})" if fits else ""),
                (x[0], cap), textcoords="offset points", xytext=(2, 4), fontsize=7.5)
    for k in sc.kinds:
        m = sc.max_context.get(k)
        if m is not None and x[0] <= m <= x[-1]:
            ax.plot([m], [cap], marker="v", color=_kc(k), ms=7, zorder=6)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, max(hi, cap * 8))  # room for the budget label
    axes[0].legend(fontsize=7.5, loc="upper left", frameon=False)
    lines = [f"Dotted vertical line: {sc.model}'s trained context "
             f"({sc.model_max_context:,} tokens); beyond it the curves are what-ifs of the "
             "cost model. Open circles: crossovers, where the scenario's "
             f"{sc.kinds[0]} curve crosses an alternative (labelled with that length). "
             "Triangles: the longest context whose cache fits the KV memory."]
    cx_txt = []
    for key, name in (("prefill", "prefill time"), ("decode", "decode time (batch 1)"),
                      ("cache", "cache")):
        for cx in sc.crossovers.get(key, []):
            cx_txt.append(f"{name} of {cx['a']} = {cx['b']} at {cx['length']:,} tokens")
    if cx_txt:
        lines.append("Crossovers: " + "; ".join(cx_txt) + ".")
    lines.append("Times are roofline estimates (compute vs memory bound, with the profile's "
                 "efficiencies and fixed step overhead); cache = bytes held for one sequence "
                 "at that context (constant-state kinds stay flat).")
    _note(fig, lines, top=0.205)
    return fig


# --------------------------------------------------------------------------- 4. roofline

def _fmt_ai(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def roofline_figure(r) -> Figure:
    """The hardware's roofs with the scenario's prefill and decode steps placed on them."""
    fig = new_page()
    _page_title(fig, "Roofline",
                f"{r.gpus} x {r.hardware}: attainable FLOP/s = min(compute roof, bandwidth x "
                "arithmetic intensity)")
    ax = fig.add_axes((0.13, 0.40, 0.82, 0.50))
    xs = np.geomspace(0.1, 1e5, 400)
    ax.plot(xs, np.minimum(r.peak_flops_per_s, r.peak_bytes_per_s * xs), color="black",
            lw=1.8, label=f"datasheet roofs: {r.peak_flops_per_s / 1e12:,.4g} TFLOP/s, "
                          f"{r.peak_bytes_per_s / 1e9:,.4g} GB/s")
    if not r.ideal:
        ax.plot(xs, np.minimum(r.effective_flops_per_s, r.effective_bytes_per_s * xs),
                color="#666666", lw=1.2, ls="--",
                label=f"with the profile's efficiencies: "
                      f"{r.effective_flops_per_s / 1e12:,.4g} TFLOP/s, "
                      f"{r.effective_bytes_per_s / 1e9:,.4g} GB/s")
    ridge = r.peak_flops_per_s / r.peak_bytes_per_s
    ax.axvline(ridge, color="#999999", lw=0.7, ls=":")
    ax.annotate(f"ridge {ridge:.0f} FLOP/byte", (ridge, r.peak_flops_per_s / 30),
                textcoords="offset points", xytext=(4, 0), fontsize=7.5, color="#555555")
    markers = {"prefill": "^", "decode": "o"}
    cols = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#ff7f0e", "#d62728", "#8c564b",
            "#e377c2"]
    for i, p in enumerate(r.points):
        ai = p["flops"] / p["bytes"]
        ax.plot([ai], [p["flops_per_s"]], marker=markers.get(p["kind"], "s"), ms=8,
                color=cols[i % len(cols)], ls="none",
                label=f"{p['label']}: {_fmt_ai(ai)} FLOP/byte, {_fmt_s(p['time_s'])}, "
                      f"{p['bound']}-bound")
    _log_axis(ax)
    ax.set_xlim(0.1, 1e5)
    ax.set_ylim(r.peak_flops_per_s / 1e5, r.peak_flops_per_s * 3)
    ax.set_xlabel("arithmetic intensity (FLOPs / bytes moved)", fontsize=9)
    ax.set_ylabel("FLOP/s (achieved by the step, or attainable)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="#e0e0e0", lw=0.6)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(0.0, -0.09), frameon=False)
    _note(fig, [
        "A step's arithmetic intensity is its FLOPs over the bytes it moves (weights read "
        "once per step, plus the KV cache read and written). Left of the ridge a step is "
        "bound by memory bandwidth, right of it by compute. Decode at small batch reads all "
        "the weights for a handful of tokens, so it sits far left; prefill multiplies every "
        "weight by many tokens and sits right of the ridge.",
        "Markers show the achieved rate (the step's FLOPs / its modelled time, which also "
        "counts the fixed step overhead), so they sit at or under the dashed roof.",
    ], top=0.16)
    return fig


# --------------------------------------------------------------------------- 5. simulation

def latency_figure(sim) -> Figure:
    """Latency CDFs (TTFT, TPOT, end-to-end) with their SLOs, and the summary table."""
    fig = new_page()
    sm = sim.summary
    _page_title(fig, "Simulation: latency",
                f"{sm['requests_arrived']:,} requests simulated "
                f"({sm['simulated_seconds']:.4g} s of serving); distributions over the "
                f"{sm['requests_completed']:,} completed")
    gs = fig.add_gridspec(3, 1, left=0.12, right=0.95, top=0.905, bottom=0.40, hspace=0.55)
    for i, m in enumerate(("ttft_s", "tpot_s", "e2e_s")):
        ax = fig.add_subplot(gs[i])
        v = np.sort(np.asarray(sim.latencies[m], dtype=np.float64))
        if v.size:
            y = np.arange(1, v.size + 1) / v.size
            ax.step(v, y, where="post", color=METRIC_COLORS[m], lw=1.5)
            pos = v[v > 0]
            slo_m = sim.slo.get(m)
            top = max(pos.max(), slo_m or 0) if pos.size else 0
            if pos.size and top / pos.min() > 5:  # log x: the tail and a far SLO both show
                _log_axis(ax, "x")
        else:
            ax.text(0.5, 0.5, "no completed requests", transform=ax.transAxes, ha="center")
        st = sm.get(m) or {}
        for q, ls in (("p50", ":"), ("p99", "--")):
            if st.get(q) is not None:
                ax.axvline(st[q], color="#555555", lw=0.8, ls=ls)
        slo = sim.slo.get(m)
        if slo is not None:
            ax.axvline(slo, color="black", lw=1.6)
            ax.annotate(f"SLO p99 <= {slo:g} s", (slo, 0.05), textcoords="offset points",
                        xytext=(-4, 0), ha="right", fontsize=7.5)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("fraction of requests", fontsize=8.5)
        ax.set_xlabel(f"{METRIC_LABELS[m]} (seconds)", fontsize=8.5)
        ax.set_title(f"{METRIC_LABELS[m]}: p50 {_fmt_s(st.get('p50'))} (dotted), p99 "
                     f"{_fmt_s(st.get('p99'))} (dashed)", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
    f = _Flow(fig, top=0.345)
    rows = []
    for m, name in (("ttft_s", "time to first token"), ("tpot_s", "time per output token"),
                    ("e2e_s", "end-to-end"), ("queue_wait_s", "queue wait")):
        st = sm.get(m) or {}
        rows.append([name] + [_fmt_s(st.get(q)) for q in ("mean", "p50", "p90", "p99")]
                    + [f"{sim.slo[m]:g} s" if m in sim.slo else "-"])
    f.table(["latency", "mean", "p50", "p90", "p99", "p99 SLO"], rows,
            cols=[0.30, 0.14, 0.14, 0.14, 0.14, 0.14], size=8.5,
            align=["left"] + ["right"] * 5)
    f.space(0.01)
    from simkit.units import fmt_bytes

    good = sm.get("goodput_requests_per_s")
    kvf = sm.get("kv_useful_fraction")
    f.table(["run", ""], [
        ["requests arrived / completed / rejected / in flight",
         f"{sm['requests_arrived']:,} / {sm['requests_completed']:,} / "
         f"{sm['requests_rejected']:,} / {sm.get('requests_in_flight', 0):,}"],
        ["output throughput", f"{(sm.get('throughput_tokens_per_s') or 0):,.0f} tokens/s"],
        ["goodput (requests meeting every SLO)",
         "-" if good is None else f"{good:.4g} requests/s"],
        ["KV peak / capacity", f"{fmt_bytes(sm['kv_peak_bytes'])} / "
                               f"{fmt_bytes(sm['kv_capacity_bytes'])}"],
        ["KV useful fraction (token states / reserved, time-averaged)",
         "-" if kvf is None else f"{kvf:.3f}"],
        ["preemptions", f"{sm['preemptions']:,}"],
    ], cols=[0.6, 0.4], size=8.5)
    return fig


def timeseries_figure(sim) -> Figure:
    """Throughput, batch, KV memory and queue length over simulated time."""
    fig = new_page()
    ts = sim.timeseries
    sm = sim.summary
    _page_title(fig, "Simulation: over time",
                f"sampled at {len(ts['time_s'])} instants; {sm['preemptions']:,} preemptions "
                f"in the run")
    gs = fig.add_gridspec(4, 1, left=0.12, right=0.95, top=0.905, bottom=0.09, hspace=0.5)
    t = ts["time_s"]
    specs = [
        ("tokens_per_s", "Output throughput", "tokens / s", 1.0),
        ("batch_size", "Sequences in the running iteration", "sequences", 1.0),
        ("kv_used_bytes", "KV memory", "GiB",
         1 / GIB),
        ("queue_len", "Requests waiting in the queue", "requests", 1.0),
    ]
    for i, (k, title, ylabel, scale) in enumerate(specs):
        ax = fig.add_subplot(gs[i])
        ax.plot(t, np.asarray(ts[k], dtype=np.float64) * scale, color="#1f77b4", lw=1.0,
                label="reserved")
        if k == "kv_used_bytes":
            ax.plot(t, np.asarray(ts["kv_useful_bytes"]) / GIB, color="#2ca02c", lw=0.7,
                    ls="--", label="holding token states")
            cap = sim.kv_capacity_bytes / GIB
            ax.axhline(cap, color="black", lw=1.0, ls="--")
            ax.annotate(f"capacity {cap:.3g} GiB; peak {sm['kv_peak_bytes'] / GIB:.3g} GiB",
                        (t[0], cap), textcoords="offset points", xytext=(2, -10),
                        fontsize=7.5)
            ax.set_ylim(0, cap * 1.12)
            ax.legend(fontsize=7.5, loc="center right", frameon=False)
        if k == "queue_len":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.set_xlabel("simulated time (s)", fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1)
        if k != "kv_used_bytes":
            ax.set_ylim(bottom=0)
    return fig


# --------------------------------------------------------------------------- 6. capacity

def capacity_figure(p) -> Figure:
    """SLO attainment vs arrival rate (probes), the plan and the architecture comparison."""
    fig = new_page()
    r = p.result
    if r is None:
        _page_title(fig, "Capacity plan", "not made")
        f = _Flow(fig, top=0.9)
        f.text(f"The capacity plan could not be made: {p.error}", size=10)
        return fig
    _page_title(fig, "Capacity plan",
                f"how much load one replica of {r.gpus_per_replica} x {p.hardware} carries "
                "under the SLOs, and what the target load needs")
    has_cmp = bool(r.comparison)
    ax = fig.add_axes((0.12, 0.655, 0.83, 0.25))
    probes = sorted(r.probes, key=lambda q: q.rate_per_s)
    targets = {"ttft_s": p.slo.get("ttft_s"), "tpot_s": p.slo.get("tpot_s"),
               "e2e_s": p.slo.get("e2e_s")}
    attr = {"ttft_s": "ttft_p99_s", "tpot_s": "tpot_p99_s", "e2e_s": "e2e_p99_s"}
    for m, bound in targets.items():
        if bound is None:
            continue
        xs = np.array([q.rate_per_s for q in probes])
        ys = np.array([(getattr(q, attr[m]) or np.nan) / bound for q in probes])
        ax.plot(xs, ys, color=METRIC_COLORS[m], lw=1.2,
                label=f"p99 {METRIC_LABELS[m]} / {bound:g} s")
        met = np.array([q.met for q in probes])
        ax.plot(xs[met], ys[met], "o", color=METRIC_COLORS[m], ms=6)
        ax.plot(xs[~met], ys[~met], "x", color=METRIC_COLORS[m], ms=7, mew=1.5)
    ax.axhline(1.0, color="black", lw=1.2)
    ax.annotate("SLO", (probes[0].rate_per_s if probes else 1, 1.0),
                textcoords="offset points", xytext=(2, 3), fontsize=7.5)
    if r.max_qps > 0:
        ax.axvline(r.max_qps, color="#2ca02c", lw=1.2, ls="--")
        ax.annotate(f"max {r.max_qps:.3g} req/s", (r.max_qps, 0.04),
                    xycoords=("data", "axes fraction"), textcoords="offset points",
                    xytext=(4, 0), fontsize=8, color="#2ca02c")
    _log_axis(ax)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.set_xlabel("arrival rate on one replica (requests / s)", fontsize=8.5)
    ax.set_ylabel("p99 latency / SLO target (<= 1 meets)", fontsize=8.5)
    ax.set_title("SLO attainment vs arrival rate (o: every SLO met at that rate, x: missed)",
                 fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="#e5e5e5", lw=0.6)
    ax.legend(fontsize=7.5, loc="upper left", frameon=False)
    if r.max_qps > 0:
        _replicas_axes(fig, (0.12, 0.45, 0.75, 0.13), r)
    f = _Flow(fig, top=0.385)
    from simkit.units import fmt_bytes

    m = r.metrics or {}

    def p99(k):
        v = m.get(k)
        return _fmt_s(v.get("p99") if isinstance(v, dict) else None)

    rows = [["max load of one replica (SLOs met)",
             f"{r.max_qps:.4g} req/s (bisected to {r.qps_rel_tol:.0%}; cost-model estimate "
             f"{r.analytic_qps:.3g})"]]
    if r.target_qps is not None:
        rows.append(["target load", f"{r.target_qps:g} req/s"])
    rows += [
        ["replicas / GPUs", f"{r.replicas if r.replicas is not None else '-'} / "
                            f"{r.gpus if r.gpus is not None else '-'} "
                            f"({r.gpus_per_replica} per replica)"],
        ["cost", "-" if r.cost_per_hour is None else
         f"{r.cost_per_hour:.4g} USD/h at {r.cost_per_gpu_hour:g} USD per GPU-hour"],
        ["cost per million output tokens", "-" if r.cost_per_million_tokens is None else
         f"{r.cost_per_million_tokens:.4g} USD ("
         f"{r.cost_per_million_total_tokens:.3g} USD per million prompt + output tokens)"],
        ["operating point (simulated)",
         f"{r.operating_rate_per_s:.4g} req/s on {r.replicas} replica(s): p99 TTFT "
         f"{p99('ttft_s')}, TPOT {p99('tpot_s')}, end-to-end {p99('e2e_s')}; SLOs "
         f"{'met' if r.slo.get('met') else 'MISSED'}"],
        ["longest context in the KV budget",
         f"{r.max_context_tokens:,} tokens (limited by the {r.max_context_limited_by}); KV "
         f"memory {fmt_bytes(r.kv_capacity_bytes)} per replica"],
    ]
    f.table(["plan", ""], rows, cols=[0.33, 0.67], size=8.5)
    if has_cmp:
        f.space(0.012)
        f.heading("Architectures for the same workload", size=10.5)
        crow = []
        for c in r.comparison:
            if c.get("error"):
                crow.append([c["attention"], "-", "-", "-", "error: " + c["error"]])
            else:
                crow.append([c["attention"], f"{c['max_qps']:.4g}",
                             f"{c['replicas']}", f"{c['gpus']}",
                             "-" if c.get("cost_per_million_tokens") is None
                             else f"{c['cost_per_million_tokens']:.3g}"])
        f.table(["attention", "max req/s per replica", "replicas", "GPUs",
                 "USD / M output tokens"], crow, cols=[0.2, 0.22, 0.14, 0.14, 0.30],
                size=8.5)
        if r.best_attention:
            f.text(f"Fewest GPUs: {r.best_attention}.", size=9, weight="bold")
    return fig


def _replicas_axes(fig: Figure, rect, r) -> None:
    """GPUs (and USD/h) needed vs load, from the measured max load of one replica."""
    ax = fig.add_axes(rect)
    top = max(2 * (r.target_qps or 0), 4 * r.max_qps)
    x = np.linspace(0, top, 600)[1:]
    reps = np.ceil(x / r.max_qps - 1e-9)
    gpus = reps * r.gpus_per_replica
    ax.step(x, gpus, where="post", color="#1f77b4", lw=1.3,
            label="ceil(load / max load per replica) x GPUs per replica")
    if r.target_qps is not None and r.gpus is not None:
        ax.plot([r.target_qps], [r.gpus], "o", color="#2ca02c", ms=7,
                label=f"target {r.target_qps:g} req/s: {r.gpus} GPUs, verified by simulation")
    ax.set_xlim(0, top)
    ax.set_ylim(0, max(gpus.max(), r.gpus or 0) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("total load (requests / s)", fontsize=8.5)
    ax.set_ylabel("GPUs", fontsize=8.5)
    ax.set_title("GPUs and cost for a load", fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#e5e5e5", lw=0.6)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    ax2 = ax.twinx()
    ax2.set_ylim(0, ax.get_ylim()[1] * r.cost_per_gpu_hour)
    ax2.set_ylabel("USD / hour", fontsize=8.5)
    ax2.tick_params(labelsize=8)


# --------------------------------------------------------------------------- 7. sweeps

SWEEP_METRICS = (
    ("ttft_s.p99", "p99 TTFT", "seconds", 1.0),
    ("tpot_s.p99", "p99 TPOT", "seconds", 1.0),
    ("e2e_s.p99", "p99 end-to-end", "seconds", 1.0),
    ("kv_peak_bytes", "KV memory peak", "GiB", 1 / GIB),
)


def short_key(key: str) -> str:
    from simkit.report.data import short_key as _sk

    return _sk(key)


def _label_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def sweep_figure(sw, key: str) -> Figure:
    """One swept dimension: each metric vs the key's values, one line per setting of the
    other keys."""
    fig = new_page()
    others = [k for k in sw.keys if k != key]
    _page_title(fig, f"Sweep: {key}",
                "each metric at every value of this key"
                + (f"; one line per setting of {', '.join(others)}" if others else ""))
    gs = fig.add_gridspec(2, 2, left=0.11, right=0.96, top=0.89, bottom=0.2, hspace=0.35,
                          wspace=0.32)
    vals = sw.values[key]
    pos = {repr(v): i for i, v in enumerate(vals)}
    groups: dict[tuple, list[dict]] = {}
    for r in sw.rows:
        g = tuple((k, repr(r.get(k))) for k in others)
        groups.setdefault(g, []).append(r)
    handles = []
    for j, (spec, name, unit, scale) in enumerate(SWEEP_METRICS):
        ax = fig.add_subplot(gs[j // 2, j % 2])
        for gi, (g, rows) in enumerate(groups.items()):
            pts = sorted((pos[repr(r.get(key))], r.get(spec)) for r in rows
                         if repr(r.get(key)) in pos and r.get(spec) is not None
                         and not r.get("error"))
            if not pts:
                continue
            label = ", ".join(f"{short_key(k)} = {_label_value(r0)}"
                              for (k, _), r0 in zip(g, [rows[0].get(k) for k in others])) \
                or "all points"
            color = _kc(rows[0].get("model.attention")) if "model.attention" in others \
                else f"C{gi % 10}"
            h, = ax.plot([p for p, _ in pts], [v * scale for _, v in pts], marker="o",
                         color=color, lw=1.4, label=label)
            if j == 0:
                handles.append(h)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels([_label_value(v) for v in vals], fontsize=8)
        ax.set_xlim(-0.3, len(vals) - 0.7)
        ys = [ln.get_ydata() for ln in ax.get_lines()]
        flat = np.concatenate(ys) if ys else np.array([])
        if flat.size and flat.min() > 0 and flat.max() / flat.min() > 30:
            _log_axis(ax, "y")
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(name, fontsize=9.5, loc="left")
        ax.set_ylabel(unit, fontsize=8.5)
        ax.set_xlabel(key, fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
    if handles and others:
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.08, 0.095),
                   fontsize=8, frameon=False, ncol=2)
    errs = [r for r in sw.rows if r.get("error")]
    if errs:
        _note(fig, [f"{len(errs)} point(s) failed: " + "; ".join(
            str(r["error"]) for r in errs[:3])], top=0.075)
    return fig


def sweep_table_page(sw) -> Figure:
    """Every grid point with its key metrics."""
    fig = new_page()
    _page_title(fig, "Sweep: every point", f"{len(sw.rows)} grid points; simulated metrics "
                "of each (one replica at the scenario's load)")
    f = _Flow(fig, top=0.925)
    from simkit.units import fmt_bytes

    header = [short_key(k) for k in sw.keys] + [
        "p99 TTFT", "p99 TPOT", "p99 e2e", "tokens/s", "KV peak", "done"]
    rows = []
    for r in sw.rows:
        if r.get("error"):
            rows.append([_label_value(r.get(k)) for k in sw.keys]
                        + ["error: " + str(r["error"])[:60], "", "", "", "", ""])
            continue
        rows.append([_label_value(r.get(k)) for k in sw.keys] + [
            _fmt_s(r.get("ttft_s.p99")), _fmt_s(r.get("tpot_s.p99")),
            _fmt_s(r.get("e2e_s.p99")),
            f"{(r.get('throughput_tokens_per_s') or 0):,.0f}",
            fmt_bytes(r.get("kv_peak_bytes") or 0),
            f"{r.get('requests_completed', 0)}/{r.get('requests_arrived', 0)}"])
    nk = len(sw.keys)
    kw = min(0.16, 0.4 / max(nk, 1))
    rest = (1 - kw * nk) / 6
    f.table(header, rows, cols=[kw] * nk + [rest] * 6, size=8,
            align=["right"] * (nk + 6))
    return fig


# --------------------------------------------------------------------------- 8. calibration

def calibration_figure(cal) -> Figure:
    """A calibrated profile's fits: per-family exponents with CIs and rates vs GEMM."""
    fig = new_page()
    _page_title(fig, "Calibration", f"profile {cal.hardware}, measured by simkit calibrate")
    kern = cal.table.get("kernels") or {}
    fams = list(kern)
    if fams:
        ax = fig.add_axes((0.12, 0.62, 0.36, 0.26))
        ex = [kern[k].get("exponent", np.nan) for k in fams]
        lo = [kern[k].get("exponent_ci_low", np.nan) for k in fams]
        hi = [kern[k].get("exponent_ci_high", np.nan) for k in fams]
        yerr = np.array([[e - a for e, a in zip(ex, lo)], [b - e for e, b in zip(ex, hi)]])
        ax.errorbar(range(len(fams)), ex, yerr=np.abs(yerr), fmt="o", color="#1f77b4",
                    capsize=3)
        ax.set_xticks(range(len(fams)))
        ax.set_xticklabels(fams, fontsize=7.5, rotation=30, ha="right")
        ax.set_ylabel("exponent of prefill time in n", fontsize=8.5)
        ax.set_title("Measured scaling exponent (95% CI)", fontsize=9, loc="left")
        ax.axhline(2, color="#999999", lw=0.7, ls=":")
        ax.axhline(1, color="#999999", lw=0.7, ls=":")
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax2 = fig.add_axes((0.60, 0.62, 0.35, 0.26))
        fr = [kern[k].get("fraction_of_gemm", np.nan) for k in fams]
        ax2.bar(range(len(fams)), fr, color="#ff7f0e")
        ax2.set_xticks(range(len(fams)))
        ax2.set_xticklabels(fams, fontsize=7.5, rotation=30, ha="right")
        ax2.set_ylabel("fitted FLOP/s / GEMM FLOP/s", fontsize=8.5)
        ax2.set_title("Kernel rate as a fraction of GEMM", fontsize=9, loc="left")
        ax2.tick_params(labelsize=8)
        ax2.grid(True, axis="y", color="#e5e5e5", lw=0.6)
    f = _Flow(fig, top=0.52 if fams else 0.9)
    rows = [[k, f"{v.get('exponent', float('nan')):.3f}",
             f"{v.get('flops_per_s', float('nan')) / 1e9:.3g}",
             f"{v.get('overhead_s', float('nan')) * 1e6:.3g}",
             f"{v.get('heldout_rel_error', float('nan')):.1%}"] for k, v in kern.items()]
    if rows:
        f.table(["family", "exponent", "GFLOP/s (fit)", "overhead (us)",
                 "held-out error"], rows, cols=[0.24, 0.16, 0.2, 0.2, 0.2], size=8.5,
                align=["left"] + ["right"] * 4)
        f.space(0.01)
    scal = [[k, _cal_value(v)] for k, v in cal.table.items() if k != "kernels"]
    scal += [["compute_efficiency (profile)", f"{cal.compute_efficiency:.3g}"],
             ["memory_efficiency (profile)", f"{cal.memory_efficiency:.3g}"],
             ["step_overhead_s (profile)", f"{cal.step_overhead_s:.3g}"]]
    f.table(["measurement", "value"], scal, cols=[0.4, 0.6], size=8)
    f.space(0.01)
    f.text(f"Source: {cal.source}", size=7.5, color="#444444")
    return fig


def fidelity_figure(fd: dict) -> Figure:
    """Recall vs context length per family (`FidelityResult.to_dict()`), with its task."""
    fig = new_page()
    task = fd["task"]
    _page_title(fig, "Information retention",
                "associative recall through the numpy kernels, vs context length")
    ax = fig.add_axes((0.12, 0.54, 0.8, 0.34))
    x = np.asarray(fd["lengths"], dtype=float)
    for fam in fd["recall"]:
        y = np.asarray(fd["recall"][fam])
        e = np.asarray(fd["stderr"][fam])
        ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=3, lw=1.4, label=fam,
                    color=_kc(fam))
    ax.axhline(fd["chance"], color="#777777", ls=":", lw=1)
    ax.text(x[0], fd["chance"], f"  chance = 1/{task['pairs']}", fontsize=7.5,
            va="bottom", color="#555555")
    ax.set_xscale("log")
    ax.set_xticks(x)
    ax.xaxis.set_major_formatter(fmt_tokens)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(x.min() / 1.5, x.max() * 1.5)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("sequence length n (tokens)", fontsize=9)
    ax.set_ylabel("recall (fraction of queries answered)", fontsize=9)
    ax.legend(fontsize=8, loc="center right")
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#e5e5e5", lw=0.6)
    f = _Flow(fig, top=0.46)
    rows = [[fam] + [f"{v:.3f}" for v in fd["recall"][fam]] for fam in fd["recall"]]
    ncol = len(fd["lengths"])
    f.table(["family"] + [fmt_tokens(n) for n in fd["lengths"]], rows,
            cols=[0.3] + [0.7 / ncol] * ncol, size=8.5,
            align=["left"] + ["right"] * len(fd["lengths"]))
    f.space(0.01)
    f.text(f"Task: {task['pairs']} key/value pairs of dimension {task['d']} scattered through "
           f"a sequence of n random tokens; one query for one key at the end; recall = share "
           f"of {task['trials']} queries whose retrieved value is nearest to the right one "
           f"(error bars: binomial standard error). Window w = {task['window']}, "
           f"{task['global_tokens']} global tokens, memory of {task['memory_slots']} slots "
           f"over segments of {task['segment']}; logit sharpness {task['sharpness']:g}; "
           f"seed {fd['seed']}. The kernels are untrained: this measures what each "
           f"architecture can hold, not what a trained model does with it.", size=8,
           color="#333333")
    return fig


def _cal_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# --------------------------------------------------------------------------- 9. text pages

def text_page(title: str, sections: Sequence[tuple[str, Sequence[str]]],
              subtitle: str = "") -> Figure:
    """Headed paragraphs (assumptions and sources, notices)."""
    fig = new_page()
    _page_title(fig, title, subtitle)
    f = _Flow(fig, top=0.93)
    for head, paras in sections:
        f.heading(head, size=11)
        for p in paras:
            f.text(p, size=8.8)
            f.space(0.004)
        f.space(0.006)
    return fig
