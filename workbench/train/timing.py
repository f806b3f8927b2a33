"""The run's time left: measured step and validation times, phase by phase."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: an unfrozen step costs about this many frozen ones (backward through the backbone too);
#: the ETA uses it until the first unfrozen steps have been timed
UNFROZEN_STEP_COST = 1.8


class EtaClock:
    """Step times by phase (frozen or not) and validation times; ``eta`` from them."""

    def __init__(self, epochs: int, steps_per_epoch: int,
                 is_frozen: Callable[[int], bool]) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.is_frozen = is_frozen
        self.step_seconds: dict[bool, list[float]] = {True: [], False: []}  # by frozen
        self.valid_seconds: list[float] = []

    def step_took(self, frozen: bool, seconds: float) -> None:
        self.step_seconds[frozen].append(seconds)

    def validation_took(self, seconds: float) -> None:
        self.valid_seconds.append(seconds)

    def recent_step(self, frozen: bool, fallback: float) -> float:
        """The median of the phase's last 20 step times (``fallback`` before any)."""
        return float(np.median((self.step_seconds[frozen] or [fallback])[-20:]))

    def per_step(self, frozen: bool) -> float:
        if self.step_seconds[frozen]:
            return float(np.median(self.step_seconds[frozen][-20:]))
        other = self.step_seconds[not frozen][-20:]
        if not other:
            return 0.0
        factor = 1 / UNFROZEN_STEP_COST if frozen else UNFROZEN_STEP_COST
        return float(np.median(other)) * factor

    def eta(self, epoch: int, in_epoch: int) -> float:
        """Seconds left: the remaining steps of each phase at that phase's step time (an
        unfrozen step is estimated at UNFROZEN_STEP_COST frozen ones until timed), plus a
        validation per remaining epoch."""
        left = 0.0
        for e in range(epoch, self.epochs):
            steps = self.steps_per_epoch - (in_epoch if e == epoch else 0)
            left += steps * self.per_step(self.is_frozen(e))
        if self.valid_seconds:
            left += (self.epochs - epoch) * float(np.median(self.valid_seconds[-5:]))
        return left
