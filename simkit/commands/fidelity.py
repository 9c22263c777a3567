"""`simkit fidelity`: measured associative recall vs context length, per architecture."""

from __future__ import annotations

import argparse

from simkit.commands._common import nonneg_int, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fidelity", help="measure information retention (associative recall) vs length",
        description="Run a synthetic associative-recall task through the numpy kernels: "
                    "key/value pairs scattered through n tokens, one queried at the end; "
                    "recall = fraction of queries whose retrieved value is nearest the right "
                    "one. Families: full, window, sparse, linear, memory.")
    p.add_argument("--lengths", type=positive_int, nargs="+", metavar="N",
                   help="context lengths (default 512 2048 8192 32768)")
    p.add_argument("--trials", type=positive_int, default=64,
                   help="queries per length (default %(default)s)")
    p.add_argument("--pairs", type=positive_int, default=16,
                   help="stored key/value pairs per sequence (default %(default)s)")
    p.add_argument("--window", type=positive_int, default=256, help="window w (default 256)")
    p.add_argument("--global-tokens", type=nonneg_int, default=16,
                   help="global tokens g (default 16)")
    p.add_argument("--memory-slots", type=positive_int, default=64,
                   help="memory slots m (default 64)")
    p.add_argument("--segment", type=positive_int, default=256,
                   help="memory segment length s (default 256)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed (default 0)")
    p.add_argument("--json", action="store_true",
                   help='print {"lengths": [...], "recall": {family: [...]}, ...}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from simkit.calibrate.fidelity import DEFAULT_LENGTHS, RecallTask, run_fidelity
    from simkit.commands._common import print_json
    import warnings

    from simkit.errors import SimkitWarning

    from simkit.errors import SimkitError

    lengths = args.lengths or DEFAULT_LENGTHS
    try:
        task = RecallTask(pairs=args.pairs, trials=args.trials, window=args.window,
                          global_tokens=args.global_tokens, memory_slots=args.memory_slots,
                          segment=args.segment)
        result = run_fidelity(lengths=lengths, seed=args.seed, task=task)
    except SimkitError as e:  # the experiment names its settings; here they are options
        raise SimkitError(*(_as_option(m) for m in e.messages)) from None
    if args.window >= max(lengths):
        # a window covering every length never slides: it is full attention (as the cost
        # layer decides for a window covering the context)
        warnings.warn(SimkitWarning(
            f"--window {args.window} covers every length (up to {max(lengths)}): the window "
            "family is full attention here"))
    if args.json:
        print_json(result.to_dict())
        return 0
    t = result.task
    print(f"associative recall: d={t.d}, {t.pairs} pairs per sequence, {t.trials} queries per "
          f"length, sharpness {t.sharpness:g}; chance = {result.chance:.3f}")
    print(f"window w={t.window}; sparse w={t.window} + g={t.global_tokens}; memory m="
          f"{t.memory_slots} slots, segments of {t.segment}; linear: elu+1, state "
          f"{t.d}x{t.d + 1}\n")
    print(f"{'n':>8} " + " ".join(f"{f:>8}" for f in result.recall))
    for i, n in enumerate(result.lengths):
        print(f"{n:>8} " + " ".join(f"{result.recall[f][i]:>8.3f}" for f in result.recall))
    return 0


def _as_option(message: str) -> str:
    """`fidelity.global_tokens: ...` -> `--global-tokens: ...` (the option it came from)."""
    head, sep, rest = message.partition(": ")
    if sep and head.startswith("fidelity."):
        return "--" + head[len("fidelity."):].replace("_", "-") + sep + rest
    return message
