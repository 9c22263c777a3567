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
