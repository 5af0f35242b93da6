"""The README's "Settings reference" lists every DBHEALTH key with its default, and every check."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dashboard import checks
from dashboard.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def reference_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Settings reference\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


def documented_defaults() -> dict[str, object]:
    """``| `KEY` | `default` | ... |`` rows of the settings table."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", reference_section(), re.MULTILINE)
    return {key: ast.literal_eval(default) for key, default in rows}


def test_every_setting_is_documented_with_its_default() -> None:
    assert documented_defaults() == DEFAULTS


def test_every_system_check_id_is_documented() -> None:
    emitted = set(re.findall(r'id="(dbhealth\.[EW]\d{3})"', Path(checks.__file__).read_text()))
    documented = set(re.findall(r"^\| `(dbhealth\.[EW]\d{3})` \|", reference_section(), re.M))

    assert emitted
    assert documented == emitted
