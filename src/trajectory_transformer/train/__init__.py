"""Training: the loop (trainer), the token-based schedule, run-folder I/O and torchrun plumbing."""

from .checkpoint import LoadedRun, load_run
from .schedule import TokenSchedule
from .trainer import train

__all__ = ["LoadedRun", "TokenSchedule", "load_run", "train"]
