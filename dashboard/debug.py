"""An exception reporter filter for Django's error pages and error e-mails.

Django's own filter hides settings by name (``PASSWORD``, ``TOKEN``...), but not a
database URL in an environment variable (``request.META`` under runserver holds the
whole environment), in a setting named ``*_URL``, or in a traceback frame's variables
(the driver's connection arguments carry the password). This one hides those values too.

``DEFAULT_EXCEPTION_REPORTER_FILTER = "dashboard.debug.SafeExceptionReporterFilter"``
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.defaultfilters import pprint
from django.views import debug

from dashboard.redact import redact, site_secrets


class _Redacted:
    """A frame variable shown as its redacted representation."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SafeExceptionReporterFilter(debug.SafeExceptionReporterFilter):
    def cleanse_setting(self, key: Any, value: Any) -> Any:
        # Also called for every request.META and COOKIES entry, and for each item of a
        # dict, list or tuple setting.
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return redact(cleansed)
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        secrets = site_secrets()
        variables = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            shown = pprint(value)
            hidden = redact(shown, secrets)
            variables.append((name, value if hidden == shown else _Redacted(hidden)))
        return variables
