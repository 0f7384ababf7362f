"""Settings declared as data, loaded the same way by both programs.

A program's settings are a frozen dataclass whose fields are made with `setting()`: a
default and a line of help each. `load()` builds one from (lowest to highest) the
defaults, a TOML file, environment variables with the program's prefix, and explicit
overrides (command-line flags); `describe()` lists them for `... settings` and the docs.
Nothing reads settings at import.

Every setting is checked when the settings load, defaults included: numbers are ASCII
digits (no full-width or superscript digits) and within the setting's bounds (numbers
are never negative unless a setting says so; floats are finite), text has no control
characters, and a setting's own `check` may refuse a value. An impossible value is a
SettingError whose text is one line naming the setting, the value, where it came from
and what is allowed, for the CLI to print instead of a traceback.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import field, fields
from pathlib import Path
from typing import Any, TypeVar

from shared.typed import NumberError, strict_int

T = TypeVar("T")
Check = Callable[[Any], str | None]  # a value's problem in a few words, or None
MAX_INT = 2**63 - 1
_FLOAT = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class SettingError(ValueError):
    """An impossible setting: one line, naming it."""

    def __init__(self, name: str, value: object, source: str, problem: str) -> None:
        shown = repr(value) if not isinstance(value, Path) else repr(str(value))
        if len(shown) > 80:
            shown = shown[:80] + "…"
        super().__init__(f"setting {name} = {shown} (from {source}): {problem}")
        self.name = name


def setting(default: Any, help: str, *, low: float = 0, high: float = MAX_INT,
            check: Check | None = None) -> Any:
    """A setting's field: default, one line of help, bounds for numbers, an extra check."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "check": check})


def positive(value: float) -> str | None:
    return None if value > 0 else "must be more than 0"


def coerce(name: str, kind: Any, value: Any) -> Any:
    """Turn a value from TOML, the environment or a flag into the setting's type.

    Raises ValueError (not naming the setting: `load` adds that) for a value of the wrong
    kind, and for numbers in anything but ASCII digits."""
    kind = str(kind)  # annotations are strings under `from __future__ import annotations`
    if kind.endswith("| None"):
        if value is None or value == "":
            return None
        kind = kind.removesuffix("| None").strip()
    if kind == "tuple[str, ...]":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of text")
        return tuple(str(v) for v in value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("must be true or false (1/0, yes/no, on/off)")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return strict_int(value.strip(), name, 0, MAX_INT)
            except NumberError:
                pass
        raise ValueError("must be a whole number in ASCII digits 0-9")
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value.strip())
        raise ValueError("must be a number in ASCII digits 0-9, like 30 or 2.5")
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value
    if kind == "Path":
        if not isinstance(value, str | Path):
            raise ValueError("must be a path")
        return Path(value)
    raise ValueError(f"has a type the loader does not know: {kind}")


def _problem(value: Any, low: float, high: float, check: Check | None) -> str | None:
    if isinstance(value, bool):
        pass
    elif isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    elif isinstance(value, int | float) and not low <= value <= high:
        return f"must be from {low:g} to {high:g}" if high < MAX_INT else f"must be at least {low:g}"
    elif isinstance(value, str) and not value.isprintable():
        return "has control characters"
    elif isinstance(value, Path) and "\0" in str(value):
        return "has a NUL character"
    elif isinstance(value, tuple) and not all(v.isprintable() for v in value):
        return "has control characters"
    if check is not None and value is not None:
        return check(value)
    return None


def load(
    cls: type[T], env_prefix: str, file: Path | None = None,
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
    checks: Mapping[str, Check] | None = None,
) -> T:
    """Defaults < TOML file < `<env_prefix>NAME` environment < explicit overrides.
    `checks` adds a check to settings by name (besides each field's own).

    Raises SettingError for an unknown or impossible setting, OSError for an unreadable
    file, each with a one-line message."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    specs = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]

    def put(key: str, raw: Any, source: str) -> None:
        try:
            values[key] = coerce(key, specs[key].type, raw)
        except ValueError as e:
            raise SettingError(key, raw, source, str(e)) from None
        sources[key] = source

    if file is not None:
        with open(file, "rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as e:
                raise SettingError("file", str(file), str(file), f"is not valid TOML ({e})") from None
        for key, value in data.items():
            if key not in specs:
                raise SettingError(key, value, str(file), "is not a setting (see `settings`)")
            put(key, value, str(file))
    for key in specs:
        env_key = env_prefix + key.upper()
        if env_key in env:
            put(key, env[env_key], env_key)
    for key, value in (overrides or {}).items():
        if value is not None:
            put(key, value, "the command line")
    instance = cls(**values)
    for key, spec in specs.items():
        value = getattr(instance, key)
        meta = spec.metadata
        problem = _problem(value, meta.get("low", 0), meta.get("high", MAX_INT), meta.get("check"))
        if not problem and checks and key in checks and value is not None:
            problem = checks[key](value)
        if problem:
            raise SettingError(key, value, sources.get(key, "the default"), problem)
    return instance


def describe(cls: type) -> str:
    """Every setting with its default and help."""
    return "\n".join(
        f"{f.name} (default {f.default!r}): {f.metadata['help']}" for f in fields(cls)
    )
