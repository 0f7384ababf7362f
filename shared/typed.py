"""What people and programs type, checked the same way everywhere.

- `strict_int`: an integer from a header, path, query or setting is ASCII digits 0-9
  only, and in range (Python's `int()` also takes full-width `１２`, `_` and spaces,
  and `str.isdigit()` says yes to `²`, on which `int()` then fails).
- `normalize_code`: a code a person types (member number, village code, enrollment
  code) after Unicode NFKC, so digits typed with a Chinese input method (`１４０１`) are
  the digits they look like, with spaces around it and inside it dropped.
"""

from __future__ import annotations

import re
import unicodedata

_ASCII_DIGITS = re.compile(r"[0-9]+")
# Excel shows long numbers as 1.40121E+17 and saves them so in CSV: the digits are lost.
SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$")
_SPACES = re.compile(r"\s+")


class NumberError(ValueError):
    """Not ASCII digits, or out of range. `low`/`high` are the bounds that were asked."""

    def __init__(self, name: str, value: str, low: int, high: int) -> None:
        shown = value if len(value) <= 40 else value[:40] + "…"
        super().__init__(
            f"{name} must be a whole number from {low} to {high} in ASCII digits 0-9 (got {shown!r})"
        )
        self.name, self.value, self.low, self.high = name, shown, low, high


def is_ascii_digits(raw: str, max_len: int = 19) -> bool:
    """True for 1..max_len ASCII digits 0-9 and nothing else."""
    return 0 < len(raw) <= max_len and bool(_ASCII_DIGITS.fullmatch(raw))


def strict_int(raw: str, name: str, low: int = 0, high: int = 2**63 - 1) -> int:
    """`raw` as an int: ASCII digits only (no sign, no spaces), low <= value <= high.

    Raises NumberError naming `name`.
    """
    if not is_ascii_digits(raw):
        raise NumberError(name, raw, low, high)
    value = int(raw)
    if not low <= value <= high:
        raise NumberError(name, raw, low, high)
    return value


def normalize_code(raw: str) -> str:
    """A typed code after NFKC, with all white space removed (zero-width ones too)."""
    text = unicodedata.normalize("NFKC", raw)
    text = text.replace("\u200b", "").replace("\ufeff", "")
    return _SPACES.sub("", text)


def is_scientific(raw: str) -> bool:
    """True for what Excel makes of a long number: `1.40121E+17`."""
    return bool(SCIENTIFIC.match(normalize_code(raw)))
