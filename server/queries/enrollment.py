"""Enrollment codes and terminal tokens, stored only as hashes."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from shared.timeutil import to_db


def new_code(conn: sqlite3.Connection, terminal_id: str, code_hash: str, now: datetime,
             expires: datetime) -> None:
    """A fresh code replaces any unused one for the same terminal."""
    conn.execute("DELETE FROM enrollment_codes WHERE terminal_id = ? AND used_at IS NULL",
                 (terminal_id,))
    conn.execute(
        "INSERT INTO enrollment_codes (code_hash, terminal_id, created_at, expires_at) "
        "VALUES (?, ?, ?, ?)", (code_hash, terminal_id, to_db(now), to_db(expires)),
    )


def redeem(conn: sqlite3.Connection, code_hash: str, token_hash: str, now: datetime,
           public_key: str | None = None) -> str | None:
    """Use a valid code once: mark it used, enroll the terminal, store its token and the
    public key it signs USB returns with (None for a terminal that sent none)."""
    row = conn.execute(
        "UPDATE enrollment_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL "
        "AND expires_at > ? RETURNING terminal_id", (to_db(now), code_hash, to_db(now)),
    ).fetchone()
    if row is None:
        return None
    terminal_id = str(row[0])
    conn.execute("UPDATE terminals SET enrolled_at = ?, revoked_at = NULL, public_key = ? "
                 "WHERE id = ?", (to_db(now), public_key, terminal_id))
    # Enrolling again (a replaced box) retires the old box's tokens.
    conn.execute("UPDATE terminal_tokens SET revoked_at = ? WHERE terminal_id = ? "
                 "AND revoked_at IS NULL", (to_db(now), terminal_id))
    add_token(conn, terminal_id, token_hash, now)
    return terminal_id


def add_token(conn: sqlite3.Connection, terminal_id: str, token_hash: str, now: datetime) -> None:
    conn.execute("INSERT INTO terminal_tokens (token_hash, terminal_id, created_at) VALUES (?, ?, ?)",
                 (token_hash, terminal_id, to_db(now)))


def token_terminal(conn: sqlite3.Connection, token_hash: str, now: datetime) -> str | None:
    """The terminal a token belongs to, if the token is live and the terminal not revoked."""
    row = conn.execute(
        "SELECT k.terminal_id FROM terminal_tokens k JOIN terminals t ON t.id = k.terminal_id "
        "WHERE k.token_hash = ? AND k.revoked_at IS NULL AND t.revoked_at IS NULL "
        "AND (k.valid_until IS NULL OR k.valid_until > ?)", (token_hash, to_db(now)),
    ).fetchone()
    return str(row[0]) if row else None


def rotate(conn: sqlite3.Connection, terminal_id: str, old_hash: str, new_hash: str,
           now: datetime, old_valid_until: datetime) -> None:
    """The new token works at once; the old one keeps working for a grace period."""
    conn.execute("UPDATE terminal_tokens SET valid_until = ? WHERE token_hash = ? "
                 "AND (valid_until IS NULL OR valid_until > ?)",
                 (to_db(old_valid_until), old_hash, to_db(old_valid_until)))
    add_token(conn, terminal_id, new_hash, now)


def revoke_terminal(conn: sqlite3.Connection, terminal_id: str, now: datetime) -> bool:
    cur = conn.execute("UPDATE terminals SET revoked_at = ? WHERE id = ?", (to_db(now), terminal_id))
    conn.execute("UPDATE terminal_tokens SET revoked_at = ? WHERE terminal_id = ? "
                 "AND revoked_at IS NULL", (to_db(now), terminal_id))
    conn.execute("DELETE FROM enrollment_codes WHERE terminal_id = ? AND used_at IS NULL",
                 (terminal_id,))
    return cur.rowcount == 1
