"""Analysis on the symbolic forms: crossover lengths, budgets, sensitivities.

- `crossover`: where two architectures' costs are equal (e.g. full vs linear prefill FLOPs,
  full vs window cache). The sign changes are located on the integers, then the active
  branch of the difference is solved exactly with sympy.
- `max_batch` / `max_context`: solve batch x cache(t) = budget, then floor.
- `sensitivity`: d(quantity)/d(parameter) and the elasticity (x/f) df/dx at the model's values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.arch import ArchSpec
from simkit.costs.model import ModelCosts, model_costs
from simkit.errors import SimkitError

#: quantity name -> (ModelCosts attribute, length variable or None, unit)
QUANTITIES = {
    "params": ("params", None, "parameters"),
    "weight_bytes": ("weight_bytes", None, "bytes"),
    "streamed_weight_bytes": ("streamed_weight_bytes", None, "bytes per step"),
    "prefill_flops": ("prefill_flops", S.n, "FLOPs"),
    "attention_prefill_flops": ("attn_prefill_flops", S.n, "FLOPs"),
    "decode_flops": ("decode_flops", S.t, "FLOPs per token"),
    "attention_decode_flops": ("attn_decode_flops", S.t, "FLOPs per token"),
    "cache_bytes": ("cache_bytes", S.t, "bytes per sequence"),
    "decode_bytes": ("decode_bytes", S.t, "bytes per token"),
}


def quantity_expr(mc: ModelCosts, quantity: str) -> tuple[sp.Expr, sp.Symbol | None]:
    if quantity not in QUANTITIES:
        raise SimkitError(f"--quantity: unknown quantity {quantity!r}; choose one of "
                          f"{', '.join(QUANTITIES)}")
    attr, var, _ = QUANTITIES[quantity]
    return getattr(mc, attr), var


@dataclass
class Crossover:
    quantity: str
    a: str
    b: str
    length_symbol: str
    #: first integer lengths at which the sign of cost_a - cost_b changes
    lengths: list[int] = field(default_factory=list)
    #: exact real roots of the active branch, as sympy strings
    exact: list[str] = field(default_factory=list)
    #: which side is cheaper below the first crossover ("a", "b" or "equal")
    cheaper_below: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _active_branch(expr: sp.Expr, var: sp.Symbol, at: float) -> sp.Expr:
    """Replace Min/Piecewise by the branch active at var = at (for an exact solve)."""
    expr = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    if isinstance(expr, sp.Piecewise):
        for e, c in expr.args:
            if bool(c.subs(var, at)):
                return _active_branch(e, var, at)
    if expr.args:
        return expr.func(*[_active_branch(a, var, at) for a in expr.args])
    return expr


def crossover(model, arch_a: ArchSpec, arch_b: ArchSpec, quantity: str,
              max_length: int = 10_000_000) -> Crossover:
    """Lengths where `quantity` of arch_a equals that of arch_b on `model`."""
    ma, mb = model_costs(model, arch_a.resolve(model)), model_costs(model, arch_b.resolve(model))
    ea, var = quantity_expr(ma, quantity)
    eb, _ = quantity_expr(mb, quantity)
    res = Crossover(quantity=quantity, a=arch_a.attention, b=arch_b.attention,
                    length_symbol=str(var) if var is not None else "")
    diff = sp.simplify(ma.numeric(ea) - mb.numeric(eb)) if var is None else \
        ma.numeric(ea) - mb.numeric(eb)
    if var is None or not diff.has(var):
        v = float(diff)
        res.cheaper_below = "equal" if v == 0 else ("a" if v < 0 else "b")
        res.note = "no dependence on length: no crossover"
        return res
    f = sp.lambdify((var,), diff, "numpy")
    grid = np.unique(np.round(np.geomspace(1, max_length, 4000)).astype(np.int64))
    vals = np.sign(np.asarray(f(grid.astype(np.float64)), dtype=np.float64))
    first = vals[0]
    res.cheaper_below = "equal" if first == 0 else ("a" if first < 0 else "b")
    for i in range(len(grid) - 1):
        if vals[i] == vals[i + 1] or vals[i + 1] == 0 and i + 2 < len(grid) and \
                vals[i + 2] == vals[i]:
            continue
        lo, hi = int(grid[i]), int(grid[i + 1])  # sign(lo) != sign(hi): find first flip
        s_lo = vals[i]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if np.sign(float(f(float(mid)))) == s_lo:
                lo = mid
            else:
                hi = mid
        res.lengths.append(hi)
        x = sp.Symbol(str(var), positive=True)  # real, not integer: keep fractional roots
        branch = _active_branch(diff, var, hi).subs(var, x)
        try:
            roots = sp.solve(sp.Eq(branch, 0), x)
        except (NotImplementedError, TypeError):
            roots = []
        for r in roots:
            rv = complex(sp.N(r))
            if abs(rv.imag) < 1e-9 and lo - 1 <= rv.real <= hi + 1:
                res.exact.append(f"{var} = {sp.nsimplify(r)} ~= {rv.real:.6g}")
    if not res.lengths:
        res.note = f"no crossover for {var} in [1, {max_length}]"
    return res


def cache_bytes(mc: ModelCosts, gpus: int = 1) -> sp.Expr:
    """One sequence's cache + state bytes in t across a tensor-parallel group of `gpus`:
    each group's cache times its replication (KV heads fewer than GPUs, MLA latents)."""
    from simkit.costs.roofline import kv_replication

    if gpus == 1:
        return mc.cache_bytes
    return sum((sp.Rational(kv_replication(mc.model, g.spec.kind, gpus)).limit_denominator(
        1 << 20) * g.cache_bytes for g in mc.groups), sp.Integer(0))


def max_batch(model, arch: ArchSpec, budget_bytes: float, seq: int, gpus: int = 1) -> int:
    """Largest batch of sequences at context `seq` whose caches fit `budget_bytes`:
    solve b x cache(seq) = budget, then floor."""
    mc = model_costs(model, arch.resolve(model))
    per_seq = mc.value(cache_bytes(mc, gpus), t=seq)
    if per_seq <= 0:
        raise SimkitError("max_batch: this architecture holds no cache; batch is unbounded "
                          "by memory")
    b = sp.Symbol("b", positive=True)
    sol = sp.solve(sp.Eq(b * sp.Float(per_seq), sp.Float(budget_bytes)), b)
    return max(0, int(math.floor(float(sol[0]))))


def max_context(model, arch: ArchSpec, budget_bytes: float, batch: int = 1,
                gpus: int = 1) -> int | None:
    """Longest context t at which `batch` sequences' caches fit `budget_bytes` (solve
    batch x cache(t) = budget, floor; physical bytes on `gpus` tensor-parallel GPUs). None
    when the cache stops growing below the budget (window, linear, memory, SSM): any length
    fits."""
    mc = model_costs(model, arch.resolve(model))
    cache = mc.numeric(cache_bytes(mc, gpus)) * batch
    if not cache.has(S.t):
        return None if float(cache) <= budget_bytes else 0
    huge = float(cache.subs(S.t, 10**12))
    if huge <= budget_bytes:
        return None
    if float(cache.subs(S.t, 1)) > budget_bytes:
        return 0
    growing = _active_branch(cache, S.t, 10**12)
    # chunked layers hold ((t - 1) mod c) + 1 positions, a sawtooth sympy cannot solve: solve
    # on its upper envelope (mod -> c), a length that surely fits; the walk below then finds
    # the first length whose cache overflows (at most one chunk further)
    growing = growing.replace(lambda e: isinstance(e, sp.Mod), lambda e: e.args[1])
    x = sp.Symbol("t", positive=True)
    try:
        roots = [r for r in sp.solve(sp.Eq(growing.subs(S.t, x), sp.Float(budget_bytes)), x)
                 if sp.N(r).is_real]
    except (NotImplementedError, TypeError):
        roots = []
    t = int(math.floor(float(sp.N(roots[0])))) if roots else 1
    f = sp.lambdify((S.t,), cache, "numpy")
    while t > 0 and float(f(float(t))) > budget_bytes:  # guard the floor against rounding
        t -= 1
    while float(f(float(t + 1))) <= budget_bytes:
        t += 1
    return t


@dataclass
class Sensitivity:
    quantity: str
    parameter: str
    derivative: str  # symbolic d(quantity)/d(parameter)
    value: float  # at the model's values (and the given length)
    elasticity: float  # (x / f) df/dx: % change of the quantity per % of the parameter

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sensitivity(model, arch: ArchSpec, quantity: str, parameter: str,
                **lengths: int) -> Sensitivity:
    mc = model_costs(model, arch.resolve(model))
    expr, _ = quantity_expr(mc, quantity)
    syms = {str(x): x for x in expr.free_symbols}
    if parameter not in syms:
        raise SimkitError(f"sensitivity: {quantity} does not depend on {parameter!r}; it "
                          f"depends on {', '.join(sorted(syms))}")
    x = syms[parameter]
    dexpr = sp.diff(expr, x)
    at = dict(mc.values)
    at.update({getattr(S, k): v for k, v in lengths.items()})
    dv = float(dexpr.subs(at))
    fv = float(expr.subs(at))
    xv = float(x.subs(at))
    return Sensitivity(quantity=quantity, parameter=parameter, derivative=str(dexpr),
                       value=dv, elasticity=dv * xv / fv if fv else float("nan"))
