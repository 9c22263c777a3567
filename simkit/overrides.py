"""`--set KEY=VALUE`: one-off what-ifs on a scenario file from the command line.

KEY is a dotted scenario key: `workload.arrival.rate`, `serving.max_batch`, `plan.target_qps`,
a whole table (`workload.arrival`), or a grid key under `sweep.` / `plan.search.` (the rest
of the key is the swept setting: `sweep.workload.arrival.rate=[1, 2, 4]`). Parts may be
quoted as in TOML (`sweep."workload.arrival.rate"`).

VALUE is a TOML value -- `8`, `0.5`, `true`, `"text"`, `[1, 2]`,
`{ process = "gamma", rate = 2, cv = 2 }` -- parsed by `tomllib` as the right-hand side of
`v = VALUE`; a bare word that is not TOML (`chunked`, `llama-3-8b`, `models/x.json`) is taken
as a string. Nothing is evaluated. A relative file path in a key that names a file (a model
or hardware path, an engine file, a trace or lengths CSV) is taken relative to the current
folder, as every path on the command line is (a path inside the scenario file is relative to
the file's folder).

The values are written into the parsed file before it is validated, so each one is checked
exactly like the file's own keys: an unknown key, a value the key cannot take, a combination
that cannot run -- one line each, naming `--set KEY`. Later `--set`s of a key win.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

from simkit.errors import SimkitError

_SEGMENT = r'(?:[A-Za-z0-9_-]+|"[^"\\\n]*")'
_KEY = re.compile(rf"\s*{_SEGMENT}(?:\s*\.\s*{_SEGMENT})*\s*")
_PART = re.compile(_SEGMENT)
#: a bare word: no spaces, quotes, brackets, braces, '=', ',' or '#' (anything TOML would
#: read as structure); it is a string
_BARE = re.compile(r"[^\s\"'\[\]{}=,#]+")
#: settings whose value names a file (the rest of the key names the file too: `*.path`)
_FILE_KEYS = ("model.name", "hardware.name", "hardware.engine")
_FILE_SUFFIXES = (".json", ".toml", ".csv")
_GRIDS = (("sweep",), ("plan", "search"))


def parse_set(text: str) -> tuple[tuple[str, ...], Any]:
    """(key parts, value) of one `KEY=VALUE`; `SimkitError` naming `--set` when malformed."""
    if "\n" in text or "\r" in text:
        raise SimkitError(f"--set: expected KEY=VALUE on one line, got {text!r}")
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise SimkitError(f"--set: expected KEY=VALUE (e.g. workload.arrival.rate=8), got "
                          f"{text!r}")
    if not _KEY.fullmatch(key):
        raise SimkitError(f"--set {key.strip()}: not a dotted scenario key (parts of letters, "
                          "digits, '_' and '-', or quoted, joined by '.')")
    parts = tuple(p[1:-1] if p.startswith('"') else p for p in _PART.findall(key))
    shown = display_key(parts)
    raw = raw.strip()
    if not raw:
        raise SimkitError(f"--set {shown}: no value after '=' (quote an empty string: "
                          f"{shown}=\"\")")
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError as e:
        if _BARE.fullmatch(raw):
            return parts, raw  # a bare word is a string
        why = re.sub(r"\s*\(at (line \d+, )?(column \d+|end of document)\)", "", str(e))
        raise SimkitError(f"--set {shown}: {raw!r} is not a TOML value ({why}); quote text "
                          "as \"...\"") from None
    if set(parsed) != {"v"}:
        raise SimkitError(f"--set {shown}: {raw!r} is not one TOML value")
    return parts, parsed["v"]


def display_key(parts: Iterable[str]) -> str:
    """The key as the loader names it: grid keys quoted (`sweep."workload.arrival.rate"`)."""
    parts = tuple(parts)
    for grid in _GRIDS:
        n = len(grid)
        if parts[:n] == grid and len(parts) > n:
            return ".".join(grid) + "." + '"' + ".".join(parts[n:]) + '"'
    return ".".join(parts)


def apply_sets(data: dict[str, Any], sets: Iterable[str], cwd: str | Path | None = None
               ) -> tuple[dict[str, Any], list[str]]:
    """`data` (a parsed scenario table, changed in place) with every `KEY=VALUE` of `sets`
    written in, and the keys as the loader names them (for `owns`)."""
    from simkit.scenario import _flatten_sweep

    cwd = Path.cwd() if cwd is None else Path(cwd)
    keys = []
    for text in sets:
        parts, value = parse_set(text)
        shown = display_key(parts)
        value = _file_value(parts, value, cwd)
        for grid in _GRIDS:
            n = len(grid)
            if parts[:n] == grid and len(parts) > n:
                # one grid key, replacing the file's own however the file spelt it
                table = _table(data, grid, shown)
                flat = _flatten_sweep(table)
                flat[".".join(parts[n:])] = value
                table.clear()
                table.update(flat)
                break
        else:
            _table(data, parts[:-1], shown)[parts[-1]] = value
        keys.append(shown)
    return data, keys


def _table(data: dict[str, Any], parts: tuple[str, ...], shown: str) -> dict[str, Any]:
    cur = data
    for i, p in enumerate(parts):
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        elif not isinstance(nxt, dict):
            raise SimkitError(f"--set {shown}: {'.'.join(parts[:i + 1])} is a setting, not a "
                              "table")
        cur = nxt
    return cur


def _file_value(parts: tuple[str, ...], value: Any, cwd: Path) -> Any:
    """A relative file path in a file-naming key, made absolute against the current folder."""
    key = ".".join(parts)
    if not isinstance(value, str) or not (key in _FILE_KEYS or parts[-1] == "path"):
        return value
    looks_like_file = "/" in value or "\\" in value or value.endswith(_FILE_SUFFIXES)
    p = Path(value).expanduser()
    if not looks_like_file or p.is_absolute():
        return value
    return str((cwd / p).resolve())


def owns(message: str, keys: Iterable[str]) -> bool:
    """Whether a loader message is about one of the `--set` keys (its key path is the key or
    below it)."""
    path = message.split(": ", 1)[0]
    return any(path == k or path.startswith((k + ".", k + "[")) for k in keys)
