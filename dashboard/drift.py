"""Migrations drift: how many migrations ``migrate --database <alias>`` still has to apply.

Read-only. The migrations on disk come from Django's ``MigrationLoader`` (built once
per process, without a connection); the applied ones are read from the alias's
``django_migrations`` table on the probe's own connection when a probe is being made
(an *extra*, see ``dashboard.probes``), else on a fresh bounded connection from the
probe scheduler; never through the application's own connection, which would wait for
a dead server without a bound. Only apps the router allows on the alias count, and
squashed migrations count the way ``migrate`` sees them.

Aliases whose probe is not up are not checked at all. Every answer, "unknown" ones
included, is cached for ``CACHE_SECONDS``: an open page does not re-dial an alias on
each poll.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from django.apps import apps
from django.conf import settings
from django.db import router
from django.db.migrations.loader import MigrationLoader

from dashboard import probes, sharedcache
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.probes import ProbeResult
from dashboard.vendors import Vendor

# Migrations change with deployments, not by the second: the page's polls reuse a check.
CACHE_SECONDS = 60

# Django's own table of applied migrations (MigrationRecorder); its name never changes.
# Whether it exists is the vendor's query (``Vendor.migrations_table_sql``): a missing
# table means nothing was applied.
APPLIED_SQL = "SELECT app, name FROM django_migrations"

State = Literal["current", "behind", "unknown", "none"]
Key = tuple[str, str]


@dataclass(frozen=True)
class Drift:
    alias: str
    state: State
    # Unapplied migrations as "app.name", in graph order where it has one.
    unapplied: tuple[str, ...] = ()
    error: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def count(self) -> int | None:
        return len(self.unapplied) if self.state in ("current", "behind") else None

    @property
    def text(self) -> str:
        if self.state == "current":
            return "up to date"
        if self.state == "behind":
            return f"{len(self.unapplied)} unapplied"
        if self.state == "none":
            return "no migrated app allowed here"
        return f"unknown ({self.error})"

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "unapplied": self.count,
            "pending": list(self.unapplied),
            "error": self.error,
            "time": self.checked_at.isoformat(),
        }


# --- the migrations on disk -------------------------------------------------------------------

_disk_lock = threading.Lock()
_disk: dict[Any, dict[Key, Any]] = {}


def _on_disk() -> dict[Key, Any]:
    """Every migration on disk (squashed and replaced ones alike), in graph order."""
    identity = (tuple(apps.app_configs), repr(sorted(settings.MIGRATION_MODULES.items())))
    with _disk_lock:
        if identity not in _disk:
            # Loading imports (and reloads) migration modules: once per process is enough.
            loader = MigrationLoader(None, ignore_no_migrations=True)
            ordered = {
                key: loader.disk_migrations[key]
                for leaf in loader.graph.leaf_nodes()
                for key in loader.graph.forwards_plan(leaf)
                if key in loader.disk_migrations
            }
            _disk.clear()
            _disk[identity] = {**ordered, **loader.disk_migrations}
        return _disk[identity]


def allowed_apps(alias: str) -> set[str]:
    """Apps the routers let ``migrate`` touch on ``alias`` (any of their models, or the app)."""
    allowed = set()
    for app_config in apps.get_app_configs():
        label = app_config.label
        models = list(app_config.get_models(include_auto_created=True))
        if models:
            permitted = any(
                router.allow_migrate(alias, label, model_name=model._meta.model_name, model=model)
                for model in models
            )
        else:
            permitted = router.allow_migrate(alias, label)
        if permitted:
            allowed.add(label)
    return allowed


def unapplied(disk: dict[Key, Any], applied: set[Key], app_labels: set[str]) -> list[Key]:
    """What ``migrate`` would still apply, resolving squashed migrations as Django does.

    A squash counts as applied when all it replaces is; when none of that is applied the
    squash is one migration to apply; when some is, the rest of the replaced ones are.
    """
    pending: list[Key] = []
    replaced_by: dict[Key, Key] = {}
    for key, migration in disk.items():
        for replaced in migration.replaces or ():
            replaced_by[tuple(replaced)] = key
    for key, migration in disk.items():
        if key[0] not in app_labels or key in replaced_by:
            continue
        if not migration.replaces:
            if key not in applied:
                pending.append(key)
            continue
        replaced = [tuple(item) for item in migration.replaces]
        done = [item in applied for item in replaced]
        if not any(done):
            pending.append(key)
        elif not all(done):
            pending.extend(item for item, ok in zip(replaced, done, strict=True) if not ok)
    return pending


# --- the migrations applied on an alias -------------------------------------------------------


def _applied(connection: Any, table_exists_sql: str) -> set[Key]:
    cursor = connection.cursor()
    try:
        cursor.execute(table_exists_sql)
        row = cursor.fetchone()
        if not row or not row[0]:
            return set()
        cursor.execute(APPLIED_SQL)
        return {(str(app), str(name)) for app, name in cursor.fetchall()}
    finally:
        cursor.close()


def extra(alias: str, vendor: Vendor, connection: Any, deadline: Deadline) -> Drift:
    """The drift check of ``alias`` as work on an open connection; caches its answer."""
    found = _on_connection(alias, vendor, connection)
    _to_cache(found)
    return found


def _on_connection(alias: str, vendor: Vendor, connection: Any) -> Drift:
    app_labels = allowed_apps(alias)
    try:
        disk = _on_disk()
    except Exception as error:  # an inconsistent migration graph: migrate would fail too
        return Drift(alias, "unknown", error=f"migrations cannot be loaded: {error}")
    if not any(app in app_labels for app, _ in disk):
        return Drift(alias, "none")
    if vendor.migrations_table_sql is None:
        return Drift(alias, "unknown", error=f"not supported for {vendor.name}")
    try:
        applied = _applied(connection, vendor.migrations_table_sql)
    except Exception as error:
        return Drift(alias, "unknown", error=probes.error_text(alias, error))
    pending = tuple(f"{app}.{name}" for app, name in unapplied(disk, applied, app_labels))
    return Drift(alias, "behind" if pending else "current", pending)


def check(alias: str, *, timeout: float | None = None, deadline: Deadline | None = None) -> Drift:
    """The drift of ``alias`` now (uncached). Raises UnknownAlias for an unknown alias."""
    bound = deadline or Deadline.after(get_settings().timeout if timeout is None else timeout)
    future = probes.run_on_connection(alias, bound, extra)
    wait_futures([future], timeout=bound.remaining())
    return _outcome(alias, future, bound)


def _not_checked(result: ProbeResult) -> Drift:
    state = "did not answer" if result.status == "timeout" else "is down"
    return Drift(result.alias, "unknown", error=f"not checked: the alias {state}")


def for_results(
    results: Sequence[ProbeResult],
    *,
    deadline: Deadline | None = None,
    cached: bool = True,
    riding: Mapping[str, Future[Any] | None] | None = None,
) -> dict[str, Drift]:
    """Drift of every alias whose probe is up; the others are "unknown" without a check.

    Checks run concurrently on the probe scheduler (or on a probe's own connection: the
    futures in ``riding``) and together are bounded by ``deadline`` (default: one probe
    timeout from now): an alias not checked by then is "unknown ... not checked within
    T", and that is cached too. ``cached``: reuse a check up to ``CACHE_SECONDS`` old.
    """
    bound = deadline or Deadline.after(get_settings().timeout)
    up = [result.alias for result in results if result.ok]
    found = _from_cache(up) if cached else {}
    pending: dict[str, Future[Any]] = {}
    for alias in up:
        if alias in found:
            continue
        future = (riding or {}).get(alias)
        pending[alias] = future or probes.run_on_connection(alias, bound, extra)
    wait_futures(pending.values(), timeout=bound.remaining())
    drifts: dict[str, Drift] = {}
    for result in results:
        alias = result.alias
        if not result.ok:
            drifts[alias] = _not_checked(result)
        elif alias in found:
            drifts[alias] = found[alias]
        else:
            drifts[alias] = _outcome(alias, pending[alias], bound)
    return drifts


def _outcome(alias: str, future: Future[Any], deadline: Deadline) -> Drift:
    if not future.done():
        late = Drift(alias, "unknown", error=f"not checked within {deadline.budget_text}")
        _to_cache(late)  # the check's own answer replaces it when it comes
        return late
    error = future.exception()
    if error is None:
        answer = future.result()
        if isinstance(answer, Drift):
            return answer
        error = TypeError("the drift check gave no answer")
    failed = Drift(alias, "unknown", error=probes.error_text(alias, error))
    _to_cache(failed)
    return failed


def cached(aliases: Iterable[str]) -> dict[str, Drift]:
    """The checks made within ``CACHE_SECONDS`` (by the page or the command); never checks."""
    return _from_cache(aliases)


def problems(drifts: Iterable[Drift]) -> list[str]:
    """``second_db: 2 unapplied migrations`` for each alias that is behind."""
    return [
        f"{d.alias}: {len(d.unapplied)} unapplied migration{'s' if len(d.unapplied) > 1 else ''}"
        for d in drifts
        if d.state == "behind"
    ]


def _cache_key(alias: str) -> str:
    # The alias's address is part of the key: an alias pointed at a new server starts afresh.
    return sharedcache.key("drift", alias, fingerprint(alias))


def _from_cache(aliases: Iterable[str]) -> dict[str, Drift]:
    keys = {_cache_key(alias): alias for alias in aliases}
    found = sharedcache.get_many(keys)
    return {keys[key]: drift for key, drift in found.items() if isinstance(drift, Drift)}


def _to_cache(drift: Drift) -> None:
    sharedcache.set(_cache_key(drift.alias), drift, CACHE_SECONDS)
