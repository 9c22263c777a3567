"""The report's pure pieces: formula lines and mathtext fallback, number formats and
readable log ticks, path scrubbing, figures built from hand-made data without pyplot."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from simkit.report import formats as Fm
from simkit.report import layout as L
from simkit.report.pages.costmodel import formula_lines, latex_of


def test_piecewise_becomes_one_line_per_branch():
    n, w = sp.symbols("n w", positive=True)
    e = 4 * sp.Piecewise((n * (n + 1) / 2, n <= w), (w * (n - w), True))
    lines = formula_lines("F", e)
    assert len(lines) == 2
    assert all(r"\begin{cases}" not in ln["latex"] for ln in lines)
    assert lines[0]["condition_latex"] == r"n \leq w"
    assert lines[1]["condition"] == "otherwise"
    assert all(L.mathtext_ok(ln["latex"]) for ln in lines)


def test_mod_is_made_mathtext_safe():
    n, s = sp.symbols("n s", positive=True, integer=True)
    tex = latex_of(n - sp.Mod(n, s))
    assert r"\bmod" not in tex and L.mathtext_ok(tex)
    assert not L.mathtext_ok(r"n \bmod s")  # why the replacement is needed


def test_unparseable_formula_falls_back_to_plain_text():
    fig = L.new_page()
    flow = L.Flow(fig)
    flow.math(r"\begin{cases} a \\ b \end{cases}", "= plain fallback")
    texts = [t.get_text() for t in fig.texts]
    assert "= plain fallback" in texts
    assert not any("cases" in t for t in texts)


def test_long_formula_is_shrunk_to_fit_the_page():
    fig = L.new_page()
    flow = L.Flow(fig)
    long = " + ".join(f"x_{{{i}}} y_{{{i}}}" for i in range(60))
    flow.math(long, "plain")
    t = fig.texts[-1]
    r = fig.canvas.get_renderer()
    bb = t.get_window_extent(r)
    assert bb.x1 <= fig.bbox.width * flow.right + 1
    assert t.get_fontsize() < 10.5


def test_wrap_keeps_lines_inside_the_width():
    fig = L.new_page()
    flow = L.Flow(fig)
    text = "word " * 200
    flow.text(text, size=9)
    r = fig.canvas.get_renderer()
    assert len(fig.texts) > 5
    for t in fig.texts:
        assert t.get_window_extent(r).x1 <= fig.bbox.width * flow.right + 1


@pytest.mark.parametrize("x, s", [(512, "512"), (1000, "1k"), (4096, "4.1k"),
                                  (1_048_576, "1.05M"), (0, "0")])
def test_fmt_tokens(x, s):
    assert Fm.fmt_tokens(x) == s


@pytest.mark.parametrize("x, s", [(0.01, "0.01"), (100, "100"), (1e15, "1e15"),
                                  (2.5e12, "2.5e12")])
def test_fmt_num(x, s):
    assert Fm.fmt_num(x) == s


def test_text_page_is_a_pure_figure():
    from matplotlib.figure import Figure

    pages = L.text_pages("Title", [("Head", ["one paragraph", "two"])], subtitle="sub")
    assert len(pages) == 1
    fig = pages[0]
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.texts]
    assert "Title" in texts and "Head" in texts and "two" in texts


def test_long_text_continues_on_the_next_page_above_the_footer():
    # 60 paragraphs of three wrapped lines cannot fit one page: every line is placed, in
    # order, none below the footer's line, and later pages say they continue
    paras = [f"paragraph {i:02d} " + "word " * 60 for i in range(60)]
    pages = L.text_pages("Title", [("Head", paras[:30]), ("Second", paras[30:])])
    assert len(pages) >= 2
    placed = []
    for fig in pages:
        for t in fig.texts:
            assert t.get_position()[1] >= L.NOTE_BOTTOM
            if t.get_text().startswith("paragraph"):
                placed.append(t.get_text()[:12])
    assert placed == [f"paragraph {i:02d}" for i in range(60)]
    assert [t.get_text() for t in pages[1].texts][0] == "Title (continued)"


def test_sweep_figure_one_line_per_other_setting():
    from simkit.report.pages.sweep import SweepData, sweep_figure

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
    fig = sweep_figure(sw, "workload.prompt_tokens.value")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2  # one per attention kind
    ys = sorted(tuple(np.round(ln.get_ydata(), 6)) for ln in ax.get_lines())
    assert ys == [(0.01, 0.1), (0.02, 0.2)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "1,000"]


def test_piecewise_condition_renders_as_mathtext_and_falls_back():
    fig = L.new_page()
    flow = L.Flow(fig)
    flow.math("F = 2 n", "= 2*n", suffix=r"for $n \leq w$", plain_suffix="for n <= w")
    flow.math("F = 2 n", "= 2*n", suffix=r"for $n \bmod w$", plain_suffix="for Mod(n, w)")
    texts = [t.get_text() for t in fig.texts]
    assert texts[0] == r"$F = 2 n$   for $n \leq w$"
    assert texts[1] == "= 2*n   (for Mod(n, w))"


@pytest.mark.parametrize("text, base, expect", [
    ("model /data/proj/scenarios/models/m/config.json", "/data/proj/scenarios",
     "model models/m/config.json"),
    ("trace /elsewhere/traces/azure.csv replayed", "/data/proj", "trace azure.csv replayed"),
    ("tokens/s, req/s and 1/2 stay", None, "tokens/s, req/s and 1/2 stay"),
    ("see scenarios/traces/README.md", None, "see scenarios/traces/README.md"),
    (r"C:\Users\me\profile.toml", None, "profile.toml"),
])
def test_scrub_paths(text, base, expect):
    assert Fm.scrub_paths(text, base) == expect


def test_every_text_of_a_page_is_scrubbed():
    from simkit.report.pdf import scrub_figure

    fig = L.new_page()
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.set_title("from /srv/x/models/a/config.json")
    ax.legend(handles=ax.plot([1], [1], label="/srv/x/t.csv"))
    fig.text(0.1, 0.05, "/srv/x/y/z.toml")
    scrub_figure(fig, "/srv/x")
    from matplotlib.text import Text

    texts = [t.get_text() for t in fig.findobj(Text)]
    assert "from models/a/config.json" in texts and "t.csv" in texts and "y/z.toml" in texts
    assert not any("/srv/" in t for t in texts)


@pytest.mark.parametrize("lo, hi, n_min", [(0.3, 0.9, 3), (2, 60, 4), (1e-3, 1e3, 6)])
def test_log_axes_get_several_labelled_ticks(lo, hi, n_min):
    """Matplotlib's default leaves a log axis spanning under a decade with one tick or
    none; ours labels at least a few, inside the range."""
    loc = Fm.ReadableLogLocator(base=10, numticks=12)
    ticks = [t for t in loc.tick_values(lo, hi) if lo <= t <= hi]
    assert len(ticks) >= n_min
    assert all(Fm.fmt_num(t) for t in ticks)


def test_categorical_sweep_key_is_drawn_as_grouped_bars_with_slo_marks():
    from simkit.report.pages.sweep import SweepData, sweep_figure

    rows = [{"model.attention": kind, "serving.max_batch": b,
             "steady_state.ttft_s.p99": t, "steady_state.tpot_s.p99": 0.01,
             "steady_state.e2e_s.p99": 1.0, "kv_peak_bytes": 1e9}
            for kind, b, t in (("full", 8, 3.0), ("full", 64, 0.5), ("linear", 8, 0.4),
                               ("linear", 64, 0.2))]
    sw = SweepData(keys=["model.attention", "serving.max_batch"],
                   values={"model.attention": ["full", "linear"],
                           "serving.max_batch": [8, 64]},
                   rows=rows, compare=[], slo={"ttft_s": 1.0})
    fig = sweep_figure(sw, "model.attention")
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for c in ax.containers for p in c)
    assert heights == [0.2, 0.4, 0.5, 3.0]  # one bar per point, grouped by batch size
    # the SLO is a horizontal line at 1 s, and the one point above it is marked
    assert any(len(ln.get_ydata()) == 2 and np.allclose(ln.get_ydata(), [1.0, 1.0])
               for ln in ax.get_lines())
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "x" and len(ln.get_ydata())]
    assert [list(m.get_ydata()) for m in marks] == [[3.0]]
