"""The measuring harness of `measure.py`: the catalog models' shapes, a clock that times
CUDA-graph replays with CUDA events (perf_counter on a CPU), CSV writers that flush each row,
and PyTorch's attention backends by name."""

from __future__ import annotations

import csv
import statistics
import time

import torch

#: catalog models' layer shapes, from their published Hugging Face configs
MODELS = {
    # huggingface.co/meta-llama/Llama-3.1-8B/config.json
    "llama-3.1-8b": dict(d=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, layers=32,
                         vocab=128256, rope_theta=500000.0),
    # huggingface.co/meta-llama/Llama-3.1-70B/config.json (Llama-2-70B's layers are the same)
    "llama-3.1-70b": dict(d=8192, heads=64, kv_heads=8, head_dim=128, ffn=28672, layers=80,
                          vocab=128256, rope_theta=500000.0),
    # huggingface.co/Qwen/Qwen2.5-7B-Instruct/config.json (Qwen2: biases on Q, K and V)
    "qwen2.5-7b": dict(d=3584, heads=28, kv_heads=4, head_dim=128, ffn=18944, layers=28,
                       vocab=152064, rope_theta=1000000.0, qkv_bias=True),
}


class Clock:
    """Times a callable: CUDA events around graph replays on a GPU, perf_counter on a CPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def graph(self, fn):
        """A zero-argument callable that replays `fn` (captured once), or `fn` itself."""
        if not self.cuda:
            return fn
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        return g.replay

    def median_s(self, fn, min_total_s=0.02, max_reps=50, min_reps=3):
        """Median seconds of `fn()` over replays (after two warm-ups)."""
        fn()
        fn()
        self.sync()
        times = []
        t_start = time.perf_counter()
        while True:
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            n = len(times)
            if n >= max_reps or (n >= min_reps and time.perf_counter() - t_start > min_total_s):
                break
        return statistics.median(times), n


class Writer:
    """CSV rows flushed as they come, so a run cut short keeps its rows."""

    def __init__(self, path, columns):
        self.f = open(path, "w", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=columns)
        self.w.writeheader()
        self.f.flush()

    def row(self, **kw):
        self.w.writerow(kw)
        self.f.flush()


def log(*a):
    print(*a, flush=True)


def backends():
    from torch.nn.attention import SDPBackend
    return {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
