"""The report's disaggregation and speculative-decoding pages: their data (small runs), the
answers they state, the speculative expectation on the cost-model page, and that they are
drawn only when the scenario asks."""

from __future__ import annotations

import pytest

from simkit.scenario import scenario_from_dict


def _disagg(repo_root):
    return scenario_from_dict({
        "name": "d", "seed": 4, "model": {"name": "llama-3-8b"},
        "workload": {"requests": 40, "arrival": {"process": "poisson", "rate": 3.0},
                     "prompt_tokens": {"dist": "lognormal", "median": 1000, "sigma": 0.3,
                                       "max": 7000},
                     "output_tokens": {"dist": "fixed", "value": 40}},
        "serving": {"prefix_caching": False, "disaggregation": {
            "prefill_replicas": 1, "decode_replicas": 1, "link": "network",
            "link_bytes_per_s": 5e10, "link_latency_s": 1e-5}},
        "slo": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.03},
        "sweep": {"workload.prompt_tokens.median": [500, 4000],
                  "serving.disaggregation.link_bytes_per_s": [1e9, 5e10]}})


def _spec(repo_root, **serving):
    return scenario_from_dict({
        "name": "s", "seed": 4, "model": {"name": "llama-3-8b"},
        "workload": {"requests": 20, "prompt_tokens": {"dist": "fixed", "value": 200},
                     "output_tokens": {"dist": "fixed", "value": 40}},
        "serving": {"max_batch": 4, "speculative": {
            "draft": "models/llama-3.2-1b/config.json", "tokens": 4, "acceptance": 0.8},
            **serving},
        "sweep": {"serving.speculative.acceptance": [0.05, 0.8]}},
        base_dir=repo_root / "scenarios")


def test_disaggregation_page_compares_equal_gpus_at_each_length_and_link(repo_root):
    from simkit.report.pages.disaggregation import disaggregation_data, disaggregation_figure

    d = disaggregation_data(_disagg(repo_root), requests=30)
    assert d.gpus == 2 and d.lengths == [500.0, 4000.0]
    assert len(d.colocated) == 2
    assert set(d.split) == {"network 1 GB/s per GPU", "network 50 GB/s per GPU"}
    for run in d.split.values():
        assert len(run) == 2 and all(r["transfer_bytes"] > 0 for r in run)
        assert run[1]["transfer_mean_s"] > run[0]["transfer_mean_s"]  # longer prompts
    slow = d.split["network 1 GB/s per GPU"]
    fast = d.split["network 50 GB/s per GPU"]
    assert slow[1]["transfer_mean_s"] > 10 * fast[1]["transfer_mean_s"]
    assert all(r["transfer_bytes"] is None for r in d.colocated)  # the twin is colocated
    assert len(d.answer) == 2 and all("colocated on 2 GPUs" in a for a in d.answer)
    disaggregation_figure(d)


def test_speculative_page_gains_at_batch_one_only_with_good_acceptance(repo_root):
    from simkit.report.pages.speculative import speculative_data, speculative_figure

    d = speculative_data(_spec(repo_root))
    assert d.batches == [1, 4] and d.alphas == [0.05, 0.8]
    lo, hi = d.ratio
    assert lo[0] > 1.0 > hi[0]
    # E[tokens] = 1 + a + a^2 + a^3 + a^4 (Leviathan et al. eq. 1 at k = 4)
    assert d.expected == [pytest.approx(1 + 0.05 + 0.0025 + 0.000125 + 0.00000625),
                          pytest.approx(1 + 0.8 + 0.64 + 0.512 + 0.4096)]
    assert "alpha >= 0.8" in d.answer[0]
    speculative_figure(d)


def test_cost_model_page_prints_the_speculative_expectation(repo_root):
    from simkit.report.pages.costmodel import cost_model_data

    c = cost_model_data(_spec(repo_root), ("full",))
    f = next(x for x in c.formulas if x["title"].startswith("Speculative decoding"))
    assert "eq. 1" in f["title"]
    assert f["lines"][0]["plain"] == "= (1 - alpha**(k + 1))/(1 - alpha)"
    # 1 + 0.8 + 0.64 + 0.512 + 0.4096 = 3.3616
    assert f["numeric_lines"][0]["plain"].endswith("= 3.362")
    assert {r["name"] for r in c.symbols} >= {"alpha", "k"}


def test_pages_only_when_the_scenario_asks(repo_root):
    from simkit.report.pages.disaggregation import disaggregation_data
    from simkit.report.pages.speculative import speculative_data

    plain = scenario_from_dict({"workload": {"requests": 5}})
    assert disaggregation_data(plain) is None and speculative_data(plain) is None
