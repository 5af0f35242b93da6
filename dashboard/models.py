"""The app's models: ``DatabaseHealth`` (no table: it only holds permissions), ``LogEntryAlias``.

Superusers have every permission; staff without them see statuses only.
"""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.db import models


class DatabaseHealth(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_details", "Can see hosts, versions, errors and activity of database aliases"),
            ("ping_alias", "Can ping a database alias now"),
            ("cancel_session", "Can cancel queries and terminate sessions on database servers"),
        ]
        verbose_name = "database health"
        verbose_name_plural = "database health"

    def __str__(self) -> str:
        return "database health"


class LogEntryAlias(models.Model):
    """The database alias of the object an admin ``LogEntry`` is about.

    ``LogEntry`` keeps only the object's id, and with one table on several aliases
    "Customer 1" names several rows. This companion row, kept in the same database as
    its entry, says which; Django's own table stays as it is. An entry without one is
    about an object on its model's home alias (``default`` unless the model is pinned).
    """

    entry = models.OneToOneField(
        LogEntry, on_delete=models.CASCADE, primary_key=True, related_name="dbhealth_alias"
    )
    alias = models.CharField(max_length=100)

    class Meta:
        verbose_name = "log entry alias"
        verbose_name_plural = "log entry aliases"

    def __str__(self) -> str:
        return f"{self.entry_id} on {self.alias}"
