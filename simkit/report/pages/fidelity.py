"""The information-retention page (`[report] fidelity`): associative recall through the
numpy kernels against context length, per family."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from simkit.report.formats import fmt_tokens
from simkit.report.layout import Flow, kind_color, new_page, page_title
from simkit.report.pages import Progress, say


def fidelity_data(s, *, progress: Progress = None) -> dict[str, Any] | None:
    """Section 8: the associative-recall retention experiment, when `[report] fidelity`.

    The scenario's own window / global tokens / memory slots / segment are used where it
    sets them; the rest of the task (d, pairs, trials, sharpness) is `RecallTask`'s default.
    """
    if not s.report.fidelity:
        return None
    from dataclasses import replace

    from simkit.calibrate.fidelity import DEFAULT_LENGTHS, RecallTask, run_fidelity

    say(progress, "information retention (associative recall)")
    task = RecallTask()
    m = s.model
    task = replace(task, **{k: v for k, v in (
        ("window", m.window), ("global_tokens", m.global_tokens),
        ("memory_slots", m.memory_slots), ("segment", m.segment_tokens)) if v is not None})
    lengths = s.report.fidelity_lengths or DEFAULT_LENGTHS
    return run_fidelity(lengths=lengths, seed=s.seed, task=task).to_dict()

def fidelity_figure(fd: dict) -> Figure:
    """Recall vs context length per family (`FidelityResult.to_dict()`), with its task."""
    fig = new_page()
    task = fd["task"]
    page_title(fig, "Information retention",
                "associative recall through the numpy kernels, vs context length")
    ax = fig.add_axes((0.12, 0.54, 0.8, 0.34))
    x = np.asarray(fd["lengths"], dtype=float)
    for fam in fd["recall"]:
        y = np.asarray(fd["recall"][fam])
        e = np.asarray(fd["stderr"][fam])
        ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=3, lw=1.4, label=fam,
                    color=kind_color(fam))
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
    f = Flow(fig, top=0.46)
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
