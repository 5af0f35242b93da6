"""A Django backend dbhealth has no vendor module for: SQLite under another vendor name."""

from __future__ import annotations

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    vendor = "tinysql"
