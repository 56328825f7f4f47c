"""The import contracts in pyproject.toml cover every module they are meant to, including ones added later."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import pytest

import renkei

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# One library, one module: everything else in the package must be a source module of the contract.
ONE_MODULE = {"jose": "renkei.auth.tokens", "passlib": "renkei.auth.passwords"}


def _contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text("utf-8"))["tool"]["importlinter"]["contracts"]


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(renkei.__path__, prefix="renkei."))


def _covered(module: str, sources: list[str]) -> bool:
    return any(module == s or module.startswith(s + ".") for s in sources)


@pytest.mark.parametrize(("library", "home"), sorted(ONE_MODULE.items()))
def test_every_module_but_its_home_is_forbidden_to_import_the_library(library, home):
    [contract] = [c for c in _contracts() if c.get("forbidden_modules") == [library]]
    sources = contract["source_modules"]
    assert not _covered(home, sources), f"{home} is where {library} belongs"
    # A package's own __init__ is covered only by naming the package, which would cover `home` too: keep it
    # empty of code instead.
    parents = {home.rsplit(".", 1)[0]}
    missing = [m for m in _modules() if m != home and m not in parents and not _covered(m, sources)]
    assert missing == [], f"add these to the contract '{contract['name']}': {missing}"
    for parent in parents:
        init = Path(renkei.__path__[0]).joinpath(*parent.split(".")[1:], "__init__.py")
        lines = init.read_text("utf-8").splitlines()
        code = [line for line in lines if line.strip() and not line.startswith('"""')]
        assert code == [], f"{init} should hold no code"
