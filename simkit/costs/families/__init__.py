"""One module per token-mixer family; each returns a `MixerCosts` for one layer.

`mixer_costs(model, arch)` dispatches on `arch.attention`. Shapes are sympy symbols from
`simkit.costs.symbols`; the returned `values` map them to the model's numbers.
"""

from __future__ import annotations

from typing import Any

from simkit.costs.families import full, linear, memory, mla, sparse, ssm, window
from simkit.costs.families.base import MixerCosts

_MODULES = {"full": full, "window": window, "sparse": sparse, "linear": linear,
            "memory": memory, "ssm": ssm, "mla": mla}


def mixer_costs(model: Any, arch: Any, kind: str | None = None) -> MixerCosts:
    """Costs of one token-mixer layer of `kind` (default `arch.attention`)."""
    return _MODULES[kind or arch.attention].costs(model, arch)


__all__ = ["MixerCosts", "mixer_costs"]
