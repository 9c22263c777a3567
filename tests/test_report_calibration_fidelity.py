"""Report section 8: a calibrated profile's fit results and the retention experiment."""

from __future__ import annotations

import pytest

from simkit.calibrate import calibration, profile
from simkit.calibrate.counts import KernelShape
from simkit.scenario import scenario_from_dict

pypdf = pytest.importorskip("pypdf")

TINY = calibration.CalibrationPlan(
    shape=KernelShape(heads=2, d_qk=16, d_v=16, window=32, global_tokens=4, memory_slots=8,
                      segment=32, linear_chunk=16, tile=32, d_inner=16, d_state=4, d_conv=3),
    n_grid=(64, 128, 256), batch_grid=(2,), decode_heads=2, decode_contexts=(256, 512, 1024),
    gemm_size=128, copy_bytes=2**20, repeats=2, warmup=1)


def test_calibrated_profile_and_fidelity_pages(tmp_path, run_cli):
    prof = profile.write_profile(calibration.run_calibration(plan=TINY, seed=0),
                                 tmp_path / "this-cpu.toml", name="this-cpu")
    scen = tmp_path / "s.toml"
    # a CPU runs a 125M-parameter model (GPT-2-small shapes, bundled as a config.json)
    (tmp_path / "gpt2.json").write_text(
        '{"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, '
        '"vocab_size": 50257, "n_positions": 1024}')
    scen.write_text(f"""
name = "cpu-retention"
question = "What does this CPU do with a small model, and what does a window forget?"
seed = 2
[model]
name = "gpt2.json"
attention = "window"
window = 64
memory_slots = 16
segment_tokens = 64
[hardware]
name = "{prof.name}"
[workload]
requests = 12
arrival = {{ process = "poisson", rate = 2.0 }}
prompt_tokens = {{ dist = "fixed", value = 100 }}
output_tokens = {{ dist = "fixed", value = 8 }}
[serving]
max_seq_len = 256
[report]
fidelity = true
fidelity_lengths = [64, 512]
""")
    out = tmp_path / "r.pdf"
    r = run_cli("report", scen, "-o", out)
    assert r.code == 0, r.err
    reader = pypdf.PdfReader(str(out))
    texts = [p.extract_text() for p in reader.pages]
    cal = [t for t in texts if "|  Calibration page" in t]
    assert len(cal) == 1 and "this-cpu" in cal[0] and "held-out error" in cal[0]
    ret = [t for t in texts if "|  Information retention page" in t]
    assert ret and "recall" in ret[0] and "Window w = 64" in ret[0]
    assert "memory of 16 slots" in ret[0]


def test_fidelity_off_by_default():
    s = scenario_from_dict({"name": "x"})
    assert s.report.fidelity is False and s.report.fidelity_lengths == ()
