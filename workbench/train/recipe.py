"""What a run does to its training images, read once from its settings: the in-graph
augmentation, the mosaic and the epochs it stops for, the multi-scale sizes."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.darknet.cfg import DarknetCfg
from workbench.train.augment import AugmentSettings
from workbench.train.mosaic import MosaicSettings
from workbench.train.multiscale import size_choices
from workbench.train.settings import TrainSettings, resolved_close_mosaic


@dataclass(frozen=True)
class ImageRecipe:
    augment: AugmentSettings | None  # None: --no-augment
    mosaic: MosaicSettings | None  # None: --no-mosaic (or --no-augment)
    close_mosaic: int  # the last epochs train on single images
    sizes: list[tuple[int, int]]  # the multi-scale sizes; one: the network size only
    multiscale: float
    copy_paste: float  # 0 with --no-augment

    @classmethod
    def of(cls, cfg: DarknetCfg, settings: TrainSettings) -> ImageRecipe:
        augment = (AugmentSettings.from_cfg(cfg, rotate=settings.rotate, zoom=settings.zoom)
                   if settings.augment else None)
        # mosaic replaces the jitter crop; --no-augment turns it off with the rest
        mosaic = (MosaicSettings(mixup=settings.mixup)
                  if settings.mosaic and augment is not None else None)
        return cls(augment, mosaic, resolved_close_mosaic(settings),
                   size_choices(cfg.width, cfg.height, settings.multiscale), settings.multiscale,
                   settings.copy_paste if augment is not None else 0.0)

    def mosaic_for(self, epoch: int, epochs: int) -> MosaicSettings | None:
        """The mosaic of epoch ``epoch`` (from 0) of ``epochs``; None once it is closed."""
        return self.mosaic if epoch < epochs - self.close_mosaic else None

    @property
    def other_sizes(self) -> list[tuple[int, int]]:
        """The sizes the model must also run at (none without multi-scale)."""
        return self.sizes if len(self.sizes) > 1 else []
