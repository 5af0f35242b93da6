"""Editing a user on another alias never touches the session of the admin doing it.

``update_session_auth_hash`` (called after an admin password change) compares users
by primary key: user 1 on ``second_db`` "is" the logged-in user 1 of ``default``, so
it would store the other row's hash and log the admin out on the next request. Around
a switched view of the user model on an alias other than the logged-in user's, the
session's auth hash is put back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.db import models
from django.http import HttpRequest


@contextmanager
def session_kept(request: HttpRequest, model: type[models.Model], alias: str) -> Iterator[None]:
    session = getattr(request, "session", None)
    user_db = getattr(getattr(request.user, "_state", None), "db", None)
    user_model = get_user_model()._meta.concrete_model
    if session is None or model._meta.concrete_model is not user_model or user_db in (None, alias):
        yield
        return
    before = session.get(HASH_SESSION_KEY)
    try:
        yield
    finally:
        if session.get(HASH_SESSION_KEY) != before:
            if before is None:
                session.pop(HASH_SESSION_KEY, None)
            else:
                session[HASH_SESSION_KEY] = before
