"""Configuration search: feasibility with reasons, ranking, the frontier, pruning that never
changes the answer, executor independence, resume, and one-line errors."""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
from pathlib import Path

import pytest

from simkit.plan.search import pareto, run_search
from simkit.plan.sweep import RESULTS_FILE, SerialExecutor, read_results
from simkit.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent

SEARCH = {"hardware.name": ["h100-sxm", "a100-80gb"],
          "hardware.gpus_per_replica": [1, 3, 4],
          "serving.max_batch": [16, 64]}


def scen(search=None, **plan):
    return scenario_from_dict({
        "name": "search-test", "seed": 5,
        "model": {"name": "llama-3-8b"},
        "workload": {"requests": 300, "arrival": {"rate": 1.0},
                     "prompt_tokens": {"dist": "uniform", "low": 100, "high": 900},
                     "output_tokens": {"dist": "uniform", "low": 8, "high": 64}},
        "slo": {"ttft_p99_s": 1.0, "tpot_p99_s": 0.05},
        "plan": {"target_qps": 60, "requests": 300, "qps_rel_tol": 0.25,
                 "search": search or SEARCH, **plan}})


@pytest.fixture(scope="module")
def searched():
    """One search, prices as in conftest.TEST_PRICES (h100 4.0, a100-80gb 2.0 $/h)."""
    mp = pytest.MonkeyPatch()
    from conftest import TEST_PRICES

    import simkit.catalog.hardware as H
    from dataclasses import replace

    for name, price in TEST_PRICES.items():
        hw = replace(H.CATALOG[name])
        object.__setattr__(hw, "price_per_gpu_hour", price)
        object.__setattr__(hw, "price_source", "test price")
        mp.setitem(H.CATALOG, name, hw)
    s = scen()
    res = run_search(s, SerialExecutor())
    full = run_search(s.with_(**{"plan.prune": False}), SerialExecutor())
    yield s, res, full
    mp.undo()


def test_every_configuration_is_reported_with_the_design_keys(searched):
    _, res, _ = searched
    d = res.to_dict()
    assert len(d["configs"]) == 12
    for c in d["configs"]:
        for k in ("params", "feasible", "reason", "max_qps", "replicas", "gpus",
                  "cost_per_hour", "cost_per_million_tokens", "ttft_p99_s", "tpot_p99_s"):
            assert k in c
    json.dumps(d, allow_nan=False)


def test_tp_that_does_not_divide_the_heads_is_infeasible_with_its_reason(searched):
    _, res, _ = searched
    bad = [c for c in res.configs if c["params"]["hardware.gpus_per_replica"] == 3]
    assert len(bad) == 4
    for c in bad:  # Llama-3-8B has 32 query heads
        assert c["feasible"] is False and c["replicas"] is None
        assert c["reason"] == "tensor parallelism 3 does not divide llama-3-8b's 32 query heads"


def test_ranked_by_cost_and_costs_are_replicas_times_gpus_times_price(searched):
    from conftest import TEST_PRICES

    _, res, _ = searched
    ranked = [c for c in res.configs if c["status"] == "ranked"]
    assert ranked and res.best == ranked[0]
    costs = [c["cost_per_hour"] for c in ranked]
    assert costs == sorted(costs)
    for c in ranked:
        price = TEST_PRICES[c["params"]["hardware.name"]]
        assert c["gpus"] == c["replicas"] * c["params"]["hardware.gpus_per_replica"]
        assert c["cost_per_hour"] == pytest.approx(c["gpus"] * price)
        assert c["feasible"] is True and c["max_qps"] > 0
        assert c["ttft_p99_s"] <= 1.0 and c["tpot_p99_s"] <= 0.05


def test_pruning_never_changes_the_answer(searched):
    _, res, full = searched
    assert res.counts["pruned"] >= 1 and full.counts["pruned"] == 0
    assert res.best["params"] == full.best["params"]
    assert res.best["cost_per_hour"] == full.best["cost_per_hour"]
    # every pruned configuration really costs more than the best once simulated
    by = {json.dumps(c["params"], sort_keys=True): c for c in full.configs}
    for c in res.configs:
        if c["status"] == "pruned":
            assert by[json.dumps(c["params"], sort_keys=True)]["cost_per_hour"] > \
                res.best["cost_per_hour"]
            assert c["feasible"] is None and c["reason"].startswith("pruned: ")
            cut = c["cut"]
            if cut is not None and not cut["met"]:  # the replicas a cut bought missed
                price = c["price_per_gpu_hour"] * c["gpus_per_replica"]
                assert (cut["replicas"] + 1) * price > res.best["cost_per_hour"] or \
                    c["cost_lower_bound_per_hour"] > res.best["cost_per_hour"]
            else:
                assert c["cost_lower_bound_per_hour"] > res.best["cost_per_hour"]


def test_the_plan_of_the_best_is_its_minimal_replicas(searched):
    _, res, _ = searched
    p = res.best_plan
    tested = {q["replicas"]: q["met"] for q in p["replica_probes"]}
    assert tested[p["replicas"]] and (p["replicas"] == 1 or not tested[p["replicas"] - 1])


def test_pareto_frontier_by_hand():
    rows = [{"cost_per_hour": 10, "ttft_p99_s": 1.0, "tpot_p99_s": 0.04, "index": 0},
            {"cost_per_hour": 12, "ttft_p99_s": 0.5, "tpot_p99_s": 0.04, "index": 1},
            {"cost_per_hour": 12, "ttft_p99_s": 0.6, "tpot_p99_s": 0.05, "index": 2},  # by 1
            {"cost_per_hour": 20, "ttft_p99_s": 0.9, "tpot_p99_s": 0.01, "index": 3},
            {"cost_per_hour": 25, "ttft_p99_s": 0.9, "tpot_p99_s": 0.02, "index": 4}]  # by 3
    assert [r["index"] for r in pareto(rows)] == [0, 1, 3]


def test_executor_independence_and_resume(searched, tmp_path, catalog_prices):
    """A process pool gives the same configurations; a search whose results file lost
    lines (a kill) resumes and ends where an uninterrupted one does."""
    s, res, _ = searched
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        pooled = run_search(s, pool, out_dir=tmp_path / "o")
    assert json.dumps(pooled.configs, sort_keys=True) == json.dumps(res.configs, sort_keys=True)
    f = tmp_path / "o" / RESULTS_FILE
    lines = f.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 2
    f.write_bytes(b"".join(lines[:1]) + lines[1][:20])  # one record kept, one torn
    ran, fresh = [], []
    again = run_search(s, SerialExecutor(), out_dir=tmp_path / "o", progress=ran.append)
    assert json.dumps(again.configs, sort_keys=True) == json.dumps(res.configs, sort_keys=True)
    assert len(read_results(f)) >= len(lines) - 1
    run_search(s, SerialExecutor(), out_dir=tmp_path / "fresh", progress=fresh.append)

    def planned(msgs):
        return len([m for m in msgs if m.startswith("[")])
    assert planned(ran) < planned(fresh)  # the kept record was not planned again


def test_cli_search_text_and_json(run_cli, tmp_path, catalog_prices):
    f = tmp_path / "s.toml"
    f.write_text(scen(search={"hardware.name": ["h100-sxm", "a100-80gb"],
                              "hardware.gpus_per_replica": [1, 3]}).to_toml())
    r = run_cli("plan", f, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    assert "cheapest:" in r.out and "Pareto frontier" in r.out
    assert "TP does not divide the heads (2)" in r.out
    r2 = run_cli("plan", f, "--out", tmp_path / "o", "--json")
    assert r2.code == 0, r2.err
    d = r2.json()
    assert set(d["search"]) >= {"configs", "best", "pareto"}
    assert d["replicas"] == d["search"]["best"]["replicas"]  # the top level is the best's plan
    assert d["max_qps"] == d["search"]["best"]["max_qps"]


@pytest.mark.parametrize("search, expect", [
    ({"hardware.nmae": ["h200"]}, 'plan.search."hardware.nmae": not a scenario setting'),
    ({"hardware.name": []}, 'plan.search."hardware.name": must be a non-empty list'),
    ({"serving.max_batch": [8, -1]},
     "plan.search (configuration serving.max_batch = -1): serving.max_batch: must be a "
     "positive integer"),
    ({"hardware.name": ["h100-sxm", "tpu-v9"]},
     "plan.search (configuration hardware.name = 'tpu-v9'): hardware.name: unknown hardware"),
    ({"plan.target_qps": [1, 2]}, 'plan.search."plan.target_qps": a search varies'),
    ({"serving.replicas": [1, 2]}, 'plan.search."serving.replicas": the plan chooses the '
     'replicas'),
])
def test_bad_search_input_is_one_line_and_exit_2(run_cli, tmp_path, search, expect):
    f = tmp_path / "s.toml"
    lines = ['name = "bad"', "[slo]", "ttft_p99_s = 1.0", "[plan]", "target_qps = 5",
             "[plan.search]"]
    for k, v in search.items():
        lines.append(f'"{k}" = {json.dumps(v)}')
    f.write_text("\n".join(lines) + "\n")
    r = run_cli("plan", f)
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert expect in r.err, r.err


def test_a_gpu_without_a_price_stops_the_search_in_one_line(run_cli, tmp_path, monkeypatch):
    import simkit.catalog.hardware as H
    from dataclasses import replace

    for name in ("h100-sxm", "a100-80gb"):
        hw = replace(H.CATALOG[name])
        object.__setattr__(hw, "price_per_gpu_hour", 0.0)
        monkeypatch.setitem(H.CATALOG, name, hw)
    f = tmp_path / "s.toml"
    f.write_text(scen().to_toml())
    r = run_cli("plan", f, "--out", tmp_path / "o")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "no price is known for h100-sxm, a100-80gb" in r.err
    assert not (tmp_path / "o").exists()


def test_bundled_cheapest_70b_search_cost_model_pass(catalog_prices):
    """The bundled scenario: 144 configurations; the cost model rules out TP 1 on the 80 GB
    and 141 GB GPUs (141.1 GB of bf16 weights > 0.9 x capacity) and keeps TP 1 on MI300X.
    Every other configuration passes the bounds, TP 2 on A100-80GB by a hair: a decode step
    of one streams the 139.0 GB a step reads (every weight but the embedding table, which
    gives only its tokens' rows) over two GPUs in just under the 50 ms p99 TPOT limit, so
    the simulator judges it."""
    from simkit.plan.search import configurations

    s = load_scenario(ROOT / "scenarios" / "cheapest-70b-20qps.toml")
    cfgs = configurations(s)
    assert len(cfgs) == 144 == math.prod(len(v) for v in s.plan.search.values())
    no_fit = {(c.params["hardware.name"], c.params["hardware.gpus_per_replica"])
              for c in cfgs if c.reason and c.reason.startswith("weights do not fit")}
    assert no_fit == {("a100-80gb", 1), ("h100-sxm", 1), ("h200", 1)}
    # 3 GPU kinds x the 9 scheduler and batch settings
    assert sum(1 for c in cfgs if c.reason) == 3 * 9
    ok = [c for c in cfgs if c.reason is None]
    assert len(ok) == 144 - 27
    assert all(c.cost_lower_bound > 0 for c in ok)


def test_api_search_and_dataframe(catalog_prices):
    pd = pytest.importorskip("pandas")
    from simkit import api

    res = api.search(scen(search={"hardware.name": ["h100-sxm", "a100-80gb"]}),
                     executor=SerialExecutor())
    df = api.to_dataframe(res)
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert {"hardware.name", "cost_per_hour", "status"} <= set(df.columns)


def test_dask_cluster_gives_the_same_search(searched, catalog_prices):
    distributed = pytest.importorskip("distributed")
    s = scen(search={"hardware.name": ["h100-sxm", "a100-80gb"],
                     "hardware.gpus_per_replica": [1, 3]})
    serial = run_search(s, SerialExecutor())
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", host="127.0.0.1", scheduler_port=0,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dasked = run_search(s, client.get_executor(pure=False))
    assert json.dumps(dasked.configs, sort_keys=True) == json.dumps(serial.configs,
                                                                    sort_keys=True)


def test_search_pages_show_the_ranking_the_frontier_and_why_others_fail(searched):
    from matplotlib.text import Text

    from simkit.report.pages.search import answer, search_figure, search_table_page

    _, res, _ = searched
    text = " ".join(t.get_text() for fig in (search_figure(res), search_table_page(res))
                    for t in fig.findobj(Text))
    assert "The cheapest configuration" in text and "Why the others are not ranked" in text
    # table cells wrap: their first lines
    assert "TP does not" in text and "pruned by the cost" in text
    assert "Pareto frontier" in text
    lines = answer(res)
    assert lines[0].startswith("Cheapest of 12 configurations at 60 req/s")


def test_cost_cut_rounds_by_hand(monkeypatch):
    """The rounds, on made-up configurations whose probes and plans are given (the cut grows
    by 2 here, not sqrt(2)): it starts at twice the smallest lower bound and grows until one
    meets; those that meet are
    planned; a plan above the cut (c2: its probe met 4 replicas, its plan needs 5) sends the
    ones it cannot rule out back at its cost (c0 at 9 replicas); the rest are pruned with
    their proof."""
    from types import SimpleNamespace

    import simkit.plan.search as S

    #: index: (lower bound $/h, $/h per replica, fewest replicas a probe meets with,
    #: replicas its plan finds)
    world = {0: (2.0, 1.0, 10, 10), 1: (3.0, 3.0, 2, 3), 2: (8.0, 2.0, 4, 5),
             3: (30.0, 1.0, 1, 1)}
    cfgs = [S.Config(index=i, params={"k": i}, scenario=None, gpus_per_replica=1,
                     price_per_gpu_hour=u, unit_per_hour=u, cost_lower_bound=lb)
            for i, (lb, u, _, _) in world.items()]
    calls = []

    def point(c, replicas=None):
        params = dict(c.params) if replicas is None else {**c.params,
                                                          "serving.replicas": replicas}
        return SimpleNamespace(index=c.index, params=params)

    def sweep(points, executor=None, *, point_fn, **_kw):
        recs = []
        for p in points:
            lb, u, need, planned = world[p.index]
            if point_fn is S.cut_point:
                n = p.params["serving.replicas"]
                calls.append((p.index, n))
                m = {"met": n >= need, "ttft_p99_s": 1.0, "tpot_p99_s": 0.01,
                     "e2e_p99_s": 2.0, "requests": 100,
                     "shortfall": None if n >= need else "p99 TTFT 3 s > 1 s"}
            else:
                calls.append((p.index, "plan"))
                m = {"replicas": planned, "gpus": planned, "cost_per_hour": planned * u,
                     "max_qps": 1.0, "slo": {}}
            recs.append({"params": p.params, "metrics": m, "error": None})
        return SimpleNamespace(records=recs)

    monkeypatch.setattr(S, "configurations", lambda s: cfgs)
    monkeypatch.setattr(S, "CUT_GROWTH", 2.0)
    monkeypatch.setattr(S, "_point", point)
    monkeypatch.setattr(S, "run_sweep", sweep)
    res = S.run_search(scen(search={"serving.max_batch": [1, 2, 3, 4]}))
    # cut 4: c0 at 4, c1 at 1 (c2's bound 8 is above); cut 8: c0 at 8, c1 at 2 (meets),
    # c2 at 4 (meets); both planned: 9 and 10 $/h, above the cut; c0 (proven above 8) again
    # at the cheapest, 9 $/h: misses; c3's bound 30 is above everything
    assert calls == [(0, 4), (1, 1), (0, 8), (1, 2), (2, 4), (1, "plan"), (2, "plan"),
                     (0, 9)]
    by = {c["index"]: c for c in res.configs}
    assert [by[i]["status"] for i in range(4)] == ["pruned", "ranked", "ranked", "pruned"]
    assert res.best["index"] == 1 and res.best["cost_per_hour"] == 9.0
    assert by[0]["reason"].startswith("pruned: 9 replica(s) (9 $/h) miss the SLOs") and \
        "at least 10 (10 $/h), more than the cheapest, 9 $/h" in by[0]["reason"]
    assert by[3]["reason"] == "pruned: its cost lower bound 30 $/h is above the cheapest, 9 $/h"
    assert res.counts == {"configurations": 4, "ranked": 2, "pruned": 2, "infeasible": 0}
