"""The TV interface's keys on a real X server (Xvfb, keys sent with xdotool): Back at
home never leaves the interface; a digit held down types one digit, not a storm;
"learn this remote" asks for each key once, keeps the mapping in the data directory,
and the learned keys then drive the interface — also after it is started again."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from terminal.daemon import Terminal
from terminal.interface.tv.keys import LEARN_ORDER, Command
from tests.terminal_helpers import terminal_config
from tests.tv_helpers import tv, xvfb

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

# keys a strange remote might send, one per command asked for
STRANGE = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
           "s", "t", "u", "v", "w", "x", "y", "z", "F12"]


async def test_back_storms_and_learning(tmp_path: Path) -> None:
    assert len(STRANGE) == len(LEARN_ORDER)
    config = terminal_config(tmp_path, terminal_id="", zeroconf=False)
    async with xvfb() as display, Terminal(config) as terminal:
        assert terminal.status_server is not None
        url = f"http://127.0.0.1:{terminal.status_server.port}"
        async with tv(display, url, config.data_dir, tmp_path / "tv.log") as screen:
            await screen.wait_for("home", focus="enroll")
            await screen.keys("Escape", "BackSpace", "Escape")
            state = await screen.wait_for("home", focus="enroll")
            assert screen.proc.returncode is None and state.screen == "home"

            await screen.keys("Return")
            await screen.wait_for("enroll", focus="submit")
            await screen.hold("5", 1.6)  # the X server repeats it some 20 times
            state = await screen.wait_for("enroll")
            assert state.typed == "5"
            await screen.keys("7")
            assert (await screen.wait_for("enroll")).typed == "57"  # a new press still counts
            await screen.keys("Home")

            await screen.keys("Menu")
            await screen.wait_for("settings", focus="link-test")
            await screen.keys("3")
            await screen.wait_for("settings", focus="learn")
            await screen.keys("Return")
            await screen.wait_for("learn")
            await screen.screenshot("10-learn-remote")
            await screen.keys(*STRANGE[:6])  # OK, back, up, down, left, right
            await screen.keys("b")  # a key already learned is asked for again, not kept twice
            await screen.keys("a")  # the learned OK skips: this remote has no "home" key
            await screen.keys(*STRANGE[7:])
            await screen.wait_for("settings", focus="link-test")
            learned = msgspec.json.decode((config.data_dir / "remote-keys.json").read_bytes())
            assert learned["x:a"] == Command.OK and learned["x:b"] == Command.BACK
            assert learned["x:d"] == Command.DOWN and "x:g" not in learned
            assert len(learned) == len(LEARN_ORDER) - 1 and learned["x:h"] == Command.MENU
            await screen.keys("d", "d")  # the learned "down"
            await screen.wait_for("settings", focus="learn")
            await screen.keys("b")  # the learned "back"
            await screen.wait_for("home")

        async with tv(display, url, config.data_dir, tmp_path / "tv2.log") as screen:
            await screen.wait_for("home", focus="enroll")
            await screen.keys("d", "a")  # kept across a restart: down, OK
            await screen.wait_for("settings", focus="link-test")
