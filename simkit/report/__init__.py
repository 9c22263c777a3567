"""PDF reports: what a scenario costs, drawn from every layer below.

- `pages`: one module per section (title, cost model, scaling, roofline, simulation,
  configuration search, capacity plan, sweeps, calibration, retention, assumptions), each
  with its data gatherer (plain data from the layers below) beside its page (plain data in,
  `matplotlib.figure.Figure` out, no pyplot);
- `layout`: the shared page layout (A4 page, measured text flow, tables, colours);
- `formats`: number formats, readable log-axis ticks, words for settings, path scrubbing;
- `costlayer`: what the report asks of the cost layer (architecture, step model);
- `gather`: calls every section's gatherer (`ReportData`);
- `pdf`: `build_report(scenario, out_path, ...)` assembles the pages into one
  byte-reproducible PDF (and optional PNGs), written atomically.

Import the submodules; this package imports nothing heavy on its own.
"""


def build_report(*args, **kwargs):
    """See `simkit.report.pdf.build_report`."""
    from simkit.report.pdf import build_report as _build

    return _build(*args, **kwargs)


__all__ = ["build_report"]
