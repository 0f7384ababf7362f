"""Settings: defaults < TOML file < YUANJIAO_* environment < flags; unknown settings
are refused; the first run listens on loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ServerConfig, describe, load_config


def test_defaults_are_loopback_only() -> None:
    config = load_config(env={})
    assert config.host == "127.0.0.1"
    assert config.zeroconf_interfaces == ("127.0.0.1",)


def test_precedence(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text('port = 9000\nhost = "0.0.0.0"\nzeroconf_interfaces = ["all"]\n'
                    'max_upload_bytes = 1000\n', encoding="utf-8")
    config = load_config(file, env={"YUANJIAO_PORT": "9100", "YUANJIAO_ZEROCONF": "no"},
                         overrides={"port": 9200, "host": None})
    assert config.port == 9200  # flag beats environment beats file
    assert config.host == "0.0.0.0"  # a flag left unset changes nothing
    assert config.zeroconf is False
    assert config.zeroconf_interfaces == ("all",)
    assert config.max_upload_bytes == 1000
    assert load_config(env={"YUANJIAO_ZEROCONF_INTERFACES": "10.0.0.1, 10.0.0.2"}
                       ).zeroconf_interfaces == ("10.0.0.1", "10.0.0.2")


def test_unknown_setting_refused(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="prot"):
        load_config(file, env={})


def test_every_setting_has_help() -> None:
    text = describe()
    for name in ServerConfig.__dataclass_fields__:
        assert f"{name} (default" in text
