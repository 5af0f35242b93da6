"""Template helpers for switched admin pages: "Recent actions" that open the right alias."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.admin.models import LogEntry

from dashboard.switching import log

register = template.Library()


@register.simple_tag
def dbhealth_recent_actions(user: Any, limit: int = 10) -> list[LogEntry]:
    """``{% dbhealth_recent_actions user 10 as entries %}``: the user's latest log entries."""
    return log.recent_actions(user.pk, limit)


@register.filter
def dbhealth_admin_url(entry: LogEntry) -> str | None:
    """The entry's object page with ``?_db=`` naming the alias the object lives on."""
    return log.admin_url(entry)
