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
    # isoformat is several times faster than strftime, and ingest calls this per record.
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
