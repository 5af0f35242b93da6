"""What one probe of one alias found: ``ProbeResult``, a frozen value every presenter reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from dashboard import vendors

Status = Literal["up", "down", "timeout"]


@dataclass(frozen=True)
class ProbeResult:
    alias: str
    vendor: str
    engine: str
    host: str | None
    port: int | None
    name: str
    status: Status
    connect_ms: float | None = None
    query_ms: float | None = None
    total_ms: float | None = None
    server_version: str | None = None
    error_type: str | None = None
    error: str | None = None
    # Whether the alias refuses writes (a standby, a read-only default); None: unknown.
    read_only: bool | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ok", self.status == "up")

    @property
    def latency_ms(self) -> float | None:
        """Connect plus query: what an application feels opening a connection."""
        if self.connect_ms is None or self.query_ms is None:
            return None
        return self.connect_ms + self.query_ms

    @property
    def is_file(self) -> bool:
        """The alias is a file of its own (SQLite), not a database on a server."""
        return vendors.is_file(self.vendor)

    @property
    def location(self) -> str:
        """host:port for servers, the file for SQLite."""
        return location_text(self.vendor, self.host, self.port, self.name)

    @property
    def server(self) -> str:
        """The server whose connection budget the alias spends (see ``server_key``)."""
        return server_key(self.vendor, self.host, self.port, self.name)

    @property
    def age_seconds(self) -> float:
        return max(0.0, (datetime.now(UTC) - self.checked_at).total_seconds())


def location_text(vendor: str, host: str | None, port: int | str | None, name: str) -> str:
    """Where an alias is: ``host:port`` of its server, or its file's path."""
    if vendors.is_file(vendor) or not host:
        return name
    return f"{host}:{port}" if port else host


def server_key(vendor: str, host: str | None, port: int | str | None, name: str) -> str:
    """Aliases on one server share its connection budget: vendor + host + port.

    Each file (SQLite) is a server of its own."""
    if vendors.is_file(vendor):
        return f"{vendor}:{os.path.abspath(name) if name else ''}"
    return f"{vendor}:{host or 'local'}:{port or ''}"
