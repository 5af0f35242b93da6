"""Remove the site's secrets from text bound for a log or an error page.

``site_secrets()`` are the values to hide (database passwords, the dbhealth token, the
secret key); ``redact()`` also removes credentials from URLs and ``password=...`` pairs,
so a secret the settings do not know about (a cache URL's, say) is hidden too.
``RedactingFilter`` applies both to every log record, traceback included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from django.conf import settings

SUBSTITUTE = "***"

_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_KEY_VALUE_SECRET = re.compile(r"\b(password|passwd|pwd)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)", re.I)


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
