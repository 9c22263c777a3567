"""Shared page layout of the report: the A4 page, measured text flow, titles, notes, tables
and the colours every page uses, in one place.

Figures are built without pyplot (no global state): each page is a `Figure` with an Agg
canvas, so text can be measured before it is placed. `Flow` lays text out top-down,
wrapping paragraphs to the page width and shrinking a formula that would run off the page;
a formula that mathtext cannot parse is shown as sympy's plain text instead.
"""

from __future__ import annotations

from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

A4_IN = (8.27, 11.69)

GIB = 2.0**30

#: one colour per attention kind, the same on every page
KIND_COLORS = {"full": "#1f77b4", "window": "#ff7f0e", "sparse": "#2ca02c",
               "linear": "#d62728", "memory": "#9467bd", "ssm": "#8c564b", "mla": "#e377c2"}
METRIC_LABELS = {"ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "end-to-end"}
METRIC_COLORS = {"ttft_s": "#1f77b4", "tpot_s": "#d62728", "e2e_s": "#2ca02c"}


#: measured text widths (Agg, hinted) run a few per cent short of the PDF's: wrap earlier
WRAP_SAFETY = 0.95


#: the SLO line and the marks of points that miss it, on every chart
SLO_COLOR = "#000000"
MISS_COLOR = "#d62728"


def kind_color(kind: str) -> str:
    return KIND_COLORS.get(kind, "#333333")


def new_page() -> Figure:
    """A blank A4 portrait page with an Agg canvas (for text measurement)."""
    fig = Figure(figsize=A4_IN, dpi=110)  # = the PNG resolution: measured as drawn
    FigureCanvasAgg(fig)
    return fig



# --------------------------------------------------------------------------- text layout

def mathtext_ok(s: str) -> bool:
    """Whether matplotlib mathtext parses `$s$`."""
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(f"${s}$")
        return True
    except (ValueError, RuntimeError):
        return False


class Flow:
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
        self.fig.add_artist(hline(self.left, self.right, self.y + lh * 0.1))
        for r in rows:
            row(r)
        self.fig.add_artist(hline(self.left, self.right, self.y + lh * 0.1))

    @property
    def full(self) -> bool:
        return self.y < self.bottom


def hline(x0: float, x1: float, y: float):
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], color="#888888", lw=0.6)


def page_title(fig: Figure, title: str, subtitle: str = "") -> None:
    fig.text(0.08, 0.962, title, fontsize=15, weight="bold", va="baseline")
    if subtitle:
        flow = Flow(fig)
        size = 9.0
        width = (flow.right - flow.left) * WRAP_SAFETY
        w = flow._size(subtitle, size)[0]
        if w > width:  # one line under the title: shrink to fit, within reason
            size = max(6.5, size * width / w)
            if flow._size(subtitle, size)[0] > width:
                lines = flow.wrap(subtitle, size, flow.right - flow.left)
                subtitle = lines[0] + " ..."
        fig.text(0.08, 0.943, subtitle, fontsize=size, color="#444444", va="baseline")


#: the lowest a page's text may reach: the footer (`simkit.report.pdf`) sits below
NOTE_BOTTOM = 0.045


def note(fig: Figure, lines: Sequence[str], top: float = 1.0, size: float = 8,
         bottom: float | None = None) -> float:
    """Explanatory paragraphs on a chart page, flowing down from `top` (figure fraction);
    with `bottom`, as low as they can go while ending at `bottom` (their wrapped height
    measured), but never above `top`. Returns where they end."""
    flow = Flow(fig, top=top)
    gap = 0.003
    if bottom is not None:
        width = flow.right - flow.left
        height = sum(len(flow.wrap(ln, size, width)) * flow.line_height(size) + gap
                     for ln in lines)
        flow.y = min(top, bottom + height)
    for ln in lines:
        flow.text(ln, size=size, color="#222222")
        flow.space(gap)
    return flow.y



# --------------------------------------------------------------------------- text pages

def text_pages(title: str, sections: Sequence[tuple[str, Sequence[str]]],
               subtitle: str = "", size: float = 8.8) -> list[Figure]:
    """Headed paragraphs (assumptions and sources, notices), continued on as many pages as
    they need: a paragraph that would reach below the footer (`NOTE_BOTTOM`) starts the next
    page, titled "`title` (continued)", and a heading never ends a page alone."""
    pages: list[Figure] = []

    def new_flow() -> Flow:
        fig = new_page()
        if pages:
            page_title(fig, f"{title} (continued)")
        else:
            page_title(fig, title, subtitle)
        pages.append(fig)
        return Flow(fig, top=0.93, bottom=NOTE_BOTTOM)

    f = new_flow()
    for head, paras in sections:
        head_h = 0.010 + f.line_height(11)
        for k, p in enumerate(paras or [""]):
            need = len(f.wrap(p, size, f.right - f.left)) * f.line_height(size) if p else 0
            if k == 0:
                need += head_h
            if f.y - need < f.bottom and f.y < 0.92:  # (a fresh page takes it anyway)
                f = new_flow()
            if k == 0:
                f.heading(head, size=11)
            if p:
                f.text(p, size=size)
                f.space(0.004)
        f.space(0.006)
    return pages

