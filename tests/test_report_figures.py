"""The report's pure pieces: formula lines and mathtext fallback, number formats, figures
built from hand-made data without pyplot."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from simkit.report import figures as F
from simkit.report.data import formula_lines, latex_of


def test_piecewise_becomes_one_line_per_branch():
    n, w = sp.symbols("n w", positive=True)
    e = 4 * sp.Piecewise((n * (n + 1) / 2, n <= w), (w * (n - w), True))
    lines = formula_lines("F", e)
    assert len(lines) == 2
    assert all(r"\begin{cases}" not in ln["latex"] for ln in lines)
    assert lines[0]["condition_latex"] == r"n \leq w"
    assert lines[1]["condition"] == "otherwise"
    assert all(F.mathtext_ok(ln["latex"]) for ln in lines)


def test_mod_is_made_mathtext_safe():
    n, s = sp.symbols("n s", positive=True, integer=True)
    tex = latex_of(n - sp.Mod(n, s))
    assert r"\bmod" not in tex and F.mathtext_ok(tex)
    assert not F.mathtext_ok(r"n \bmod s")  # why the replacement is needed


def test_unparseable_formula_falls_back_to_plain_text():
    fig = F.new_page()
    flow = F._Flow(fig)
    flow.math(r"\begin{cases} a \\ b \end{cases}", "= plain fallback")
    texts = [t.get_text() for t in fig.texts]
    assert "= plain fallback" in texts
    assert not any("cases" in t for t in texts)


def test_long_formula_is_shrunk_to_fit_the_page():
    fig = F.new_page()
    flow = F._Flow(fig)
    long = " + ".join(f"x_{{{i}}} y_{{{i}}}" for i in range(60))
    flow.math(long, "plain")
    t = fig.texts[-1]
    r = fig.canvas.get_renderer()
    bb = t.get_window_extent(r)
    assert bb.x1 <= fig.bbox.width * flow.right + 1
    assert t.get_fontsize() < 10.5


def test_wrap_keeps_lines_inside_the_width():
    fig = F.new_page()
    flow = F._Flow(fig)
    text = "word " * 200
    flow.text(text, size=9)
    r = fig.canvas.get_renderer()
    assert len(fig.texts) > 5
    for t in fig.texts:
        assert t.get_window_extent(r).x1 <= fig.bbox.width * flow.right + 1


@pytest.mark.parametrize("x, s", [(512, "512"), (1000, "1k"), (4096, "4.1k"),
                                  (1_048_576, "1.05M"), (0, "0")])
def test_fmt_tokens(x, s):
    assert F.fmt_tokens(x) == s


@pytest.mark.parametrize("x, s", [(0.01, "0.01"), (100, "100"), (1e15, "1e15"),
                                  (2.5e12, "2.5e12")])
def test_fmt_num(x, s):
    assert F.fmt_num(x) == s


def test_text_page_is_a_pure_figure():
    from matplotlib.figure import Figure

    fig = F.text_page("Title", [("Head", ["one paragraph", "two"])], subtitle="sub")
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.texts]
    assert "Title" in texts and "Head" in texts and "two" in texts


def test_sweep_figure_one_line_per_other_setting():
    from simkit.report.data import SweepData

    rows = []
    for kind in ("full", "linear"):
        for n in (100, 1000):
            rows.append({"model.attention": kind, "workload.prompt_tokens.value": n,
                         "ttft_s.p99": n * (2 if kind == "full" else 1) * 1e-4,
                         "tpot_s.p99": 0.01, "e2e_s.p99": 1.0, "kv_peak_bytes": n * 1e6})
    sw = SweepData(keys=["model.attention", "workload.prompt_tokens.value"],
                   values={"model.attention": ["full", "linear"],
                           "workload.prompt_tokens.value": [100, 1000]},
                   rows=rows, compare=[])
    fig = F.sweep_figure(sw, "workload.prompt_tokens.value")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2  # one per attention kind
    ys = sorted(tuple(np.round(ln.get_ydata(), 6)) for ln in ax.get_lines())
    assert ys == [(0.01, 0.1), (0.02, 0.2)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "1,000"]


def test_piecewise_condition_renders_as_mathtext_and_falls_back():
    fig = F.new_page()
    flow = F._Flow(fig)
    flow.math("F = 2 n", "= 2*n", suffix=r"for $n \leq w$", plain_suffix="for n <= w")
    flow.math("F = 2 n", "= 2*n", suffix=r"for $n \bmod w$", plain_suffix="for Mod(n, w)")
    texts = [t.get_text() for t in fig.texts]
    assert texts[0] == r"$F = 2 n$   for $n \leq w$"
    assert texts[1] == "= 2*n   (for Mod(n, w))"
