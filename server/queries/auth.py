"""Admin accounts, console sessions and API tokens. Secrets are stored only as hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, text

from server.queries import in_county, new_id
from shared.timeutil import to_db

Role = Literal["admin", "viewer"]  # the CHECK on admins.role


@dataclass(frozen=True)
class AdminRow:
    """A console account: `role` is "admin" or "viewer"; `password_hash` is argon2."""

    id: str
    username: str
    password_hash: str
    role: Role
    county: str | None


@dataclass(frozen=True)
class Principal:
    """Who a live session or API token belongs to; `csrf_token` for sessions only."""

    admin_id: str
    username: str
    role: Role
    county: str | None  # None: the province's account (or the one county's)
    csrf_token: str | None = None


@dataclass(frozen=True)
class TokenRow:
    """An API token as listed (never its secret); times are RFC 3339 UTC text."""

    id: str
    name: str
    username: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class UnknownCounty(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(f"没有县 {code}：请先导入该县的乡镇 / no county {code}: import its townships first")


# User names compare without regard to ASCII case, as the SQLite column's NOCASE did.
_NAMED = "lower(username) = lower(:username)"
_NAME_TAKEN = text(f"SELECT 1 FROM admins WHERE {_NAMED}")
_CREATE_ADMIN = text(
    "INSERT INTO admins (id, username, password_hash, role, county_code, created_at, "
    "password_changed_at) VALUES (:id, :username, :password_hash, :role, :county, :now, :now) "
    "ON CONFLICT DO NOTHING"
)
_COUNTY = text("SELECT 1 FROM counties WHERE code = :code")
_ADMIN_ID = text(f"SELECT id FROM admins WHERE {_NAMED}")
_SET_PASSWORD = text(
    "UPDATE admins SET password_hash = :password_hash, password_changed_at = :now WHERE id = :id"
)
_END_SESSIONS = text("DELETE FROM admin_sessions WHERE admin_id = :id")
_FORGET_DEVICES = text("DELETE FROM known_devices WHERE admin_id = :id")
_ADMIN = text(f"SELECT id, username, password_hash, role, county_code FROM admins WHERE {_NAMED}")
_COUNT_ADMINS = text("SELECT COUNT(*) FROM admins")
_EXPIRE_SESSIONS = text("DELETE FROM admin_sessions WHERE expires_at < :now")
_CREATE_SESSION = text(
    "INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, expires_at) "
    "VALUES (:id_hash, :admin_id, :csrf, :now, :expires)"
)
_SESSION = text(
    "SELECT a.id, a.username, a.role, a.county_code, s.csrf_token FROM admin_sessions s "
    "JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = :id_hash AND s.expires_at > :now"
)
_DELETE_SESSION = text("DELETE FROM admin_sessions WHERE id_hash = :id_hash")
_CREATE_TOKEN = text(
    "INSERT INTO api_tokens (id, admin_id, name, token_hash, created_at) "
    "VALUES (:id, :admin_id, :name, :token_hash, :now)"
)
_TOKEN = text(
    "SELECT a.id, a.username, a.role, a.county_code FROM api_tokens t "
    "JOIN admins a ON a.id = t.admin_id WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL"
)
_TOKENS = text(
    "SELECT t.id, t.name, a.username, t.created_at, t.last_used_at, t.revoked_at "
    f"FROM api_tokens t JOIN admins a ON a.id = t.admin_id WHERE {in_county('a.county_code')} "
    "ORDER BY t.created_at, t.id"
)
_REVOKE_TOKEN = text(
    "UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL AND admin_id IN "
    f"(SELECT a.id FROM admins a WHERE {in_county('a.county_code')})"
)


def county_known(conn: Connection, code: str) -> bool:
    return conn.execute(_COUNTY, {"code": code}).first() is not None


def create_admin(conn: Connection, username: str, password_hash: str, role: str,
                 now: datetime, county: str | None = None) -> str | None:
    """A new account, of one county (`county`, its code) or of the whole province (None);
    None if the name is taken (in any ASCII case). Raises UnknownCounty."""
    if conn.execute(_NAME_TAKEN, {"username": username}).first() is not None:
        return None
    if county is not None and not county_known(conn, county):
        raise UnknownCounty(county)
    admin_id = new_id()
    cur = conn.execute(_CREATE_ADMIN, {"id": admin_id, "username": username,
                                       "password_hash": password_hash, "role": role,
                                       "county": county, "now": to_db(now)})
    return admin_id if cur.rowcount == 1 else None


def set_password(conn: Connection, username: str, password_hash: str, now: datetime) -> bool:
    """Change a password; end every session of that account and forget its known devices."""
    admin_id = conn.execute(_ADMIN_ID, {"username": username}).scalar()
    if admin_id is None:
        return False
    conn.execute(_SET_PASSWORD, {"password_hash": password_hash, "now": to_db(now), "id": admin_id})
    conn.execute(_END_SESSIONS, {"id": admin_id})
    conn.execute(_FORGET_DEVICES, {"id": admin_id})
    return True


def admin_by_name(conn: Connection, username: str) -> AdminRow | None:
    row = conn.execute(_ADMIN, {"username": username}).first()
    return None if row is None else AdminRow(*row)


def count_admins(conn: Connection) -> int:
    return int(conn.execute(_COUNT_ADMINS).scalar_one())


def create_session(conn: Connection, id_hash: str, admin_id: str, csrf: str,
                   now: datetime, expires: datetime) -> None:
    conn.execute(_EXPIRE_SESSIONS, {"now": to_db(now)})
    conn.execute(_CREATE_SESSION, {"id_hash": id_hash, "admin_id": admin_id, "csrf": csrf,
                                   "now": to_db(now), "expires": to_db(expires)})


def session(conn: Connection, id_hash: str, now: datetime) -> Principal | None:
    row = conn.execute(_SESSION, {"id_hash": id_hash, "now": to_db(now)}).first()
    return None if row is None else Principal(*row)


def delete_session(conn: Connection, id_hash: str) -> None:
    conn.execute(_DELETE_SESSION, {"id_hash": id_hash})


def create_token(conn: Connection, admin_id: str, name: str, token_hash: str,
                 now: datetime) -> str:
    token_id = new_id()
    conn.execute(_CREATE_TOKEN, {"id": token_id, "admin_id": admin_id, "name": name,
                                 "token_hash": token_hash, "now": to_db(now)})
    return token_id


def token(conn: Connection, token_hash: str) -> Principal | None:
    """The account of a live (not revoked) API token."""
    row = conn.execute(_TOKEN, {"token_hash": token_hash}).first()
    return None if row is None else Principal(*row)


def list_tokens(conn: Connection, county: str | None = None) -> list[TokenRow]:
    """The API tokens of every account (`county` None), or of `county`'s accounts."""
    return [TokenRow(*r) for r in conn.execute(_TOKENS, {"county": county})]


def revoke_token(conn: Connection, token_id: str, now: datetime,
                 county: str | None = None) -> bool:
    """Revoke a live token (of one of `county`'s accounts, when given); False if there
    is no such token."""
    return conn.execute(_REVOKE_TOKEN, {"now": to_db(now), "id": token_id,
                                        "county": county}).rowcount == 1
