"""The scenario format: defaults, strict validation with key paths, round trips, what-ifs."""

from __future__ import annotations

import pickle
import tomllib
from dataclasses import fields

import pytest

from simkit.errors import SimkitError
from simkit.scenario import (ArrivalSpec, LengthSpec, ModelSection, Scenario, ServingSection,
                             load_scenario, scenario_from_dict)

TRACE = "azure_llm_2023_conv.csv"


def errors_of(d, base_dir="."):
    with pytest.raises(SimkitError) as e:
        scenario_from_dict(d, base_dir=base_dir)
    return list(e.value.messages)


def test_empty_table_gives_the_documented_defaults():
    s = scenario_from_dict({})
    # the defaults are the dataclass defaults (one place)
    assert s.model == ModelSection()
    assert s.serving == ServingSection()
    assert s.workload.arrival == ArrivalSpec()
    assert s.plan is None and not s.sweep
    d = s.to_dict()
    for sec in ("model", "hardware", "workload", "serving", "slo", "report"):
        assert sec in d
    assert set(d["serving"]) == {f.name for f in fields(ServingSection)}
    assert d["serving"]["memory_fraction"] == 0.9
    assert d["workload"]["prompt_tokens"]["dist"] == "fixed"


def test_to_toml_round_trips_to_an_equal_scenario(repo_root):
    for path in sorted((repo_root / "scenarios").glob("*.toml")):
        s = load_scenario(path)
        again = scenario_from_dict(tomllib.loads(s.to_toml()), base_dir="/nonexistent")
        assert again == s, path.name
        assert again.to_dict() == s.to_dict()


def test_all_errors_reported_at_once_with_key_paths():
    msgs = errors_of({
        "serving": {"block_size": 0, "max_batch": 2.5, "scheduler": "fifo", "colour": "red"},
        "workload": {"arrival": {"rate": -3},
                     "prompt_tokens": {"dist": "uniform", "low": 50, "high": 10}},
        "hardware": {"gpus_per_replica": True},
        "bogus": 1,
    })
    joined = "\n".join(msgs)
    assert "serving.block_size: must be a positive integer, got 0" in msgs
    assert "serving.max_batch: must be a positive integer, got 2.5" in msgs
    assert any(m.startswith("serving.scheduler: must be one of static, continuous, chunked")
               for m in msgs)
    assert any(m.startswith("serving.colour: unknown key") for m in msgs)
    assert any(m.startswith("workload.arrival.rate: must be a number > 0, got -3") for m in msgs)
    assert "workload.prompt_tokens.low: must be <= high (10), got 50" in msgs
    # bool is not an int
    assert "hardware.gpus_per_replica: must be a positive integer, got True" in msgs
    assert any(m.startswith("bogus: unknown key") for m in msgs)
    assert len(msgs) == 8, joined


@pytest.mark.parametrize("d, expect", [
    ({"serving": {"memory_fraction": 0}}, "serving.memory_fraction: must be a number > 0"),
    ({"serving": {"memory_fraction": 1.5}}, "serving.memory_fraction: must be a number > 0 and <= 1"),
    ({"workload": {"arrival": {"process": "gamma", "cv": 0}}}, "workload.arrival.cv: must be"),
    ({"workload": {"requests": 0}}, "workload.requests: must be a positive integer"),
    ({"serving": {"replicas": -1}}, "serving.replicas: must be a positive integer"),
    ({"workload": {"prompt_tokens": {"dist": "lognormal", "median": 0, "sigma": 1}}},
     "workload.prompt_tokens.median: must be > 0"),
    ({"workload": {"prompt_tokens": {"dist": "lognormal", "median": 10, "sigma": -1}}},
     "workload.prompt_tokens.sigma: must be >= 0"),
    ({"workload": {"prompt_tokens": {"dist": "lognormal", "median": 10}}},
     "workload.prompt_tokens.sigma: required when dist = 'lognormal'"),
    ({"workload": {"output_tokens": {"dist": "fixed", "value": 5, "min": 10, "max": 3}}},
     "workload.output_tokens.min: must be <= max (3), got 10"),
    ({"workload": {"prompt_tokens": {"dist": "zipf"}}}, "workload.prompt_tokens.dist: must be one of fixed"),
    ({"model": {"attention": "flash"}}, "model.attention: must be one of full, mla, window, chunked, sparse"),
    ({"model": {"kv_dtype": "fp4"}}, "model.kv_dtype: must be one of fp32"),
    ({"model": {"name": "gpt-5"}}, "model.name: unknown model 'gpt-5'"),
    ({"model": {"attention": "mla"}}, "model.attention: mla needs a model with an MLA config"),
    ({"hardware": {"name": "tpu-v9"}}, "hardware.name: unknown hardware 'tpu-v9'"),
    ({"hardware": {"cost_per_gpu_hour": "cheap"}}, "hardware.cost_per_gpu_hour: must be a number"),
    ({"slo": {"ttft_p99_s": 0}}, "slo.ttft_p99_s: must be a number > 0"),
    ({"plan": {"compare": ["full", "bogus"]}}, "plan.compare[1]: must be one of full"),
    ({"seed": -1}, "seed: must be an integer >= 0"),
    ({"name": 5}, "name: must be a string"),
    ({"serving": "fast"}, "serving: must be a table"),
    ({"workload": {"arrival": {"process": "trace"}}}, "workload.arrival.path: required when process = 'trace'"),
    ({"workload": {"prompt_tokens": {"dist": "trace"}}}, "workload.prompt_tokens.dist: 'trace' takes lengths"),
    ({"workload": {"arrival": {"rate": float("inf")}}}, "workload.arrival.rate: must be a number > 0"),
])
def test_each_bad_value_names_its_key_path(d, expect):
    msgs = errors_of(d)
    assert any(m.startswith(expect) for m in msgs), msgs


def test_missing_files_are_errors(tmp_path):
    msgs = errors_of({"workload": {"arrival": {"process": "trace", "path": "nope.csv"}},
                      "model": {"name": "missing/config.json"},
                      "hardware": {"name": "profile.toml"}}, base_dir=tmp_path)
    assert any(m.startswith("workload.arrival.path: no such file 'nope.csv'") for m in msgs)
    assert any(m.startswith("model.name: no such config file") for m in msgs)
    assert any(m.startswith("hardware.name: no such profile file") for m in msgs)


def test_relative_paths_resolve_against_the_scenario_folder(tmp_path, repo_root):
    (tmp_path / "sub").mkdir()
    src = repo_root / "scenarios" / "traces" / TRACE
    (tmp_path / "sub" / "t.csv").write_bytes(src.read_bytes()[:2000].rsplit(b"\n", 1)[0] + b"\n")
    f = tmp_path / "sub" / "s.toml"
    f.write_text('[workload]\narrival = { process = "trace", path = "t.csv" }\n'
                 'prompt_tokens = { dist = "trace" }\n')
    s = load_scenario(f)
    assert s.workload.arrival.path == str(tmp_path / "sub" / "t.csv")
    assert s.workload.arrival.rate is None  # a trace replays its recorded timing by default
    assert s.name == "s"  # the file stem when no name is given
    assert s.base_dir == str(tmp_path / "sub")


def test_empirical_column_must_exist(repo_root):
    path = str(repo_root / "scenarios" / "traces" / TRACE)
    msgs = errors_of({"workload": {"prompt_tokens": {"dist": "empirical", "path": path,
                                                     "column": "tokens"}}})
    assert any(m.startswith("workload.prompt_tokens.column: no column 'tokens'") for m in msgs)
    s = scenario_from_dict({"workload": {"prompt_tokens": {
        "dist": "empirical", "path": path, "column": "num_prefill_tokens"}}})
    assert s.workload.prompt_tokens.column == "num_prefill_tokens"


def test_kind_specific_keys_are_not_errors_for_other_kinds():
    s = scenario_from_dict({"model": {"attention": "full", "window": 16, "memory_slots": 8}})
    assert s.model.window == 16 and s.model.attention == "full"


def test_with_changes_a_copy_and_validates():
    s = scenario_from_dict({"name": "a"})
    t = s.with_(**{"workload.arrival.rate": 8, "serving.max_batch": 32})
    assert t.workload.arrival.rate == 8.0 and isinstance(t.workload.arrival.rate, float)
    assert t.serving.max_batch == 32
    assert s.workload.arrival.rate == 1.0 and s.serving.max_batch == 256  # frozen original
    with pytest.raises(SimkitError, match=r"serving\.block_size: must be a positive integer"):
        s.with_(**{"serving.block_size": 0})
    with pytest.raises(SimkitError, match=r"serving\.blocksize: unknown key"):
        s.with_(**{"serving.blocksize": 8})
    with pytest.raises(SimkitError, match="is a setting, not a table"):
        s.with_(**{"seed.x": 1})
    # plan is optional: setting one of its keys creates it with defaults
    p = s.with_(**{"plan.target_qps": 10})
    assert p.plan is not None and p.plan.target_qps == 10.0 and p.plan.qps_rel_tol == 0.05


def test_scenarios_are_hashable_and_pickle():
    s = scenario_from_dict({"sweep": {"workload.arrival.rate": [1, 2]}})
    assert pickle.loads(pickle.dumps(s)) == s
    assert hash(s) == hash(pickle.loads(pickle.dumps(s)))


def test_sweep_grid_order_flattening_and_points():
    s = scenario_from_dict({"sweep": {"model": {"attention": ["full", "window"]},
                                      "workload.arrival.rate": [1, 2, 4]},
                            "report": {"compare": ["model.attention"]}})
    assert list(s.sweep) == ["model.attention", "workload.arrival.rate"]
    pts = s.points()
    assert len(pts) == 6
    assert pts[0] == {"model.attention": "full", "workload.arrival.rate": 1}
    assert pts[1] == {"model.attention": "full", "workload.arrival.rate": 2}
    p = s.at_point(pts[4])
    assert p.model.attention == "window" and p.workload.arrival.rate == 2.0
    assert not p.sweep and p.report.compare == ()


@pytest.mark.parametrize("sweep, expect", [
    ({"workload.arival.rate": [1]}, 'sweep."workload.arival.rate": not a scenario setting'),
    ({"workload.arrival.rate": []}, 'sweep."workload.arrival.rate": must be a non-empty list'),
    ({"workload.arrival.rate": 3}, 'sweep."workload.arrival.rate": must be a non-empty list'),
    ({"workload.arrival.rate": [1, 2, 1]}, 'sweep."workload.arrival.rate": repeats the value 1'),
    ({"workload.arrival.rate": [1, -2]},
     "sweep (point workload.arrival.rate = -2): workload.arrival.rate: must be a number > 0"),
    ({"model.attention": ["full", "mla"]},
     "sweep (point model.attention = 'mla'): model.attention: mla needs a model"),
])
def test_sweep_values_are_validated_by_building_each_point(sweep, expect):
    msgs = errors_of({"sweep": sweep})
    assert any(m.startswith(expect) for m in msgs), msgs


def test_sweep_cross_key_rules_checked_per_point():
    msgs = errors_of({"workload": {"prompt_tokens": {"dist": "uniform", "low": 10, "high": 20}},
                      "sweep": {"workload.prompt_tokens.low": [5, 30]}})
    assert msgs == ["sweep (point workload.prompt_tokens.low = 30): "
                    "workload.prompt_tokens.low: must be <= high (20), got 30"]


def test_report_compare_must_name_sweep_keys():
    msgs = errors_of({"sweep": {"workload.arrival.rate": [1, 2]},
                      "report": {"compare": ["model.attention"]}})
    assert any(m.startswith("report.compare[0]: 'model.attention' is not a [sweep] key")
               for m in msgs)


def test_load_scenario_file_errors(tmp_path):
    with pytest.raises(SimkitError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SimkitError, match="not valid TOML"):
        load_scenario(bad)


def test_cli_bad_scenario_exit_2_one_line_per_problem_nothing_written(run_cli, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[serving]\nblock_size = 0\n[workload]\narrival = { rate = -3 }\n'
                 '[sweep]\n"workload.requests" = [1, 2]\n')
    out = tmp_path / "out"
    for cmd in (("sweep", f, "--out", out), ("plan", f, "--out", out)):
        r = run_cli(*cmd)
        assert r.code == 2, r.err
        lines = sorted(r.err.strip().splitlines())
        assert lines == [f"simkit {cmd[0]}: error: serving.block_size: must be a positive "
                         "integer, got 0",
                         f"simkit {cmd[0]}: error: workload.arrival.rate: must be a number > 0,"
                         " got -3"]
        assert "Traceback" not in r.err and r.out == ""
        assert not out.exists()


def test_length_spec_defaults_documented_on_the_dataclass():
    assert LengthSpec().dist == "fixed" and LengthSpec().min == 1
    assert Scenario().workload.prompt_tokens.value == 1000
    assert Scenario().workload.output_tokens.value == 256
