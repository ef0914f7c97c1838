"""Training: the loop (trainer), loss, schedule, checkpoints, resume checks, RNG state, torchrun."""

from .schedule import TokenSchedule
from .trainer import train

__all__ = ["TokenSchedule", "train"]
