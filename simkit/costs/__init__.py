"""Symbolic cost models (sympy) of every attention/memory architecture, and their numeric,
cached forms for the simulator.

- `ArchSpec`: the token-mixer kind and its settings.
- `model_costs(model, arch)`: whole-model sympy expressions (`ModelCosts`).
- `build_step_model(model, arch, hw, gpus, ideal, engine)`: numpy step times (`StepCostModel`)
  under a serving-engine profile (`engine`); `steptime`: the same formula in sympy.
- `evaluate_costs(...)`: the numbers `simkit cost` prints.
- `analysis`: crossover lengths, max batch/context under a budget, sensitivities.
"""

from simkit.costs.arch import KINDS, ArchSpec
from simkit.costs.compiled import StepCostModel, build_step_model
from simkit.costs.model import ModelCosts, model_costs


def evaluate_costs(*args, **kwargs):
    from simkit.costs.summary import evaluate_costs as _ev

    return _ev(*args, **kwargs)


__all__ = ["KINDS", "ArchSpec", "ModelCosts", "StepCostModel", "build_step_model",
           "evaluate_costs", "model_costs"]
