"""Learning-rate schedules: darknet's burn-in then steps, or cosine decay.

A schedule is a pure function of the global step, so a checkpoint that stores the step (and a
run folder that stores these settings) restores it exactly on resume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from workbench.darknet.cfg import DarknetCfg
from workbench.errors import WorkbenchError

POLICIES = ("steps", "cosine", "constant")


@dataclass(frozen=True)
class LearningRateSchedule:
    """``rate(step)``: ``hold`` steps at ``lr`` (the frozen epochs, where only the fresh heads
    train), then the burn-in ramp ``lr * (k / burn_in) ** power`` (k counted from ``hold``: the
    warm-up protects the pretrained layers when they start to train), then the policy.

    ``steps``: multiply by ``scales[i]`` once ``step >= steps[i]`` (darknet ``policy=steps``).
    ``cosine``: half a cosine from ``lr`` down to ``lr * final_fraction`` at ``total_steps``.

    ``stretches``: ``(from_step, factor)`` pairs, one per resume that changed the run's length
    (``stretched``): past ``from_step`` the run's steps are mapped onto the schedule's own
    ones, ``from + (step - from) * factor``, so what was left of the schedule ends at the new
    last step, continuing from the rate the run had when it stopped.
    """

    lr: float
    policy: str = "steps"
    total_steps: int = 0
    burn_in: int = 0
    power: float = 4.0
    steps: tuple[int, ...] = field(default_factory=tuple)
    scales: tuple[float, ...] = field(default_factory=tuple)
    final_fraction: float = 0.01
    hold: int = 0
    stretches: tuple[tuple[int, float], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise WorkbenchError(f"unknown learning-rate policy {self.policy!r} "
                                 f"(use one of {', '.join(POLICIES)})")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise WorkbenchError(f"the learning rate must be a positive number, got {self.lr}")
        if len(self.steps) != len(self.scales):
            raise WorkbenchError(f"{len(self.steps)} steps but {len(self.scales)} scales")
        for start, factor in self.stretches:
            if start < 0 or not (math.isfinite(factor) and factor > 0):
                raise WorkbenchError(f"bad stretch ({start}, {factor})")

    def _own_step(self, step: float) -> float:
        """The schedule's own step for the run's ``step``: the latest stretch first."""
        for start, factor in reversed(self.stretches):
            if step > start:
                step = start + (step - start) * factor
        return step

    def _run_step(self, step: float) -> float:
        """The run's step where the schedule reaches its own ``step`` (``_own_step`` undone)."""
        for start, factor in self.stretches:
            if step > start:
                step = start + (step - start) / factor
        return step

    def rate(self, step: int) -> float:
        """The learning rate for the (0-based) ``step``."""
        return self._rate(self._own_step(step))

    def _rate(self, step: float) -> float:
        if step < self.hold:
            return self.lr
        if self.burn_in > 0 and step < self.hold + self.burn_in:
            return self.lr * ((step - self.hold + 1) / self.burn_in) ** self.power
        if self.policy == "steps":
            lr = self.lr
            for boundary, scale in zip(self.steps, self.scales, strict=True):
                if step >= boundary:
                    lr *= scale
            return lr
        if self.policy == "cosine":
            start = self.hold + self.burn_in
            span = max(self.total_steps - start, 1)
            t = min(max(step - start, 0) / span, 1.0)
            low = self.lr * self.final_fraction
            return low + (self.lr - low) * 0.5 * (1.0 + math.cos(math.pi * t))
        return self.lr

    __call__ = rate

    def decay_step(self) -> int:
        """The run's step by which the decay is half done (``_decay_step``, through the
        stretches)."""
        return math.ceil(self._run_step(self._decay_step()))

    def end_step(self) -> int:
        """The run's step where the schedule ends (``total_steps``, through the stretches)."""
        return round(self._run_step(self.total_steps))

    def warmed_up(self) -> int:
        """The step the hold and the burn-in end: fixed step counts, never stretched."""
        return self.hold + self.burn_in

    def stretched(self, now: int, old_end: int, new_end: int) -> LearningRateSchedule | None:
        """This schedule for a run whose last step moves from ``old_end`` to ``new_end`` at
        step ``now``: the part of it left after ``now`` (or after the warm-up, which keeps its
        length) stretched or squeezed to end at ``new_end``; None where nothing of it is left
        to stretch (it had ended, or the new end falls inside the warm-up)."""
        start = max(now, self.warmed_up())
        if old_end <= start or new_end <= start or new_end == old_end:
            return None
        return replace(self, stretches=(*self.stretches,
                                        (start, (old_end - start) / (new_end - start))))

    def _decay_step(self) -> int:
        """The step by which the decay is half done: ``steps``, the first boundary that takes
        the rate to half of ``lr`` or less; ``cosine``, the middle of the cosine (half-way down
        to its floor); ``constant``, 0. Early stopping waits for it, so it cannot cut the run
        before the decay."""
        if self.policy == "steps":
            lr = self.lr
            for boundary, scale in zip(self.steps, self.scales, strict=True):
                lr *= scale
                if lr <= 0.5 * self.lr:
                    return boundary
            return self.total_steps
        if self.policy == "cosine":
            start = self.hold + self.burn_in
            return start + (max(self.total_steps - start, 1) + 1) // 2
        return 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"], d["scales"] = list(self.steps), list(self.scales)
        d["stretches"] = [list(s) for s in self.stretches]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LearningRateSchedule:
        d = dict(d)
        d["steps"], d["scales"] = tuple(d.get("steps", ())), tuple(d.get("scales", ()))
        d["stretches"] = tuple((int(a), float(f)) for a, f in d.get("stretches", ()))
        return cls(**d)


def schedule_for(cfg: DarknetCfg, lr: float, total_steps: int, policy: str = "auto",
                 burn_in: int | None = None, hold: int = 0) -> LearningRateSchedule:
    """The schedule a run of ``total_steps`` uses.

    ``auto`` follows the cfg's ``policy``: ``steps`` keeps its ``scales`` with the step
    boundaries moved to the same fractions of this (usually much shorter) run as of the cfg's
    ``max_batches``; anything else becomes cosine. Burn-in is the cfg's, capped at a tenth of
    the run so a short fine-tune does not spend itself warming up. ``hold`` steps (the frozen
    epochs) run at ``lr`` first; the burn-in starts after them, when the pretrained layers
    start to train.
    """
    net = cfg.net
    if policy == "auto":
        policy = "steps" if (net.get("policy") or "steps").strip() == "steps" else "cosine"
    if burn_in is None:
        burn_in = min(net.get_int("burn_in", 0), max(total_steps - hold, 0) // 10)
    power = net.get_float("power", 4.0)
    steps: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    if policy == "steps":
        max_batches = max(net.get_int("max_batches", 0), 1)
        cfg_steps = net.get_ints("steps", [int(max_batches * 0.8), int(max_batches * 0.9)])
        raw_scales = (net.get("scales") or ",".join(["0.1"] * len(cfg_steps))).split(",")
        scales = tuple(float(s) for s in raw_scales if s.strip())[:len(cfg_steps)]
        steps = tuple(round(total_steps * min(s / max_batches, 1.0)) for s in cfg_steps)
        steps = steps[:len(scales)]
    return LearningRateSchedule(lr=lr, policy=policy, total_steps=total_steps, burn_in=burn_in,
                                power=power, steps=steps, scales=scales, hold=hold)
