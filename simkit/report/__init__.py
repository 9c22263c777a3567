"""PDF reports: what a scenario costs, drawn from every layer below.

- `data`: gathers the numbers each section needs (cost model, scaling, roofline, simulation,
  capacity plan, sweeps, calibration, assumptions) into plain data;
- `figures`: pure functions, plain data in, `matplotlib.figure.Figure` out (no pyplot);
- `pdf`: `build_report(scenario, out_path, ...)` assembles the pages into one
  byte-reproducible PDF (and optional PNGs), written atomically.

Import the submodules; this package imports nothing heavy on its own.
"""


def build_report(*args, **kwargs):
    """See `simkit.report.pdf.build_report`."""
    from simkit.report.pdf import build_report as _build

    return _build(*args, **kwargs)


__all__ = ["build_report"]
