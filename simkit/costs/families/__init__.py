"""One module per token-mixer family; each returns a `MixerCosts` for one layer.

`mixer_costs(model, layer)` dispatches on the layer's kind. The kinds are those of the ONE
registry, `simkit.stack.MIXERS` (checked below). Shapes are sympy symbols from
`simkit.costs.symbols`; the returned `values` map them to the model's numbers.
"""

from __future__ import annotations

from typing import Any

from simkit.costs.families import chunked, full, linear, memory, mla, sparse, ssm, window
from simkit.costs.families.base import MixerCosts
from simkit.stack import MIXERS

_MODULES = {"full": full, "mla": mla, "window": window, "chunked": chunked, "sparse": sparse,
            "linear": linear, "ssm": ssm, "memory": memory}
assert set(_MODULES) == set(MIXERS), "families and the registry of mixer kinds disagree"


def mixer_costs(model: Any, layer: Any) -> MixerCosts:
    """Costs of one token-mixer layer (`layer.kind` with its settings)."""
    return _MODULES[layer.kind].costs(model, layer)


__all__ = ["MixerCosts", "mixer_costs"]
