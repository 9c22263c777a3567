"""Prices: the scenario's override wins, else the catalog's price; never an invented one."""

from __future__ import annotations

import pytest

from simkit.errors import SimkitError
from simkit.plan.prices import gpu_price, require_price
from simkit.scenario import scenario_from_dict


def test_catalog_price_applies_when_the_scenario_sets_none(catalog_prices):
    s = scenario_from_dict({"hardware": {"name": "h200"}})
    assert s.hardware.cost_per_gpu_hour is None
    p = gpu_price(s)
    assert p.per_gpu_hour == catalog_prices["h200"] and p.source == "test price"


def test_the_scenario_overrides_the_catalog(catalog_prices):
    s = scenario_from_dict({"hardware": {"name": "h200", "cost_per_gpu_hour": 7.25}})
    assert gpu_price(s).per_gpu_hour == 7.25
    assert "hardware.cost_per_gpu_hour" in gpu_price(s).source


def test_no_price_known_is_said_in_one_line(monkeypatch):
    import simkit.catalog.hardware as H
    from dataclasses import replace

    hw = replace(H.CATALOG["l4"])
    object.__setattr__(hw, "price_per_gpu_hour", 0.0)  # 0.0 = no price known
    monkeypatch.setitem(H.CATALOG, "l4", hw)
    s = scenario_from_dict({"hardware": {"name": "l4"}})
    assert gpu_price(s) is None
    with pytest.raises(SimkitError) as e:
        require_price(s)
    (msg,) = e.value.messages
    assert msg.startswith("hardware.cost_per_gpu_hour: no price is known for l4")


@pytest.mark.parametrize("bad", [0, -1.0, "cheap"])
def test_a_price_must_be_positive(bad):
    with pytest.raises(SimkitError, match="hardware.cost_per_gpu_hour: must be a number > 0"):
        scenario_from_dict({"hardware": {"cost_per_gpu_hour": bad}})


def test_plan_without_any_price_reports_no_cost_and_why(monkeypatch):
    """A plain plan does not need a price: it plans and says the cost is unknown."""
    from test_plan_capacity import QueueFake, scen

    import simkit.catalog.hardware as H
    from dataclasses import replace
    from simkit.plan.capacity import plan

    hw = replace(H.CATALOG["h100-sxm"])
    object.__setattr__(hw, "price_per_gpu_hour", 0.0)
    monkeypatch.setitem(H.CATALOG, "h100-sxm", hw)
    r = plan(scen(), simulate=QueueFake())
    assert r.replicas is not None and r.cost_per_hour is None
    assert r.cost_per_million_tokens is None
    assert "no price is known for h100-sxm" in r.price_source
