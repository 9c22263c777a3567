"""Associative recall through the kernels: documented shape, determinism, sanity of extremes."""

import json

import pytest

from simkit import cli
from simkit.calibrate import fidelity
from simkit.errors import SimkitError

SMALL = fidelity.RecallTask(d=16, pairs=4, trials=12, window=16, global_tokens=2,
                            memory_slots=4, segment=16, group=6)


@pytest.fixture(scope="module")
def small():
    return fidelity.run_fidelity(lengths=[24, 200], seed=3, task=SMALL)


def test_shape_of_the_result(small):
    d = small.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["lengths"] == [24, 200]
    assert set(d["recall"]) == set(fidelity.FIDELITY_FAMILIES)
    for fam, vals in d["recall"].items():
        assert len(vals) == 2 and all(0 <= v <= 1 for v in vals)
        # recall is a count of hits over the trials
        assert all(abs(v * SMALL.trials - round(v * SMALL.trials)) < 1e-9 for v in vals)
    assert d["chance"] == pytest.approx(1 / SMALL.pairs)
    assert d["task"]["window"] == 16


def test_same_seed_same_numbers(small):
    again = fidelity.run_fidelity(lengths=[24, 200], seed=3, task=SMALL)
    assert again.to_dict() == small.to_dict()


def test_window_covering_the_sequence_recalls_like_full():
    """With w >= n the window family attends to everything: same hits as full attention."""
    task = fidelity.RecallTask(d=16, pairs=4, trials=12, window=64, global_tokens=0,
                               memory_slots=4, segment=64, group=12)
    r = fidelity.run_fidelity(lengths=[40], seed=1, task=task,
                              families=("full", "window", "sparse"))
    assert r.recall["window"] == r.recall["full"] == r.recall["sparse"]
    assert r.recall["full"][0] >= 0.9  # sharpness 16 over 40 tokens: near-certain retrieval


def test_bad_parameters_are_simkit_errors():
    with pytest.raises(SimkitError, match="fidelity.lengths"):
        fidelity.run_fidelity(lengths=[3], task=SMALL)
    with pytest.raises(SimkitError, match="fidelity.families"):
        fidelity.run_fidelity(lengths=[40], task=SMALL, families=("nope",))
    with pytest.raises(SimkitError, match="fidelity.trials"):
        fidelity.run_fidelity(lengths=[40], task=fidelity.RecallTask(trials=0))


def test_cli_fidelity_json(capsys):
    assert cli.main(["fidelity", "--lengths", "40", "80", "--trials", "4", "--pairs", "4",
                     "--window", "16", "--segment", "16", "--memory-slots", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["lengths"] == [40, 80]
    assert set(d["recall"]) == {"full", "window", "sparse", "linear", "memory"}
    assert all(len(v) == 2 for v in d["recall"].values())


def test_cli_fidelity_bad_option_one_line(capsys):
    assert cli.main(["fidelity", "--lengths", "3", "--pairs", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lengths: each length must exceed pairs (4), got 3" in err
