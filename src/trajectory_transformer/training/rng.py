"""Every RNG state of a training process as JSON, restored bit-exactly for an exact resume.

Python, NumPy, torch (and CUDA) states are saved with each checkpoint; under DDP every rank's
torch state is gathered so a resumed run draws the same dropout masks on every rank.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from . import distributed as dist_utils
from .distributed import DistInfo

__all__ = ["gather_torch_rng", "rng_preserved", "rng_state", "set_rng_state"]


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as JSON lists (restored bit-exactly by `set_rng_state`)."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [
            np_state[0],
            np_state[1].tolist(),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": [py_version, list(py_internal), py_gauss],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device).tolist()
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(torch.tensor(state["cuda"], dtype=torch.uint8), device)


def gather_torch_rng(device: torch.device, info: DistInfo) -> list[dict[str, Any]]:
    """Every rank's torch (and CUDA) RNG state, so a DDP resume restores each rank's dropout."""
    own = torch.get_rng_state()
    states = [{"torch": t.tolist()} for t in dist_utils.all_gather_bytes(own, info)]
    if device.type == "cuda":
        cuda = dist_utils.all_gather_bytes(torch.cuda.get_rng_state(device), info)
        for s, c in zip(states, cuda):
            s["cuda"] = c.tolist()
    return states


@contextlib.contextmanager
def rng_preserved(device: torch.device) -> Iterator[None]:
    """Evaluation may draw random numbers; training must not notice (exact resume)."""
    saved = rng_state(device)
    try:
        yield
    finally:
        set_rng_state(saved, device)
