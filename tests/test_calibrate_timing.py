"""The timing harness with a fake clock (no real timing noise), and machine info."""

import io

import pytest

from simkit.calibrate import timing


def test_time_call_median_spread_and_warmup():
    ticks = iter([0.0, 1.0, 1.0, 4.0, 4.0, 6.0, 6.0, 10.0, 10.0, 11.0])  # 1, 3, 2, 4, 1 s
    calls = []
    t = timing.time_call(lambda: calls.append(1), warmup=2, repeats=5,
                         clock=lambda: next(ticks))
    assert len(calls) == 7  # warm-up calls are made but not timed
    assert t.median_s == 2.0 and t.min_s == 1.0 and t.max_s == 4.0
    assert t.iqr_s == pytest.approx(2.0) and t.rel_spread == pytest.approx(1.0)
    with pytest.raises(ValueError):
        timing.time_call(lambda: None, repeats=0)


def test_blas_info_records_library_and_threads():
    info = timing.blas_info()
    assert info["cores"] >= 1
    assert info["blas"] and info["blas_threads"] >= 1


def test_progress_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet, tty = io.StringIO(), Tty()
    for stream in (quiet, tty):
        p = timing.Progress(2, stream=stream)
        p.step("a")
        p.close()
    assert quiet.getvalue() == ""
    assert "[  1/2] a" in tty.getvalue()


def test_machine_references_are_positive():
    gemm, _ = timing.gemm_flops_per_s(64, repeats=2)
    copy, _ = timing.copy_bytes_per_s(2**20, repeats=2)
    assert gemm > 0 and copy > 0 and timing.ram_bytes() > 0
