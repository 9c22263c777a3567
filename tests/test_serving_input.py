"""Bad input in [serving.disaggregation] and [serving.speculative]: one line naming the key,
exit status 2, nothing on stdout (DESIGN.md, "Errors")."""

from __future__ import annotations

import pytest

BASE = """
[model]
name = "llama-3-8b"
[workload]
requests = 5
"""
BIG = BASE.replace("llama-3-8b", "llama-3-70b")

CASES = {
    "zero prefill replicas": ("[serving.disaggregation]\nprefill_replicas = 0\n",
                              "serving.disaggregation.prefill_replicas"),
    "zero decode replicas": ("[serving.disaggregation]\ndecode_replicas = 0\n",
                             "serving.disaggregation.decode_replicas"),
    "network without bandwidth": ("[serving.disaggregation]\nlink = \"network\"\n"
                                  "link_latency_s = 1e-5\n",
                                  "serving.disaggregation.link_bytes_per_s"),
    "zero bandwidth": ("[serving.disaggregation]\nlink = \"network\"\nlink_bytes_per_s = 0\n"
                       "link_latency_s = 1e-5\n", "serving.disaggregation.link_bytes_per_s"),
    "nvlink across GPU kinds": ("[serving.disaggregation]\ndecode_hardware = \"h200\"\n",
                                "serving.disaggregation.link"),
    "TP that does not split the heads": ("[serving.disaggregation]\n"
                                         "decode_gpus_per_replica = 3\n",
                                         "serving.disaggregation.decode_gpus_per_replica"),
    "weights that do not fit the pool": ("[hardware]\ngpus_per_replica = 4\n"
                                         "[serving.disaggregation]\n"
                                         "prefill_gpus_per_replica = 1\n",
                                         "serving.disaggregation.prefill_gpus_per_replica"),
    "unknown pool GPU": ("[serving.disaggregation]\nprefill_hardware = \"h900\"\n",
                         "serving.disaggregation.prefill_hardware"),
    "alpha of one": ("[serving.speculative]\ndraft = \"llama-3.1-8b\"\nacceptance = 1.0\n",
                     "serving.speculative.acceptance"),
    "negative alpha": ("[serving.speculative]\ndraft = \"llama-3.1-8b\"\nacceptance = -0.1\n",
                       "serving.speculative.acceptance"),
    "draft of another vocabulary": ("[serving.speculative]\ndraft = \"llama-2-7b\"\n"
                                    "acceptance = 0.7\n", "serving.speculative.draft"),
    "no draft": ("[serving.speculative]\nacceptance = 0.7\n", "serving.speculative.draft"),
    "lengths of the wrong size": ("[serving.speculative]\ndraft = \"llama-3.1-8b\"\ntokens = 3\n"
                                  "acceptance_lengths = [0.5, 0.5]\n",
                                  "serving.speculative.acceptance_lengths"),
    "lengths not summing to one": ("[serving.speculative]\ndraft = \"llama-3.1-8b\"\ntokens = 1\n"
                                   "acceptance_lengths = [0.5, 0.4]\n",
                                   "serving.speculative.acceptance_lengths"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_and_exit_2(case, tmp_path, run_cli):
    body, key = CASES[case]
    f = tmp_path / "s.toml"
    f.write_text((BIG if "weights" in case else BASE) + body)
    r = run_cli("simulate", f)
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], r.err
    assert "Traceback" not in r.err and r.out == ""


def test_a_valid_disaggregated_speculative_scenario_runs(tmp_path, run_cli):
    f = tmp_path / "s.toml"
    f.write_text(BASE + "[serving.disaggregation]\nlink = \"network\"\n"
                 "link_bytes_per_s = 5e10\nlink_latency_s = 1e-5\n"
                 "[serving.speculative]\ndraft = \"llama-3.1-8b\"\nacceptance = 0.6\n")
    r = run_cli("simulate", f, "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["kv_transfer_bytes"] > 0 and d["speculative"]["tokens"] == 4
