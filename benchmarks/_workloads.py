"""The request-length distributions of the dataset-driven serving benchmarks in
`simkit/data/measurements/` (rows whose `dataset` column names one), as simkit workload
length specs. Used by `benchmarks/fidelity.py`.

- `openorca`: MLPerf Inference's Llama-2-70B task, 24,576 OpenOrca samples. Prompt lengths are
  the samples' own (`lengths_openorca_llama2.csv`, Llama-2 tokenizer, mean 222.3, median 152,
  max 1,021). Output lengths: the file holds the reference (GPT-4) answers' lengths, mean
  218.9, but MLPerf runs generate with Llama-2-70B-chat until its end-of-sequence token, and
  every run's log gives its own mean (tokens/s / samples/s: 290-297 tokens; MLCommons' reference
  accuracy run: 294.45 tokens per sample, language/llama2-70b/README.md of
  github.com/mlcommons/inference). So the outputs are the reference lengths scaled to the run's
  own mean, rounded, at least 1 token: the shape of the answer-length distribution with the
  level the run measured. That is an assumption (generated length proportional to the
  reference answer's), stated wherever it is used. Each answer comes from its prompt's row
  (`paired`): in the file their correlation is -0.17.
  Served to Llama-3 (Krai's runs) every prompt opens with a system message the cache can
  share (`openorca_system_prompts`): Krai's converter (krai/axs2mlperf@5db3f2a
  convert_openorca/convert_openorca.py) writes each sample as
  `<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>\n<|start_header_id|>user
  <|end_header_id|>\n\n{question}...`, and MLPerf's set keeps a system message on every
  sample (mlcommons/inference@01b4e7eb38aa language/llama2-70b/processorca.py: 6,144 samples
  from each of FLAN's cot, niv, t0 and flan sub-collections; `filter_bad_prompts` drops niv
  and t0 samples with an empty message and four others). Which messages each
  sub-collection's queries carry is the Orca paper's (Mukherjee et al., arXiv:2306.02707,
  Table 2 for the 16 texts, Figure 6 for the messages each sub-collection uses), which
  OpenOrca reproduces; with no counts in the paper, a sub-collection's messages are taken as
  equally likely (for flan, whose multiple-choice queries get messages 8 and 10 and the rest
  3, 4 and 7, that makes 2 in 5 multiple choice: an assumption). A message's Llama-3 tokens
  are its characters over Llama 3's 3.94 per token (`_published.LLAMA3_CHARS_PER_TOKEN`), plus
  the 11 template tokens around it. With prefix caching (vLLM V1's and SGLang's default)
  the running sequences hold one copy of those tokens' full blocks: 3.1 blocks of 16 per
  sequence on average, about 12% of a Krai sequence's mean decode context.
- `cnn_dailymail`: MLPerf Inference's Llama-3.1-8B task, 13,368 CNN/DailyMail articles
  (`lengths_cnn_dailymail_llama3.1.csv`: prompts mean 870.7, median 784, max 2,540 Llama-3.1
  tokens). Answers are capped at 128 tokens and the runs' logs give 128.0-129.0 tokens per
  sample, so every answer is the run's mean (the file's reference summaries, mean 81.6, are
  not what was generated).
- `mlperf_mixtral`: MLPerf Inference's Mixtral-8x7B task, 15,000 samples of OpenOrca, GSM8K
  and MBXP (`lengths_mlperf_mixtral.csv`: prompts mean 427.4, median 283; reference answers
  mean 144.8). Outputs as for OpenOrca: the reference lengths scaled to the run's mean
  (143.4-143.8 in the v5.1 logs, close to the reference's).
- `sharegpt`: the ShareGPT sampler of vLLM's benchmark_serving.py and sglang.bench_serving
  (first human turn as the prompt, the first answer's length as the output; pairs with a
  prompt or an answer under 4 tokens, a prompt over 1,024 or a total over 2,048 dropped; Llama-3
  tokenizer). The sources give mean lengths, not per-request ones; the shape is a log-normal
  clipped to [4, 1024] with the mean-to-median ratio of a published 320-request sample of the
  same sampler and tokenizer (LambdaLabsML/vllm-benchmark@a4f9f4371a1c results/prompt_320/
  1xH100-80GB-SXM/Meta-Llama-3-8B-Instruct_tp1_len2048.json, its `input_lens` -- mean 204.9,
  median 77 -- and its nonzero `output_lens` -- mean 215.6, median 184; a log-normal has
  mean / median = exp(sigma^2 / 2), so sigma = sqrt(2 ln(mean / median)) = 1.40 for prompts
  and 0.56 for outputs), its median solved so the clipped mean equals the mean the row's
  source states. That sample's outputs stopped at the model's end-of-sequence token, the
  sglang runs' did not (sglang.bench_serving ignores it by default), so the output shape is
  the weaker assumption.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from _published import (DATA, LLAMA3_CHARS_PER_TOKEN, MLPERF_LENGTHS, mlperf_lengths,
                        retokenization)

#: sqrt(2 ln(mean / median)) of the ShareGPT sample named in the module docstring
SHAREGPT_SIGMA_PROMPT = math.sqrt(2 * math.log(204.93125 / 77))
SHAREGPT_SIGMA_OUTPUT = math.sqrt(2 * math.log(215.6138613861386 / 184))
SHAREGPT_MIN, SHAREGPT_MAX = 4, 1024
#: mean prompt length of sglang.bench_serving's ShareGPT sample (seed 1, Llama-3 tokenizer):
#: 453,502 input tokens over 2,000 prompts in github.com/sgl-project/sglang/issues/1639
#: (zhyncs, 2024-10-17). The 1,200-5,000-prompt runs of benchmark_vllm_060 draw from the same
#: shuffled order (the sampler takes the first N that pass its filter), so they share this
#: level; their own input totals are not published.
SGLANG_SHAREGPT_MEAN_PROMPT = 453502 / 2000
#: mean output of the 5,000-prompt offline runs of the same README (SGLang: 4281.51 output
#: tokens/s / 22.03 requests/s = 194.35; vLLM's 4132.37 / 21.27 = 194.28), for its online
#: 1,200- and 2,400-prompt runs, which state no totals (the same sampler's 2,000 prompts in
#: sglang#1639 averaged 188.2)
SGLANG_SHAREGPT_MEAN_OUTPUT = 4281.51 / 22.03

#: the system messages of MLPerf's OpenOrca set: Orca's Table 2 (Mukherjee et al.,
#: arXiv:2306.02707) by its numbering, those `filter_bad_prompts` leaves in the set
ORCA_SYSTEM_MESSAGES = {
    3: "You are an AI assistant. You will be given a task. You must generate a detailed and "
       "long answer.",
    4: "You are a helpful assistant, who always provide explanation. Think like you are "
       "answering to a five year old.",
    6: "You are an AI assistant that helps people find information. Provide a detailed "
       "answer so user don't need to search outside to understand the answer.",
    7: "You are an AI assistant. User will you give you a task. Your goal is to complete the "
       "task as faithfully as you can. While performing the task think step-by-step and "
       "justify your steps.",
    8: "You should describe the task and explain your answer. While answering a multiple "
       "choice question, first output the correct answer(s). Then explain why other answers "
       "are wrong. Think like you are answering to a five year old.",
    10: "You are an AI assistant. You should describe the task and explain your answer. While "
        "answering a multiple choice question, first output the correct answer(s). Then "
        "explain why other answers are wrong. You might need to use additional knowledge to "
        "answer the question.",
    11: "You are an AI assistant that helps people find information. User will you give you a "
        "question. Your task is to answer as faithfully as you can. While answering think "
        "step-bystep and justify your answer.",
    13: "You are a teacher. Given a task, you explain in simple steps what the task is asking, "
        "any guidelines it provides and how to use those guidelines to find the answer.",
    14: "You are an AI assistant, who knows every language and how to translate one language "
        "to another. Given a task, you explain in simple steps what the task is asking, any "
        "guidelines that it provides. You solve the task and show how you used the guidelines "
        "to solve the task.",
    15: "Given a definition of a task and a sample input, break the definition into small "
        "parts.\nEach of those parts will have some instruction. Explain their meaning by "
        "showing an example that meets the criteria in the instruction. Use the following "
        "format:\nPart  # : a key part of the definition.\nUsage: Sample response that meets "
        "the criteria from the key part. Explain why you think it meets the criteria.",
    16: "You are an AI assistant that helps people find information.",
}
#: the messages each FLAN sub-collection's queries were sent with (Orca, Figure 6), less the
#: empty message and messages 2, 5, 9 and 12, which processorca.py drops from niv and t0;
#: MLPerf draws 6,144 samples from each sub-collection
ORCA_MESSAGES_BY_ORIGIN = {"cot": (6, 11, 16), "niv": (7, 13, 14, 15), "t0": (3, 7),
                           "flan": (3, 4, 7, 8, 10)}
#: tokens every Krai Llama-3 prompt shares around its system message: BOS,
#: <|start_header_id|>, "system", <|end_header_id|>, "\n\n" before it; <|eot_id|>, "\n",
#: <|start_header_id|>, "user", <|end_header_id|>, "\n\n" after it (convert_openorca.py)
LLAMA3_SYSTEM_TEMPLATE_TOKENS = 11


def openorca_system_prompts(model: str) -> list[dict] | None:
    """The shared openings of MLPerf's OpenOrca prompts as simkit tenants ({weight,
    system_prompt_tokens}: template and system message, in Llama-3 tokens) for a Llama-3
    model (Krai's format, the module docstring); None for other models (the Llama-2 runs'
    engines cache no prefixes: vLLM V0, TensorRT-LLM as run)."""
    if not model.startswith("llama-3"):
        return None
    weight: dict[int, float] = {}
    for msgs in ORCA_MESSAGES_BY_ORIGIN.values():
        for m in msgs:
            weight[m] = weight.get(m, 0.0) + 1.0 / len(ORCA_MESSAGES_BY_ORIGIN) / len(msgs)
    return [{"weight": w, "system_prompt_tokens": LLAMA3_SYSTEM_TEMPLATE_TOKENS + round(
        len(ORCA_SYSTEM_MESSAGES[m]) / LLAMA3_CHARS_PER_TOKEN)} for m, w in sorted(weight.items())]


def shared_prefix_tokens(dataset: str, model: str, block_size: int = 16) -> float:
    """Tokens per sequence that a prefix cache of `block_size`-token blocks holds once for
    every sequence of the same opening (its full blocks), on average over the set."""
    tenants = openorca_system_prompts(model) if dataset == "openorca" else None
    return sum(t["weight"] * (t["system_prompt_tokens"] // block_size) * block_size
               for t in tenants or ())


_TMP = tempfile.TemporaryDirectory(prefix="simkit-fidelity-")


def mlperf(dataset: str, mean_output: float, model: str = "") -> dict:
    """Prompt and output length specs of an MLPerf data set (`_published.MLPERF_LENGTHS`): the
    samples' own prompt lengths; outputs either the reference lengths scaled to the
    run's mean `mean_output` (OpenOrca, Mixtral's set; the scaled file lives for this
    process; prompts in `model`'s tokens, `_published.RETOKENIZED`) or every answer at
    that mean (CNN/DailyMail: the task caps answers at 128 tokens and the runs' means
    are 128-129, so every sample ran to the cap)."""
    name, scaled = MLPERF_LENGTHS[dataset]
    if not scaled and retokenization(dataset, model) is None:
        return {"prompt_tokens": {"dist": "empirical", "path": str(DATA / name),
                                  "column": "input_length"},
                "output_tokens": {"dist": "fixed", "value": int(round(mean_output))}}
    tenants = openorca_system_prompts(model) if dataset == "openorca" else None
    path = Path(_TMP.name) / f"{dataset}_{model}_{mean_output:.2f}.csv"
    if not path.exists():
        prompt, out = mlperf_lengths(dataset, mean_output, model)
        if tenants:  # the user's tokens follow the shared opening: the mean prompt is kept
            # (the mean opening: every token of it, a cache of 1-token blocks' share)
            prompt = np.maximum(1, np.rint(prompt - shared_prefix_tokens(dataset, model, 1)))
        with open(path, "w") as f:
            f.write("input_length,output_length\n")
            f.writelines(f"{int(a)},{int(b)}\n" for a, b in zip(prompt, out))
    spec = {"prompt_tokens": {"dist": "empirical", "path": str(path), "column": "input_length"},
            "output_tokens": {"dist": "empirical", "path": str(path), "column": "output_length",
                              "paired": True}}
    return {**spec, "tenants": tenants} if tenants else spec


def _clipped_lognormal_mean(median: float, sigma: float, lo: float, hi: float) -> float:
    """E[min(max(X, lo), hi)] for X log-normal(log median, sigma) (closed form)."""
    mu = math.log(median)
    phi = lambda z: 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))  # noqa: E731
    a, b = (math.log(lo) - mu) / sigma, (math.log(hi) - mu) / sigma
    inside = math.exp(mu + sigma ** 2 / 2) * (phi(b - sigma) - phi(a - sigma))
    return lo * phi(a) + hi * (1.0 - phi(b)) + inside


def lognormal_for_mean(mean: float, sigma: float, lo: int, hi: int) -> dict:
    """A clipped log-normal length spec whose mean is `mean` (median by bisection)."""
    a, b = 1e-3, float(hi)
    for _ in range(200):
        m = math.sqrt(a * b)
        if _clipped_lognormal_mean(m, sigma, lo, hi) < mean:
            a = m
        else:
            b = m
    return {"dist": "lognormal", "median": math.sqrt(a * b), "sigma": sigma, "min": lo,
            "max": hi}


def sharegpt(mean_prompt: float, mean_output: float) -> dict:
    """Prompt and output length specs of the ShareGPT sampler at the given means."""
    return {"prompt_tokens": lognormal_for_mean(mean_prompt, SHAREGPT_SIGMA_PROMPT,
                                                SHAREGPT_MIN, SHAREGPT_MAX),
            "output_tokens": lognormal_for_mean(mean_output, SHAREGPT_SIGMA_OUTPUT,
                                                SHAREGPT_MIN, SHAREGPT_MAX)}
