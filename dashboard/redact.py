"""Error text a person may read: one line, with passwords and URL credentials removed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_KEY_VALUE_SECRET = re.compile(r"\b(password|passwd|pwd)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)", re.I)
MAX_LENGTH = 500


def clean_message(message: str, secrets: Iterable[str] = ()) -> str:
    """One readable line with passwords and URL credentials removed."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = _URL_CREDENTIALS.sub(r"\1:***@", message)
    message = _KEY_VALUE_SECRET.sub(r"\1=***", message)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " ".join(lines)
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 3] + "..."


def secrets_of(settings_dict: dict[str, Any]) -> tuple[str, ...]:
    """The passwords an alias's settings hold (PASSWORD, and the drivers' option names)."""
    options = settings_dict.get("OPTIONS") or {}
    values = [settings_dict.get("PASSWORD"), options.get("password"), options.get("passwd")]
    return tuple(str(value) for value in values if value)


def error_text(error: BaseException) -> str:
    """The driver's message; mysqlclient's (code, message) tuples as "(code) message"."""
    if len(error.args) == 2 and isinstance(error.args[0], int):
        return f"({error.args[0]}) {error.args[1]}"
    return str(error) or type(error).__name__


def error_type(error: BaseException) -> str:
    """``psycopg.OperationalError``; builtins without a package name."""
    package = type(error).__module__.split(".")[0]
    name = type(error).__name__
    return name if package == "builtins" else f"{package}.{name}"
