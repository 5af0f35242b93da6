"""The app stands alone: it reads Django settings, never this project's config or the environment.

A site that installs ``dashboard`` has no ``config`` package, and its environment is
its own business; ``tests/adoption/`` proves the same at run time under other settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "dashboard"
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb"}


def app_modules() -> list[Path]:
    return sorted(path for path in APP.rglob("*.py") if "__pycache__" not in path.parts)


def _imports_config_by_name(call: ast.Call) -> bool:
    """``import_module("config.settings")``, ``__import__("config")``, ``import_string(...)``."""
    function = call.func.attr if isinstance(call.func, ast.Attribute) else None
    if isinstance(call.func, ast.Name):
        function = call.func.id
    if function not in {"import_module", "__import__", "import_string"} or not call.args:
        return False
    name = call.args[0]
    return (
        isinstance(name, ast.Constant)
        and isinstance(name.value, str)
        and name.value.split(".")[0] == "config"
    )


def coupling(tree: ast.AST) -> list[str]:
    """Imports of ``config`` and reads of the environment, as ``line: what``."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "config"
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            names = {alias.name for alias in node.names}
            if top == "config" or (node.module == "os" and names & ENVIRONMENT_NAMES):
                found.append(f"{node.lineno}: from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.Call) and _imports_config_by_name(node):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_app_has_modules_to_check() -> None:
    names = {path.name for path in app_modules()}

    assert {"probes.py", "sites.py", "conf.py", "views.py"} <= names


@pytest.mark.parametrize("module", app_modules(), ids=lambda path: str(path.relative_to(APP)))
def test_no_app_module_imports_config_or_reads_the_environment(module: Path) -> None:
    tree = ast.parse(module.read_text(), filename=str(module))

    assert coupling(tree) == []


@pytest.mark.parametrize(
    "source",
    [
        "import config.settings",
        "from config.env_databases import parse_database_url",
        "import os\nos.environ.get('X')",
        "import os\nos.getenv('X')",
        "from os import environ",
        "import importlib\nimportlib.import_module('config.settings')",
    ],
)
def test_the_check_catches_each_kind_of_coupling(source: str) -> None:
    assert coupling(ast.parse(source)) != []


def test_the_check_allows_what_the_app_does_use() -> None:
    source = "import os\nfrom django.conf import settings\nos.path.join('a', 'b')\nconfig = 1"

    assert coupling(ast.parse(source)) == []
