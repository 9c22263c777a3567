"""Calibration: numpy attention kernels, timing and fits, hardware profiles, retention.

- `kernels`: one layer's forward pass per architecture family (prefill and decode);
- `counts`: their FLOP/byte counts in the cost layer's conventions;
- `timing`, `fit`: the timing harness and the scipy fits (rate, overhead, exponent);
- `calibration`: `run_calibration()` -> `CalibrationResult`;
- `profile`: a `CalibrationResult` -> `HardwareProfile` TOML that `--hardware FILE` accepts;
- `fidelity`: `run_fidelity()` -> `FidelityResult`, associative recall vs context length.

Import the submodules directly; this package imports nothing heavy on its own.
"""
