"""What the report asks of the cost layer for a scenario: its architecture, its hardware
profile and its numeric step model, built in this one place for every page."""

from __future__ import annotations

from dataclasses import replace


def arch_for(model, section, kind: str | None = None):
    """The ArchSpec of the scenario's [model] section, optionally with another kind
    ("hybrid", the label of a mixed stack, means the scenario's own stack)."""
    from simkit.costs import ArchSpec

    if kind is not None and kind != "hybrid":
        section = replace(section, attention=kind, layer_pattern=None, attention_every=1)
    return ArchSpec.from_scenario_model(model, section)


def hardware_of(s):
    from simkit.catalog import load_hardware

    return load_hardware(s.hardware.name)


def engine_of(s):
    """The scenario's serving-engine profile."""
    from simkit.costs.engine import load_engine

    return load_engine(s.hardware.engine)


def step_model(s, arch=None):
    """The scenario's numeric step model (optionally with another architecture): the cost
    layer's one builder, `step_model_for`, unless another architecture is asked for."""
    from simkit.costs import build_step_model
    from simkit.costs.compiled import step_model_for

    if arch is None:
        return step_model_for(s)
    return build_step_model(s.model_config(), arch, hardware_of(s),
                            gpus=s.hardware.gpus_per_replica, ideal=s.hardware.ideal,
                            engine=s.hardware.engine)
