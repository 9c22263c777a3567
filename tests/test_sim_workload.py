"""Arrival processes, length distributions and the trace reader."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest

from simkit.errors import SimkitError, SimkitWarning
from simkit.sim.workload import generate_workload

TRACES = Path(__file__).resolve().parent.parent / "scenarios" / "traces"


def _len(dist="fixed", **kw):
    base = dict(dist=dist, value=None, low=None, high=None, median=None, sigma=None, min=1,
                max=None, path=None, column=None, paired=False)
    base.update(kw)
    return NS(**base)


def _wl(arrival, prompt=None, output=None, requests=1000):
    return NS(requests=requests, arrival=arrival, prompt_tokens=prompt or _len(value=100),
              output_tokens=output or _len(value=10))


def _gen(wl, n=None, seed=0, context=8192, base_dir=None):
    return generate_workload(wl, n_requests=wl.requests if n is None else n,
                             seed=seed, context=context,
                             model_name="m", base_dir=base_dir)


def test_poisson_rate_and_exponential_gaps():
    w = _gen(_wl(NS(process="poisson", rate=4.0, cv=1.0, path=None), requests=20000))
    gaps = np.diff(w.arrival_s)
    # mean 1/rate within 4 standard errors (sd of an exponential gap = its mean)
    assert abs(gaps.mean() - 0.25) < 4 * 0.25 / np.sqrt(len(gaps))
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.05


def test_gamma_coefficient_of_variation():
    w = _gen(_wl(NS(process="gamma", rate=2.0, cv=3.0, path=None), requests=40000))
    gaps = np.diff(w.arrival_s)
    assert abs(gaps.mean() - 0.5) < 0.05 * 0.5
    assert abs(gaps.std() / gaps.mean() - 3.0) < 0.3


def test_fixed_rate():
    w = _gen(_wl(NS(process="fixed", rate=10.0, cv=1.0, path=None), requests=5))
    assert np.allclose(w.arrival_s, [0, 0.1, 0.2, 0.3, 0.4])


def test_same_seed_same_stream_and_different_seed_differs():
    wl = _wl(NS(process="poisson", rate=1.0, cv=1.0, path=None),
             prompt=_len("lognormal", median=500, sigma=1.0), requests=100)
    a, b, c = _gen(wl, seed=5), _gen(wl, seed=5), _gen(wl, seed=6)
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.prompt_tokens, c.prompt_tokens)


def test_lognormal_median_and_clipping():
    wl = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None),
             prompt=_len("lognormal", median=800, sigma=1.0, max=4000, min=16), requests=20000)
    w = _gen(wl)
    p = w.prompt_tokens
    assert p.min() >= 16 and p.max() <= 4000
    assert abs(np.median(p) - 800) < 0.05 * 800


def test_answers_stop_at_the_requests_token_limit():
    """workload.max_new_tokens: an answer drawn at 3-9 tokens under a 6-token limit stops at
    6; the other draws are untouched (same seed, same stream)."""
    wl = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None),
             output=_len("uniform", low=3, high=9), requests=3000)
    free = _gen(wl).output_tokens
    wl.max_new_tokens = 6
    capped = _gen(wl).output_tokens
    assert np.array_equal(capped, np.minimum(free, 6))
    assert free.max() == 9 and capped.max() == 6


def test_uniform_inclusive_bounds():
    wl = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None),
             output=_len("uniform", low=3, high=5), requests=3000)
    o = _gen(wl).output_tokens
    assert set(np.unique(o).tolist()) == {3, 4, 5}


def test_lengths_beyond_context_are_a_what_if_with_one_warning():
    # "what would 30,000-token contracts cost?": lengths past the 8192-token context are
    # drawn as asked (not refused, not clipped) and the user is told once
    wl = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None),
             prompt=_len("lognormal", median=20000, sigma=0.5, max=40000), requests=500)
    with pytest.warns(SimkitWarning, match="prompt_tokens.max 40000 is beyond m's "
                                           "8192-token context: a what-if"):
        w = _gen(wl)
    assert w.prompt_tokens.max() > 8192 and w.prompt_tokens.max() <= 40000
    fixed = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None), prompt=_len(value=30000),
                requests=3)
    with pytest.warns(SimkitWarning, match="value 30000 is beyond"):
        assert _gen(fixed).prompt_tokens.tolist() == [30000] * 3


def test_outputs_cut_at_the_context():
    wl = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None), prompt=_len(value=8000),
             output=_len(value=500), requests=3)
    w = _gen(wl)
    assert np.all(w.prompt_tokens + w.output_tokens - 1 <= 8192)


@pytest.mark.parametrize("name", ["azure_llm_2023_conv.csv", "azure_llm_2023_code.csv"])
def test_trace_replay_with_its_own_columns(name):
    wl = _wl(NS(process="trace", rate=None, cv=1.0, path=str(TRACES / name)),
             prompt=_len("trace"), output=_len("trace"), requests=500)
    w = _gen(wl, context=1_000_000)
    raw = np.genfromtxt(TRACES / name, delimiter=",", names=True, max_rows=500)
    assert np.allclose(w.arrival_s, raw["arrived_at"] - raw["arrived_at"][0])
    assert np.array_equal(w.prompt_tokens, raw["num_prefill_tokens"].astype(int))
    assert np.array_equal(w.output_tokens, raw["num_decode_tokens"].astype(int))


def test_trace_rescaled_to_a_rate_and_simkit_columns(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("arrival_s,prompt_tokens,output_tokens\n0,10,2\n1,20,3\n2,30,4\n3,40,5\n")
    wl = _wl(NS(process="trace", rate=3.0, cv=1.0, path="t.csv"),
             prompt=_len("trace"), output=_len("trace"), requests=8)
    w = _gen(wl, base_dir=tmp_path)
    assert np.allclose(np.diff(w.arrival_s), 1 / 3)  # repeated end to end, rescaled
    assert w.prompt_tokens.tolist() == [10, 20, 30, 40] * 2


def test_empirical_lengths_come_from_the_column():
    wl = _wl(NS(process="fixed", rate=1.0, cv=1.0, path=None),
             prompt=_len("empirical", path=str(TRACES / "arxiv_summarization_lengths.csv"),
                         column="num_prefill_tokens"), requests=2000)
    p = _gen(wl).prompt_tokens
    data = np.genfromtxt(TRACES / "arxiv_summarization_lengths.csv", delimiter=",",
                         names=True)["num_prefill_tokens"]
    assert np.isin(p, data).all()
    assert abs(p.mean() - data.mean()) < 4 * data.std() / np.sqrt(len(p))


def test_paired_answers_come_from_their_prompts_rows(tmp_path):
    """`paired` takes each answer from the row its prompt was drawn from: every request is
    one of the file's (prompt, answer) rows, the prompts are the ones drawn without pairing
    (the same stream), and a file whose answers fall as prompts grow keeps that sign, which
    independent draws lose."""
    f = tmp_path / "rows.csv"
    rows = [(i, 1000 - 2 * i) for i in range(1, 400)]  # correlation -1 by construction
    f.write_text("prompt,answer\n" + "".join(f"{a},{b}\n" for a, b in rows))
    arrival = NS(process="fixed", rate=1.0, cv=1.0, path=None)

    def draw(paired):
        return _gen(_wl(arrival, prompt=_len("empirical", path=str(f), column="prompt"),
                        output=_len("empirical", path=str(f), column="answer", paired=paired),
                        requests=3000))

    p, q = draw(True), draw(False)
    assert set(zip(p.prompt_tokens.tolist(), p.output_tokens.tolist())) <= set(rows)
    assert p.output_tokens.tolist() == [1000 - 2 * a for a in p.prompt_tokens.tolist()]
    assert p.prompt_tokens.tolist() == q.prompt_tokens.tolist()
    # independent draws: |r| below 4 standard errors of zero correlation (1 / sqrt(n))
    assert abs(np.corrcoef(q.prompt_tokens, q.output_tokens)[0, 1]) < 4 / np.sqrt(3000)


def test_missing_trace_file_and_bad_column(tmp_path):
    wl = _wl(NS(process="trace", rate=None, cv=1.0, path="nope.csv"))
    with pytest.raises(SimkitError, match=r"workload.arrival.path: no such file 'nope.csv'"):
        _gen(wl, base_dir=tmp_path)
    f = tmp_path / "bad.csv"
    f.write_text("when,size\n0,1\n")
    wl = _wl(NS(process="trace", rate=None, cv=1.0, path=str(f)))
    with pytest.raises(SimkitError, match="no column 'arrival_s' or 'arrived_at'"):
        _gen(wl)


def test_common_random_numbers_each_component_its_own_stream():
    """A change in one component leaves the others' draws alone (CRN), and a new rate is
    the same arrival pattern compressed in time."""
    lengths = dict(prompt=_len("lognormal", median=500, sigma=1.0),
                   output=_len("uniform", low=1, high=50), requests=300)
    base = _gen(_wl(NS(process="poisson", rate=2.0, cv=1.0, path=None), **lengths), seed=4)
    faster = _gen(_wl(NS(process="poisson", rate=8.0, cv=1.0, path=None), **lengths), seed=4)
    assert np.allclose(faster.arrival_s * 4, base.arrival_s)
    # gamma gaps consume a variable number of underlying draws; the lengths do not move
    bursty = _gen(_wl(NS(process="gamma", rate=2.0, cv=3.0, path=None), **lengths), seed=4)
    assert np.array_equal(bursty.prompt_tokens, base.prompt_tokens)
    assert np.array_equal(bursty.output_tokens, base.output_tokens)
    # another prompt distribution: the arrivals and outputs are untouched
    other = _gen(_wl(NS(process="poisson", rate=2.0, cv=1.0, path=None),
                     prompt=_len("uniform", low=10, high=20),
                     output=lengths["output"], requests=300), seed=4)
    assert np.array_equal(other.arrival_s, base.arrival_s)
    assert np.array_equal(other.output_tokens, base.output_tokens)
    assert not np.array_equal(other.prompt_tokens, base.prompt_tokens)
