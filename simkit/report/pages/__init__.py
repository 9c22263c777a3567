"""The report's sections, one module per section: each holds its page's data gatherer
(plain data from the layers below: cost model, simulator, planner, sweeps) beside the
function that draws it (`Figure`s without pyplot). Shared layout lives in
`simkit.report.layout`, number formats and words in `simkit.report.formats`.
"""

from __future__ import annotations

from typing import Callable, Optional

#: a status-line callback the gatherers call before slow work (None: silent)
Progress = Optional[Callable[[str], None]]


def say(progress: Progress, text: str) -> None:
    if progress is not None:
        progress(text)
