"""Property fuzzing over random valid scenarios (CI size; benchmarks/fuzz.py runs >= 10,000):
every generated scenario loads and runs keeping every invariant, fast path == stepping, or
is refused with one clear line -- never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from fuzz_scenarios import check_run, scenarios


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(d=scenarios())
def test_random_valid_scenarios_keep_every_invariant(d):
    assert check_run(d) in ("ran", "refused at load", "refused at run")
