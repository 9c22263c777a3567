"""What a checkpoint stores its weights in: a Hugging Face config's `quantization_config`
read as one of simkit's weight dtypes (`simkit.units.WEIGHT_DTYPES`).

A model's own weight dtype is what every cost, simulation and plan assumes unless
`model.weight_dtype` / `--weight-dtype` says otherwise (`ArchSpec.resolve`): DeepSeek-V3 is
published in fp8 and served so on 8 H200s; read as bf16 it would need 11. A config without
a `quantization_config` is a 16-bit checkpoint (bf16 here: fp16 costs the same). Methods
read (their keys as transformers' quantization configs write them):

  fp8, fbgemm_fp8                fp8 weights (DeepSeek-V3: `fmt` e4m3, 128 x 128 blocks)
  mxfp4                          mxfp4: OCP microscaling FP4 (4-bit elements, one 8-bit
                                 scale per 32: 4.25 bits). A checkpoint that leaves attention
                                 out of it (`modules_to_not_convert`: gpt-oss keeps
                                 attention, router and embeddings in bf16) is bf16 with its
                                 routed experts in mxfp4 (`checkpoint_dtypes`)
  awq, gptq, auto-round          `bits` (or AWQ's `w_bit`): 4 -> int4, 8 -> int8
  bitsandbytes                   `load_in_4bit` -> int4, `load_in_8bit` -> int8
  compressed-tensors             every `config_groups` entry's `weights`: 8-bit float -> fp8,
                                 8-bit int -> int8, 4-bit float in groups of 16 -> nvfp4
                                 (`nvfp4-pack-quantized`), other 4-bit -> int4 (the groups
                                 must agree)
  modelopt                       `quant_algo` FP8 -> fp8; W4A16_AWQ, W4A8_AWQ -> int4; NVFP4
                                 -> nvfp4 (4-bit elements, one fp8 scale per 16: 4.5 bits);
                                 also a `quant_algo` without a `quant_method` (ModelOpt's
                                 exports), and NVIDIA ModelOpt checkpoints whose config.json
                                 has none but whose folder holds `hf_quant_config.json`
                                 (`quantization.quant_algo` and its `exclude_modules`:
                                 `sibling_quantization`)

Weight-only int4, int8 and mxfp4 compute at the 16-bit peak (`simkit.units.compute_dtype`),
as the dequantizing kernels do; nvfp4 at the FP4 peak where the GPU has FP4 tensor cores.
Any other method, or a config these rules cannot read, leaves the dtype unknown:
`checkpoint_dtype` says why, and a cost that needs it asks for `model.weight_dtype` rather
than guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

_BITS = {4: "int4", 8: "int8"}
_MODELOPT = {"FP8": "fp8", "NVFP4": "nvfp4", "W4A16_AWQ": "int4", "W4A8_AWQ": "int4"}


def checkpoint_dtypes(cfg: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
    """(weight dtype, routed experts' dtype -- None: the same --, where they come from) of a
    config mapping; the weight dtype None when its quantization is not one read here. A
    quantization that leaves attention out (`modules_to_not_convert` or compressed-tensors'
    `ignore` naming it: gpt-oss's MX FP4, Kimi-K2.5's INT4, which also skip the shared
    experts, the dense MLPs and the LM head) quantizes the routed experts only."""
    dtype, why = checkpoint_dtype(cfg)
    q = _quantization(cfg)
    skipped = (q.get("modules_to_not_convert") or q.get("ignore")) \
        if dtype not in (None, "bf16") else None
    if isinstance(skipped, list) and any("attn" in str(m) for m in skipped):
        return "bf16", dtype, why + ", routed experts only"
    return dtype, None, why


def _quantization(cfg: Mapping[str, Any]):
    """The config's `quantization_config`, or its `text_config`'s (Kimi-K2.5 nests it)."""
    q = cfg.get("quantization_config")
    text = cfg.get("text_config")
    if q is None and isinstance(text, Mapping):
        q = text.get("quantization_config")
    return q


def checkpoint_dtype(cfg: Mapping[str, Any]) -> tuple[str | None, str]:
    """(weight dtype, where it comes from) of a config mapping; (None, why) when its
    quantization is not one this module reads."""
    q = _quantization(cfg)
    if q is None:
        return "bf16", "16-bit checkpoint (no quantization_config)"
    if not isinstance(q, Mapping):
        return None, "quantization_config is not a table"
    method = q.get("quant_method")
    if method is None and "quant_algo" in q:  # ModelOpt's exports leave the method out
        method = "modelopt"
    where = f"quantization_config.quant_method {method!r}"
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8", where
    if method == "mxfp4":
        return "mxfp4", where
    if method in ("awq", "gptq", "auto-round", "autoround"):
        bits = q.get("bits", q.get("w_bit"))
        dtype = _BITS.get(bits) if isinstance(bits, int) and not isinstance(bits, bool) \
            else None
        return (dtype, f"{where}, bits {bits!r}") if dtype else \
            (None, f"{where} with bits {bits!r} (4 and 8 are read)")
    if method == "bitsandbytes":
        if q.get("load_in_4bit") is True:
            return "int4", where + ", load_in_4bit"
        if q.get("load_in_8bit") is True:
            return "int8", where + ", load_in_8bit"
        return None, f"{where} with neither load_in_4bit nor load_in_8bit set"
    if method == "compressed-tensors":
        return _compressed_tensors(q, where)
    if method == "modelopt":
        algo = q.get("quant_algo")
        dtype = _MODELOPT.get(algo) if isinstance(algo, str) else None
        return (dtype, f"{where}, quant_algo {algo!r}") if dtype else \
            (None, f"{where} with quant_algo {algo!r} (read: {', '.join(_MODELOPT)})")
    return None, f"{where} is not one simkit reads (fp8, fbgemm_fp8, mxfp4, awq, gptq, " \
        "auto-round, bitsandbytes, compressed-tensors, modelopt)"


def sibling_quantization(config_path) -> dict | None:
    """The quantization of an NVIDIA ModelOpt checkpoint whose config.json carries none: its
    folder's `hf_quant_config.json` (`quantization.quant_algo`, as vLLM and TensorRT-LLM read
    it), as a `quantization_config`; None without such a file. A file that cannot be read
    leaves the algorithm None (the dtype unknown, said when it is needed)."""
    p = Path(config_path).with_name("hf_quant_config.json")
    if not p.is_file():
        return None
    try:
        q = json.loads(p.read_text()).get("quantization", {})
        algo, skipped = q.get("quant_algo"), q.get("exclude_modules")
    except (ValueError, OSError, AttributeError):
        algo = skipped = None
    out = {"quant_method": "modelopt", "quant_algo": algo, "source": "hf_quant_config.json"}
    if skipped is not None:  # (DeepSeek's NVFP4 exports keep attention out)
        out["modules_to_not_convert"] = skipped
    return out


def _compressed_tensors(q: Mapping[str, Any], where: str) -> tuple[str | None, str]:
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        return None, f"{where} without config_groups"
    found = set()
    for g in groups.values():
        w = g.get("weights") if isinstance(g, Mapping) else None
        if not isinstance(w, Mapping):
            return None, f"{where}: a config group without weights"
        bits, kind = w.get("num_bits"), w.get("type")
        if bits == 8 and kind == "float":
            found.add("fp8")
        elif bits == 8 and kind == "int":
            found.add("int8")
        elif bits == 4 and kind == "float" and w.get("group_size") == 16:
            found.add("nvfp4")
        elif bits == 4 and kind in ("int", "float"):
            found.add("int4")
        else:
            return None, f"{where}: weights of {bits!r} bits, type {kind!r}"
    if len(found) > 1:
        return None, f"{where}: config groups in {', '.join(sorted(found))}"
    dtype = found.pop()
    return dtype, f"{where}, config_groups weights in {dtype}"
