"""Every example in the README runs: the `$ simkit ...` tour, the Python what-if block and
the two newcomer commands' simkit parts (the pip installs are what CI itself runs)."""

from __future__ import annotations

import re
import shlex

import pytest

from simkit.calibrate import calibration
from simkit.calibrate.counts import KernelShape

TINY = calibration.CalibrationPlan(
    shape=KernelShape(heads=2, d_qk=16, d_v=16, window=32, global_tokens=4, memory_slots=8,
                      segment=32, linear_chunk=16, tile=32, d_inner=16, d_state=4, d_conv=3),
    n_grid=(64, 128, 256), batch_grid=(2,), decode_heads=2, decode_contexts=(256, 512, 1024),
    gemm_size=128, copy_bytes=2**20, repeats=2, warmup=1)


def _readme(repo_root) -> str:
    return (repo_root / "README.md").read_text()


def _tour(repo_root) -> list[list[str]]:
    return [shlex.split(line[len("$ simkit "):]) for line in _readme(repo_root).splitlines()
            if line.startswith("$ simkit ")]


def test_readme_opens_with_the_two_commands(repo_root):
    blocks = re.findall(r"```bash\n(.*?)```", _readme(repo_root), re.S)
    install_report, install_test = blocks[0].strip(), blocks[1].strip()
    assert install_report.startswith("pip install . && simkit report scenarios/")
    assert install_test.startswith("pip install '.[test,cluster]' && python -m pytest")
    ci = (repo_root / ".ci" / "run").read_text()
    assert install_test.replace("pip install", "python -m pip install -q") in ci


def test_readme_main_job(repo_root, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    first = re.findall(r"```bash\n(.*?)```", _readme(repo_root), re.S)[0]
    argv = shlex.split(first.split("&&", 1)[1].strip())
    assert argv[0] == "simkit"
    i = argv.index("-o")
    argv[i + 1] = str(tmp_path / "report.pdf")  # the committed report stays as it is
    r = run_cli(*argv[1:])
    assert r.code == 0, r.err
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")


def test_readme_tour_runs(repo_root, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # out/ folders land here
    monkeypatch.setattr(calibration, "QUICK_PLAN", TINY)  # the timing is not under test
    tour = _tour(repo_root)
    assert len(tour) >= 12
    for argv in tour:
        argv = [str(repo_root / a) if a.startswith(("scenarios/", "tests/", "simkit/data/"))
                else a
                for a in argv]
        r = run_cli(*argv)
        assert r.code == 0, (argv, r.err)
        assert r.out.strip(), argv


def test_readme_python_block(repo_root, tmp_path, monkeypatch):
    pytest.importorskip("numpy")
    code = re.findall(r"```python\n(.*?)```", _readme(repo_root), re.S)[0]
    code = code.replace('"scenarios/', f'"{repo_root}/scenarios/')
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # our own README, not user input
    assert ns["kv"] > 0 and ns["p99_ttft"] > 0
    assert ns["p"].max_qps > 0 and len(ns["rows"]) == 3
    assert (tmp_path / "out" / "rates" / "results.jsonl").is_file()
