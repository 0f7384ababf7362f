"""Enrollment codes and terminal tokens, stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from shared.timeutil import from_db, to_db

_DROP_UNUSED = text(
    "DELETE FROM enrollment_codes WHERE terminal_id = :terminal AND used_at IS NULL"
)
_NEW_CODE = text(
    "INSERT INTO enrollment_codes (code_hash, terminal_id, created_at, expires_at) "
    "VALUES (:code_hash, :terminal, :now, :expires)"
)
_USE_CODE = text(
    "UPDATE enrollment_codes SET used_at = :now WHERE code_hash = :code_hash AND used_at IS NULL "
    "AND expires_at > :now RETURNING terminal_id"
)
_ENROLL = text(
    "UPDATE terminals SET enrolled_at = :now, revoked_at = NULL, public_key = :public_key "
    "WHERE id = :terminal"
)
_REVOKE_TOKENS = text(
    "UPDATE terminal_tokens SET revoked_at = :now WHERE terminal_id = :terminal "
    "AND revoked_at IS NULL"
)
_ADD_TOKEN = text(
    "INSERT INTO terminal_tokens (token_hash, terminal_id, created_at) "
    "VALUES (:token_hash, :terminal, :now)"
)
_TOKEN_TERMINAL = text(
    "SELECT k.terminal_id, k.valid_until FROM terminal_tokens k "
    "JOIN terminals t ON t.id = k.terminal_id "
    "WHERE k.token_hash = :token_hash AND k.revoked_at IS NULL AND t.revoked_at IS NULL "
    "AND (k.valid_until IS NULL OR k.valid_until > :now)"
)
_OLD_TOKEN_UNTIL = text(
    "UPDATE terminal_tokens SET valid_until = :until WHERE token_hash = :token_hash "
    "AND (valid_until IS NULL OR valid_until > :until)"
)
_REVOKE_TERMINAL = text("UPDATE terminals SET revoked_at = :now WHERE id = :terminal")


def new_code(conn: Connection, terminal_id: str, code_hash: str, now: datetime,
             expires: datetime) -> None:
    """A fresh code replaces any unused one for the same terminal."""
    conn.execute(_DROP_UNUSED, {"terminal": terminal_id})
    conn.execute(_NEW_CODE, {"code_hash": code_hash, "terminal": terminal_id, "now": to_db(now),
                             "expires": to_db(expires)})


def redeem(conn: Connection, code_hash: str, token_hash: str, now: datetime,
           public_key: str | None = None) -> str | None:
    """Use a valid code once: mark it used, enroll the terminal, store its token and the
    public key it signs USB returns with (None for a terminal that sent none)."""
    found = conn.execute(_USE_CODE, {"now": to_db(now), "code_hash": code_hash}).scalar()
    if found is None:
        return None
    terminal_id = str(found)
    conn.execute(_ENROLL, {"now": to_db(now), "public_key": public_key, "terminal": terminal_id})
    # Enrolling again (a replaced box) retires the old box's tokens.
    conn.execute(_REVOKE_TOKENS, {"now": to_db(now), "terminal": terminal_id})
    add_token(conn, terminal_id, token_hash, now)
    return terminal_id


def add_token(conn: Connection, terminal_id: str, token_hash: str, now: datetime) -> None:
    conn.execute(_ADD_TOKEN, {"token_hash": token_hash, "terminal": terminal_id, "now": to_db(now)})


def token_terminal(conn: Connection, token_hash: str, now: datetime) -> tuple[str, datetime | None] | None:
    """The terminal a token belongs to and the token's end (None: no end set), if the token
    is live and the terminal not revoked."""
    found = conn.execute(_TOKEN_TERMINAL, {"token_hash": token_hash, "now": to_db(now)}).first()
    if found is None:
        return None
    return str(found[0]), from_db(found[1]) if found[1] else None


_LIVE_TOKENS = text(
    "SELECT k.token_hash, k.terminal_id, k.valid_until FROM terminal_tokens k "
    "JOIN terminals t ON t.id = k.terminal_id "
    "WHERE k.revoked_at IS NULL AND t.revoked_at IS NULL "
    "AND (k.valid_until IS NULL OR k.valid_until > :now)"
)


def live_tokens(conn: Connection, now: datetime) -> list[tuple[str, str, datetime | None]]:
    """Every token that works at `now`: (token sha256, terminal, its end or None)."""
    return [(str(r[0]), str(r[1]), from_db(r[2]) if r[2] else None)
            for r in conn.execute(_LIVE_TOKENS, {"now": to_db(now)})]


def rotate(conn: Connection, terminal_id: str, old_hash: str, new_hash: str,
           now: datetime, old_valid_until: datetime) -> None:
    """The new token works at once; the old one keeps working for a grace period."""
    conn.execute(_OLD_TOKEN_UNTIL, {"until": to_db(old_valid_until), "token_hash": old_hash})
    add_token(conn, terminal_id, new_hash, now)


def revoke_terminal(conn: Connection, terminal_id: str, now: datetime) -> bool:
    cur = conn.execute(_REVOKE_TERMINAL, {"now": to_db(now), "terminal": terminal_id})
    conn.execute(_REVOKE_TOKENS, {"now": to_db(now), "terminal": terminal_id})
    conn.execute(_DROP_UNUSED, {"terminal": terminal_id})
    return cur.rowcount == 1
