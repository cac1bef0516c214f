"""The package declares what it imports, so `pip install -e .` on a fresh machine works."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _installed_closure(requirements: list[str]) -> set[str]:
    """The declared distributions and, as installed here, everything they require."""
    todo, closure = [_name(r) for r in requirements], set()
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r.replace("extra==", "extra ==")]
    return closure


def _imported_modules(folder: Path) -> dict[str, str]:
    """Top-level modules imported anywhere in folder -> one file that imports it."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     and node.module else [])
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_of_the_package_is_a_declared_dependency():
    # A module that is only installed here by chance (another project's dependency)
    # is missing in a fresh virtual environment: SendGrid webhooks then failed with 500
    # and the tests importing it could not even be collected.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    provided = _installed_closure(project["dependencies"])
    distributions = md.packages_distributions()
    undeclared = {
        module: where for module, where in _imported_modules(REPO / "mailer").items()
        if module not in sys.stdlib_module_names and module != "mailer"
        and not {_name(d) for d in distributions.get(module, [module])} & provided
    }
    assert undeclared == {}
