"""`python -m trajectory_transformer ...`: the `tt` command, also what torchrun launches.

torchrun --nproc_per_node=2 -m trajectory_transformer train --run-dir runs/x train.epochs=1
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
