"""`simkit simulate`: text, --json, --requests-csv (+ resolved scenario), and bad input
answered with one line and exit status 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simkit.cli import main

pytest.importorskip("simkit.scenario")

TRACES = Path(__file__).resolve().parent.parent / "scenarios" / "traces"

BASE = """
name = "t"
seed = 3
[model]
name = "llama-3-8b"
[hardware]
name = "h100-sxm"
[workload]
requests = 60
arrival = {{ process = "poisson", rate = {rate} }}
prompt_tokens = {{ dist = "lognormal", median = 300, sigma = 1.0, max = {pmax} }}
output_tokens = {{ dist = "uniform", low = 1, high = 80 }}
[serving]
scheduler = "{sched}"
[slo]
ttft_p99_s = 1.0
"""


def _write(tmp_path, rate=5.0, pmax=4000, sched="continuous", extra=""):
    f = tmp_path / "s.toml"
    f.write_text(BASE.format(rate=rate, pmax=pmax, sched=sched) + extra)
    return f


KEYS = ("requests_arrived", "requests_completed", "requests_rejected", "requests_in_flight",
        "simulated_seconds", "throughput_tokens_per_s", "ttft_s", "tpot_s", "e2e_s",
        "queue_wait_s", "goodput_requests_per_s", "kv_peak_bytes", "kv_capacity_bytes",
        "kv_useful_fraction", "preemptions")


def test_json_summary_and_requests_csv(tmp_path, capsys):
    f = _write(tmp_path)
    out_csv = tmp_path / "r.csv"
    assert main(["simulate", str(f), "--json", "--requests-csv", str(out_csv)]) == 0
    s = json.loads(capsys.readouterr().out)
    for k in KEYS:
        assert k in s, k
    for k in ("ttft_s", "tpot_s", "e2e_s", "queue_wait_s"):
        assert set(s[k]) >= {"mean", "p50", "p90", "p99"}
    assert s["requests_arrived"] == 60
    rows = list(csv.DictReader(out_csv.open()))
    # DESIGN.md's columns first and in order, then the session / prefix-cache columns
    assert list(rows[0]) == ["id", "arrival_s", "prompt_tokens", "output_tokens", "start_s",
                             "first_token_s", "finish_s", "preemptions", "status",
                             "session_id", "turn", "tenant", "cached_tokens",
                             "prefill_tokens_computed"]
    for k in ("prefix_hit_rate", "prefill_tokens_computed", "tbt_s"):
        assert k in s, k
    assert len(rows) == 60
    done = [r for r in rows if r["status"] == "completed"]
    assert len(done) == s["requests_completed"]
    # the CSV's times reproduce the summary's TTFT mean exactly (floats written with repr)
    ttft = [float(r["first_token_s"]) - float(r["arrival_s"]) for r in done]
    assert sum(ttft) / len(ttft) == pytest.approx(s["ttft_s"]["mean"], rel=1e-12)
    assert (tmp_path / "r.csv.scenario.toml").is_file()


def test_the_admission_policy_is_named(tmp_path, capsys):
    f = _write(tmp_path)
    assert main(["simulate", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["admission"] == "greedy"
    assert main(["simulate", str(f)]) == 0
    assert "admission" not in capsys.readouterr().out.splitlines()[0]
    assert main(["simulate", str(f), "--set", "serving.admission=no_evict"]) == 0
    assert "paged KV, no-evict admission, engine" in capsys.readouterr().out.splitlines()[0]


def test_the_watermark_is_named(tmp_path, capsys):
    f = _write(tmp_path)
    assert main(["simulate", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["watermark"] == 0.0
    assert main(["simulate", str(f)]) == 0
    assert "watermark" not in capsys.readouterr().out.splitlines()[0]
    assert main(["simulate", str(f), "--set", "serving.watermark=0.02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["watermark"] == 0.02
    assert main(["simulate", str(f), "--set", "serving.watermark=0.02"]) == 0
    assert "paged KV, watermark 0.02, engine" in capsys.readouterr().out.splitlines()[0]


def test_seed_option_changes_and_reproduces(tmp_path, capsys):
    f = _write(tmp_path)
    outs = []
    for seed in ("1", "1", "2"):
        assert main(["simulate", str(f), "--json", "--seed", seed]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1]
    assert outs[0]["ttft_s"] != outs[2]["ttft_s"]


def test_text_summary(tmp_path, capsys):
    assert main(["simulate", str(_write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "TTFT" in out and "goodput" in out and "KV memory" in out


@pytest.mark.parametrize("kw, extra, fragment", [
    ({"sched": "fastest"}, "", "serving.scheduler"),
    ({"rate": -3}, "", "workload.arrival.rate"),
])
def test_bad_scenarios_exit_2_with_one_line(tmp_path, capsys, kw, extra, fragment):
    f = _write(tmp_path, **kw)
    out_csv = tmp_path / "r.csv"
    assert main(["simulate", str(f), "--requests-csv", str(out_csv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(fragment in line for line in err), err
    assert all(line.startswith("simkit simulate: error:") for line in err)
    assert not out_csv.exists()


def test_lengths_beyond_the_context_are_a_what_if_with_one_warning_line(tmp_path, capsys):
    f = _write(tmp_path, pmax=40000)
    assert main(["simulate", str(f), "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["requests_arrived"] > 0
    err = cap.err.strip().splitlines()
    assert err == ["simkit simulate: warning: workload.prompt_tokens.max 40000 is beyond "
                   "llama-3-8b's 8192-token context: a what-if (set model.max_context / "
                   "--max-context to the deployed context to silence this)"]


def test_missing_trace_file_exit_2(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[workload]\narrival = { process = "trace", path = "gone.csv" }\n'
                 'prompt_tokens = { dist = "trace" }\noutput_tokens = { dist = "trace" }\n')
    p = subprocess.run([sys.executable, "-m", "simkit", "simulate", str(f)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "workload.arrival.path" in p.stderr and "gone.csv" in p.stderr


def test_bundled_trace_replays(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text(f'[workload]\nrequests = 80\narrival = {{ process = "trace", path = '
                 f'"{TRACES / "azure_llm_2023_code.csv"}" }}\n'
                 'prompt_tokens = { dist = "trace" }\noutput_tokens = { dist = "trace" }\n')
    assert main(["simulate", str(f), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["requests_arrived"] == 80
    assert s["requests_completed"] + s["requests_rejected"] == 80
