"""Assemble the report: gather the data, draw the pages, write one reproducible PDF.

`build_report(scenario, out_path, *, png_dir=None, progress=False, requests=None)` checks its
arguments, computes everything (`simkit.report.gather.gather`), draws every page (each
section's module in `simkit.report.pages`), renders the PDF (and PNGs) in memory and only
then writes them, each to a temporary file renamed into place: a bad input or a failure
part-way writes nothing, and a reader never sees half a PDF.

No page shows an absolute path: before rendering, every text on every page goes through
`simkit.report.formats.scrub_paths` (paths under the scenario's folder become relative to
it, others their file name).

Reproducible bytes: the PDF metadata has no CreationDate/ModDate and a fixed Producer and
Creator; no page shows a date or a wall-clock time; the simulation and planner are seeded by
the scenario. Same scenario + same simkit (and matplotlib) version -> the same bytes.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simkit.errors import SimkitError

#: resolution of the optional PNG pages (A4 at 110 dpi: about 910 x 1290 pixels)
PNG_DPI = 110


@dataclass
class ReportResult:
    """What `build_report` wrote."""

    path: str
    pages: list[str]  # page titles, in order
    png_paths: list[str] = field(default_factory=list)
    size_bytes: int = 0
    notes: list[str] = field(default_factory=list)  # sections left out, and why

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "page"


def check_output(out_path: str | Path, png_dir: str | Path | None = None) -> Path:
    """Validate -o / --png-dir before any work (nothing is created here)."""
    out = Path(out_path)
    if out.suffix.lower() != ".pdf":
        raise SimkitError(f"-o: the report file must end in .pdf, got {str(out_path)!r}")
    if out.is_dir():
        raise SimkitError(f"-o: {str(out_path)!r} is a folder; give a file name ending in .pdf")
    for parent in out.parents:  # an existing file where a folder must be
        if parent.exists() and not parent.is_dir():
            raise SimkitError(f"-o: {str(parent)!r} is a file, not a folder")
    if png_dir is not None:
        from simkit.outputs import check_output_dir

        check_output_dir(png_dir, "--png-dir")
    return out


def pages_for(d) -> list[tuple[str, Any]]:
    """(title, Figure) for every page after the title page, in report order."""
    from simkit.report.layout import text_pages
    from simkit.report.pages import (calibration, capacity, costmodel, disaggregation,
                                     fidelity, roofline, scaling, search, simulation,
                                     speculative, sweep)

    pages: list[tuple[str, Any]] = [
        ("The cost model", costmodel.cost_formulas_page(d.cost)),
        ("The cost model: parameters and sizes", costmodel.cost_tables_page(d.cost)),
        ("Scaling with context length", scaling.scaling_figure(d.scaling)),
        ("Roofline", roofline.roofline_figure(d.roofline)),
        ("Simulation: latency", simulation.latency_figure(d.simulation)),
        ("Simulation: over time", simulation.timeseries_figure(d.simulation)),
    ]
    if getattr(d, "disaggregation", None) is not None:
        pages.append(("Disaggregation: prefill and decode pools",
                      disaggregation.disaggregation_figure(d.disaggregation)))
    if getattr(d, "speculative", None) is not None:
        pages.append(("Speculative decoding: when it pays",
                      speculative.speculative_figure(d.speculative)))
    if d.search is not None:
        pages.append(("Configuration search", search.search_figure(d.search)))
        pages.append(("Configuration search: ranked", search.search_table_page(d.search)))
    if d.plan is not None:
        pages.append(("Capacity plan", capacity.capacity_figure(d.plan)))
    if d.sweep is not None:
        order = [k for k in d.sweep.compare if k in d.sweep.keys] + \
            [k for k in d.sweep.keys if k not in d.sweep.compare]
        for k in order:
            pages.append((f"Sweep: {k}", sweep.sweep_figure(d.sweep, k)))
        pages.append(("Sweep: every point", sweep.sweep_table_page(d.sweep)))
    if d.calibration is not None:
        pages.append(("Calibration", calibration.calibration_figure(d.calibration)))
    if d.fidelity is not None:
        pages.append(("Information retention", fidelity.fidelity_figure(d.fidelity)))
    title = "Assumptions and sources"
    for i, fig in enumerate(text_pages(title, d.assumptions)):
        pages.append((title + (" (continued)" if i else ""), fig))
    return pages


def scrub_figure(fig, base_dir: str | None) -> None:
    """Every text of a page (titles, labels, ticks, legends, tables) without absolute
    paths."""
    from matplotlib.text import Text

    from simkit.report.formats import scrub_paths

    for t in fig.findobj(Text):
        text = t.get_text()
        clean = scrub_paths(text, base_dir)
        if clean != text:
            t.set_text(clean)


def _footer(fig, scenario_name: str, title: str, i: int, n: int) -> None:
    fig.text(0.08, 0.02, f"simkit report  |  {scenario_name}  |  {title}", fontsize=7,
             color="#777777", va="baseline")
    fig.text(0.94, 0.02, f"page {i} of {n}", fontsize=7, color="#777777", ha="right",
             va="baseline")


def render(d) -> tuple[list[tuple[str, Any]], bytes, list[tuple[str, bytes]]]:
    """Draw every page; return (pages, PDF bytes, [(png name, png bytes)])."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    from simkit import __version__
    from simkit.report.pages.title import title_page

    body = pages_for(d)
    contents = ["Title and the answer in brief"] + [t for t, _ in body]
    pages = [("Title and the answer in brief", title_page(d.title, contents))] + body
    n = len(pages)
    base = getattr(d.scenario, "base_dir", None)
    for i, (title, fig) in enumerate(pages, 1):
        _footer(fig, d.scenario.name, title, i, n)
        scrub_figure(fig, base)
    meta = {"Title": f"simkit report: {d.scenario.name}",
            "Subject": d.scenario.question or d.scenario.name,
            "Author": "simkit", "Creator": f"simkit {__version__}",
            "Producer": f"simkit {__version__} (matplotlib {matplotlib.__version__})",
            "Keywords": "simkit, LLM serving, long context, cost model",
            "CreationDate": None, "ModDate": None}
    buf = io.BytesIO()
    with matplotlib.rc_context({"pdf.compression": 6}):
        with PdfPages(buf, metadata=meta) as pdf:
            for _, fig in pages:
                pdf.savefig(fig)
    pngs = []
    return pages, buf.getvalue(), pngs


def _png_bytes(fig) -> bytes:
    b = io.BytesIO()
    fig.savefig(b, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return b.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def build_report(scenario, out_path: str | Path, *, png_dir: str | Path | None = None,
                 progress: bool = False, requests: int | None = None) -> ReportResult:
    """Write the PDF report of `scenario` (a `Scenario` or a TOML path) to `out_path`.

    `png_dir`: also write every page as PNG there (`NN-title.png`). `requests` overrides the
    requests simulated (the run, each plan probe and each sweep point). `progress`: status
    lines on stderr while long work runs, only when stderr is a terminal.
    """
    from simkit.report.gather import gather
    from simkit.scenario import Scenario, load_scenario

    out = check_output(out_path, png_dir)
    if requests is not None and (not isinstance(requests, int) or isinstance(requests, bool)
                                 or requests <= 0):
        raise SimkitError(f"--requests: must be a positive integer, got {requests!r}")
    s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    d = gather(s, requests=requests, progress=progress)
    pages, pdf_bytes, _ = render(d)
    pngs = []
    if png_dir is not None:
        pngs = [(f"{i:02d}-{_slug(t)}.png", _png_bytes(fig))
                for i, (t, fig) in enumerate(pages, 1)]
    # everything is computed: now write
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, pdf_bytes)
    written = []
    if png_dir is not None:
        pd = Path(png_dir)
        pd.mkdir(parents=True, exist_ok=True)
        for name, data in pngs:
            _write_atomic(pd / name, data)
            written.append(str(pd / name))
    notes = []
    if d.plan is None:
        notes.append("capacity plan: the scenario has no [plan] section and no SLOs")
    elif d.plan.error:
        notes.append(f"capacity plan: {d.plan.error}")
    return ReportResult(path=str(out), pages=[t for t, _ in pages], png_paths=written,
                        size_bytes=len(pdf_bytes), notes=notes)
