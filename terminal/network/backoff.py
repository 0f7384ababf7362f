"""Jittered exponential backoff, so 211 terminals do not retry in step."""

from __future__ import annotations

import random

from terminal import constants as k


class Backoff:
    def __init__(
        self, initial: float = k.BACKOFF_INITIAL, maximum: float = k.BACKOFF_MAX,
        factor: float = k.BACKOFF_FACTOR, rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait after one more failure: between half and all of the exponential step."""
        step = min(self.maximum, self.initial * self.factor ** self.failures)
        self.failures += 1
        return step * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
