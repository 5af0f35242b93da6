"""The admin log of switched objects: which alias each entry is about, and only real writes.

Every entry gets a ``LogEntryAlias`` beside it, so History on an alias lists only the
entries about the object on that alias, and "Recent actions" links open that alias.

An entry is written only if the write it records commits. Where the object and the
log share a database the entry is written at once, inside the transaction the
switched view holds around the write, and rolls back with it. Where they do not,
it is written when the object's transaction commits (``on_commit``), so a write the
server refuses leaves no "Deleted from ro." behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.models import Q
from django.urls import NoReverseMatch
from django.utils.http import urlencode

from dashboard.aliases import ALIAS_VAR, allowed_aliases, home_alias
from dashboard.models import LogEntryAlias
from dashboard.switching.links import switched_model


def object_alias(obj: models.Model) -> str:
    return obj._state.db or DEFAULT_DB_ALIAS


def log_actions(
    user_id: Any, objects: Iterable[models.Model], action_flag: int, message: Any
) -> list[LogEntry]:
    """Log ``objects`` (all on one alias) once their write commits; entries are returned unsaved
    when they wait for that commit."""
    objects = list(objects)
    if not objects:
        return []
    alias = object_alias(objects[0])
    text = json.dumps(message) if isinstance(message, list) else message
    # Read now: a deleted object has lost its pk by the time its deletion commits.
    entries = [
        LogEntry(
            user_id=user_id,
            content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=action_flag,
            change_message=text,
        )
        for obj in objects
    ]
    log_db = router.db_for_write(LogEntry)

    def write() -> None:
        with transaction.atomic(using=log_db):
            if connections[log_db].features.can_return_rows_from_bulk_insert:
                LogEntry.objects.using(log_db).bulk_create(entries)
            else:  # each entry needs its id for the row beside it
                for entry in entries:
                    entry.save(using=log_db)
            LogEntryAlias.objects.using(log_db).bulk_create(
                LogEntryAlias(entry=entry, alias=alias) for entry in entries
            )

    if alias == log_db:
        write()
    else:
        transaction.on_commit(write, using=alias, robust=True)
    return entries


def about_alias(
    entries: models.QuerySet[LogEntry], alias: str, home: str
) -> models.QuerySet[LogEntry]:
    """The entries about objects on ``alias``; entries written before the app count as ``home``."""
    on_alias = Q(dbhealth_alias__alias=alias)
    if alias == home:
        on_alias |= Q(dbhealth_alias__isnull=True)
    return entries.filter(on_alias)


def recent_actions(user_id: Any, limit: int) -> list[LogEntry]:
    """The user's latest entries, as the admin index lists them, with their aliases."""
    entries = (
        LogEntry.objects.filter(user_id=user_id)
        .select_related("content_type", "user", "dbhealth_alias")
        .order_by("-action_time")[:limit]
    )
    return list(entries)


def admin_url(entry: LogEntry) -> str | None:
    """The entry's object page, on the alias the object lives on."""
    try:
        url = entry.get_admin_url()
    except NoReverseMatch:
        return None
    if not url:
        return None
    model = switched_model(url.split("?", 1)[0])
    if model is None:
        return url
    try:
        alias = entry.dbhealth_alias.alias
    except LogEntryAlias.DoesNotExist:
        alias = home_alias(model, allowed_aliases(model))
    return f"{url}{'&' if '?' in url else '?'}{urlencode({ALIAS_VAR: alias})}"
