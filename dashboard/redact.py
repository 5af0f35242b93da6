"""Remove secrets from text a person may read: one-line error messages (``clean_message``)
and text bound for a log or an error page (``redact``, ``RedactingFilter``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

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


SUBSTITUTE = "***"


def site_secrets() -> tuple[str, ...]:
    """Every secret value the settings hold that a page or log line must never show."""
    found: list[object] = [getattr(settings, "SECRET_KEY", "")]
    for database in getattr(settings, "DATABASES", {}).values():
        options = database.get("OPTIONS") or {}
        found += [database.get("PASSWORD"), options.get("password"), options.get("passwd")]
    dbhealth = getattr(settings, "DBHEALTH", {})
    if isinstance(dbhealth, dict):
        found.append(dbhealth.get("TOKEN"))
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted({str(value) for value in found if value}, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with secrets, URL credentials and ``password=`` values replaced."""
    for secret in site_secrets() if secrets is None else secrets:
        text = text.replace(secret, SUBSTITUTE)
    text = _URL_CREDENTIALS.sub(rf"\1:{SUBSTITUTE}@", text)
    return _KEY_VALUE_SECRET.sub(rf"\1={SUBSTITUTE}", text)


class RedactingFilter(logging.Filter):
    """A logging filter (for handlers) that redacts the message and the traceback.

    The traceback is formatted here, redacted, and left in ``exc_text``, which every
    ``logging.Formatter`` prints instead of formatting the exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = site_secrets()
        try:
            message = record.getMessage()
        except Exception:  # a format string that does not match its arguments
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True
