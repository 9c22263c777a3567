"""Sweeps: per-point seeds, executor independence (serial == process pool == dask), resume
after a real kill, torn lines, refusing to mix scenarios."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simkit.errors import SimkitError
from simkit.plan.sweep import (RESULTS_FILE, SerialExecutor, point_key, read_results,
                               run_sweep, simulate_point, sweep_points)
from simkit.scenario import scenario_from_dict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def tiny(sweep=None, **over):
    d = {"name": "tiny", "seed": 3,
         "workload": {"requests": 12, "arrival": {"process": "poisson", "rate": 4.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.5,
                                        "max": 1000},
                      "output_tokens": {"dist": "uniform", "low": 4, "high": 24}},
         "sweep": sweep if sweep is not None else
         {"model.attention": ["full", "window"], "workload.arrival.rate": [2.0, 8.0]},
         "model": {"window": 64}}
    d.update(over)
    return scenario_from_dict(d)


# picklable stand-ins for the simulator (top-level: workers import them by name)
def fake_point(task):
    import numpy as np

    rng = np.random.default_rng(task["scenario"]["seed"])
    return {"draw": float(rng.random()),
            "rate": task["scenario"]["workload"]["arrival"]["rate"]}


def hanging_fake_point(task):
    # the 7th point hangs, so the parent's kill surely lands mid-sweep (after 6 records)
    time.sleep(120 if task["index"] >= 6 else 0.02)
    return fake_point(task)


def failing_point(task):
    if task["params"].get("workload.arrival.rate") == 8.0:
        raise SimkitError("does not fit", "second line")
    return fake_point(task)


def metrics_by_params(res):
    return {point_key(r["params"]): (r["seed"], r["metrics"])
            for r in res.records}


def test_every_point_keeps_the_scenario_seed_common_random_numbers():
    a = sweep_points(tiny())
    b = sweep_points(tiny({"workload.arrival.rate": [8.0, 2.0],
                           "model.attention": ["window", "full"]}))
    assert {p.seed for p in a} == {p.seed for p in b} == {3}
    # the point's resolved scenario carries its parameters and no sweep of its own
    p = a[1]
    assert p.scenario["workload"]["arrival"]["rate"] == p.params["workload.arrival.rate"]
    assert p.scenario["sweep"] == {}
    # a swept seed is a replication: it becomes the point's seed
    reps = sweep_points(tiny({"seed": [5, 6]}))
    assert [p.seed for p in reps] == [5, 6]


def test_identical_points_give_identical_numbers_and_rates_share_arrivals():
    """Issue 11: identical sweep points gave p99 TTFTs of 158, 175 and 204 s because each
    drew its own workload. Now points differ only by their settings."""
    from simkit.sim import simulate

    # with one replica the router has nothing to choose: the two points are the same run
    s = tiny({"serving.router": ["round_robin", "least_loaded"]})
    a, b = (r["metrics"] for r in run_sweep(sweep_points(s), SerialExecutor()).records)
    assert a["ttft_s"] == b["ttft_s"] and a["e2e_s"] == b["e2e_s"]
    # the same prompts at every rate, and the same arrival pattern compressed in time
    slow = simulate(tiny().at_point({"model.attention": "full",
                                     "workload.arrival.rate": 2.0}), seed=3)
    fast = simulate(tiny().at_point({"model.attention": "full",
                                     "workload.arrival.rate": 8.0}), seed=3)
    assert np.array_equal(slow.requests["prompt_tokens"], fast.requests["prompt_tokens"])
    assert np.allclose(slow.requests["arrival_s"], 4 * fast.requests["arrival_s"])


def test_requests_override_is_in_the_resolved_scenarios():
    pts = sweep_points(tiny(), requests=5)
    assert all(p.scenario["workload"]["requests"] == 5 for p in pts)


def test_serial_process_pool_and_dask_give_identical_results():
    distributed = pytest.importorskip("distributed")
    s = tiny()
    points = sweep_points(s)
    serial = run_sweep(points, SerialExecutor(), point_fn=simulate_point)
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        pooled = run_sweep(points, pool, point_fn=simulate_point)
    # a real TCP scheduler on the loopback interface, one in-process worker (2 threads)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", host="127.0.0.1", scheduler_port=0,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dasked = run_sweep(points, client.get_executor(pure=False), point_fn=simulate_point)
    ref = metrics_by_params(serial)
    assert len(ref) == 4
    assert all(r["metrics"]["requests_completed"] == 12 for r in serial.records)
    # bit-identical: JSON floats compare exactly
    assert json.dumps(metrics_by_params(pooled), sort_keys=True) == json.dumps(ref, sort_keys=True)
    assert json.dumps(metrics_by_params(dasked), sort_keys=True) == json.dumps(ref, sort_keys=True)
    # grid order regardless of completion order
    assert [r["index"] for r in pooled.records] == [0, 1, 2, 3]
    # the settings really reach the simulator: different points' metrics differ
    assert len({json.dumps(m) for _, m in ref.values()}) == 4


def _one_blas_thread():
    # what a dask worker process does: its nanny sets OMP/OPENBLAS_NUM_THREADS=1
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def test_averaged_metrics_do_not_depend_on_executor_or_blas_threads():
    """Issue 14: dask and local runs differed in the last digits of time-averaged metrics
    (`batch_size_mean`): a BLAS dot product sums a vector of more than 10,000 terms on
    several threads, in a different order than on one, and a dask worker runs one. Points
    long enough to cross that size (> 10,000 iterations) now give the same bits on every
    executor and at every BLAS thread count."""
    distributed = pytest.importorskip("distributed")
    from threadpoolctl import threadpool_limits

    s = tiny({"workload.arrival.rate": [2.0, 3.0]},
             workload={"requests": 400, "arrival": {"process": "poisson", "rate": 4.0},
                       "prompt_tokens": {"dist": "lognormal", "median": 300, "sigma": 0.8,
                                         "max": 4000},
                       "output_tokens": {"dist": "uniform", "low": 20, "high": 200}},
             serving={"max_batch": 8}, model={})
    points = sweep_points(s)
    with threadpool_limits(limits=2, user_api="blas"):  # several threads, even on one core
        serial = run_sweep(points, SerialExecutor(), point_fn=simulate_point)
    with cf.ProcessPoolExecutor(max_workers=2, initializer=_one_blas_thread) as pool:
        pooled = run_sweep(points, pool, point_fn=simulate_point)
    with threadpool_limits(limits=1, user_api="blas"), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                     protocol="tcp", host="127.0.0.1", scheduler_port=0,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dasked = run_sweep(points, client.get_executor(pure=False), point_fn=simulate_point)
    for r in serial.records:
        m = r["metrics"]
        assert m["iterations"] > 10_000  # long enough for a threaded dot product
        assert m["batch_size_mean"] is not None and m["kv_useful_fraction"] is not None
    ref = json.dumps(metrics_by_params(serial), sort_keys=True)
    assert json.dumps(metrics_by_params(pooled), sort_keys=True) == ref
    assert json.dumps(metrics_by_params(dasked), sort_keys=True) == ref


def test_results_file_resume_skips_done_points(tmp_path):
    s = tiny()
    points = sweep_points(s)
    out = tmp_path / "out"
    first = run_sweep(points[:2], SerialExecutor(), out_dir=out, point_fn=fake_point,
                      scenario=s)
    assert first.ran == 2
    again = run_sweep(points, SerialExecutor(), out_dir=out, point_fn=fake_point, scenario=s)
    assert (again.ran, again.skipped) == (2, 2)
    lines = (out / RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 4
    assert sorted(json.loads(x)["params"]["workload.arrival.rate"] for x in lines) == \
        [2.0, 2.0, 8.0, 8.0]
    assert (out / "scenario.toml").exists()
    # resolved scenario beside the results loads back to the swept scenario
    import tomllib

    assert scenario_from_dict(tomllib.loads((out / "scenario.toml").read_text())) == s
    third = run_sweep(points, SerialExecutor(), out_dir=out, point_fn=fake_point, scenario=s)
    assert (third.ran, third.skipped) == (0, 4)
    assert metrics_by_params(third) == metrics_by_params(again)


def test_torn_last_line_is_dropped_and_rerun(tmp_path):
    s = tiny()
    points = sweep_points(s)
    out = tmp_path / "out"
    run_sweep(points[:3], SerialExecutor(), out_dir=out, point_fn=fake_point, scenario=s)
    f = out / RESULTS_FILE
    data = f.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    f.write_bytes(data[:last + 25])  # the third line cut mid-write, no newline
    assert len(read_results(f)) == 2
    res = run_sweep(points, SerialExecutor(), out_dir=out, point_fn=fake_point, scenario=s)
    assert (res.ran, res.skipped) == (2, 2)
    recs = read_results(f)
    assert sorted(point_key(r["params"]) for r in recs) == \
        sorted(p.key for p in points)
    assert f.read_bytes().endswith(b"\n") and len(f.read_bytes().splitlines()) == 4


@pytest.mark.parametrize("damage", [b"{not json\n", b"[1, 2]\n", b"\xff\xfe\n",
                                    b'{"params": {}}\n'],
                         ids=["not JSON", "not an object", "not UTF-8", "no metrics"])
def test_a_corrupt_line_mid_file_is_dropped_atomically_with_one_warning(tmp_path, damage):
    """Issue 14: a corrupt line in the middle of results.jsonl stayed there after a resume.
    Resuming rewrites the file without it (temp + rename) and says so once; the point it
    held runs again, so every point ends with exactly one good line."""
    import warnings

    from simkit.errors import SimkitWarning

    s = tiny()
    points = sweep_points(s)
    out = tmp_path / "out"
    run_sweep(points[:3], SerialExecutor(), out_dir=out, point_fn=fake_point, scenario=s)
    f = out / RESULTS_FILE
    lines = f.read_bytes().splitlines(keepends=True)
    f.write_bytes(lines[0] + damage + lines[2])  # line 2 (the second point) damaged
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(read_results(f)) == 2  # reading alone changes nothing, says nothing
        assert not caught and f.read_bytes() == lines[0] + damage + lines[2]
        res = run_sweep(points, SerialExecutor(), out_dir=out, point_fn=fake_point,
                        scenario=s)
    said = [str(w.message) for w in caught if issubclass(w.category, SimkitWarning)]
    assert len(said) == 1 and "dropped 1 corrupt line(s) (line 2" in said[0]
    assert (res.ran, res.skipped) == (2, 2)
    assert {r["params"]["workload.arrival.rate"] for r in read_results(f)} == {2.0, 8.0}
    text = f.read_bytes()
    assert damage not in text and len(text.splitlines()) == 4
    assert sorted(point_key(json.loads(x)["params"]) for x in text.splitlines()) == \
        sorted(p.key for p in points)
    assert not (out / (RESULTS_FILE + ".tmp")).exists()


def test_cli_warns_once_about_a_corrupt_line_and_completes(run_cli, tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text('name = "c"\n[workload]\nrequests = 4\n'
                    '[sweep]\n"workload.arrival.rate" = [1.0, 2.0, 3.0]\n')
    out = tmp_path / "out"
    assert run_cli("sweep", scen, "--out", out, "--workers", "1").code == 0
    f = out / RESULTS_FILE
    lines = f.read_text().splitlines(keepends=True)
    f.write_text(lines[0] + "garbage\n" + lines[2])
    r = run_cli("sweep", scen, "--out", out, "--workers", "1")
    assert r.code == 0
    warn = [x for x in r.err.splitlines() if "warning" in x]
    assert warn == [f"simkit sweep: warning: {f}: dropped 1 corrupt line(s) (line 2: not a "
                    "JSON record) and rewrote the file without them; their points run again"]
    assert "1 point(s) run, 2 already done" in r.out
    assert len(read_results(f)) == 3 and "garbage" not in f.read_text()


_CHILD = """
import sys
from simkit.plan.sweep import SerialExecutor, run_sweep, sweep_points
from simkit.scenario import scenario_from_dict
from test_plan_sweep import hanging_fake_point, tiny
s = tiny({"workload.arrival.rate": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
          "model.attention": ["full", "window"]})
run_sweep(sweep_points(s), SerialExecutor(), out_dir=sys.argv[1], point_fn=hanging_fake_point,
          scenario=s)
"""


def test_killed_sweep_resumes_every_point_exactly_once(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(out)], env=env, cwd=ROOT)
    f = out / RESULTS_FILE
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if f.exists() and f.read_bytes().count(b"\n") >= 6:
                break
            if proc.poll() is not None:
                pytest.fail(f"child exited early with {proc.returncode}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    n_before = len(read_results(f))
    assert n_before == 6, "the kill must land mid-sweep"
    s = tiny({"workload.arrival.rate": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
              "model.attention": ["full", "window"]})
    points = sweep_points(s)
    res = run_sweep(points, SerialExecutor(), out_dir=out, point_fn=fake_point, scenario=s)
    assert res.skipped == n_before and res.ran == 16 - n_before
    keys = [point_key(r["params"]) for r in read_results(f)]
    assert sorted(keys) == sorted(p.key for p in points)  # every point exactly once
    # the killed run's points carry the same numbers a fresh run computes
    fresh = run_sweep(points, SerialExecutor(), point_fn=fake_point)
    assert metrics_by_params(res) == metrics_by_params(fresh)


def test_out_dir_of_a_different_scenario_is_refused_before_writing(tmp_path):
    s = tiny()
    out = tmp_path / "out"
    run_sweep(sweep_points(s)[:1], SerialExecutor(), out_dir=out, point_fn=fake_point,
              scenario=s)
    before = (out / RESULTS_FILE).read_bytes()
    other = s.with_(**{"workload.requests": 13})
    with pytest.raises(SimkitError, match="different scenario"):
        run_sweep(sweep_points(other), SerialExecutor(), out_dir=out, point_fn=fake_point,
                  scenario=other)
    assert (out / RESULTS_FILE).read_bytes() == before
    # a changed grid over the same base scenario is fine: finished points are reused
    wider = s.with_(sweep={"model.attention": ["full", "window"],
                           "workload.arrival.rate": [2.0, 8.0, 16.0]})
    res = run_sweep(sweep_points(wider), SerialExecutor(), out_dir=out, point_fn=fake_point,
                    scenario=wider)
    assert (res.ran, res.skipped) == (5, 1)


def test_point_errors_are_recorded_not_fatal(tmp_path):
    s = tiny()
    res = run_sweep(sweep_points(s), SerialExecutor(), out_dir=tmp_path / "o",
                    point_fn=failing_point, scenario=s)
    bad = [r for r in res.records if r["error"]]
    assert len(bad) == 2 and all(r["metrics"] is None for r in bad)
    assert bad[0]["error"] == ["does not fit", "second line"]
    assert len(res.errors) == 2
    rows = res.rows()
    assert "error" in rows[1] and "draw" in rows[0]


def test_cli_sweep_runs_and_resumes(run_cli, tmp_path, repo_root):
    f = tmp_path / "s.toml"
    f.write_text('name = "cli"\n[workload]\nrequests = 6\narrival = { rate = 3.0 }\n'
                 'prompt_tokens = { dist = "fixed", value = 64 }\n'
                 'output_tokens = { dist = "fixed", value = 4 }\n'
                 '[sweep]\n"workload.arrival.rate" = [1.0, 3.0]\n')
    out = tmp_path / "o"
    r = run_cli("sweep", f, "--out", out, "--workers", "1", "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["ran"] == 2 and len(d["records"]) == 2
    assert d["records"][0]["metrics"]["requests_completed"] == 6
    r2 = run_cli("sweep", f, "--out", out)
    assert r2.code == 0 and "0 point(s) run, 2 already done" in r2.out
    assert len((out / RESULTS_FILE).read_text().splitlines()) == 2
    nosweep = tmp_path / "n.toml"
    nosweep.write_text('name = "n"\n')
    r3 = run_cli("sweep", nosweep, "--out", tmp_path / "n")
    assert r3.code == 2 and "has no [sweep] table" in r3.err
    r4 = run_cli("sweep", f, "--cluster", "tcp://127.0.0.1:1", "--workers", "2")
    assert r4.code == 2 and "--workers" in r4.err


def test_cli_sweep_table_counts_preemptions_where_memory_ran_short(run_cli, tmp_path,
                                                                    repo_root):
    """The bundled watermark sweep preempts (a near-critical cache): its table gets a
    preemptions column, falling as the watermark rises (vllm-project/vllm#44594's shape);
    a sweep whose points never preempt keeps the table without it."""
    r = run_cli("sweep", repo_root / "scenarios" / "vllm-v1-watermark.toml", "--out",
                tmp_path / "w", "--workers", "1")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    head = lines[0].split()
    assert head[0] == "serving.watermark" and head[-1] == "preemptions"
    counts = [int(line.split()[-1]) for line in lines[1:6]]
    assert counts[0] > 2 * counts[1] > 0 and counts == sorted(counts, reverse=True)
    f = tmp_path / "s.toml"
    f.write_text('name = "calm"\n[workload]\nrequests = 6\narrival = { rate = 3.0 }\n'
                 'prompt_tokens = { dist = "fixed", value = 64 }\n'
                 'output_tokens = { dist = "fixed", value = 4 }\n'
                 '[sweep]\n"workload.arrival.rate" = [1.0, 3.0]\n')
    r = run_cli("sweep", f, "--out", tmp_path / "c", "--workers", "1")
    assert r.code == 0 and "preemptions" not in r.out.splitlines()[0]


def test_unreachable_cluster_fails_at_once(run_cli, tmp_path, repo_root):
    import socket

    pytest.importorskip("distributed")  # (without it, --cluster says to install it)

    with socket.socket() as s:  # a port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "sweep"
    r = run_cli("sweep", repo_root / "scenarios" / "news-vs-contracts.toml", "--out", out,
                "--cluster", f"tcp://127.0.0.1:{port}")
    assert r.code == 2 and "cannot reach a dask scheduler" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()
    r = run_cli("sweep", repo_root / "scenarios" / "news-vs-contracts.toml", "--out", out,
                "--cluster", "nonsense")
    assert r.code == 2 and "expected tcp://HOST:PORT" in r.err


def test_gate_prunes_points_before_submission_and_sees_results_so_far(tmp_path):
    """A gate is asked in point order, after the results of the points already finished
    (one in flight at a time here), and pruned points are not written."""
    s = tiny({"workload.arrival.rate": [1.0, 2.0, 3.0, 4.0, 5.0]})
    seen: list[float] = []

    def progress(rec, done, total):
        seen.append(rec["params"]["workload.arrival.rate"])

    def gate(p):
        rate = p.params["workload.arrival.rate"]
        # prune once two points have finished: it must know them already
        return "enough" if len(seen) >= 2 and rate > 2.0 else None

    with cf.ProcessPoolExecutor(max_workers=1) as pool:
        res = run_sweep(sweep_points(s), pool, out_dir=tmp_path / "o", point_fn=fake_point,
                        progress=progress, gate=gate, max_in_flight=1, scenario=s)
    assert [r.get("pruned") for r in res.records] == [None, None, "enough", "enough",
                                                      "enough"]
    assert res.ran == 2 and res.pruned == 3
    assert len(read_results(tmp_path / "o" / RESULTS_FILE)) == 2


def slow_point(task):
    time.sleep(0.6)
    return fake_point(task)


def test_heartbeat_while_points_run_so_progress_never_goes_silent():
    s = tiny({"workload.arrival.rate": [1.0, 2.0]})
    beats = []
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        run_sweep(sweep_points(s), pool, point_fn=slow_point, heartbeat=beats.append,
                  heartbeat_s=0.1)
    assert beats and all(len(b) >= 1 for b in beats)
    assert {"workload.arrival.rate": 1.0} in beats[0] or {"workload.arrival.rate": 2.0} in beats[0]
