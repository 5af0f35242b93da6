from __future__ import annotations

import re
from pathlib import Path

APP_STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static" / "dashboard"


def test_vendored_htmx_version_matches_the_documented_one() -> None:
    bundled = re.search(r'version:"([0-9.]+)"', (APP_STATIC / "htmx.min.js").read_text())
    documented = re.search(
        r"\| htmx\.min\.js \| .*? \| ([0-9.]+) \|", (APP_STATIC / "VENDORED.md").read_text()
    )

    assert bundled and documented
    assert bundled.group(1) == documented.group(1)


def test_no_page_loads_code_from_a_cdn() -> None:
    root = APP_STATIC.parent.parent
    templates = list((root / "templates").rglob("*.html")) + list(
        (root.parent / "templates").rglob("*.html")
    )
    for template in templates:
        assert not re.search(r"unpkg\.com|jsdelivr|cdnjs", template.read_text()), template
