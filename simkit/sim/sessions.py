"""Chat sessions and shared system prompts: which tokens each request sends, and when.

A chatbot re-sends its whole conversation every turn, behind a system prompt its operator
wrote once. Three workload shapes are built here:

- **independent requests** (the default), each opened by its tenant's system prompt
  (``workload.system_prompt_tokens``, or ``workload.tenants``: several system prompts, each
  with a share of the traffic). A request's prompt = system prompt + user tokens drawn from
  ``workload.prompt_tokens``.
- **synthetic sessions** (``workload.sessions = { turns, think_time_s }``): the arrival
  process draws new sessions; a session draws its tenant and its number of turns; turn k's
  prompt is the system prompt + the history (every earlier prompt and answer) + new user
  tokens drawn from ``prompt_tokens``; its answer length is drawn from ``output_tokens``.
  Turn k+1 arrives ``think_time_s`` after turn k's answer has finished, so later turns are
  created during the run, not up front. ``workload.requests`` counts turns: sessions are
  drawn until that many turns exist (the last one cut short).
- **a session trace**: an arrival trace with a ``session_id`` column. Its rows are turns, in
  file order within a session; their prompt lengths are the full prompts the server saw
  (history included). A turn extends its session's stream when its prompt holds the previous
  prompt and answer (prompt >= previous prompt + previous answer); otherwise the client cut
  its history and the turn starts a new stream. The first turn of a session arrives at its
  recorded time; a later turn at its recorded time, but never before the previous answer has
  finished (with a ``[workload.sessions]`` table, its ``think_time_s`` after it instead; the
trace then decides the turns). With a system prompt,
  its first tokens of every recorded prompt are the tenant's system prompt.

A conversation cannot outgrow the deployed context: a session ends before the turn whose
prompt would not fit it, and answers are cut so that prompt + answer - 1 <= context (the
model stops at its maximum length). A turn that is rejected (it cannot fit the KV memory)
ends its session: there is no answer to continue from. Answers are re-sent verbatim in the
next prompt (chat templates add a few tokens per turn; they are not modelled).

Randomness (common random numbers, `simkit.sim.workload.stream`): every component draws from
its own stream: arrival, prompt, output, and here turns, think and tenant. Sweeping the
think time never moves the turn counts or the lengths.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from simkit.errors import SimkitError
from simkit.sim.engine import PRIORITY_ARRIVAL

# (one stream per component: CRN)
from simkit.sim.workload import _get, capped_outputs, stream  # noqa: E402


def tenants_of(workload: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(shares summing to 1, system prompt tokens) per tenant; None without system prompts."""
    tenants = _get(workload, "tenants")
    if tenants:
        w = np.array([float(_get(t, "weight", 1.0)) for t in tenants])
        s = np.array([int(_get(t, "system_prompt_tokens", 0)) for t in tenants], dtype=np.int64)
        if np.any(w <= 0) or np.any(s < 0):
            raise SimkitError("workload.tenants: weights must be > 0 and system prompts >= 0")
        return w / w.sum(), s
    s0 = int(_get(workload, "system_prompt_tokens", 0) or 0)
    if s0 < 0:
        raise SimkitError(f"workload.system_prompt_tokens: must be >= 0, got {s0}")
    if s0 == 0:
        return None
    return np.ones(1), np.array([s0], dtype=np.int64)


def uses_sessions(workload: Any, base_dir: Any = None) -> bool:
    """Whether the workload is sessions (synthetic, or a trace with a session_id column)."""
    if _get(workload, "sessions") is not None:
        return True
    return _session_column(workload, base_dir) is not None


def _session_column(workload: Any, base_dir: Any) -> np.ndarray | None:
    arrival = _get(workload, "arrival")
    if _get(arrival, "process") != "trace":
        return None
    from simkit.sim.workload import read_csv_columns, resolve_path

    p = resolve_path(_get(arrival, "path"), base_dir, "workload.arrival.path")
    cols = read_csv_columns(p, "workload.arrival.path")
    if "session_id" not in cols:
        return None
    v = cols["session_id"]
    if v is None:
        line, text = cols["__bad__session_id"]
        raise SimkitError(f"workload.arrival.path: {p.name} line {line}: column 'session_id' "
                          f"is not a number: {text!r}")
    return v


def draw_times(spec: Any, n: int, rng: np.random.Generator, where: str) -> np.ndarray:
    """n durations (s) from a TIME_SPEC: fixed (value), exponential (mean), lognormal
    (median, sigma), clipped to [min, max]."""
    dist = _get(spec, "dist", "fixed")
    if dist == "fixed":
        v = _get(spec, "value")
        if v is None or not float(v) >= 0:
            raise SimkitError(f"{where}.value: must be >= 0, got {v!r}")
        x = np.full(n, float(v))
    elif dist == "exponential":
        m = _get(spec, "mean")
        if m is None or not float(m) > 0:
            raise SimkitError(f"{where}.mean: must be > 0, got {m!r}")
        x = rng.exponential(float(m), size=n)
    elif dist == "lognormal":
        med, sigma = _get(spec, "median"), _get(spec, "sigma")
        if med is None or not float(med) > 0:
            raise SimkitError(f"{where}.median: must be > 0, got {med!r}")
        if sigma is None or not float(sigma) >= 0:
            raise SimkitError(f"{where}.sigma: must be >= 0, got {sigma!r}")
        x = rng.lognormal(math.log(float(med)), float(sigma), size=n)
    else:
        raise SimkitError(f"{where}.dist: unknown distribution {dist!r}; choose one of fixed, "
                          "exponential, lognormal")
    lo = float(_get(spec, "min", 0.0) or 0.0)
    hi = _get(spec, "max")
    return np.clip(x, lo, math.inf if hi is None else float(hi))


def _draw_tenants(shares: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    if shares is None:
        return np.full(n, -1, dtype=np.int64)
    if len(shares) == 1:
        return np.zeros(n, dtype=np.int64)
    u = stream(seed, "tenant").random(n)
    return np.minimum(np.searchsorted(np.cumsum(shares), u, side="right"),
                      len(shares) - 1).astype(np.int64)


def _system_room(system: np.ndarray, context: int) -> None:
    if len(system) and int(system.max()) >= context:
        raise SimkitError(f"workload.system_prompt_tokens: a system prompt of "
                          f"{int(system.max())} tokens leaves no room for the user's tokens in "
                          f"the {context}-token context")


# ------------------------------------------------------------------ independent requests

def add_system_prompts(workload: Any, prompt: np.ndarray, output: np.ndarray, seed: int,
                       context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Independent requests behind system prompts: (prompt, output, tenant, system tokens)
    per request. prompt = system prompt + the drawn user tokens (cut to the context), and
    the answer cut so that prompt + answer - 1 <= context."""
    ten = tenants_of(workload)
    n = len(prompt)
    if ten is None:
        return prompt, output, np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    shares, system = ten
    _system_room(system, context)
    tenant = _draw_tenants(shares, n, seed)
    sys_tok = system[tenant]
    full = sys_tok + np.minimum(prompt, context - sys_tok)
    out = np.minimum(output, np.maximum(context - full + 1, 1))
    return full, out, tenant, sys_tok


# ------------------------------------------------------------------ session plans

@dataclass
class SessionPlan:
    """Every session's turns, drawn (or read) before the run; only their times are not."""

    start_s: np.ndarray  # per session (ascending): when its first turn arrives
    tenant: np.ndarray  # per session (-1: no system prompt)
    first: np.ndarray  # per session: index of its first turn in the per-turn arrays
    count: np.ndarray  # per session: number of turns
    prompt: np.ndarray  # per turn, sessions in order: full prompt tokens
    output: np.ndarray  # per turn: answer tokens
    think_s: np.ndarray  # per turn: wait after the previous answer (NaN: recorded time)
    recorded_s: np.ndarray  # per turn: the trace's arrival time (NaN: synthetic)
    stream: np.ndarray  # per turn: its token stream (a session; a new one after a cut)
    stream_tokens: np.ndarray  # per stream: its final length, system prompt included
    system: np.ndarray  # per tenant: system prompt tokens

    @property
    def n_turns(self) -> int:
        return len(self.prompt)

    @property
    def n_sessions(self) -> int:
        return len(self.start_s)


class _Draws:
    """An endless supply of lengths from one spec and one stream, drawn in chunks (a chunk
    continues the stream, so the k-th draw is the same whatever the chunk sizes)."""

    def __init__(self, draw: Callable[[int], np.ndarray], chunk: int) -> None:
        self._draw = draw
        self._chunk = max(int(chunk), 64)
        self._buf: list[int] = []
        self._i = 0

    def next(self) -> int:
        if self._i == len(self._buf):
            self._buf = self._draw(self._chunk).tolist()
            self._i = 0
            self._chunk = max(self._chunk // 4, 64)
        v = self._buf[self._i]
        self._i += 1
        return v


def plan_sessions(workload: Any, n_turns: int, *, seed: int, context: int, model_name: str,
                  base_dir: Any = None) -> SessionPlan:
    """The scenario's sessions: synthetic (workload.sessions) or a session trace."""
    if n_turns < 0:
        raise SimkitError(f"workload.requests: must be >= 0, got {n_turns}")
    sid = _session_column(workload, base_dir)
    if sid is not None:
        return _plan_trace(workload, n_turns, sid, seed=seed, context=context,
                           model_name=model_name, base_dir=base_dir)
    from simkit.sim.workload import generate_arrivals, generate_lengths

    spec = _get(workload, "sessions")
    ten = tenants_of(workload)
    shares, system = ten if ten is not None else (None, np.zeros(0, dtype=np.int64))
    _system_room(system, context)

    def lengths(name: str, comp: str, where: str):
        def draw(k: int) -> np.ndarray:
            x = generate_lengths(_get(workload, name), k, rngs[comp], where, context,
                                 model_name, base_dir, None, None,
                                 "prompt" if comp == "prompt" else "output")
            return x if comp == "prompt" else capped_outputs(workload, x)
        return draw

    rngs = {k: stream(seed, k) for k in ("prompt", "output", "turns", "tenant")}
    users = _Draws(lengths("prompt_tokens", "prompt", "workload.prompt_tokens"), n_turns)
    answers = _Draws(lengths("output_tokens", "output", "workload.output_tokens"), n_turns)
    turns = _Draws(lambda k: generate_lengths(_get(spec, "turns"), k, rngs["turns"],
                                              "workload.sessions.turns", 1 << 30, model_name,
                                              base_dir, None, None, "output"),
                   max(n_turns // 4, 1))
    tenant_u = _Draws(lambda k: rngs["tenant"].random(k), max(n_turns // 4, 1))
    cum = np.cumsum(shares) if shares is not None else None

    prompt: list[int] = []
    output: list[int] = []
    first: list[int] = []
    count: list[int] = []
    tenant: list[int] = []
    stream_tokens: list[int] = []
    while len(prompt) < n_turns:
        if cum is None:
            t = -1
            history = 0
        elif len(cum) == 1:
            t = 0
            history = int(system[0])
        else:
            t = min(int(np.searchsorted(cum, tenant_u.next(), side="right")), len(cum) - 1)
            history = int(system[t])
        planned = turns.next()
        first.append(len(prompt))
        tenant.append(t)
        k = 0
        while k < planned and len(prompt) < n_turns:
            u, a = users.next(), answers.next()
            p = history + u
            if p > context:
                if k:
                    break  # the conversation has outgrown the context: the session ends
                p = context  # a first turn keeps the system prompt and cuts the user's text
            a = min(a, context - p + 1)
            prompt.append(p)
            output.append(a)
            history = p + a
            k += 1
        count.append(k)
        stream_tokens.append(history)
    n_s = len(first)
    arrival = _get(workload, "arrival")
    start = generate_arrivals(arrival, n_s, stream(seed, "arrival"), None)
    n_t = len(prompt)
    think = draw_times(_get(spec, "think_time_s"), n_t, stream(seed, "think"),
                       "workload.sessions.think_time_s")
    stream_id = np.repeat(np.arange(n_s, dtype=np.int64), count)
    return SessionPlan(
        start_s=np.asarray(start, dtype=np.float64), tenant=np.array(tenant, dtype=np.int64),
        first=np.array(first, dtype=np.int64), count=np.array(count, dtype=np.int64),
        prompt=np.array(prompt, dtype=np.int64), output=np.array(output, dtype=np.int64),
        think_s=think, recorded_s=np.full(n_t, np.nan), stream=stream_id,
        stream_tokens=np.array(stream_tokens, dtype=np.int64), system=system)


def _plan_trace(workload: Any, n_turns: int, sid: np.ndarray, *, seed: int, context: int,
                model_name: str, base_dir: Any) -> SessionPlan:
    """Sessions read from a trace's session_id column (see the module docstring)."""
    from simkit.sim.workload import _Trace, beyond_context

    where = "workload.arrival.path"
    for nm in ("prompt_tokens", "output_tokens"):
        if _get(_get(workload, nm), "dist") != "trace":
            raise SimkitError(f"workload.{nm}.dist: a session trace records every turn's "
                              "tokens; set dist = \"trace\"")
    arrival = _get(workload, "arrival")
    trace = _Trace(arrival, base_dir)
    if trace.prompt is None or trace.output is None:
        raise SimkitError(f"{where}: the session trace {trace.path.name} needs prompt and "
                          "output token columns")
    if np.any(sid != np.round(sid)) or np.any(sid < 0):
        raise SimkitError(f"{where}: {trace.path.name}: session_id must hold whole numbers >= 0")
    rows = trace.rows(n_turns)
    times = trace.times(n_turns, _get(arrival, "rate"))
    m = len(trace.arrival_s)
    # a trace repeated end to end: each copy's sessions are new sessions
    sess_key = sid.astype(np.int64)[rows] + (np.arange(n_turns) // m) * (int(sid.max()) + 1)
    prompt = trace.prompt[rows].astype(np.int64)
    output = trace.output[rows].astype(np.int64)
    if n_turns and int(prompt.max()) > context:
        beyond_context(f"{where}: a recorded prompt of {int(prompt.max())} tokens", context,
                       model_name)
    prompt = np.minimum(prompt, context)
    output = capped_outputs(workload, np.minimum(output, np.maximum(context - prompt + 1, 1)))
    ten = tenants_of(workload)
    # sessions in order of their first turn; turns in file order within a session
    _, first_row, inverse = np.unique(sess_key, return_index=True, return_inverse=True)
    order_s = np.argsort(first_row, kind="stable")
    rank = np.empty_like(order_s)
    rank[order_s] = np.arange(len(order_s))
    sess = rank[inverse]
    turn_order = np.lexsort((np.arange(n_turns), sess))
    sess_sorted = sess[turn_order]
    n_s = len(order_s)
    count = np.bincount(sess_sorted, minlength=n_s).astype(np.int64)
    first = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    shares, system = ten if ten is not None else (None, np.zeros(0, dtype=np.int64))
    tenant = _draw_tenants(shares, n_s, seed)
    p_t, o_t = prompt[turn_order], output[turn_order]
    if ten is not None:
        short = p_t <= system[tenant[sess_sorted]]
        if short.any():
            i = int(turn_order[np.flatnonzero(short)[0]])
            raise SimkitError(f"{where}: {trace.path.name} row {int(rows[i]) + 2}: a prompt of "
                              f"{int(prompt[i])} tokens does not hold the "
                              f"{int(system[tenant[sess[i]]])}-token system prompt and a "
                              "user token")
    # streams: a turn continues its session's stream when its prompt holds the previous
    # prompt and answer; otherwise the client cut the history: a new stream
    cont = np.zeros(n_turns, dtype=bool)
    if n_turns > 1:
        same = sess_sorted[1:] == sess_sorted[:-1]
        cont[1:] = same & (p_t[1:] >= p_t[:-1] + o_t[:-1])
    stream_id = np.cumsum(~cont) - 1
    ends = p_t + o_t
    stream_tokens = np.zeros(int(stream_id[-1]) + 1 if n_turns else 0, dtype=np.int64)
    np.maximum.at(stream_tokens, stream_id, ends)
    spec = _get(workload, "sessions")
    if spec is not None:  # a [workload.sessions] table: its think time replaces the record
        think = draw_times(_get(spec, "think_time_s"), n_turns, stream(seed, "think"),
                           "workload.sessions.think_time_s")
    else:
        think = np.full(n_turns, np.nan)
    rec = times[turn_order].astype(np.float64)
    return SessionPlan(start_s=rec[first] if n_s else np.zeros(0), tenant=tenant, first=first,
                       count=count, prompt=p_t, output=o_t, think_s=think, recorded_s=rec,
                       stream=stream_id.astype(np.int64), stream_tokens=stream_tokens,
                       system=system)


# ------------------------------------------------------------------ during the run

class SessionArrivals:
    """Creates each turn as a request when it arrives: the first turns at the sessions' start
    times, a later turn when its previous answer has finished (`on_finished`).

    Request ids are given in order of arrival; `route(rid, now_s)` hands a new request to
    the simulator (routing or rejecting it).
    """

    def __init__(self, plan: SessionPlan, table, engine, route: Callable[[int, float], None]
                 ) -> None:
        self.plan = plan
        self.table = table
        self.engine = engine
        self.route = route
        self.rows = 0
        self._next_session = 0
        self._pending: list[tuple[float, int]] = []  # follow-up arrival times (heap)
        self._seq = 0
        self._start = plan.start_s.tolist() + [math.inf]
        self._first = plan.first.tolist()
        self._count = plan.count.tolist()

    def start(self) -> None:
        if self.plan.n_sessions:
            self.engine.schedule(self._start[0], PRIORITY_ARRIVAL, self._on_session, 0)

    def next_arrival_s(self) -> float:
        """The earliest arrival known now (a later turn is known once its previous answer
        has finished)."""
        a = self._start[self._next_session]
        return min(a, self._pending[0][0]) if self._pending else a

    def _on_session(self, s: int) -> None:
        self._next_session = s + 1
        if s + 1 < self.plan.n_sessions:
            self.engine.schedule(self._start[s + 1], PRIORITY_ARRIVAL, self._on_session, s + 1)
        self._arrive(s, 0)

    def _on_follow_up(self, arg: tuple[int, int]) -> None:
        heapq.heappop(self._pending)  # this event's own entry: the earliest one
        self._arrive(*arg)

    def _arrive(self, s: int, k: int) -> None:
        plan, tab = self.plan, self.table
        rid = self.rows
        self.rows += 1
        j = self._first[s] + k
        st = int(plan.stream[j])
        t = int(plan.tenant[s])
        tab.arrival_s[rid] = self.engine.now_s
        tab.prompt_tokens[rid] = plan.prompt[j]
        tab.output_tokens[rid] = plan.output[j]
        tab.session[rid] = s
        tab.turn[rid] = k + 1
        tab.tenant[rid] = t
        tab.system_tokens[rid] = plan.system[t] if t >= 0 else 0
        tab.stream[rid] = st
        tab.stream_tokens[rid] = plan.stream_tokens[st]
        self.route(rid, self.engine.now_s)

    def on_finished(self, rid: int, now_s: float) -> None:
        """Turn `rid` has its answer: schedule the session's next turn, if any."""
        tab = self.table
        s, k = int(tab.session[rid]), int(tab.turn[rid])
        if k >= self._count[s]:
            return
        j = self._first[s] + k
        think = float(self.plan.think_s[j])
        t = now_s + think if think == think else max(float(self.plan.recorded_s[j]), now_s)
        # (an answer a streamed multi-step round completed mid-round is reported when the
        # round ends: a think time shorter than the rest of the round starts the next turn
        # at that end, when the replica can next take it anyway)
        t = max(t, self.engine.now_s)
        self._seq += 1
        heapq.heappush(self._pending, (t, self._seq))
        self.engine.schedule(t, PRIORITY_ARRIVAL, self._on_follow_up, (s, k))
