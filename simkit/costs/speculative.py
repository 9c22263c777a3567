"""Speculative decoding's expected tokens per iteration, the one formula.

A draft proposes k tokens; the target verifies them in one step and keeps the accepted
prefix plus one token of its own. With each draft accepted independently with probability
alpha, the tokens an iteration yields have the expectation (Leviathan, Kalman & Matias 2023,
"Fast Inference from Transformers via Speculative Decoding", arXiv:2211.17192, eq. 1)

    E[tokens] = (1 - alpha^(k+1)) / (1 - alpha),   alpha in [0, 1)

(k + 1 as alpha -> 1). `expected_tokens` is it in plain floats (the simulator reports it
beside what it samples); `expected_tokens_expr` is the sympy expression the report prints.
"""

from __future__ import annotations


def expected_tokens(alpha: float, k: int) -> float:
    """(1 - alpha^(k+1)) / (1 - alpha): expected tokens per speculative iteration."""
    if alpha >= 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def expected_tokens_expr():
    """The same expression in the symbols alpha and k (`simkit.costs.symbols`)."""
    from simkit.costs import symbols as S

    return (1 - S.alpha_s ** (S.k_s + 1)) / (1 - S.alpha_s)
