"""Training stack for agincolor (install with the ``train`` extra: ``pip install "agincolor[train]"``).

``Trainer(TrainConfig(data=..., out=...)).train()`` trains the paper's four networks with eq. 9 and
exports the gray-to-colour generator as a Colorizer folder. ``import agincolor`` never imports this.
"""

from .config import TrainConfig
from .data import ImageFolder, StepBatchSampler, find_images
from .trainer import CHECKPOINT_NAME, Trainer, atomic_save, export_generator, to_gray

__all__ = [
    "CHECKPOINT_NAME",
    "ImageFolder",
    "StepBatchSampler",
    "TrainConfig",
    "Trainer",
    "atomic_save",
    "export_generator",
    "find_images",
    "to_gray",
]
