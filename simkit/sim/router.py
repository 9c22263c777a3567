"""Routers: which replica an arriving request joins.

- ``round_robin``: replicas in turn, whatever their load.
- ``least_loaded``: the replica with the fewest requests (running + queued + swapped);
  ties go to the lowest index, so runs are deterministic.
- ``session_affinity``: a session's later turns go to the replica that served its first
  turn, whose prefix cache holds the conversation (sticky sessions, as the session-aware
  routers in front of vLLM and SGLang do); first turns and independent requests go to the
  least loaded replica.
Load is a count, which changes only at arrivals, admissions and completions; this is what
lets replicas plan decode runs ahead (see replica.py).
"""

from __future__ import annotations

from simkit.errors import SimkitError


class RoundRobinRouter:
    name = "round_robin"

    def __init__(self, replicas) -> None:
        self.replicas = replicas
        self._next = 0

    def route(self, rid: int):
        r = self.replicas[self._next]
        self._next = (self._next + 1) % len(self.replicas)
        return r


class LeastLoadedRouter:
    name = "least_loaded"

    def __init__(self, replicas) -> None:
        self.replicas = replicas

    def route(self, rid: int):
        reps = self.replicas
        if len(reps) == 1:
            return reps[0]
        best = reps[0]
        best_load = best.load
        if not best_load:
            return best
        for r in reps[1:]:
            load = r.load
            if load < best_load:
                if not load:  # an idle replica: nothing is less loaded, and it is the
                    return r  # first such (ties go to the lowest index)
                best, best_load = r, load
        return best


class SessionAffinityRouter(LeastLoadedRouter):
    name = "session_affinity"

    def __init__(self, replicas) -> None:
        super().__init__(replicas)
        self.table = replicas[0].table
        self.home: dict[int, object] = {}

    def route(self, rid: int):
        s = int(self.table.session[rid])
        if s < 0:
            return super().route(rid)
        r = self.home.get(s)
        if r is None:
            r = self.home[s] = super().route(rid)
        return r


ROUTERS = {"round_robin": RoundRobinRouter, "least_loaded": LeastLoadedRouter,
           "session_affinity": SessionAffinityRouter}


def make_router(name: str, replicas):
    try:
        return ROUTERS[name](replicas)
    except KeyError:
        raise SimkitError(f"serving.router: unknown router {name!r}; choose one of "
                          f"{', '.join(ROUTERS)}") from None
