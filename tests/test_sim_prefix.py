"""The prefix cache (simkit.sim.prefix) driven by hand: vLLM v1's semantics, block by block.

Every expected number is derived in the test from the block size and the token counts
(vLLM: full blocks only, at most prompt - 1 tokens, LRU eviction of free cached blocks,
last blocks of a request first).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import assert_same_run
from simkit.costs.compiled import KVGroup, KVLayout
from simkit.sim.kvcache import KVPolicy, KVPool
from simkit.sim import simulate
from simkit.sim.prefix import PrefixCache, cache_classes
from simkit.sim.prefix_full import FullPrefixCache
from simkit.sim.request import RequestTable
from test_sim_toymodel import ToyStepModel, duration, length, sessions, toy_scenario

B = 4  # tokens per block


def _layout_model(groups, fixed_bytes=0.0):
    return SimpleNamespace(kv_layout=KVLayout(tuple(groups), fixed_bytes))


def _group(kind, bpp=1000.0, window=None, chunk=None):
    return KVGroup(kind, kind, bpp, positions=lambda t: t, window=window, chunk=chunk)


class Harness:
    """A pool + cache + request table; requests are (tenant system tokens, stream, prompt,
    output) and are admitted, prefilled, decoded and released by hand."""

    def __init__(self, model=None, capacity_blocks=100, requests=(), block=B,
                 cache_cls=PrefixCache):
        model = model or ToyStepModel()
        bpt = sum(g.bytes_per_position for g in model.kv_layout.groups)
        cap = capacity_blocks * block * bpt + 64 * model.kv_layout.fixed_bytes
        self.policy = KVPolicy(model, kind="paged", block_size=block, capacity_bytes=cap,
                               max_seq_len=4096)
        self.policy.build_tables(4096)
        self.pool = KVPool(self.policy)
        n = len(requests)
        self.tab = RequestTable(np.zeros(n), np.array([r[2] for r in requests]),
                                np.array([r[3] for r in requests]))
        for i, (sys_tokens, stream, p, o) in enumerate(requests):
            self.tab.system_tokens[i] = sys_tokens
            self.tab.tenant[i] = 0 if sys_tokens else -1
            self.tab.stream[i] = stream
            self.tab.stream_tokens[i] = max(p + o, 1)
        classes, why = cache_classes(self.policy)
        assert classes is not None, why
        self.cache = cache_cls(self.policy, self.pool, self.tab, classes)
        self.foot: dict[int, int] = {}

    def admit(self, rid, tokens=None):
        """Look up, acquire and prefill request rid; returns the hit in tokens."""
        tokens = int(self.tab.prompt_tokens[rid]) if tokens is None else tokens
        hit = self.cache.lookup(rid, tokens)
        need = self.policy.units_one(tokens)
        assert need - hit.shared <= self.pool.free_units(1)
        self.cache.acquire(rid, hit, tokens, need)
        self.foot[rid] = need
        self.cache.promote(rid, tokens)
        return hit.tokens

    def release(self, rid, computed):
        self.cache.release(rid, computed, self.foot.pop(rid))

    def refs(self, owner_key):
        kind, key = owner_key
        own = (self.cache.tenants if kind == "tenant" else self.cache.streams)[key]
        if not hasattr(own, "ref"):  # a scalar stream: blocks [0, pref) cached, [0, held) held
            n = 3 if own.pref <= 3 else own.pref
            return ([int(i < own.held) for i in range(n)],
                    [i < own.pref for i in range(n)])
        return own.ref[0].tolist(), own.live[0].tolist()


#: the general cache and the one for full attention only must agree on full-only stacks
CACHES = pytest.mark.parametrize("cache_cls", [PrefixCache, FullPrefixCache],
                                 ids=["general", "full"])


@CACHES
def test_hits_are_whole_blocks_of_the_shared_prefix(cache_cls):
    # a 12-token system prompt (3 blocks) then 5 and 7 user tokens: the second request
    # shares the 3 system blocks; block 3 mixes the system prompt with the first user's
    # tokens, so it is that user's, not the tenant's
    h = Harness(cache_cls=cache_cls, requests=[(12, 0, 17, 1), (12, 1, 19, 1)])
    assert h.admit(0) == 0
    assert h.admit(1) == 12
    # both hold the 3 tenant blocks once: shared saves 3 blocks
    assert h.refs(("tenant", 0))[0] == [2, 2, 2]
    assert h.pool.shared_units == 3
    # footprints: ceil(17/4) + ceil(19/4) = 5 + 5 blocks; held once: 10 - 3
    assert h.pool.units_in_use == 5 + 5 - 3
    h.release(0, 17)
    assert h.refs(("tenant", 0))[0] == [1, 1, 1]
    h.release(1, 19)
    assert h.refs(("tenant", 0)) == ([0, 0, 0], [True, True, True])
    # everything left is cached and free: 3 tenant blocks + 4 + 4 full stream blocks
    # (floor(17/4) - 3 = 1 and floor(19/4) - 3 = 1 in the streams)
    assert h.pool.units_in_use == 0
    assert h.pool.cached_units == 3 + 1 + 1
    h.cache.flush()
    assert h.pool.units_allocated == h.pool.units_freed


@CACHES
def test_a_fully_cached_prompt_recomputes_its_last_block(cache_cls):
    # vLLM caps a hit at prompt - 1 tokens and whole blocks: a 16-token prompt that is
    # cached whole hits (16 - 1) // 4 = 3 blocks and recomputes the fourth
    h = Harness(cache_cls=cache_cls, requests=[(0, 7, 16, 4), (0, 7, 16, 4)])
    assert h.admit(0) == 0
    h.release(0, 16)
    assert h.admit(1) == 12


@CACHES
def test_a_session_turn_hits_its_history(cache_cls):
    # turn 1: 10 prompt + 6 answer tokens, 15 computed (the last answer token is never fed
    # back): floor(15 / 4) = 3 full blocks cached; turn 2 re-sends 16 tokens + 5 new
    h = Harness(cache_cls=cache_cls, requests=[(0, 3, 10, 6), (0, 3, 21, 2)])
    assert h.admit(0) == 0
    h.release(0, 10 + 6 - 1)
    assert h.admit(1) == 12


@CACHES
def test_lru_evicts_the_least_recently_freed_blocks_last_block_first(cache_cls):
    # room for 8 blocks. A (stream 0) and B (stream 1) each cache 3 blocks (12 tokens);
    # A is freed first. C needs 4 blocks: 8 - 6 = 2 are empty, so 2 cached blocks go:
    # A's blocks 2 and 1 (A's last blocks first, A before B)
    h = Harness(cache_cls=cache_cls, capacity_blocks=8, requests=[(0, 0, 12, 1), (0, 1, 12, 1), (0, 2, 16, 1),
                                             (0, 0, 13, 1), (0, 1, 13, 1)])
    h.admit(0)
    h.admit(1)
    h.release(0, 12)
    h.release(1, 12)
    assert h.pool.cached_units == 6
    h.admit(2)
    assert h.cache.evictions == 2
    h.release(2, 16)
    # A's next request hits only what is left of its prefix, B's all of it
    assert h.cache.lookup(3, 13).tokens == 4
    assert h.cache.lookup(4, 13).tokens == 12
    assert h.refs(("stream", 0))[1][:3] == [True, False, False]
    assert h.refs(("stream", 1))[1][:3] == [True, True, True]


@CACHES
def test_a_hit_refreshes_blocks_and_saves_them_from_eviction(cache_cls):
    # A and B freed in that order; A is hit again (and freed again): now B is older and
    # goes first under pressure
    h = Harness(cache_cls=cache_cls, capacity_blocks=8, requests=[(0, 0, 12, 1), (0, 1, 12, 1), (0, 0, 13, 1),
                                             (0, 2, 16, 1)])
    h.admit(0)
    h.release(0, 12)
    h.admit(1)
    h.release(1, 12)
    assert h.admit(2) == 12
    h.release(2, 13)
    h.admit(3)  # needs 4 blocks: 8 - 3 (A) - 3 (B) = 2 empty, 2 evicted: B's last two
    h.cache.lookup(0, 13)  # (evictions are picked when the cache is next looked at)
    assert h.refs(("stream", 1))[1][:3] == [True, False, False]
    assert h.refs(("stream", 0))[1][:3] == [True, True, True]


@CACHES
def test_reference_counts_never_go_negative_and_memory_balances(cache_cls):
    rng = np.random.default_rng(0)
    # the general cache lets streams be shared by running sequences; the full-attention one
    # serves streams one sequence at a time (a conversation's turns follow each other)
    reqs = [(8, int(rng.integers(0, 4)) if cache_cls is PrefixCache else i,
             int(rng.integers(9, 40)), int(rng.integers(1, 9))) for i in range(60)]
    h = Harness(cache_cls=cache_cls, capacity_blocks=40, requests=reqs)
    running: list[int] = []
    for rid, (_, _, p, o) in enumerate(reqs):
        if len(running) >= 3:
            old = running.pop(0)
            h.release(old, reqs[old][2] + reqs[old][3] - 1)
        h.admit(rid)
        running.append(rid)
        for own in list(h.cache.tenants.values()) + list(h.cache.streams.values()):
            assert (own.ref[0].min() if hasattr(own, "ref") else own.held) >= 0
        assert h.pool.units_in_use + h.pool.cached_units <= h.policy.max_units(h.pool.n_seqs)
    for rid in running:
        h.release(rid, reqs[rid][2] + reqs[rid][3] - 1)
    assert h.pool.units_in_use == 0 and h.pool.shared_units == 0 and h.pool.n_seqs == 0
    h.cache.flush()
    assert h.pool.units_allocated == h.pool.units_freed


def test_a_window_layer_needs_the_blocks_before_the_hit():
    # full + window (w = 8) layers: a hit of h blocks needs every block of the prefix in
    # the full layer and the ceil((8 - 1) / 4) = 2 blocks before it in the window layer
    # (vLLM SlidingWindowManager). A 30-token turn decoded to 39 tokens slides its window:
    # at release it holds window blocks [floor((39 - 8) / 4), ceil(39 / 4)) = [7, 10)
    model = _layout_model([_group("full"), _group("window", window=8)])
    h = Harness(model=model, requests=[(0, 5, 30, 10), (0, 5, 45, 2)])
    c = h.cache
    assert [k.kind for k in c.classes] == ["full", "window"]
    assert c.classes[1].need == 2
    h.admit(0)
    # decode to 39 tokens: slide the windows as the replica does before each growth
    for t in range(30, 39):
        shrink = int(c.shrink_units(np.array([t]), np.array([t + 1]))[0])
        if shrink:
            c.slide(0, t + 1, shrink)
            h.foot[0] -= shrink
        grow = h.policy.units_one(t + 1) - h.foot[0]
        h.pool.grow(grow)
        h.foot[0] += grow
    h.release(0, 39)
    win = c.streams[5].live[1]
    # the window layer cached the blocks its prefill computed and slid past (0..4, as vLLM
    # frees them to the cache after the prefill iteration), the full ones it held at 30
    # tokens ([22, 30): 5, 6) and at release (7, 8; block 9 is not full)
    assert np.flatnonzero(win).tolist() == list(range(9))
    # the next turn (45 tokens) can hit floor(39 / 4) = 9 blocks: full layer has 0..8,
    # window needs blocks 7 and 8: both cached
    assert c.lookup(1, 45).tokens == 36


def test_a_window_hit_falls_back_when_the_window_blocks_are_gone():
    model = _layout_model([_group("full"), _group("window", window=8)])
    h = Harness(model=model, requests=[(0, 5, 30, 1), (0, 5, 45, 2)])
    h.admit(0)
    h.release(0, 30)
    c = h.cache
    # the full layer caches blocks 0..6 (floor(30 / 4) = 7 full blocks), the window layer
    # too. A hit of 7 blocks needs window blocks 5 and 6: 28 tokens
    assert c.lookup(1, 45).tokens == 28
    # without window block 6 the longest end x <= 7 with blocks x - 2 and x - 1 cached is
    # 6 (blocks 4, 5): the full layer serves 6 blocks too
    live = c.streams[5].live[1]
    live[6] = False
    assert c.lookup(1, 45).tokens == 24
    # with only blocks 0, 1 and 5 left, no end has two cached blocks before it but x = 2
    # (blocks 0, 1); and with block 1 gone too, x = 1 ([0, 1) is a leading run shorter
    # than the window's 2 blocks, which vLLM accepts)
    live[2:5] = False
    assert c.lookup(1, 45).tokens == 8
    live[1] = False
    assert c.lookup(1, 45).tokens == 4


def test_constant_state_hits_only_where_a_state_was_kept():
    # full attention + a constant state (SSM layers): the state is kept at the last block
    # boundary a request reached (vLLM align mode), so the next turn of the session hits
    # there; a new session of the same tenant finds no state at the system prompt's end
    # and hits nothing (vLLM align mode behaves so: vllm-project/vllm#51250)
    model = _layout_model([_group("full")], fixed_bytes=3000.0)
    h = Harness(model=model, requests=[(8, 0, 14, 5), (8, 0, 25, 2), (8, 1, 12, 2)])
    c = h.cache
    assert [k.kind for k in c.classes] == ["full", "state"]
    # a state weighs ceil(3000 / (4 x 1000)) = 1 unit
    assert c.classes[1].weight == 1
    h.admit(0)
    h.release(0, 14 + 5 - 1)  # 18 computed: state kept at block boundary 4 (16 tokens)
    assert c.lookup(1, 25).tokens == 16
    assert c.lookup(2, 12).tokens == 0


@pytest.mark.parametrize("kind,why", [("contiguous", "contiguous"), ("budget", "budget")])
def test_prefix_caching_does_not_apply(kind, why):
    kw = dict(kind="paged", block_size=4, capacity_bytes=1e6, max_seq_len=100)
    if kind == "contiguous":
        kw["kind"] = "contiguous"
    else:
        kw["budget_tokens"] = 40
    classes, reason = cache_classes(KVPolicy(ToyStepModel(), **kw))
    assert classes is None and why in reason


def test_the_full_attention_cache_equals_the_general_one_in_a_simulation(monkeypatch):
    # the same sessions, system prompts and memory pressure (evictions, preemptions) through
    # both implementations: every number the run produces is the same
    import simkit.sim.prefix as prefix

    sc = toy_scenario(**{"workload.requests": 300, "workload.arrival.rate": 6.0,
                         "serving.replicas": 2,
                         "workload.sessions": sessions(length("uniform", low=1, high=6),
                                                       duration("exponential", mean=0.4)),
                         "workload.tenants": (SimpleNamespace(weight=0.5,
                                                              system_prompt_tokens=90),
                                              SimpleNamespace(weight=0.5,
                                                              system_prompt_tokens=33))})
    m = ToyStepModel(capacity_bytes=6e5)
    full = simulate(sc, step_model=m, seed=7)

    def general(policy, pool, table, enabled):
        if not enabled:
            return None
        return PrefixCache(policy, pool, table, cache_classes(policy)[0])

    monkeypatch.setattr(prefix, "make_cache", general)
    import simkit.sim.replica as replica
    monkeypatch.setattr(replica, "make_cache", general)
    gen = simulate(sc, step_model=m, seed=7)
    assert_same_run(full, gen)  # (the cache's own figures too: hits, evictions, units)
    assert full.summary["prefix_evicted_bytes"] > 0 and full.summary["preemptions"] > 0
