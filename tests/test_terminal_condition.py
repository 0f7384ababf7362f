"""The terminal's condition has one owner (`terminal.interface.condition.assess`): the facts give
the English line the heartbeat and fleet view carry and the problems the TV and `status`
show in Chinese, each with what to do; a box not enrolled shows only that. The loops'
supervisor restarts a loop that fails, without stopping the others."""

from __future__ import annotations

import asyncio

import pytest

from terminal.interface.condition import STALE_LINE, Condition, Facts, assess
from terminal.supervisor import Supervisor

WELL = Facts(enrolled=True, syncer="ok", stale=False, has_catalog=True, link="connected",
             clock_confirmed=True, held=0)


def codes(f: Facts) -> list[str]:
    return [p.code for p in assess(f)[1]]


def test_a_well_terminal_has_no_problems() -> None:
    assert assess(WELL) == ("ok", [])


def test_each_fact_has_its_problem_and_line() -> None:
    from dataclasses import replace

    line, problems = assess(replace(WELL, syncer="disk full: downloads paused, x needs 5 GB"))
    assert line.startswith("disk full") and [p.code for p in problems] == ["disk_full"]
    assert problems[0].message == "存储空间已满，新课程暂停下载" and "照常放映" in problems[0].action
    assert assess(replace(WELL, stale=True)) == (STALE_LINE, [Condition.CATALOG_STALE.problem])
    assert codes(replace(WELL, has_catalog=False)) == ["no_catalog"]
    assert codes(replace(WELL, link="connection refused")) == ["no_link"]
    assert codes(replace(WELL, link="searching")) == []
    assert codes(replace(WELL, clock_confirmed=False)) == ["clock_unconfirmed"]
    line, problems = assess(replace(WELL, held=2, refusal="record_conflict"))
    assert line.startswith("2 record(s) refused") and [p.code for p in problems] == ["records_held"]
    nothing = replace(WELL, enrolled=False, has_catalog=False, link="x", clock_confirmed=False)
    assert codes(nothing) == ["not_enrolled"]  # the one thing to do first
    for c in Condition:
        assert c.problem.message and c.problem.action  # every condition has its words


@pytest.mark.asyncio
async def test_supervisor_restarts_a_failing_loop() -> None:
    runs = 0
    other = asyncio.Event()

    async def flaky_loop() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("a bug")
        await asyncio.Event().wait()

    async def steady_loop() -> None:
        other.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(pause=0.01)
    supervisor.spawn(flaky_loop)
    supervisor.spawn(steady_loop)
    async with asyncio.timeout(5):
        while runs < 3:
            await asyncio.sleep(0.01)
    await other.wait()
    assert supervisor.failures == {"flaky_loop": 2}
    await supervisor.async_close()
    assert supervisor.tasks == []
