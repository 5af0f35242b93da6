"""The app's permissions. ``DatabaseHealth`` has no table: it only holds them.

Superusers have all of them. Staff without them see statuses only.
"""

from __future__ import annotations

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
