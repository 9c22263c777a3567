"""Scenario values: the kinds a key may take and the checkers that validate each value.

A checker takes (value, key_path, ctx) and returns the converted value, or records an error in
ctx and returns `_BAD`. `_f` puts a field's default and its checker side by side in the
section dataclasses (`simkit.scenario.sections`)."""

from __future__ import annotations

import math
from dataclasses import field
from pathlib import Path
from typing import Any, Callable, Mapping

from simkit.errors import SimkitError

ARRIVAL_PROCESSES = ("poisson", "gamma", "fixed", "trace", "burst")
LENGTH_DISTS = ("fixed", "uniform", "lognormal", "empirical", "trace")
SCHEDULERS = ("static", "continuous", "chunked", "prefill_first")
KV_MEMORY = ("paged", "contiguous")
ROUTERS = ("round_robin", "least_loaded", "session_affinity")
TIME_DISTS = ("fixed", "exponential", "lognormal")
PREEMPTION = ("recompute", "swap")
ADMISSIONS = ("greedy", "no_evict", "new_token_ratio")
LINKS = ("nvlink", "network")
TRANSFERS = ("after_prefill", "layerwise")

# A checker takes (value, key_path, ctx) and returns the converted value, or appends an error
# to ctx.errors and returns _BAD. The checker of each field is in its dataclass metadata, next
# to its default, so the default and the rule are read in one place.

class _Bad:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<invalid>"


_BAD = _Bad()


class _Ctx:
    """Loader state: the folder relative paths resolve against, and the errors so far."""

    def __init__(self, base_dir: str | Path):
        self.base_dir = Path(base_dir)
        self.errors: list[str] = []

    def err(self, path: str, msg: str) -> _Bad:
        self.errors.append(f"{path}: {msg}")
        return _BAD


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(lo: int = 1, optional: bool = False) -> Callable:
    what = "a positive integer" if lo == 1 else f"an integer >= {lo}"

    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if not _is_int(v) or v < lo:
            return ctx.err(path, f"must be {what}, got {v!r}")
        return int(v)
    return check


def _float(gt: float | None = None, ge: float | None = None, le: float | None = None,
           optional: bool = False, lt: float | None = None) -> Callable:
    parts = [f"> {gt:g}" if gt is not None else "", f">= {ge:g}" if ge is not None else "",
             f"<= {le:g}" if le is not None else "", f"< {lt:g}" if lt is not None else ""]
    what = "a number " + " and ".join(p for p in parts if p) if any(parts) else "a number"

    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if (not _is_num(v) or (gt is not None and not v > gt) or (ge is not None and not v >= ge)
                or (le is not None and not v <= le) or (lt is not None and not v < lt)):
            return ctx.err(path, f"must be {what}, got {v!r}")
        return float(v)
    return check


def _enum(choices: tuple[str, ...], optional: bool = False) -> Callable:
    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if not isinstance(v, str) or v not in choices:
            return ctx.err(path, f"must be one of {', '.join(choices)}; got {v!r}")
        return v
    return check


def _str(optional: bool = False) -> Callable:
    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if v is None and optional:
            return None
        if not isinstance(v, str):
            return ctx.err(path, f"must be a string, got {v!r}")
        return v
    return check


def _bool(v: Any, path: str, ctx: _Ctx) -> Any:
    if not isinstance(v, bool):
        return ctx.err(path, f"must be true or false, got {v!r}")
    return v


def _file(v: Any, path: str, ctx: _Ctx) -> Any:
    """An optional existing file; relative paths resolve against the scenario's folder."""
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be a file path (string), got {v!r}")
    p = _resolve(v, ctx.base_dir)
    if not p.is_file():
        return ctx.err(path, f"no such file {v!r} (looked for {p})")
    return str(p)


def _tuple_of(item: Callable) -> Callable:
    def check(v: Any, path: str, ctx: _Ctx) -> Any:
        if not isinstance(v, (list, tuple)):
            return ctx.err(path, f"must be a list, got {v!r}")
        out = [item(x, f"{path}[{i}]", ctx) for i, x in enumerate(v)]
        return _BAD if any(x is _BAD for x in out) else tuple(out)
    return check


def _layer_pattern(v: Any, path: str, ctx: _Ctx) -> Any:
    """model.layer_pattern: tables of known keys, type-checked (never evaluated)."""
    from simkit.stack import parse_pattern

    if v is None:
        return None
    try:
        return parse_pattern(v, path)
    except SimkitError as e:
        for m in e.messages:
            ctx.errors.append(m)
        return _BAD


def _resolve(p: str, base_dir: Path) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else (base_dir / q).resolve()


def _catalog_name(v: Any, path: str, ctx: _Ctx, catalog: Mapping, load: Callable,
                  suffix: str, what: str, word: str) -> Any:
    """A catalog entry's name, or a path to a file of `suffix` that `load` reads."""
    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be {what}, got {v!r}")
    key = _name_or_path(v, catalog, suffix, ctx)
    try:
        load(key)
    except SimkitError as e:
        for m in e.messages:
            ctx.err(path, _strip_prefix(m, word))
        return _BAD
    return key


def _model_name(v: Any, path: str, ctx: _Ctx) -> Any:
    from simkit.catalog.models import CATALOG, load_model

    return _catalog_name(v, path, ctx, CATALOG, load_model, ".json",
                         "a catalog model name or a config.json path", "model")


def _hardware_name(v: Any, path: str, ctx: _Ctx) -> Any:
    from simkit.catalog.hardware import CATALOG, load_hardware

    return _catalog_name(v, path, ctx, CATALOG, load_hardware, ".toml",
                         "a hardware name or a profile .toml path", "hardware")


def _engine_name(v: Any, path: str, ctx: _Ctx) -> Any:
    """hardware.engine: a shipped engine profile's name or an ENGINE.toml path."""
    from simkit.costs.engine import check_engine, engines

    if not isinstance(v, str) or not v:
        return ctx.err(path, f"must be an engine name or an ENGINE.toml path, got {v!r}")
    key = _name_or_path(v, engines(), ".toml", ctx)
    try:
        check_engine(key, path)
    except SimkitError as e:
        for m in e.messages:
            ctx.errors.append(m)
        return _BAD
    return key


def _name_or_path(v: str, catalog: Mapping, suffix: str, ctx: _Ctx) -> str:
    """A catalog name as is; anything that looks like a file becomes an absolute path."""
    if v in catalog:
        return v
    p = _resolve(v, ctx.base_dir)
    if p.exists() or v.endswith(suffix) or "/" in v or "\\" in v:
        return str(p)
    return v  # an unknown name: the catalog's error lists the known ones


def _strip_prefix(msg: str, word: str) -> str:
    return msg[len(word) + 2:] if msg.startswith(word + ": ") else msg


def _f(default: Any = None, check: Callable | None = None, *, factory: Any = None,
       section: type | None = None) -> Any:
    """A dataclass field with its default and its checker (or nested section type)."""
    md = {"check": check, "section": section}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)

