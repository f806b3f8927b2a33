"""Learning-rate schedules: darknet's burn-in then steps, or cosine decay.

A schedule is a pure function of the global step, so a checkpoint that stores the step (and a
run folder that stores these settings) restores it exactly on resume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

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

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise WorkbenchError(f"unknown learning-rate policy {self.policy!r} "
                                 f"(use one of {', '.join(POLICIES)})")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise WorkbenchError(f"the learning rate must be a positive number, got {self.lr}")
        if len(self.steps) != len(self.scales):
            raise WorkbenchError(f"{len(self.steps)} steps but {len(self.scales)} scales")

    def rate(self, step: int) -> float:
        """The learning rate for the (0-based) ``step``."""
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
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LearningRateSchedule:
        d = dict(d)
        d["steps"], d["scales"] = tuple(d.get("steps", ())), tuple(d.get("scales", ()))
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
