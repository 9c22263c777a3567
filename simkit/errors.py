"""The one exception type that means "the user's input is wrong".

The CLI turns a `SimkitError` into one line on stderr and exit status 2; anything else is a
bug and keeps its traceback. Messages name the key path or option and what is wrong, e.g.
``workload.arrival.rate: must be > 0, got -3``.
"""


class SimkitError(ValueError):
    """Bad user input: a wrong key, value, option, file or name. Exit status 2."""

    def __init__(self, message: str, *more: str):
        self.messages = (message, *more)
        super().__init__("; ".join(self.messages))


class SimkitWarning(UserWarning):
    """Something the user should know that does not stop the run: a what-if beyond the
    model's trained context, a window that covers the whole context. The CLI prints each
    distinct one once, as one line on stderr."""


def what_if(what: str, context: int, model_name: str) -> None:
    """Warn once that a length is a what-if beyond the deployed context (never refuse it:
    "what would 30,000-token contracts cost on Mistral-7B's window?" is a real question)."""
    import warnings

    warnings.warn(SimkitWarning(
        f"{what} is beyond {model_name}'s {context}-token context: a what-if (set "
        "model.max_context / --max-context to the deployed context to silence this)"))
