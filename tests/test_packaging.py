"""What `pip install .` ships: every data file the package reads at run time is named by
`[tool.setuptools.package-data]`, so an installed simkit (not only the source tree the tests
import) finds its engine profiles and measurements. A file left out installs silently and
fails at run time (`simkit report` on a fresh machine: "unknown engine 'vllm'")."""

from __future__ import annotations

import tomllib


def _shipped(repo_root) -> tuple[list[str], dict[str, set]]:
    """The package's data files, and what each package-data glob selects (setuptools
    globs them relative to the package directory, as pathlib does)."""
    cfg = tomllib.loads((repo_root / "pyproject.toml").read_text())
    pkg = repo_root / "simkit"
    data = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc")
                  and "__pycache__" not in p.parts)
    by_pattern = {pat: {p.relative_to(pkg).as_posix() for p in pkg.glob(pat)}
                  for pat in cfg["tool"]["setuptools"]["package-data"]["simkit"]}
    return data, by_pattern


def test_every_data_file_in_the_package_is_shipped(repo_root):
    from simkit.costs.engine import ENGINE_DIR

    data, by_pattern = _shipped(repo_root)
    # the engine profiles are data files inside the package (where the loader looks)
    profiles = {p.relative_to(repo_root / "simkit").as_posix() for p in ENGINE_DIR.glob("*.toml")}
    assert {"data/engines/vllm.toml", "data/engines/tensorrt-llm.toml"} <= profiles <= set(data)
    shipped = set().union(*by_pattern.values())
    missing = [f for f in data if f not in shipped]
    assert not missing, f"not in package-data, so not installed: {missing}"
    # and every pattern ships something (a stale pattern hides a moved file)
    unused = [pat for pat, files in by_pattern.items() if not files]
    assert not unused, f"package-data patterns matching no file: {unused}"
