"""The price of a GPU-hour: the scenario's override, else the catalog's dated list price.

`hardware.cost_per_gpu_hour`, when the scenario sets it, wins. Otherwise the hardware
profile's `price_per_gpu_hour` applies: a public on-demand cloud list price whose source and
date are in the profile's `price_source` (`simkit hardware` lists them); 0.0 there means no
price is known. simkit never invents a price: `gpu_price` returns None when there is none,
and `require_price` raises one line that says what to set.
"""

from __future__ import annotations

from dataclasses import dataclass

from simkit.errors import SimkitError


@dataclass(frozen=True)
class Price:
    """USD per GPU-hour and where the figure comes from."""

    per_gpu_hour: float
    source: str

    def to_dict(self) -> dict:
        return {"per_gpu_hour": self.per_gpu_hour, "source": self.source}

    @property
    def label(self) -> str:
        return price_label(self.source)


def price_label(source: str) -> str:
    """A price source shortened for a line of text: its provider clause and the date it was
    read ("CoreWeave on-demand list, read 2026-09-20"); JSON and the assumptions page keep
    the whole source."""
    import re

    head = source.split(" (", 1)[0].split(": ", 1)[0].strip()
    m = re.search(r"read (\d{4}-\d{2}-\d{2})", source)
    return head + (f", read {m.group(1)}" if m and m.group(1) not in head else "")


def gpu_price(s) -> Price | None:
    """The price that applies to scenario `s`'s GPU, or None when none is known."""
    if s.hardware.cost_per_gpu_hour is not None:
        return Price(float(s.hardware.cost_per_gpu_hour),
                     "the scenario's hardware.cost_per_gpu_hour")
    from simkit.catalog.hardware import load_hardware

    hw = load_hardware(s.hardware.name)
    # the catalog fields arrive with dated list prices; a profile without them has none
    value = float(getattr(hw, "price_per_gpu_hour", 0.0) or 0.0)
    if value > 0:
        return Price(value, str(getattr(hw, "price_source", "") or "the hardware catalog"))
    return None


@dataclass(frozen=True)
class UnitCost:
    """What one planning unit costs: a replica, or with [serving.disaggregation] one group of
    prefill_replicas + decode_replicas replicas (`serving.replicas` copies the group, and the
    planner counts groups)."""

    gpus: int
    per_hour: float | None  # USD per hour of one unit; None when a GPU has no known price
    source: str
    missing: tuple[str, ...] = ()  # GPUs of the unit with no known price

    @property
    def per_gpu_hour(self) -> float | None:
        """The unit's price per GPU-hour (a blend when its pools run different GPUs)."""
        return None if self.per_hour is None else self.per_hour / self.gpus


def unit_parts(s) -> list[tuple[str, int, int]]:
    """(hardware name, GPUs per replica, replicas) of each pool of one planning unit."""
    hw = s.hardware
    d = getattr(s.serving, "disaggregation", None)
    if d is None:
        return [(hw.name, int(hw.gpus_per_replica), 1)]
    return [(getattr(d, f"{k}_hardware") or hw.name,
             int(getattr(d, f"{k}_gpus_per_replica") or hw.gpus_per_replica),
             int(getattr(d, f"{k}_replicas"))) for k in ("prefill", "decode")]


def unit_cost(s) -> UnitCost:
    """GPUs and price per hour of one planning unit of scenario `s`. [hardware]'s GPU takes
    `gpu_price`; a disaggregated pool on another GPU takes that GPU's catalog price."""
    from simkit.catalog.hardware import load_hardware

    gpus, total, sources, missing = 0, 0.0, [], []
    for name, g, n in unit_parts(s):
        gpus += g * n
        if name == s.hardware.name:
            p = gpu_price(s)
        else:
            hw = load_hardware(name)
            v = float(getattr(hw, "price_per_gpu_hour", 0.0) or 0.0)
            p = Price(v, str(getattr(hw, "price_source", "") or "the hardware catalog")) \
                if v > 0 else None
        if p is None:
            missing.append(_display_name(name))
        else:
            total += p.per_gpu_hour * g * n
            if p.source not in sources:
                sources.append(p.source)
    if missing:
        return UnitCost(gpus, None, "no price: " + missing_price_message(missing),
                        tuple(dict.fromkeys(missing)))
    return UnitCost(gpus, total, "; ".join(sources))


def missing_price_message(names: list[str]) -> str:
    """One line naming the GPUs without a price and what to set."""
    listed = ", ".join(dict.fromkeys(names))
    return (f"hardware.cost_per_gpu_hour: no price is known for {listed} (the catalog has "
            "none); set hardware.cost_per_gpu_hour in USD per GPU-hour")


def require_price(s) -> Price:
    """`gpu_price`, or a `SimkitError` when the scenario's GPU has no known price."""
    p = gpu_price(s)
    if p is None:
        raise SimkitError(missing_price_message([_display_name(s.hardware.name)]))
    return p


def _display_name(name: str) -> str:
    """A catalog name as is; a profile file by its file name (never an absolute path)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]
