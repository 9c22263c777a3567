"""`--set KEY=VALUE` (simkit.overrides): TOML values, dotted keys, checked like the file, on
simulate, plan, sweep and report; one line naming `--set KEY` for each kind of mistake."""

from __future__ import annotations

import json
import shutil

import pytest

from simkit.errors import SimkitError
from simkit.overrides import apply_sets, parse_set
from simkit.plan.sweep import RESULTS_FILE, read_results

SCEN = """name = "sets"
seed = 2
[workload]
requests = 6
arrival = { process = "poisson", rate = 2.0 }
prompt_tokens = { dist = "fixed", value = 100 }
output_tokens = { dist = "fixed", value = 8 }
[slo]
ttft_p99_s = 5.0
"""


@pytest.fixture
def scen(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(SCEN)
    return f


@pytest.mark.parametrize("text, key, value", [
    ("workload.requests=8", ("workload", "requests"), 8),
    ("workload.arrival.rate=0.5", ("workload", "arrival", "rate"), 0.5),
    ("hardware.ideal=true", ("hardware", "ideal"), True),
    ("serving.scheduler=chunked", ("serving", "scheduler"), "chunked"),  # a bare word
    ('name="two words"', ("name",), "two words"),
    ("model.name=llama-3-8b", ("model", "name"), "llama-3-8b"),
    ("report.context_lengths=[1024, 4096]", ("report", "context_lengths"), [1024, 4096]),
    ("workload.arrival={ process = 'gamma', rate = 2, cv = 3 }", ("workload", "arrival"),
     {"process": "gamma", "rate": 2, "cv": 3}),
    ('sweep."workload.arrival.rate"=[1, 2]', ("sweep", "workload.arrival.rate"), [1, 2]),
    (" seed = 4 ", ("seed",), 4),
    ("workload.requests=1e3", ("workload", "requests"), 1000.0),  # TOML: a float
    ("seed=inf", ("seed",), float("inf")),  # TOML's inf (the loader refuses it)
])
def test_values_are_toml_and_a_bare_word_is_a_string(text, key, value):
    assert parse_set(text) == (key, value)


@pytest.mark.parametrize("text, message", [
    ("workload.requests", "--set: expected KEY=VALUE (e.g. workload.arrival.rate=8), got "
                          "'workload.requests'"),
    ("=3", "--set: expected KEY=VALUE (e.g. workload.arrival.rate=8), got '=3'"),
    ("a..b=1", "--set a..b: not a dotted scenario key (parts of letters, digits, '_' and '-', "
               "or quoted, joined by '.')"),
    ("seed=", "--set seed: no value after '=' (quote an empty string: seed=\"\")"),
    # (the parenthesis between holds tomllib's reason, without its line and column)
    ("seed=[1", "--set seed: '[1' is not a TOML value (...); quote text as \"...\""),
    ("name=two words", "--set name: 'two words' is not a TOML value (...); quote text as "
                       "\"...\""),
    ("seed=1\nx=2", "--set: expected KEY=VALUE on one line, got 'seed=1\\nx=2'"),
])
def test_malformed_sets_are_one_line_naming_set(text, message):
    with pytest.raises(SimkitError) as e:
        parse_set(text)
    (got,) = e.value.messages
    if "(...)" in message:
        head, tail = message.split("(...)")
        assert got.startswith(head + "(") and got.endswith(")" + tail)
        assert "line 1" not in got and "column" not in got
    else:
        assert got == message


def test_a_set_through_a_setting_is_refused():
    with pytest.raises(SimkitError) as e:
        apply_sets({"name": "x"}, ["name.first=1"])
    assert e.value.messages == ("--set name.first: name is a setting, not a table",)


def test_a_grid_key_replaces_the_files_however_spelt():
    d = {"sweep": {"workload": {"arrival": {"rate": [1, 2]}}, "seed": [1, 2]}}
    out, keys = apply_sets(d, ['sweep.workload.arrival.rate=[4]', "plan.search.seed=[3]"])
    assert out["sweep"] == {"workload.arrival.rate": [4], "seed": [1, 2]}
    assert out["plan"] == {"search": {"seed": [3]}}
    assert keys == ['sweep."workload.arrival.rate"', 'plan.search."seed"']


def test_simulate_takes_sets_in_order_later_wins(run_cli, scen):
    r = run_cli("simulate", scen, "--json", "--set", "workload.requests=9", "--set",
                "serving.scheduler=chunked", "--set", "workload.requests=5")
    assert r.code == 0, r.err
    d = r.json()
    assert (d["requests_arrived"], d["scheduler"]) == (5, "chunked")


def test_sweep_writes_the_scenario_with_its_sets(run_cli, scen, tmp_path):
    out = tmp_path / "out"
    r = run_cli("sweep", scen, "--out", out, "--workers", "1",
                "--set", "sweep.workload.arrival.rate=[1.0, 3.0]", "--set", "seed=5")
    assert r.code == 0, r.err
    recs = read_results(out / RESULTS_FILE)
    assert sorted(x["params"]["workload.arrival.rate"] for x in recs) == [1.0, 3.0]
    assert {x["seed"] for x in recs} == {5}
    text = (out / "scenario.toml").read_text()
    assert '"workload.arrival.rate" = [1.0, 3.0]' in text and "seed = 5" in text


def test_plan_takes_sets(run_cli, scen):
    r = run_cli("plan", scen, "--json", "--requests", "112", "--set", "plan.target_qps=3",
                "--set", "slo.tpot_p99_s=0.5")
    assert r.code == 0, r.err
    d = r.json()
    assert d["target_qps"] == 3 and d["slo"]["tpot_p99_s"] == 0.5


def test_report_takes_sets(run_cli, scen, tmp_path):
    # what the set changes reaches the report's loader: a comparison of a key not swept
    r = run_cli("report", scen, "-o", tmp_path / "r.pdf", "--set",
                'report.compare=["model.attention"]')
    assert (r.code, r.out) == (2, "")
    assert r.err == ("simkit report: error: --set report.compare[0]: 'model.attention' is not "
                     "a [sweep] key (no [sweep])\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


@pytest.mark.parametrize("command", ["simulate", "plan", "sweep", "report"])
@pytest.mark.parametrize("setting, message", [
    ("workload.arrival.rate=-3", "--set workload.arrival.rate: must be a number > 0, got -3"),
    ("workload.rate=3", "--set workload.rate: unknown key; known keys: arrival, "
                        "max_concurrency, max_new_tokens, output_tokens, prompt_tokens, "
                        "requests"),
    ("serving.kv_memory=virtual", "--set serving.kv_memory: must be one of paged, "
                                  "contiguous; got 'virtual'"),
    ("hardware.name=nope.toml", "--set hardware.name: no such profile file"),
    ("seed", "--set: expected KEY=VALUE"),
])
def test_every_command_refuses_a_bad_set_in_one_line(run_cli, scen, tmp_path, command,
                                                     setting, message):
    extra = ["-o", tmp_path / "r.pdf"] if command == "report" else \
        ["--out", tmp_path / "o"] if command == "sweep" else []
    r = run_cli(command, scen, *extra, "--set", setting)
    assert (r.code, r.out) == (2, "")
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"simkit {command}: error: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_a_relative_path_in_a_set_is_relative_to_the_current_folder(run_cli, tmp_path,
                                                                     monkeypatch, repo_root):
    # the scenario lives in one folder, the config in the folder the command runs from
    (tmp_path / "scen").mkdir()
    (tmp_path / "scen" / "s.toml").write_text(SCEN)
    (tmp_path / "here").mkdir()
    shutil.copy(repo_root / "tests" / "data" / "hf_configs" / "Qwen__Qwen2.5-7B-Instruct.json",
                tmp_path / "here" / "qwen.json")
    monkeypatch.chdir(tmp_path / "here")
    r = run_cli("simulate", tmp_path / "scen" / "s.toml", "--json", "--set",
                "model.name=./qwen.json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["requests_arrived"] == 6
