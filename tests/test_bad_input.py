"""The bad-input corpus (issue 14): what a new user gets wrong, on every command.

Every case runs the CLI in a fresh folder holding only its inputs and checks the error
contract (DESIGN.md, "Errors"): exit status 2, exactly one line on stderr, that line names
the culprit (the key path, option or file), no traceback, nothing on stdout, and nothing
written -- the folder is byte for byte what it was. Most cases run `simkit.cli.main`
in-process (the `run_cli` fixture); `SUBPROCESS` runs a few through `python -m simkit`.

A second, shorter list holds inputs that are questions, not mistakes (a length beyond the
model's context, a window as long as the context): they run, and say so in one warning.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HF = ROOT / "tests" / "data" / "hf_configs"
QWEN = json.loads((HF / "Qwen__Qwen2.5-7B-Instruct.json").read_text())
MEASURED = ("model,hardware,tensor_parallel,phase,batch_size,prompt_tokens,context_tokens,"
            "seconds\n")
MEASURED_ROW = "llama-2-70b,h100-sxm,4,decode,8,0,1024,0.03\n"


# --------------------------------------------------------------------------- inputs

def toml(d: dict) -> str:
    """A small TOML writer for test inputs (tables as [headers], values inline); it writes
    what it is given, valid or not (nan and inf are TOML too)."""
    lines: list[str] = []
    _table(d, "", lines)
    return "\n".join(lines) + "\n"


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    if isinstance(v, (int,)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def _table(d: dict, prefix: str, lines: list[str]) -> None:
    subs = []
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix.endswith("sweep") or "search" in prefix):
            subs.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subs:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        lines.append(f"\n[{name}]")
        _table(v, name, lines)


BASE = {
    "name": "bad",
    "seed": 1,
    "model": {"name": "llama-3-8b"},
    "hardware": {"name": "h100-sxm"},
    "workload": {"requests": 8, "arrival": {"process": "poisson", "rate": 2.0},
                 "prompt_tokens": {"dist": "fixed", "value": 100},
                 "output_tokens": {"dist": "fixed", "value": 8}},
    "serving": {"max_batch": 16},
    "slo": {"ttft_p99_s": 5.0},
}
DROP = object()


def scen(changes: dict | None = None, **sections) -> str:
    """BASE with dotted keys changed (DROP removes one) and whole sections added, as TOML."""
    d = json.loads(json.dumps(BASE))
    for k, v in sections.items():
        d[k] = v
    for key, v in (changes or {}).items():
        parts = key.split(".")
        cur = d
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        if v is DROP:
            cur.pop(parts[-1], None)
        else:
            cur[parts[-1]] = v
    return toml(d)


def hf(**changes) -> str:
    cfg = dict(QWEN)
    for k, v in changes.items():
        if v is DROP:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return json.dumps(cfg, allow_nan=True)  # NaN is what a careless exporter writes


def hardware_toml(**changes) -> str:
    from simkit.catalog.hardware import CATALOG

    d = CATALOG["h100-sxm"].to_dict()
    d = {k: v for k, v in d.items() if k != "calibration" or v}
    for k, v in changes.items():
        if v is DROP:
            d.pop(k, None)
        else:
            d[k] = v
    return toml(d)


def engine_toml(old: str = "", new: str = "") -> str:
    text = (ROOT / "simkit" / "data" / "engines" / "vllm.toml").read_text()
    assert old in text
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- the corpus

def C(id: str, *argv, files: dict | None = None, culprit: str):
    """One case: `simkit ARGV...` in a folder holding `files`; the error line must contain
    `culprit`."""
    return pytest.param([str(a) for a in argv], files or {}, culprit, id=id)


S = "s.toml"  # the scenario file most cases write

CASES = [
    # ---- the command line itself
    C("unknown command", "bogus", culprit="bogus"),
    C("unknown option", "cost", "llama-3-8b", "--bogus", culprit="--bogus"),
    C("missing argument", "cost", culprit="model"),
    C("models: stray argument", "models", "extra", culprit="extra"),
    C("hardware: stray option", "hardware", "--all", culprit="--all"),
    C("engines: unknown engine", "engines", "lmdeploy", culprit="lmdeploy"),
    C("engines: profile file missing", "engines", "eng.toml", culprit="eng.toml"),
    C("engines: profile not TOML", "engines", "eng.toml", files={"eng.toml": "x = \n"},
      culprit="eng.toml"),

    # ---- cost: names, files and options
    C("cost: unknown model", "cost", "llama-9", culprit="llama-9"),
    C("cost: model file missing", "cost", "missing.json", culprit="missing.json"),
    C("cost: model is a folder", "cost", "cfgdir/", files={"cfgdir/x": ""}, culprit="cfgdir"),
    C("cost: --seq 0", "cost", "llama-3-8b", "--seq", "0", culprit="--seq"),
    C("cost: --seq negative", "cost", "llama-3-8b", "--seq", "-5", culprit="--seq"),
    C("cost: --seq text", "cost", "llama-3-8b", "--seq", "long", culprit="--seq"),
    C("cost: --seq float", "cost", "llama-3-8b", "--seq", "1e3", culprit="--seq"),
    C("cost: --batch 0", "cost", "llama-3-8b", "--batch", "0", culprit="--batch"),
    C("cost: unknown hardware", "cost", "llama-3-8b", "--hardware", "h300",
      culprit="--hardware: unknown hardware 'h300'"),
    C("cost: hardware file missing", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      culprit="--hardware: no such profile file 'gpu.toml'"),
    C("cost: hardware file not TOML", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": "name = \n"}, culprit="gpu.toml"),
    C("cost: hardware calibration a number", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(calibration=3)}, culprit="calibration"),
    C("cost: hardware bandwidth negative", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(memory_bandwidth_bytes_per_s=-1.0)},
      culprit="memory_bandwidth_bytes_per_s"),
    C("cost: hardware missing key", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(memory_capacity_bytes=DROP)},
      culprit="memory_capacity_bytes"),
    C("cost: hardware name a number", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(name=5)}, culprit="name"),
    C("cost: --gpus 0", "cost", "llama-3-8b", "--gpus", "0", culprit="--gpus"),
    C("cost: --gpus not dividing heads", "cost", "llama-3-8b", "--gpus", "3",
      culprit="gpus"),
    C("cost: --memory-fraction 1.5", "cost", "llama-3-8b", "--memory-fraction", "1.5",
      culprit="--memory-fraction"),
    C("cost: --memory-fraction nan", "cost", "llama-3-8b", "--memory-fraction", "nan",
      culprit="--memory-fraction"),
    C("cost: unknown attention", "cost", "llama-3-8b", "--attention", "flash",
      culprit="--attention"),
    C("cost: mla without latents", "cost", "llama-3-8b", "--attention", "mla",
      culprit="mla"),
    C("cost: --window 0", "cost", "llama-3-8b", "--attention", "window", "--window", "0",
      culprit="--window"),
    C("cost: --window on full attention", "cost", "llama-3-8b", "--window", "512",
      culprit="--window"),
    C("cost: --global-tokens negative", "cost", "llama-3-8b", "--attention", "sparse",
      "--global-tokens", "-1", culprit="--global-tokens"),
    C("cost: --chunk 0", "cost", "llama-3-8b", "--attention", "chunked", "--chunk", "0",
      culprit="--chunk"),
    C("cost: --memory-slots 0", "cost", "llama-3-8b", "--attention", "memory",
      "--memory-slots", "0", culprit="--memory-slots"),
    C("cost: --segment 0", "cost", "llama-3-8b", "--attention", "memory", "--segment", "0",
      culprit="--segment"),
    C("cost: --attention-every 0", "cost", "llama-3-8b", "--attention-every", "0",
      culprit="--attention-every"),
    C("cost: --kv-share 1000", "cost", "llama-3-8b", "--kv-share", "1000",
      culprit="--kv-share"),
    C("cost: --weight-share 1000", "cost", "llama-3-8b", "--weight-share", "1000",
      culprit="--weight-share"),
    C("cost: --kv-share 0", "cost", "llama-3-8b", "--kv-share", "0", culprit="--kv-share"),
    C("cost: --max-context 0", "cost", "llama-3-8b", "--max-context", "0",
      culprit="--max-context"),
    C("cost: unknown kv dtype", "cost", "llama-3-8b", "--kv-dtype", "fp7",
      culprit="--kv-dtype"),
    C("cost: unknown weight dtype", "cost", "llama-3-8b", "--weight-dtype", "int3",
      culprit="--weight-dtype"),
    C("cost: layer pattern unknown kind", "cost", "llama-3-8b", "--layer-pattern", "bogus",
      culprit="bogus"),
    C("cost: layer pattern zero count", "cost", "llama-3-8b", "--layer-pattern",
      "0xfull", culprit="--layer-pattern"),
    C("cost: layer pattern zero window", "cost", "llama-3-8b", "--layer-pattern",
      "window:0", culprit="window"),
    C("cost: layer pattern not tiling", "cost", "llama-3-8b", "--layer-pattern",
      "5xwindow:512,full", culprit="layer"),
    C("cost: layer pattern empty part", "cost", "llama-3-8b", "--layer-pattern",
      "full,,window:64", culprit="layer-pattern"),
    C("cost: layer pattern bad setting", "cost", "llama-3-8b", "--layer-pattern",
      "window:wide", culprit="wide"),
    C("cost: unknown engine", "cost", "llama-3-8b", "--engine", "lmdeploy",
      culprit="--engine: unknown engine 'lmdeploy'"),
    C("cost: engine file missing", "cost", "llama-3-8b", "--engine", "eng.toml",
      culprit="eng.toml"),
    C("cost: engine file not TOML", "cost", "llama-3-8b", "--engine", "eng.toml",
      files={"eng.toml": "[constants\n"}, culprit="eng.toml"),
    C("cost: engine constant negative", "cost", "llama-3-8b", "--engine", "eng.toml",
      files={"eng.toml": engine_toml("gemm_efficiency = ", "gemm_efficiency = -")},
      culprit="gemm_efficiency"),
    C("cost: engine unknown constant", "cost", "llama-3-8b", "--engine", "eng.toml",
      files={"eng.toml": engine_toml("[constants]\n", "[constants]\nturbo = 2.0\n")},
      culprit="turbo"),

    C("cost: --debug keeps a bad input one line", "cost", "llama-9", "--debug",
      culprit="llama-9"),
    C("cost: hardware efficiency above 1", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(memory_efficiency=1.5)}, culprit="memory_efficiency"),
    C("cost: hardware flops not a table", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(peak_flops_per_s=1e15)}, culprit="peak_flops_per_s"),
    C("cost: hardware price without source", "cost", "llama-3-8b", "--hardware", "gpu.toml",
      files={"gpu.toml": hardware_toml(price_per_gpu_hour=2.0, price_source="")},
      culprit="price_source"),
    C("cost: engine unknown key", "cost", "llama-3-8b", "--engine", "eng.toml",
      files={"eng.toml": engine_toml('name = "vllm"', 'name = "vllm"\nspeed = 2')},
      culprit="speed"),
    C("cost: batch limit below the batch", "cost", "llama-3-8b", "--batch", "300",
      "--max-batch", "256", culprit="--max-batch"),
    C("cost: token budget zero", "cost", "llama-3-8b", "--max-batch-tokens", "0",
      culprit="--max-batch-tokens"),
    C("cost: engine flag not a boolean", "cost", "llama-3-8b", "--engine", "eng.toml",
      files={"eng.toml": engine_toml("reserves_activations = true",
                                     "reserves_activations = 1")},
      culprit="reserves_activations"),

    # ---- Hugging Face configs (cost reads them; the scenario loader shares the reader)
    C("hf: not JSON", "cost", "cfg.json", files={"cfg.json": "{ nope"}, culprit="cfg.json"),
    C("hf: empty file", "cost", "cfg.json", files={"cfg.json": ""}, culprit="cfg.json"),
    C("hf: not UTF-8", "cost", "cfg.json", files={"cfg.json": b"\xff\xfe\x00{"},
      culprit="cfg.json"),
    C("hf: a list", "cost", "cfg.json", files={"cfg.json": "[1, 2]"}, culprit="cfg.json"),
    C("hf: hidden_size NaN", "cost", "cfg.json", files={"cfg.json": hf(hidden_size=math.nan)},
      culprit="hidden_size"),
    C("hf: hidden_size a string", "cost", "cfg.json", files={"cfg.json": hf(hidden_size="x")},
      culprit="hidden_size"),
    C("hf: hidden_size negative", "cost", "cfg.json", files={"cfg.json": hf(hidden_size=-8)},
      culprit="hidden_size"),
    C("hf: num_hidden_layers 2.5", "cost", "cfg.json",
      files={"cfg.json": hf(num_hidden_layers=2.5)}, culprit="num_hidden_layers"),
    C("hf: num_attention_heads missing", "cost", "cfg.json",
      files={"cfg.json": hf(num_attention_heads=DROP)}, culprit="num_attention_heads"),
    C("hf: vocab_size null", "cost", "cfg.json", files={"cfg.json": hf(vocab_size=None)},
      culprit="vocab_size"),
    C("hf: unknown model_type", "cost", "cfg.json",
      files={"cfg.json": hf(model_type="bananaformer")}, culprit="bananaformer"),
    C("hf: model_type missing", "cost", "cfg.json", files={"cfg.json": hf(model_type=DROP)},
      culprit="model_type"),
    C("hf: pad_vocab_size_multiple a string", "cost", "cfg.json",
      files={"cfg.json": json.dumps({**json.loads((HF / "state-spaces__mamba2-2.7b.json")
                                                  .read_text()),
                                     "pad_vocab_size_multiple": "x"})},
      culprit="pad_vocab_size_multiple"),
    C("hf: heads not dividing kv heads", "cost", "cfg.json",
      files={"cfg.json": hf(num_key_value_heads=5)}, culprit="num_key_value_heads"),
    C("hf: layer_types wrong length", "cost", "cfg.json",
      files={"cfg.json": hf(layer_types=["full_attention"] * 3)}, culprit="layer_types"),
    C("hf: unknown layer type", "cost", "cfg.json",
      files={"cfg.json": hf(layer_types=["warp_attention"] * QWEN["num_hidden_layers"])},
      culprit="warp_attention"),
    C("hf: num_hidden_layers 0", "cost", "cfg.json", files={"cfg.json": hf(num_hidden_layers=0)},
      culprit="num_hidden_layers"),
    C("hf: hidden_size true", "cost", "cfg.json", files={"cfg.json": hf(hidden_size=True)},
      culprit="hidden_size"),
    C("hf: intermediate_size negative", "cost", "cfg.json",
      files={"cfg.json": hf(intermediate_size=-1)}, culprit="intermediate_size"),
    C("hf: more experts per token than experts", "cost", "cfg.json",
      files={"cfg.json": json.dumps({**json.loads((HF / "Qwen__Qwen1.5-MoE-A2.7B.json")
                                                  .read_text()), "num_experts_per_tok": 61})},
      culprit="num_experts_per_tok"),
    C("hf: sliding_window negative", "cost", "cfg.json",
      files={"cfg.json": hf(use_sliding_window=True, sliding_window=-5)},
      culprit="sliding_window"),
    C("hf: max_position_embeddings 0", "cost", "cfg.json",
      files={"cfg.json": hf(max_position_embeddings=0)}, culprit="max_position_embeddings"),

    # ---- formula and crossover
    C("formula: unknown model", "formula", "llama-9", culprit="llama-9"),
    C("formula: unknown quantity", "formula", "llama-3-8b", "--quantity", "joy",
      culprit="joy"),
    C("formula: unknown symbol", "formula", "llama-3-8b", "--quantity", "cache_bytes",
      "--wrt", "zeta", culprit="zeta"),
    C("formula: --wrt without --quantity", "formula", "llama-3-8b", "--wrt", "n",
      culprit="--wrt"),
    C("formula: --seq 0", "formula", "llama-3-8b", "--quantity", "cache_bytes", "--wrt",
      "n", "--seq", "0", culprit="--seq"),
    C("formula: --gpus 0", "formula", "llama-3-8b", "--gpus", "0", culprit="--gpus"),
    C("formula: unknown hardware", "formula", "llama-3-8b", "--quantity",
      "decode_step_time", "--hardware", "h300", culprit="--hardware: unknown hardware 'h300'"),
    C("formula: unknown engine", "formula", "llama-3-8b", "--quantity", "prefill_time",
      "--engine", "lmdeploy", culprit="--engine: unknown engine 'lmdeploy'"),
    C("formula: --hardware without step times", "formula", "llama-3-8b", "--hardware",
      "h200", culprit="--hardware"),
    C("formula: a would-be expression", "formula", "llama-3-8b", "--quantity",
      "__import__('os')", culprit="__import__"),
    C("formula: --wrt a symbol it does not depend on", "formula", "llama-3-8b", "--quantity",
      "params", "--wrt", "n", culprit="--wrt"),
    C("formula: --wrt an expression", "formula", "llama-3-8b", "--quantity", "params",
      "--wrt", "x+1", culprit="--wrt"),
    C("crossover: unknown model", "crossover", "llama-9", "--a", "full", "--b", "window",
      "--quantity", "cache_bytes", culprit="llama-9"),
    C("crossover: unknown kind", "crossover", "llama-3-8b", "--a", "full", "--b", "flash",
      "--quantity", "cache_bytes", culprit="--b"),
    C("crossover: unknown quantity", "crossover", "llama-3-8b", "--a", "full", "--b",
      "window", "--quantity", "joy", culprit="joy"),
    C("crossover: --a missing", "crossover", "llama-3-8b", "--b", "window", "--quantity",
      "cache_bytes", culprit="--a"),
    C("crossover: mla without latents", "crossover", "llama-3-8b", "--a", "full", "--b",
      "mla", "--quantity", "cache_bytes", culprit="mla"),
    C("crossover: --window 0", "crossover", "llama-3-8b", "--a", "full", "--b", "window",
      "--window", "0", "--quantity", "cache_bytes", culprit="--window"),

    # ---- calibrate (kernel timing must not start) and --measurements
    C("calibrate: --seed -1", "calibrate", "--quick", "--seed", "-1", culprit="--seed"),
    C("calibrate: --seed text", "calibrate", "--quick", "--seed", "x", culprit="--seed"),
    C("calibrate: output folder missing", "calibrate", "--quick", "-o", "no/such/p.toml",
      culprit="no/such"),
    C("calibrate: output is a folder", "calibrate", "--quick", "-o", "out",
      files={"out/x": ""}, culprit="out"),
    C("calibrate: output under a file", "calibrate", "--quick", "-o", "f/p.toml",
      files={"f": "x"}, culprit="f/p.toml"),
    C("calibrate: --force without --measurements", "calibrate", "--quick", "--force",
      culprit="--force"),
    C("calibrate: --max-heldout-error 0", "calibrate", "--measurements", "m.csv",
      "--max-heldout-error", "0", files={"m.csv": MEASURED + MEASURED_ROW},
      culprit="--max-heldout-error"),
    C("calibrate: measurements missing", "calibrate", "--measurements", "m.csv",
      culprit="m.csv"),
    C("calibrate: measurements empty", "calibrate", "--measurements", "m.csv",
      files={"m.csv": ""}, culprit="m.csv"),
    C("calibrate: measurements header only", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED}, culprit="m.csv"),
    C("calibrate: measurements missing column", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED.replace(",seconds", "") + MEASURED_ROW.rsplit(",", 1)[0]
             + "\n"}, culprit="seconds"),
    C("calibrate: measurements negative time", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace("0.03", "-0.03")}, culprit="seconds"),
    C("calibrate: measurements NaN time", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace("0.03", "nan")}, culprit="seconds"),
    C("calibrate: measurements unknown model", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace("llama-2-70b", "llama-9")},
      culprit="llama-9"),
    C("calibrate: measurements unknown phase", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace("decode", "generate")},
      culprit="phase"),
    C("calibrate: measurements TP not dividing", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace(",4,", ",3,")}, culprit="m.csv:2"),
    C("calibrate: measurements not UTF-8", "calibrate", "--measurements", "m.csv",
      files={"m.csv": b"\xff\xfe" + MEASURED.encode()}, culprit="m.csv"),
    C("calibrate: measurements unknown column", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED.replace("\n", ",notes\n") + MEASURED_ROW.replace("\n", ",x\n")},
      culprit="notes"),
    C("calibrate: measurements short row", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + "llama-2-70b,h100-sxm,4,decode\n"}, culprit="m.csv:2"),
    C("calibrate: measurements fractional batch", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace(",8,", ",2.5,")},
      culprit="batch_size"),
    C("calibrate: measurements unknown hardware", "calibrate", "--measurements", "m.csv",
      files={"m.csv": MEASURED + MEASURED_ROW.replace("h100-sxm", "h300")},
      culprit="h300"),
    C("calibrate: measurements with --quick", "calibrate", "--measurements", "m.csv",
      "--quick", files={"m.csv": MEASURED + MEASURED_ROW}, culprit="--quick"),
    C("calibrate: measurements with --seed", "calibrate", "--measurements", "m.csv",
      "--seed", "1", files={"m.csv": MEASURED + MEASURED_ROW}, culprit="--seed"),
    C("calibrate: measurements output folder missing", "calibrate", "--measurements",
      "m.csv", "-o", "no/such/e.toml", files={"m.csv": MEASURED + MEASURED_ROW},
      culprit="no/such"),

    # ---- fidelity (the retention experiment must not start)
    C("fidelity: --seed -1", "fidelity", "--seed", "-1", culprit="--seed"),
    C("fidelity: --lengths 0", "fidelity", "--lengths", "0", culprit="--lengths"),
    C("fidelity: --lengths too short", "fidelity", "--lengths", "8", culprit="--lengths"),
    C("fidelity: --trials 0", "fidelity", "--trials", "0", culprit="--trials"),
    C("fidelity: --pairs 0", "fidelity", "--pairs", "0", culprit="--pairs"),
    C("fidelity: --window 0", "fidelity", "--window", "0", culprit="--window"),
    C("fidelity: --memory-slots 0", "fidelity", "--memory-slots", "0",
      culprit="--memory-slots"),

    # ---- scenario files: the file itself
    C("scenario missing", "simulate", "nope.toml", culprit="nope.toml"),
    C("scenario not TOML", "simulate", S, files={S: "[model\nname = 1"}, culprit=S),
    C("scenario not UTF-8", "simulate", S, files={S: b"\xff\xfe[model]"}, culprit=S),
    C("scenario is a folder", "simulate", "sdir", files={"sdir/x": ""}, culprit="sdir"),
    C("scenario section not a table", "simulate", S,
      files={S: 'workload = 3\n'}, culprit="workload"),
    C("scenario unknown top-level key", "simulate", S, files={S: scen({"colour": "red"})},
      culprit="colour"),
    C("scenario unknown section", "simulate", S, files={S: scen(serve={"replicas": 2})},
      culprit="serve"),
    C("scenario unknown key", "simulate", S, files={S: scen({"serving.batch": 8})},
      culprit="serving.batch"),
    C("scenario name a number", "simulate", S, files={S: scen({"name": 5})}, culprit="name"),
    C("scenario duplicate key", "simulate", S, files={S: "seed = 2\n" + scen()}, culprit=S),
    C("scenario model a string", "simulate", S, files={S: 'model = "llama-3-8b"\n'},
      culprit="model"),
    C("scenario rate a string", "simulate", S, files={S: scen({"workload.arrival.rate": "5"})},
      culprit="workload.arrival.rate"),
    C("scenario seed -1", "simulate", S, files={S: scen({"seed": -1})}, culprit="seed"),
    C("scenario seed 1.5", "simulate", S, files={S: scen({"seed": 1.5})}, culprit="seed"),

    # ---- scenario: model and hardware
    C("model unknown", "simulate", S, files={S: scen({"model.name": "llama-9"})},
      culprit="model.name"),
    C("model empty name", "simulate", S, files={S: scen({"model.name": ""})},
      culprit="model.name"),
    C("model config missing", "simulate", S, files={S: scen({"model.name": "cfg.json"})},
      culprit="model.name"),
    C("model config NaN", "simulate", S, files={S: scen({"model.name": "cfg.json"}),
                                                "cfg.json": hf(hidden_size=math.nan)},
      culprit="hidden_size"),
    C("model attention unknown", "simulate", S, files={S: scen({"model.attention": "flash"})},
      culprit="model.attention"),
    C("model attention mla on llama", "simulate", S,
      files={S: scen({"model.attention": "mla"})}, culprit="model"),
    C("model window 0", "simulate", S, files={S: scen({"model.attention": "window",
                                                       "model.window": 0})},
      culprit="model.window"),
    C("model window a string", "simulate", S, files={S: scen({"model.window": "4k"})},
      culprit="model.window"),
    C("model kv_dtype unknown", "simulate", S, files={S: scen({"model.kv_dtype": "fp7"})},
      culprit="model.kv_dtype"),
    C("model kv_share 1000", "simulate", S, files={S: scen({"model.kv_share": 1000})},
      culprit="kv_share"),
    C("model weight_share 0", "simulate", S, files={S: scen({"model.weight_share": 0})},
      culprit="model.weight_share"),
    C("model max_context 0", "simulate", S, files={S: scen({"model.max_context": 0})},
      culprit="model.max_context"),
    C("model layer_pattern not a list", "simulate", S,
      files={S: scen({"model.layer_pattern": "full"})}, culprit="model.layer_pattern"),
    C("model layer_pattern unknown kind", "simulate", S,
      files={S: scen({"model.layer_pattern": [{"kind": "warp"}]})},
      culprit="model.layer_pattern"),
    C("model layer_pattern count 0", "simulate", S,
      files={S: scen({"model.layer_pattern": [{"kind": "full", "count": 0}]})},
      culprit="model.layer_pattern"),
    C("model layer_pattern unknown setting", "simulate", S,
      files={S: scen({"model.layer_pattern": [{"kind": "window", "width": 64}]})},
      culprit="model.layer_pattern"),
    C("model layer_pattern not tiling", "simulate", S,
      files={S: scen({"model.layer_pattern": [{"kind": "window", "window": 64, "count": 5},
                                              {"kind": "full"}]})},
      culprit="layer_pattern"),
    C("hardware unknown", "simulate", S, files={S: scen({"hardware.name": "h300"})},
      culprit="hardware.name"),
    C("hardware profile missing", "simulate", S,
      files={S: scen({"hardware.name": "gpu.toml"})}, culprit="hardware.name"),
    C("hardware profile calibration a number", "simulate", S,
      files={S: scen({"hardware.name": "gpu.toml"}), "gpu.toml": hardware_toml(calibration=3)},
      culprit="calibration"),
    C("hardware gpus 0", "simulate", S, files={S: scen({"hardware.gpus_per_replica": 0})},
      culprit="hardware.gpus_per_replica"),
    C("hardware gpus not dividing heads", "simulate", S,
      files={S: scen({"hardware.gpus_per_replica": 3})}, culprit="hardware.gpus_per_replica"),
    C("hardware price negative", "simulate", S,
      files={S: scen({"hardware.cost_per_gpu_hour": -1.0})},
      culprit="hardware.cost_per_gpu_hour"),
    C("hardware ideal a string", "simulate", S, files={S: scen({"hardware.ideal": "yes"})},
      culprit="hardware.ideal"),
    C("hardware engine unknown", "simulate", S, files={S: scen({"hardware.engine": "lmdeploy"})},
      culprit="hardware.engine"),
    C("hardware engine file bad", "simulate", S,
      files={S: scen({"hardware.engine": "eng.toml"}),
             "eng.toml": engine_toml("gemm_efficiency = ", "gemm_efficiency = -")},
      culprit="gemm_efficiency"),
    C("weights do not fit", "simulate", S, files={S: scen({"model.name": "llama-3-70b"})},
      culprit="hardware.gpus_per_replica"),

    # ---- scenario: workload
    C("requests 0", "simulate", S, files={S: scen({"workload.requests": 0})},
      culprit="workload.requests"),
    C("requests a string", "simulate", S, files={S: scen({"workload.requests": "ten"})},
      culprit="workload.requests"),
    C("requests true", "simulate", S, files={S: scen({"workload.requests": True})},
      culprit="workload.requests"),
    C("rate negative", "simulate", S, files={S: scen({"workload.arrival.rate": -3.0})},
      culprit="workload.arrival.rate"),
    C("rate 0", "simulate", S, files={S: scen({"workload.arrival.rate": 0})},
      culprit="workload.arrival.rate"),
    C("rate nan", "simulate", S, files={S: scen({"workload.arrival.rate": math.nan})},
      culprit="workload.arrival.rate"),
    C("rate inf", "simulate", S, files={S: scen({"workload.arrival.rate": math.inf})},
      culprit="workload.arrival.rate"),
    C("arrival process unknown", "simulate", S,
      files={S: scen({"workload.arrival.process": "weibull"})},
      culprit="workload.arrival.process"),
    C("gamma cv 0", "simulate", S, files={S: scen({"workload.arrival.process": "gamma",
                                                   "workload.arrival.cv": 0})},
      culprit="workload.arrival.cv"),
    C("trace without path", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace"}})},
      culprit="workload.arrival.path"),
    C("trace file missing", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}})},
      culprit="workload.arrival.path"),
    C("trace not a number", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": "arrived_at\n0.0\nsoon\n"}, culprit="workload.arrival.path"),
    C("trace times decreasing", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": "arrived_at\n1.0\n0.5\n"}, culprit="workload.arrival.path"),
    C("trace times negative", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": "arrived_at\n-1.0\n0.5\n"}, culprit="workload.arrival.path"),
    C("trace no time column", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": "when\n0.0\n"}, culprit="workload.arrival.path"),
    C("trace empty", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": ""}, culprit="workload.arrival.path"),
    C("trace header only", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": "arrived_at\n"}, culprit="workload.arrival.path"),
    C("trace binary", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}}),
             "t.csv": b"\x89PNG\r\n\x1a\n\x00\xff"}, culprit="workload.arrival.path"),
    C("trace lengths zero", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"},
                      "workload.prompt_tokens": {"dist": "trace"}}),
             "t.csv": "arrived_at,num_prefill_tokens\n0.0,0\n"},
      culprit="workload.arrival.path"),
    C("trace lengths without trace arrival", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "trace"}})},
      culprit="workload.prompt_tokens.dist"),
    C("trace lengths missing column", "simulate", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"},
                      "workload.output_tokens": {"dist": "trace"}}),
             "t.csv": "arrived_at\n0.0\n1.0\n"}, culprit="workload.output_tokens"),
    C("length dist unknown", "simulate", S,
      files={S: scen({"workload.prompt_tokens.dist": "zipf"})},
      culprit="workload.prompt_tokens.dist"),
    C("fixed without value", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "fixed"}})},
      culprit="workload.prompt_tokens.value"),
    C("fixed value 0", "simulate", S, files={S: scen({"workload.prompt_tokens.value": 0})},
      culprit="workload.prompt_tokens.value"),
    C("uniform without high", "simulate", S,
      files={S: scen({"workload.output_tokens": {"dist": "uniform", "low": 4}})},
      culprit="workload.output_tokens.high"),
    C("uniform low above high", "simulate", S,
      files={S: scen({"workload.output_tokens": {"dist": "uniform", "low": 40, "high": 4}})},
      culprit="workload.output_tokens.low"),
    C("lognormal sigma negative", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "lognormal", "median": 100,
                                                 "sigma": -1.0}})},
      culprit="workload.prompt_tokens.sigma"),
    C("lognormal median 0", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "lognormal", "median": 0,
                                                 "sigma": 1.0}})},
      culprit="workload.prompt_tokens.median"),
    C("min above max", "simulate", S,
      files={S: scen({"workload.prompt_tokens.min": 50, "workload.prompt_tokens.max": 10})},
      culprit="workload.prompt_tokens.min"),
    C("empirical without path", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "empirical"}})},
      culprit="workload.prompt_tokens.path"),
    C("empirical file missing", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "empirical", "path": "l.csv"}})},
      culprit="workload.prompt_tokens.path"),
    C("empirical column missing", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "empirical", "path": "l.csv",
                                                 "column": "tokens"}}),
             "l.csv": "length\n10\n"}, culprit="workload.prompt_tokens.column"),
    C("empirical values fractional", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "empirical", "path": "l.csv",
                                                 "column": "length"}}),
             "l.csv": "length\n10.5\n"}, culprit="workload.prompt_tokens.column"),
    C("paired output from another file", "simulate", S,
      files={S: scen({"workload.prompt_tokens": {"dist": "empirical", "path": "a.csv",
                                                 "column": "length"},
                      "workload.output_tokens": {"dist": "empirical", "path": "l.csv",
                                                 "column": "length", "paired": True}}),
             "a.csv": "length\n10\n", "l.csv": "length\n10\n"},
      culprit="workload.output_tokens.paired"),
    C("paired output behind a fixed prompt", "simulate", S,
      files={S: scen({"workload.output_tokens": {"dist": "empirical", "path": "l.csv",
                                                 "column": "length", "paired": True}}),
             "l.csv": "length\n10\n"}, culprit="workload.output_tokens.paired"),
    C("paired on a lognormal", "simulate", S,
      files={S: scen({"workload.output_tokens": {"dist": "lognormal", "median": 100,
                                                 "sigma": 1.0, "paired": True}})},
      culprit="workload.output_tokens.paired"),

    C("sessions turns 0", "simulate", S,
      files={S: scen({"workload.sessions": {"turns": {"dist": "fixed", "value": 0}}})},
      culprit="workload.sessions.turns.value"),
    C("sessions think time negative", "simulate", S,
      files={S: scen({"workload.sessions": {"think_time_s": {"dist": "fixed",
                                                              "value": -1.0}}})},
      culprit="workload.sessions.think_time_s.value"),
    C("sessions think time unknown dist", "simulate", S,
      files={S: scen({"workload.sessions": {"think_time_s": {"dist": "pareto"}}})},
      culprit="workload.sessions.think_time_s.dist"),
    C("sessions unknown key", "simulate", S,
      files={S: scen({"workload.sessions": {"rounds": 3}})},
      culprit="workload.sessions.rounds"),
    C("system prompt negative", "simulate", S,
      files={S: scen({"workload.system_prompt_tokens": -1})},
      culprit="workload.system_prompt_tokens"),
    C("tenants empty", "simulate", S, files={S: scen({"workload.tenants": []})},
      culprit="workload.tenants"),
    C("tenant weight 0", "simulate", S,
      files={S: scen({"workload.tenants": [{"weight": 0, "system_prompt_tokens": 10}]})},
      culprit="workload.tenants[0].weight"),
    C("tenants and a system prompt", "simulate", S,
      files={S: scen({"workload.tenants": [{"weight": 1, "system_prompt_tokens": 10}],
                      "workload.system_prompt_tokens": 5})}, culprit="workload.tenants"),
    C("max_concurrency 0", "simulate", S, files={S: scen({"workload.max_concurrency": 0})},
      culprit="workload.max_concurrency"),
    C("max_concurrency fractional", "simulate", S,
      files={S: scen({"workload.max_concurrency": 2.5})}, culprit="workload.max_concurrency"),
    C("max_concurrency with sessions", "simulate", S,
      files={S: scen({"workload.max_concurrency": 4,
                      "workload.sessions": {"turns": {"dist": "fixed", "value": 2}}})},
      culprit="workload.max_concurrency"),
    C("max_concurrency in plan", "plan", S,
      files={S: scen({"workload.max_concurrency": 4, "slo.ttft_p99_s": 1.0})},
      culprit="workload.max_concurrency"),
    C("burst arrivals in plan", "plan", S,
      files={S: scen({"workload.arrival": {"process": "burst"}, "slo.ttft_p99_s": 1.0})},
      culprit="workload.arrival.process"),
    C("prefix_caching a string", "simulate", S,
      files={S: scen({"serving.prefix_caching": "yes"})}, culprit="serving.prefix_caching"),

    # ---- scenario: serving, SLOs, plan and report keys
    C("scheduler unknown", "simulate", S, files={S: scen({"serving.scheduler": "fifo"})},
      culprit="serving.scheduler"),
    C("kv_memory unknown", "simulate", S, files={S: scen({"serving.kv_memory": "virtual"})},
      culprit="serving.kv_memory"),
    C("scheduler_steps 0", "simulate", S, files={S: scen({"serving.scheduler_steps": 0})},
      culprit="serving.scheduler_steps"),
    C("scheduler_steps with static batching", "simulate", S,
      files={S: scen({"serving.scheduler_steps": 8, "serving.scheduler": "static"})},
      culprit="serving.scheduler_steps"),
    C("scheduler_steps with contiguous memory", "simulate", S,
      files={S: scen({"serving.scheduler_steps": 8, "serving.kv_memory": "contiguous"})},
      culprit="serving.scheduler_steps"),
    C("router unknown", "simulate", S, files={S: scen({"serving.router": "random"})},
      culprit="serving.router"),
    C("preemption unknown", "simulate", S, files={S: scen({"serving.preemption": "drop"})},
      culprit="serving.preemption"),
    C("admission unknown", "simulate", S, files={S: scen({"serving.admission": "lazy"})},
      culprit="serving.admission"),
    C("no_evict admission with disaggregation", "simulate", S,
      files={S: scen({"serving.admission": "no_evict",
                      "serving.disaggregation.prefill_replicas": 1,
                      "serving.disaggregation.decode_replicas": 1})},
      culprit="serving.admission"),
    C("schedule_conservativeness without SGLang's admission", "simulate", S,
      files={S: scen({"serving.schedule_conservativeness": 1.3})},
      culprit="serving.schedule_conservativeness"),
    C("schedule_conservativeness negative", "simulate", S,
      files={S: scen({"serving.admission": "new_token_ratio",
                      "serving.schedule_conservativeness": -0.5})},
      culprit="serving.schedule_conservativeness"),
    C("watermark of the whole memory", "simulate", S,
      files={S: scen({"serving.watermark": 1.0})}, culprit="serving.watermark"),
    C("watermark negative", "simulate", S,
      files={S: scen({"serving.watermark": -0.01})}, culprit="serving.watermark"),
    C("new_token_ratio admission with swap", "simulate", S,
      files={S: scen({"serving.admission": "new_token_ratio", "serving.preemption": "swap"})},
      culprit="serving.preemption"),
    C("new_token_ratio admission with contiguous memory", "simulate", S,
      files={S: scen({"serving.admission": "new_token_ratio",
                      "serving.kv_memory": "contiguous"})},
      culprit="serving.kv_memory"),
    C("new_token_ratio admission with disaggregation", "simulate", S,
      files={S: scen({"serving.admission": "new_token_ratio",
                      "serving.disaggregation.prefill_replicas": 1,
                      "serving.disaggregation.decode_replicas": 1})},
      culprit="serving.disaggregation"),
    C("max_new_tokens 0", "simulate", S, files={S: scen({"workload.max_new_tokens": 0})},
      culprit="workload.max_new_tokens"),
    C("max_batch 0", "simulate", S, files={S: scen({"serving.max_batch": 0})},
      culprit="serving.max_batch"),
    C("block_size 0", "simulate", S, files={S: scen({"serving.block_size": 0})},
      culprit="serving.block_size"),
    C("memory_fraction 0", "simulate", S, files={S: scen({"serving.memory_fraction": 0})},
      culprit="serving.memory_fraction"),
    C("memory_fraction 1.5", "simulate", S, files={S: scen({"serving.memory_fraction": 1.5})},
      culprit="serving.memory_fraction"),
    # 0.195 of an H100 holds Llama-3-8B's 16.06 GB of weights, not the 0.84 GB of vLLM's
    # profiling pass beside them
    C("memory_fraction no room beside the activations", "simulate", S,
      files={S: scen({"serving.memory_fraction": 0.195})}, culprit="leaves no KV memory"),
    C("memory_fraction no room for a reservation", "simulate", S,
      files={S: scen({"model.name": "llama-3.1-8b", "hardware.name": "l4",
                      "serving.kv_memory": "contiguous"})}, culprit="serving.memory_fraction"),
    C("kv_cache_bytes 0", "simulate", S, files={S: scen({"serving.kv_cache_bytes": 0})},
      culprit="serving.kv_cache_bytes"),
    C("kv_cache_bytes past the memory", "simulate", S,
      files={S: scen({"serving.kv_cache_bytes": 80 * 2**30})}, culprit="serving.kv_cache_bytes"),
    C("replicas 0", "simulate", S, files={S: scen({"serving.replicas": 0})},
      culprit="serving.replicas"),
    C("max_seq_len 0", "simulate", S, files={S: scen({"serving.max_seq_len": 0})},
      culprit="serving.max_seq_len"),
    C("chunk_tokens 0", "simulate", S, files={S: scen({"serving.chunk_tokens": 0})},
      culprit="serving.chunk_tokens"),
    C("sink_tokens negative", "simulate", S, files={S: scen({"serving.sink_tokens": -1})},
      culprit="serving.sink_tokens"),
    C("kv budget within sinks", "simulate", S,
      files={S: scen({"serving.kv_budget_tokens": 4, "serving.sink_tokens": 4})},
      culprit="serving.kv_budget_tokens"),
    C("slo 0", "simulate", S, files={S: scen({"slo.ttft_p99_s": 0})},
      culprit="slo.ttft_p99_s"),
    C("slo a string", "simulate", S, files={S: scen({"slo.tpot_p99_s": "100ms"})},
      culprit="slo.tpot_p99_s"),
    C("slo unknown key", "simulate", S, files={S: scen({"slo.ttft_p50_s": 1.0})},
      culprit="slo.ttft_p50_s"),
    C("plan target 0", "simulate", S, files={S: scen(plan={"target_qps": 0})},
      culprit="plan.target_qps"),
    C("plan compare unknown kind", "simulate", S,
      files={S: scen(plan={"compare": ["full", "flash"]})}, culprit="plan.compare[1]"),
    C("plan compare mla on llama", "simulate", S,
      files={S: scen(plan={"compare": ["full", "mla"]})}, culprit="plan.compare[1]"),
    C("plan qps_rel_tol 0.9", "simulate", S, files={S: scen(plan={"qps_rel_tol": 0.9})},
      culprit="plan.qps_rel_tol"),
    C("plan max_replicas 0", "simulate", S, files={S: scen(plan={"max_replicas": 0})},
      culprit="plan.max_replicas"),
    C("plan requests 50", "simulate", S, files={S: scen(plan={"requests": 50})},
      culprit="plan.requests"),
    C("report compare without sweep", "simulate", S,
      files={S: scen(report={"compare": ["model.attention"]})}, culprit="report.compare[0]"),
    C("report context length 0", "simulate", S,
      files={S: scen(report={"context_lengths": [1024, 0]})},
      culprit="report.context_lengths[1]"),
    C("report fidelity length 16", "simulate", S,
      files={S: scen(report={"fidelity_lengths": [16]})},
      culprit="report.fidelity_lengths[0]"),

    # ---- simulate options
    C("simulate: --seed -1", "simulate", S, "--seed", "-1", files={S: scen()},
      culprit="--seed"),
    C("simulate: --requests 0", "simulate", S, "--requests", "0", files={S: scen()},
      culprit="--requests"),
    C("simulate: --requests-csv folder missing", "simulate", S, "--requests-csv",
      "no/such/r.csv", files={S: scen()}, culprit="--requests-csv"),
    C("simulate: --requests-csv is a folder", "simulate", S, "--requests-csv", "rdir",
      files={S: scen(), "rdir/x": ""}, culprit="--requests-csv"),
    C("simulate: --requests-csv under a file", "simulate", S, "--requests-csv", "f/r.csv",
      files={S: scen(), "f": "x"}, culprit="--requests-csv"),
    C("simulate: --seed text", "simulate", S, "--seed", "abc", files={S: scen()},
      culprit="--seed"),
    C("simulate: --requests negative", "simulate", S, "--requests", "-5", files={S: scen()},
      culprit="--requests"),
    C("simulate: --engine unknown", "simulate", S, "--engine", "lmdeploy", files={S: scen()},
      culprit="--engine"),

    # ---- --set (every scenario command)
    C("set: not KEY=VALUE", "simulate", S, "--set", "seed", files={S: scen()},
      culprit="--set"),
    C("set: unknown key", "simulate", S, "--set", "serving.batch=8", files={S: scen()},
      culprit="--set serving.batch"),
    C("set: bad value", "plan", S, "--set", "workload.arrival.rate=-3", files={S: scen()},
      culprit="--set workload.arrival.rate"),
    C("set: not TOML", "sweep", S, "--set", "workload.requests=[1", files={S: scen()},
      culprit="--set workload.requests"),
    C("set: through a setting", "report", S, "-o", "r.pdf", "--set", "seed.x=1",
      files={S: scen()}, culprit="--set seed.x"),
    C("set: a relative path is the current folder's", "simulate", S, "--set",
      "workload.arrival.path=missing.csv", "--set", "workload.arrival.process=trace",
      files={S: scen()}, culprit="--set workload.arrival.path"),
    C("set: bad grid", "sweep", S, "--set", "sweep.workload.arrival.rate=[]",
      files={S: scen()}, culprit="--set sweep.\"workload.arrival.rate\""),

    # ---- sweep
    C("sweep: no [sweep]", "sweep", S, files={S: scen()}, culprit=S),
    C("sweep: not a table", "sweep", S, files={S: scen() + "sweep = 3\n"}, culprit="sweep"),
    C("sweep: unknown key", "sweep", S,
      files={S: scen(sweep={"serving.batch": [1, 2]})}, culprit="serving.batch"),
    C("sweep: not a list", "sweep", S,
      files={S: scen(sweep={"workload.arrival.rate": 2.0})}, culprit="workload.arrival.rate"),
    C("sweep: empty list", "sweep", S,
      files={S: scen(sweep={"workload.arrival.rate": []})}, culprit="workload.arrival.rate"),
    C("sweep: repeated value", "sweep", S,
      files={S: scen(sweep={"workload.arrival.rate": [1.0, 1.0]})},
      culprit="workload.arrival.rate"),
    C("sweep: invalid value", "sweep", S,
      files={S: scen(sweep={"workload.arrival.rate": [1.0, -1.0]})},
      culprit="workload.arrival.rate"),
    C("sweep: a section", "sweep", S, files={S: scen(sweep={"workload.arrival": [1]})},
      culprit="workload.arrival"),
    C("sweep: point TP does not divide", "sweep", S,
      files={S: scen(sweep={"hardware.gpus_per_replica": [1, 3]})},
      culprit="hardware.gpus_per_replica = 3"),
    C("sweep: point weights do not fit", "sweep", S,
      files={S: scen(sweep={"model.name": ["llama-3-8b", "llama-3-70b"]})},
      culprit="model.name = 'llama-3-70b'"),
    C("sweep: point kv budget within sinks", "sweep", S,
      files={S: scen({"serving.kv_budget_tokens": 64},
                     sweep={"serving.sink_tokens": [4, 64]})},
      culprit="serving.sink_tokens = 64"),
    C("sweep: point no room for a block", "sweep", S,
      files={S: scen({"model.name": "llama-3.1-8b", "hardware.name": "l4",
                      "serving.kv_memory": "contiguous"},
                     sweep={"serving.max_seq_len": [4096, 131072]})},
      culprit="serving.max_seq_len = 131072"),
    C("sweep: point trace unreadable", "sweep", S,
      files={S: scen({"workload.arrival": {"process": "trace", "path": "t.csv"}},
                     sweep={"seed": [1, 2]}), "t.csv": "arrived_at\nsoon\n"},
      culprit="workload.arrival.path"),
    C("sweep: a kind the model cannot take", "sweep", S,
      files={S: scen(sweep={"model.attention": ["full", "mla"]})},
      culprit="model.attention = 'mla'"),
    C("sweep: an unknown model", "sweep", S,
      files={S: scen(sweep={"model.name": ["llama-3-8b", "llama-9"]})},
      culprit="model.name = 'llama-9'"),
    C("sweep: --out under a file", "sweep", S, "--out", "f/o",
      files={S: scen(sweep={"seed": [1, 2]}), "f": "x"}, culprit="--out"),
    C("sweep: report compare not swept", "sweep", S,
      files={S: scen(sweep={"seed": [1, 2]}, report={"compare": ["model.attention"]})},
      culprit="report.compare[0]"),
    C("sweep: --out is a file", "sweep", S, "--out", "o", files={S: scen(
        sweep={"seed": [1, 2]}), "o": "x"}, culprit="--out"),
    C("sweep: --out of another scenario", "sweep", S, "--out", "o",
      files={S: scen(sweep={"seed": [1, 2]}),
             "o/scenario.toml": scen({"workload.requests": 9}, sweep={"seed": [1, 2]})},
      culprit="--out"),
    C("sweep: --workers 0", "sweep", S, "--workers", "0",
      files={S: scen(sweep={"seed": [1, 2]})}, culprit="--workers"),
    C("sweep: --workers with --cluster", "sweep", S, "--workers", "2", "--cluster",
      "tcp://127.0.0.1:9", files={S: scen(sweep={"seed": [1, 2]})}, culprit="--workers"),
    C("sweep: --cluster not an address", "sweep", S, "--cluster", "localhost",
      files={S: scen(sweep={"seed": [1, 2]})}, culprit="--cluster"),
    C("sweep: --cluster unreachable", "sweep", S, "--cluster", "tcp://127.0.0.1:9",
      files={S: scen(sweep={"seed": [1, 2]})}, culprit="--cluster"),
    C("sweep: --requests 0", "sweep", S, "--requests", "0",
      files={S: scen(sweep={"seed": [1, 2]})}, culprit="--requests"),

    # ---- plan
    C("plan: no SLOs", "plan", S, files={S: scen({"slo": {}})}, culprit="slo"),
    C("plan: --requests 50", "plan", S, "--requests", "50", files={S: scen()},
      culprit="--requests"),
    C("plan: plan.requests 50", "plan", S, files={S: scen(plan={"requests": 50})},
      culprit="plan.requests"),
    C("plan: --target-qps 0", "plan", S, "--target-qps", "0", files={S: scen()},
      culprit="--target-qps"),
    C("plan: --target-qps nan", "plan", S, "--target-qps", "nan", files={S: scen()},
      culprit="--target-qps"),
    C("plan: SLO no request meets", "plan", S, files={S: scen({"slo.ttft_p99_s": 1e-6})},
      culprit="slo.ttft_p99_s"),
    C("plan: weights do not fit", "plan", S, files={S: scen({"model.name": "llama-3-70b"})},
      culprit="hardware.gpus_per_replica"),
    C("plan: max_replicas too few", "plan", S,
      files={S: scen(plan={"target_qps": 1e6, "max_replicas": 1})},
      culprit="plan.max_replicas"),
    C("plan: --workers without search", "plan", S, "--workers", "2", files={S: scen()},
      culprit="--workers"),
    C("plan: --cluster without search", "plan", S, "--cluster", "tcp://127.0.0.1:9",
      files={S: scen()}, culprit="--cluster"),
    C("plan: --out is a file", "plan", S, "--out", "o", files={S: scen(), "o": "x"},
      culprit="--out"),
    C("plan: --out under a file", "plan", S, "--out", "f/o", files={S: scen(), "f": "x"},
      culprit="--out"),
    C("plan: search without target", "plan", S,
      files={S: scen(plan={"search": {"hardware.gpus_per_replica": [1, 2]}})},
      culprit="plan.target_qps"),
    C("plan: search unknown key", "plan", S,
      files={S: scen(plan={"target_qps": 1, "search": {"hardware.gpu": ["h200"]}})},
      culprit="hardware.gpu"),
    C("plan: search over plan keys", "plan", S,
      files={S: scen(plan={"target_qps": 1, "search": {"plan.target_qps": [1, 2]}})},
      culprit="plan.target_qps"),
    C("plan: search empty list", "plan", S,
      files={S: scen(plan={"target_qps": 1, "search": {"hardware.name": []}})},
      culprit="hardware.name"),
    C("plan: search repeated value", "plan", S,
      files={S: scen(plan={"target_qps": 1, "search": {"hardware.name": ["h200", "h200"]}})},
      culprit="hardware.name"),
    C("plan: search unknown hardware", "plan", S,
      files={S: scen(plan={"target_qps": 1, "search": {"hardware.name": ["h200", "h300"]}})},
      culprit="hardware.name"),
    C("plan: search GPU with no price", "plan", S,
      files={S: scen(plan={"target_qps": 1, "search": {"hardware.name": ["gpu.toml"]}}),
             "gpu.toml": hardware_toml(name="mine", price_per_gpu_hour=DROP,
                                       price_source=DROP)},
      culprit="gpu.toml"),
    C("plan: --target-qps text", "plan", S, "--target-qps", "lots", files={S: scen()},
      culprit="--target-qps"),
    C("plan: --requests 0", "plan", S, "--requests", "0", files={S: scen()},
      culprit="--requests"),
    C("plan: --set a search over an unknown GPU", "plan", S, "--set",
      'plan.search.hardware.name=["h200", "h300"]', files={S: scen(plan={"target_qps": 1})},
      culprit="hardware.name"),
    C("plan: search --workers 0", "plan", S, "--workers", "0",
      files={S: scen(plan={"target_qps": 1, "search": {"hardware.name": ["h200"]}})},
      culprit="--workers"),

    # ---- report
    C("report: output not .pdf", "report", S, "-o", "r.txt", files={S: scen()},
      culprit="r.txt"),
    C("report: output folder under a file", "report", S, "-o", "f/r.pdf",
      files={S: scen(), "f": "x"}, culprit="f"),
    C("report: output is a folder", "report", S, "-o", "r.pdf", files={S: scen(),
                                                                      "r.pdf/x": ""},
      culprit="r.pdf"),
    C("report: --png-dir is a file", "report", S, "-o", "r.pdf", "--png-dir", "p",
      files={S: scen(), "p": "x"}, culprit="--png-dir"),
    C("report: -o missing", "report", S, files={S: scen()}, culprit="-o"),
    C("report: scenario missing", "report", "nope.toml", "-o", "r.pdf", culprit="nope.toml"),
    C("report: bad scenario key", "report", S, "-o", "r.pdf",
      files={S: scen({"serving.batch": 8})}, culprit="serving.batch"),
    C("report: --requests 50 with a plan", "report", S, "-o", "r.pdf", "--requests", "50",
      files={S: scen()}, culprit="--requests"),
    C("report: sweep point cannot run", "report", S, "-o", "r.pdf",
      files={S: scen(sweep={"hardware.gpus_per_replica": [1, 3]})},
      culprit="hardware.gpus_per_replica = 3"),
    C("report: --requests 0", "report", S, "-o", "r.pdf", "--requests", "0",
      files={S: scen()}, culprit="--requests"),
    C("report: --png-dir under a file", "report", S, "-o", "r.pdf", "--png-dir", "f/png",
      files={S: scen(), "f": "x"}, culprit="--png-dir"),
    C("report: --engine file missing", "report", S, "-o", "r.pdf", "--engine", "e.toml",
      files={S: scen()}, culprit="e.toml"),
]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under `folder`, by relative path."""
    out: dict[str, bytes | None] = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = None if p.is_dir() else p.read_bytes()
    return out


def write_inputs(folder: Path, files: dict) -> None:
    for name, content in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def check_one_line(code: int, out: str, err: str, command: str, culprit: str) -> None:
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert code == 2, f"exit status {code}: {line}"
    assert line.startswith((f"simkit {command}: error: ", "simkit: error: ")), line
    assert culprit in line, f"{culprit!r} not named in: {line}"
    assert out == ""


@pytest.mark.parametrize("argv, files, culprit", CASES)
def test_bad_input_is_one_line_exit_2_nothing_written(run_cli, tmp_path, monkeypatch, argv,
                                                     files, culprit):
    write_inputs(tmp_path, files)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    r = run_cli(*argv)
    check_one_line(r.code, r.out, r.err, argv[0], culprit)
    assert snapshot(tmp_path) == before, "the folder changed"


#: the same contract through `python -m simkit` (a real process: argparse's exits, the
#: last-resort handler and warnings filters as a user meets them)
SUBPROCESS = ["scenario missing", "hf: hidden_size NaN", "calibrate: --seed -1",
              "sweep: point weights do not fit", "set: unknown key", "plan: --requests 50",
              "unknown option"]


@pytest.mark.parametrize("argv, files, culprit",
                         [c for c in CASES if c.id in SUBPROCESS])
def test_bad_input_through_python_m_simkit(tmp_path, argv, files, culprit):
    write_inputs(tmp_path, files)
    before = snapshot(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "simkit", *argv], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    check_one_line(r.returncode, r.stdout, r.stderr, argv[0], culprit)
    assert snapshot(tmp_path) == before


def test_the_corpus_covers_every_command():
    from simkit.cli import COMMANDS

    seen = {c.values[0][0] for c in CASES}
    assert set(COMMANDS) <= seen
    assert len(SUBPROCESS) == len([c for c in CASES if c.id in SUBPROCESS])


# --------------------------------------------------------------------------- questions
# Inputs that look like mistakes but are questions: lengths beyond the trained context are
# what-ifs, and a window at least as long as the context is full attention. They run (exit
# 0) and each distinct one is said once, as one warning line naming the key or option --
# however many sweep points or probes meet it.

def W(id: str, *argv, files: dict | None = None, warnings: tuple[str, ...]):
    return pytest.param([str(a) for a in argv], files or {}, warnings, id=id)


BEYOND = {"workload.prompt_tokens.value": 10000}
WHAT_IFS = [
    W("cost: --seq beyond the context", "cost", "llama-3-8b", "--seq", "100000",
      warnings=("--seq 100000 is beyond llama-3-8b's 8192-token context",)),
    W("cost: a window longer than the context", "cost", "llama-3-8b", "--attention", "window",
      "--window", "100000", warnings=("a window of 100000 tokens covers the whole",)),
    W("fidelity: a window covering every length", "fidelity", "--window", "100000",
      "--lengths", "64", "--trials", "4", warnings=("--window 100000 covers every length",)),
    W("simulate: a fixed prompt beyond the context", "simulate", S, "--json",
      files={S: scen(BEYOND)}, warnings=("workload.prompt_tokens.value 10000 is beyond",)),
    W("simulate: a window longer than the context", "simulate", S, "--json",
      files={S: scen({"model.attention": "window", "model.window": 100000})},
      warnings=("a window of 100000 tokens covers the whole",)),
    W("sweep: max_seq_len and a prompt beyond the context at several points", "sweep", S,
      "--out", "o", "--workers", "1",
      files={S: scen(BEYOND, sweep={"serving.max_seq_len": [4096, 20000], "seed": [1, 2]})},
      warnings=("workload.prompt_tokens.value 10000 is beyond",
                "serving.max_seq_len 20000 is beyond")),
]


@pytest.mark.parametrize("argv, files, expected", WHAT_IFS)
def test_a_what_if_runs_and_says_so_once(run_cli, tmp_path, monkeypatch, argv, files,
                                         expected):
    write_inputs(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    r = run_cli(*argv)
    assert r.code == 0, r.err
    assert "Traceback" not in r.err and "error" not in r.err
    said = [x for x in r.err.splitlines() if x.startswith(f"simkit {argv[0]}: warning: ")]
    assert len(said) == len(expected), r.err
    for text in expected:
        assert sum(text in x for x in said) == 1, (text, said)
