"""What one probe of one alias found: ``ProbeResult``, a frozen value every presenter reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

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
    def location(self) -> str:
        """host:port for servers, the file for SQLite."""
        if self.vendor == "sqlite" or not self.host:
            return self.name
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def age_seconds(self) -> float:
        return max(0.0, (datetime.now(UTC) - self.checked_at).total_seconds())
