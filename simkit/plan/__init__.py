"""Capacity planning and sweeps: what load a replica sustains under its SLOs, how many GPUs a
target load needs and what it costs, and resumable sweeps of a scenario's grid over any
`concurrent.futures.Executor` (a local process pool, or a dask cluster).

Import the submodules (`simkit.plan.sweep`, `simkit.plan.capacity`); this package keeps its
own import cheap.
"""
