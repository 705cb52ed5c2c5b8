"""The one clock: aware UTC datetimes, the form every timestamp is stored and compared in."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
