"""Capacity planning and sweeps: what load a replica sustains under its SLOs, how many GPUs a
target load needs and what it costs, and resumable sweeps of a scenario's grid over any
`concurrent.futures.Executor` (a local process pool, or a dask cluster).

Modules: `sweep` (grids over any executor, resumable), `slo` (whether a run meets the SLOs,
with confidence), `bounds` (what the cost model proves before simulating), `capacity` (max
load of one replica, the plan), `replicas` (the fewest replicas for a load), `prices` (the
price of a GPU-hour), `search` (`[plan.search]`: every configuration, ranked by cost).
Import the submodules; this package keeps its own import cheap.
"""
