"""Settings declared as data, loaded the same way by both programs.

A program's settings are a frozen dataclass whose fields are made with `setting()`: a
default and a line of help each. `load()` builds one from (lowest to highest) the
defaults, a TOML file, environment variables with the program's prefix, and explicit
overrides (command-line flags); `describe()` lists them for `... settings` and the docs.
Nothing reads settings at import.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import field, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_CONVERTERS: dict[str, Any] = {"int": int, "float": float, "str": str, "Path": Path}


def setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def coerce(name: str, kind: Any, value: Any) -> Any:
    """Turn a value from TOML, the environment or a flag into the setting's type."""
    kind = str(kind)  # annotations are strings under `from __future__ import annotations`
    if kind.endswith("| None"):
        if value is None or value == "":
            return None
        kind = kind.removesuffix("| None").strip()
    if kind == "tuple[str, ...]":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return tuple(str(v) for v in value)
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if kind not in _CONVERTERS:
        raise ValueError(f"setting {name} has a type the loader does not know: {kind}")
    return _CONVERTERS[kind](value)


def load(
    cls: type[T], env_prefix: str, file: Path | None = None,
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
) -> T:
    """Defaults < TOML file < `<env_prefix>NAME` environment < explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    if file is not None:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"{file}: unknown setting {key!r}")
            values[key] = coerce(key, known[key], value)
    for key, kind in known.items():
        env_key = env_prefix + key.upper()
        if env_key in env:
            values[key] = coerce(key, kind, env[env_key])
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = coerce(key, known[key], value)
    return cls(**values)


def describe(cls: type) -> str:
    """Every setting with its default and help."""
    return "\n".join(
        f"{f.name} (default {f.default!r}): {f.metadata['help']}" for f in fields(cls)
    )
