"""RepeatingLog: the first event of a kind is logged in full, the rest only counted,
with at most one summary line per kind per `summary_seconds`; the number of kinds
tracked is bounded."""

from __future__ import annotations

import logging

import pytest

from shared.ratelog import RepeatingLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_logged_rest_counted_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    repeats = RepeatingLog(logging.getLogger("test.ratelog"), summary_seconds=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        for i in range(10_000):
            clock.now = i * 0.001  # ten seconds of events
            repeats.event("disk full", "write refused (%d bytes free)", 0)
        assert len(caplog.records) == 1
        assert "write refused (0 bytes free)" in caplog.records[0].getMessage()
        assert repeats.count("disk full") == 10_000
        clock.now = 61.0
        repeats.event("disk full", "write refused (%d bytes free)", 0)
        repeats.event("disk full", "write refused (%d bytes free)", 0)
    assert len(caplog.records) == 2
    summary = caplog.records[1].getMessage()
    assert "10000 more time(s)" in summary and "10001 in all" in summary
    assert repeats.count("never happened") == 0


def test_kinds_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    repeats = RepeatingLog(logging.getLogger("test.ratelog"), max_keys=8)
    with caplog.at_level(logging.WARNING, logger="test.ratelog"):
        for i in range(100):
            repeats.event(f"kind {i}", "event %d", i)
    assert len(repeats.counts()) == 8
    assert len(caplog.records) == 100  # each new kind is news
