"""The layer-stack spec: the registry, strict pattern parsing, tiling, descriptions."""

from __future__ import annotations

import pytest

from simkit.errors import SimkitError
from simkit.stack import (KINDS, MIXERS, LayerSpec, describe, groups, parse_pattern,
                          parse_pattern_text, pattern_to_tables, tile)


def test_one_registry_feeds_every_kind_list():
    from simkit.commands import _arch_args
    from simkit.costs import arch, families
    from simkit import scenario

    assert KINDS == tuple(MIXERS)
    assert scenario.ATTENTION_KINDS is KINDS
    assert arch.KINDS is KINDS
    assert set(families._MODULES) == set(KINDS)
    assert _arch_args.KINDS is KINDS


def test_pattern_tables_expand_counts_and_round_trip():
    p = parse_pattern([{"kind": "window", "window": 1024, "count": 5}, {"kind": "full"}])
    assert len(p) == 6 and p[:5] == (LayerSpec("window", window=1024),) * 5
    assert p[5] == LayerSpec("full")
    assert parse_pattern(pattern_to_tables(p)) == p
    assert pattern_to_tables(p) == [{"kind": "window", "window": 1024, "count": 5},
                                    {"kind": "full"}]


@pytest.mark.parametrize("raw, fragment", [
    ([], "must be a non-empty list"),
    ("full", "must be a non-empty list"),
    ([{"window": 4}], "[0].kind: required"),
    ([{"kind": "flash"}], "[0].kind: unknown kind 'flash'"),
    ([{"kind": "full", "windw": 4}], "[0].windw: unknown key"),
    ([{"kind": "window", "window": -1}], "[0].window: must be a positive integer"),
    ([{"kind": "window", "window": 1.5}], "[0].window: must be a positive integer"),
    ([{"kind": "window", "window": True}], "[0].window: must be a positive integer"),
    ([{"kind": "full", "count": 0}], "[0].count: must be a positive integer"),
    ([{"kind": "full", "window": 64}], "[0].window: full takes no window"),
    ([{"kind": "ssm", "variant": "mamba3"}], "[0].variant: ssm takes one of mamba1, mamba2"),
    ([{"kind": "full", "ffn": "sparse"}], "[0].ffn: must be one of dense, moe, none"),
    ([{"kind": 3}], "[0].kind: must be a string"),
    (["x"], "[0]: must be a table"),
])
def test_bad_patterns_name_the_entry_and_key(raw, fragment):
    with pytest.raises(SimkitError) as e:
        parse_pattern(raw)
    assert any(fragment in m for m in e.value.messages), e.value.messages


@pytest.mark.parametrize("text, want", [
    ("5xwindow:1024,full", [("window", 1024)] * 5 + [("full", None)]),
    ("3xlinear:gated_deltanet,full", [("linear", "gated_deltanet")] * 3 + [("full", None)]),
    ("chunked:8192", [("chunked", 8192)]),
    ("7xssm,full", [("ssm", None)] * 7 + [("full", None)]),
])
def test_cli_pattern_text(text, want):
    got = []
    for s in parse_pattern_text(text):
        setting = s.window or s.chunk or s.variant
        got.append((s.kind, setting))
    assert got == want
    sp = parse_pattern_text("sparse:1024+16")[0]
    assert (sp.window, sp.global_tokens) == (1024, 16)
    mem = parse_pattern_text("memory:64x128")[0]
    assert (mem.memory_slots, mem.segment_tokens) == (64, 128)


@pytest.mark.parametrize("text, fragment", [
    ("", "give comma-separated layers"),
    ("5xwindow:big", "window takes a positive integer window"),
    ("full:12", "'full' takes no setting"),
    ("window,,full", "empty entry"),
    ("sparse:1+x", r"sparse takes WINDOW\+GLOBALS"),
])
def test_bad_cli_pattern_text(text, fragment):
    with pytest.raises(SimkitError, match=fragment):
        parse_pattern_text(text)


def test_tile_must_divide_the_layers():
    p = parse_pattern_text("5xwindow:1024,full")
    assert len(tile(p, 36, "p")) == 36
    with pytest.raises(SimkitError, match="a pattern of 6 layers does not tile the model's "
                                          "32 layers"):
        tile(p, 32, "p")
    with pytest.raises(SimkitError, match="does not tile"):
        tile(p * 10, 32, "p")


def test_groups_and_describe():
    stack = parse_pattern_text("window:128,full") * 12
    assert groups(stack) == [(LayerSpec("window", window=128), 12), (LayerSpec("full"), 12)]
    assert describe(stack) == "24 layers: 12 window(128) + 12 full"
    assert describe((LayerSpec("full"),) * 32) == "32 layers: full"
