"""The tiny settings every test run is made of, spelled once (tests import them from here)."""

from __future__ import annotations

TINY_MODEL = ["model.n_embd=16", "model.n_layer=1", "model.n_head=2"]
"""A 1-layer, 16-wide model: trains in a second on a CPU."""
TINY_DATA = ["data.n_bins=16", "data.n_transitions=4"]
"""16 bins and 4-transition windows."""
TINY_TRAIN = [*TINY_DATA, *TINY_MODEL, "train.batch_size=16", "train.device=cpu",
              "train.progress=false"]  # fmt: skip
"""The fixtures' runs (conftest.py); tests add their own step counts."""
