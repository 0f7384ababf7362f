"""Admin accounts, console sessions and API tokens. Secrets are stored only as hashes."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from server.queries import new_id
from shared.timeutil import to_db

Role = Literal["admin", "viewer"]  # the CHECK on admins.role


@dataclass(frozen=True)
class AdminRow:
    """A console account: `role` is "admin" or "viewer"; `password_hash` is argon2."""

    id: str
    username: str
    password_hash: str
    role: Role


@dataclass(frozen=True)
class Principal:
    """Who a live session or API token belongs to; `csrf_token` for sessions only."""

    admin_id: str
    username: str
    role: Role
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


def create_admin(conn: sqlite3.Connection, username: str, password_hash: str, role: str,
                 now: datetime) -> str | None:
    """A new account; None if the name is taken."""
    admin_id = new_id()
    cur = conn.execute(
        "INSERT INTO admins (id, username, password_hash, role, created_at, password_changed_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(username) DO NOTHING",
        (admin_id, username, password_hash, role, to_db(now), to_db(now)),
    )
    return admin_id if cur.rowcount == 1 else None


def set_password(conn: sqlite3.Connection, username: str, password_hash: str, now: datetime) -> bool:
    """Change a password; end every session of that account and forget its known devices."""
    row = conn.execute("SELECT id FROM admins WHERE username = ?", (username,)).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE admins SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                 (password_hash, to_db(now), row[0]))
    conn.execute("DELETE FROM admin_sessions WHERE admin_id = ?", (row[0],))
    conn.execute("DELETE FROM known_devices WHERE admin_id = ?", (row[0],))
    return True


def admin_by_name(conn: sqlite3.Connection, username: str) -> AdminRow | None:
    row = conn.execute(
        "SELECT id, username, password_hash, role FROM admins WHERE username = ?", (username,)
    ).fetchone()
    return None if row is None else AdminRow(*row)


def count_admins(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM admins").fetchone()[0])


def create_session(conn: sqlite3.Connection, id_hash: str, admin_id: str, csrf: str,
                   now: datetime, expires: datetime) -> None:
    conn.execute("DELETE FROM admin_sessions WHERE expires_at < ?", (to_db(now),))
    conn.execute(
        "INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)", (id_hash, admin_id, csrf, to_db(now), to_db(expires)),
    )


def session(conn: sqlite3.Connection, id_hash: str, now: datetime) -> Principal | None:
    row = conn.execute(
        "SELECT a.id, a.username, a.role, s.csrf_token FROM admin_sessions s "
        "JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = ? AND s.expires_at > ?",
        (id_hash, to_db(now)),
    ).fetchone()
    return None if row is None else Principal(*row)


def delete_session(conn: sqlite3.Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM admin_sessions WHERE id_hash = ?", (id_hash,))


def create_token(conn: sqlite3.Connection, admin_id: str, name: str, token_hash: str,
                 now: datetime) -> str:
    token_id = new_id()
    conn.execute(
        "INSERT INTO api_tokens (id, admin_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (token_id, admin_id, name, token_hash, to_db(now)),
    )
    return token_id


def token(conn: sqlite3.Connection, token_hash: str) -> Principal | None:
    """The account of a live (not revoked) API token."""
    row = conn.execute(
        "SELECT a.id, a.username, a.role FROM api_tokens t "
        "JOIN admins a ON a.id = t.admin_id WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        (token_hash,),
    ).fetchone()
    return None if row is None else Principal(*row)


def list_tokens(conn: sqlite3.Connection) -> list[TokenRow]:
    return [TokenRow(*r) for r in conn.execute(
        "SELECT t.id, t.name, a.username, t.created_at, t.last_used_at, t.revoked_at "
        "FROM api_tokens t JOIN admins a ON a.id = t.admin_id ORDER BY t.created_at"
    )]


def revoke_token(conn: sqlite3.Connection, token_id: str, now: datetime) -> bool:
    return conn.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (to_db(now), token_id),
    ).rowcount == 1
