"""The speculative-decoding page ([serving.speculative]): when a draft pays, by batch size
and acceptance rate.

Each cell is a closed batch: `b` requests arrive at once with the scenario's mean prompt
length and `ANSWER_TOKENS`-token answers, decoded together, with and without the draft (the
scenario's draft and k, each acceptance rate alpha in turn: the swept values of
"serving.speculative.acceptance", else `DEFAULT_ALPHAS`). The ratio of mean TPOTs says
whether speculation pays (< 1). Expected tokens per iteration follow Leviathan et al.
2023, arXiv:2211.17192, eq. 1 (the cost model's page prints it); the simulated ones are
beside them.

At batch 1 a decode step reads the weights for one token; the verification of k + 1 costs
about the same step, so the gain is about E[tokens], less the draft's steps. As the batch
grows, (k + 1) x b tokens per verification make it compute-bound and it costs more than
k + 1 plain steps' worth of weight reads: the gain shrinks, and where verification costs
more than E[tokens] plain steps it is gone (the crossover). What stays cheap per token at
large batches -- per-sequence fixed costs and cache reads, paid once per verification for
E[tokens] tokens -- keeps the crossover far out for long contexts and high alpha (as
MagicDec, Chen et al. 2024, arXiv:2408.11049, reports for long contexts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simkit.report.formats import log_axis, model_basename
from simkit.report.layout import SLO_COLOR, new_page, note, page_title
from simkit.report.pages import Progress, say

DEFAULT_ALPHAS = (0.05, 0.3, 0.5, 0.7, 0.8, 0.9)
BATCHES = (1, 4, 16, 64, 256)
ANSWER_TOKENS = 128
ALPHA_KEY = "serving.speculative.acceptance"


@dataclass
class SpecData:
    draft: str
    k: int
    prompt: int
    ideal: bool
    hardware: str
    batches: list[int]
    alphas: list[float]
    plain_tpot_s: list[float]  # per batch
    ratio: list[list[float]]  # [alpha][batch]: speculative TPOT / plain TPOT
    tokens_per_step: list[list[float | None]]  # simulated, iterations that drafted all k
    expected: list[float]  # eq. 1 per alpha
    crossover: list[float | None]  # batch where the ratio crosses 1 (interpolated), per alpha
    run: dict[str, Any] = field(default_factory=dict)  # the scenario's own run's figures
    answer: list[str] = field(default_factory=list)


def _closed_batch(s, b: int, prompt: int, alpha: float | None):
    from simkit.sim import simulate

    kv = {"workload.requests": b, "workload.arrival.process": "fixed",
          "workload.arrival.rate": 1e9, "workload.prompt_tokens.dist": "fixed",
          "workload.prompt_tokens.value": prompt, "workload.output_tokens.dist": "fixed",
          "workload.output_tokens.value": ANSWER_TOKENS,
          "workload.sessions": None, "workload.tenants": None,
          "workload.system_prompt_tokens": 0,
          "serving.max_batch": max(b, 1), "serving.replicas": 1,
          "serving.disaggregation": None, "serving.prefix_caching": False}
    if alpha is None:
        kv["serving.speculative"] = None
    else:
        kv.update({"serving.speculative.acceptance": alpha,
                   "serving.speculative.acceptance_lengths": None})
    return simulate(s.with_(**kv)).summary


def speculative_data(s, *, progress: Progress = None, run_summary: dict | None = None
                     ) -> SpecData | None:
    sp = getattr(s.serving, "speculative", None)
    if sp is None:
        return None
    from simkit.costs.speculative import expected_tokens
    from simkit.plan.capacity import typical_request

    base = s.at_point({}) if len(s.sweep) else s
    alphas = sorted(set(float(a) for a in s.sweep[ALPHA_KEY])) if ALPHA_KEY in s.sweep \
        else list(DEFAULT_ALPHAS)
    prompt = max(1, int(round(typical_request(s)[0])))
    batches = [b for b in BATCHES if b <= max(1, int(s.serving.max_batch))] or [1]
    plain, ratio, tps = [], [], []
    total = len(batches) * (1 + len(alphas))
    i = 0
    for b in batches:
        i += 1
        say(progress, f"speculative decoding [{i}/{total}]: batch {b} without the draft")
        plain.append(float(_closed_batch(base, b, prompt, None)["tpot_s"]["mean"]))
    for a in alphas:
        row, trow = [], []
        for j, b in enumerate(batches):
            i += 1
            say(progress, f"speculative decoding [{i}/{total}]: batch {b}, alpha {a:g}")
            sm = _closed_batch(base, b, prompt, a)
            row.append(float(sm["tpot_s"]["mean"]) / plain[j])
            trow.append(sm["speculative"]["tokens_per_full_step"])
        ratio.append(row)
        tps.append(trow)
    cross = [_crossing(batches, r) for r in ratio]
    d = SpecData(draft=model_basename(sp.draft), k=int(sp.tokens), prompt=prompt,
                 ideal=bool(s.hardware.ideal),
                 hardware=s.hardware.name.replace("\\", "/").rsplit("/", 1)[-1],
                 batches=batches, alphas=alphas, plain_tpot_s=plain, ratio=ratio,
                 tokens_per_step=tps, expected=[expected_tokens(a, int(sp.tokens))
                                                for a in alphas],
                 crossover=cross, run=dict((run_summary or {}).get("speculative") or {}))
    d.answer = answer(d)
    return d


def _crossing(batches: list[int], ratio: list[float]) -> float | None:
    """The batch where the ratio first rises through 1 (log-linear interpolation)."""
    for i in range(1, len(batches)):
        r0, r1 = ratio[i - 1], ratio[i]
        if r0 < 1.0 <= r1:
            x0, x1 = np.log(batches[i - 1]), np.log(batches[i])
            return float(np.exp(x0 + (1.0 - r0) / (r1 - r0) * (x1 - x0)))
    return None


def answer(d: SpecData) -> list[str]:
    out = []
    helps = [a for a, r in zip(d.alphas, d.ratio) if r[0] < 1.0]
    never = [a for a, r in zip(d.alphas, d.ratio) if r[0] >= 1.0]
    b0 = d.batches[0]
    if helps:
        best = min(range(len(d.alphas)), key=lambda i: d.ratio[i][0])
        out.append(f"Speculative decoding with {d.draft} (k = {d.k}) on {d.hardware}: at "
                   f"batch {b0} it cuts TPOT to {d.ratio[best][0]:.2f}x of plain decoding at "
                   f"alpha = {d.alphas[best]:g} (E[tokens] = {d.expected[best]:.2f}); it pays "
                   f"at batch {b0} for alpha >= {min(helps):g}"
                   + (f", not below ({', '.join(f'{a:g}' for a in never)})." if never else
                      "."))
    else:
        out.append(f"Speculative decoding with {d.draft} (k = {d.k}) never pays at the "
                   "acceptance rates tried.")
    cross = [(a, c) for a, c in zip(d.alphas, d.crossover) if c is not None]
    if cross:
        out.append("The gain vanishes as the batch grows (verification turns compute-bound): "
                   + ", ".join(f"alpha {a:g} at batch ~{c:.0f}" for a, c in cross) + ".")
    keeps = [a for a, r in zip(d.alphas, d.ratio) if all(x < 1.0 for x in r)]
    if keeps:
        out.append(f"For alpha >= {min(keeps):g} it still pays at batch {d.batches[-1]}: "
                   "per-sequence fixed costs and cache reads are paid once per verification "
                   "for E[tokens] tokens.")
    if d.run.get("tokens_per_step") is not None:
        out.append(f"At the scenario's own load: {d.run['tokens_per_step']:.3g} tokens per "
                   f"decode step (eq. 1: {d.run['expected_tokens_per_step']:.3g}), the draft "
                   f"{d.run['draft_time_fraction']:.0%} of the busy time.")
    return out


def speculative_figure(d: SpecData) -> Figure:
    fig = new_page()
    page_title(fig, "Speculative decoding: when it pays",
               f"draft {d.draft}, k = {d.k}, prompts of {d.prompt:,} tokens, answers of "
               f"{ANSWER_TOKENS}; {d.hardware}"
               + (" (ideal roofline)" if d.ideal else "") + "; closed batches")
    gs = fig.add_gridspec(2, 2, left=0.1, right=0.96, top=0.89, bottom=0.42, hspace=0.4,
                          wspace=0.3)
    ax = fig.add_subplot(gs[0, :])
    for i, (a, r) in enumerate(zip(d.alphas, d.ratio)):
        ax.plot(d.batches, r, "-o", ms=3.5, lw=1.3, color=f"C{i}", label=f"alpha = {a:g}")
    ax.axhline(1.0, color=SLO_COLOR, lw=0.9, ls="--")
    log_axis(ax, "x")
    ax.set_xlabel("batch size (sequences decoding together)", fontsize=8.5)
    ax.set_ylabel("TPOT with / without the draft", fontsize=8.5)
    ax.set_title("Speculative TPOT relative to plain decoding (below 1: it pays)",
                 fontsize=9.5, loc="left")
    ax.legend(fontsize=7, ncol=3, frameon=False)
    ax.grid(True, color="#e5e5e5", lw=0.6)
    ax.tick_params(labelsize=8)
    hm = fig.add_subplot(gs[1, 0])
    r = np.asarray(d.ratio, dtype=float)
    im = hm.imshow(r, aspect="auto", cmap="RdYlGn_r", vmin=0.0, vmax=2.0, origin="lower")
    hm.set_xticks(range(len(d.batches)), [str(b) for b in d.batches])
    hm.set_yticks(range(len(d.alphas)), [f"{a:g}" for a in d.alphas])
    for (i, j), v in np.ndenumerate(r):
        hm.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    hm.set_xlabel("batch size", fontsize=8.5)
    hm.set_ylabel("acceptance alpha", fontsize=8.5)
    hm.set_title("TPOT ratio, batch x acceptance", fontsize=9.5, loc="left")
    hm.tick_params(labelsize=8)
    fig.colorbar(im, ax=hm, fraction=0.05)
    tp = fig.add_subplot(gs[1, 1])
    aa = np.linspace(0, 0.95, 60)
    from simkit.costs.speculative import expected_tokens

    tp.plot(aa, [expected_tokens(a, d.k) for a in aa], color="#333333", lw=1.2,
            label="eq. 1: (1 - a^(k+1)) / (1 - a)")
    sim = [np.nanmean([x for x in row if x is not None]) if any(x is not None for x in row)
           else np.nan for row in d.tokens_per_step]
    tp.plot(d.alphas, sim, "o", color="C3", ms=4, label="simulated")
    tp.set_xlabel("acceptance alpha", fontsize=8.5)
    tp.set_ylabel("tokens per iteration", fontsize=8.5)
    tp.set_title("Expected tokens per iteration", fontsize=9.5, loc="left")
    tp.legend(fontsize=7, frameon=False)
    tp.grid(True, color="#e5e5e5", lw=0.6)
    tp.tick_params(labelsize=8)
    lines = list(d.answer)
    lines.append(
        "An iteration runs the draft k times (its own cost model on the same GPUs, without "
        "the per-step and per-sequence fixed costs, which the iteration pays once) and then "
        "one verification of k + 1 tokens per sequence on the target, timed as a prompt "
        "chunk of k + 1 tokens after the cached ones (with the logits of all k + 1). Each "
        "sequence then emits its sampled accepted drafts + 1.")
    note(fig, lines, top=0.36, size=8)
    return fig
