"""`python -m trajectory_transformer.training ...` (what torchrun launches): the same arguments as `tt train`.

torchrun --nproc_per_node=2 -m trajectory_transformer.training --run-dir runs/x train.epochs=1
"""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
