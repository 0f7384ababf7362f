"""UTC everywhere in storage and on the wire; one fixed text form in the databases.

The stored form (`2026-11-27T10:00:00.000000Z`) has a fixed width, so text order is
time order and SQL can compare and range over it directly.
"""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: times must carry a timezone")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
