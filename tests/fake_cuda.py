"""A simulated CUDA device for CPU-only machines: catch cross-device tensor use in tests.

Every test machine of this project is CPU-only, so a tensor left on the host while the model sits
on a GPU (the `tt eval eval.device=cuda` crash: a CPU prompt indexed with CUDA rows) can never
fail a plain test. `FakeCuda` simulates the second device with a `TorchFunctionMode`:

- `torch.cuda.is_available()` says True; factories called with `device="cuda"`, `.to("cuda")`,
  `.cuda()` and `Module.to("cuda")` produce ordinary CPU tensors that the mode *tags* as living
  on the GPU; `.device` of a tagged tensor answers `cuda:0`, so code that reads the device from
  its model (`model.pos_emb.device`) and allocates there gets tagged tensors too;
- every op whose inputs include a tagged tensor tags its outputs; `.cpu()` / `.to("cpu")`
  untag;
- an op that mixes tagged tensors with untagged ones of one element or more is a violation,
  as is `.numpy()` on a tagged tensor: real CUDA raises on both (except a few cases, such as a
  CPU index into a CUDA tensor, that it allows through a hidden host-to-device copy; the
  simulation is stricter there on purpose, since those copies synchronise the device).

Violations are recorded with the op and the caller's file and line, so a test asserts the list
is empty and its failure message points at the line to fix. The arithmetic itself runs on the
CPU unchanged, so results stay comparable with a plain CPU run.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

CUDA = torch.device("cuda", 0)
_DEVICE_GET = torch.Tensor.device.__get__  # type: ignore[attr-defined]
_DATA_SET = torch.Tensor.data.__set__  # type: ignore[attr-defined]


def _is_cuda(device: Any) -> bool:
    if device is None:
        return False
    if isinstance(device, torch.Tensor):
        return False
    try:
        return torch.device(device).type == "cuda"
    except (RuntimeError, TypeError):
        return False


def _is_cpu(device: Any) -> bool:
    try:
        return not isinstance(device, torch.Tensor) and torch.device(device).type == "cpu"
    except (RuntimeError, TypeError):
        return False


class FakeCuda(TorchFunctionMode):
    """The mode; use `fake_cuda()` to enter it with `torch.cuda` patched."""

    def __init__(self) -> None:
        super().__init__()
        self.tagged: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.violations: list[str] = []

    def on_gpu(self, t: torch.Tensor) -> bool:
        return t in self.tagged

    def tag(self, out: Any) -> None:
        for leaf in tree_flatten(out)[0]:
            if isinstance(leaf, torch.Tensor):
                self.tagged[leaf] = True

    def _violation(self, func: Any, what: str) -> None:
        here = [
            f"{f.filename}:{f.lineno}"
            for f in traceback.extract_stack()[:-2]
            if "trajectory_transformer" in f.filename
        ]
        name = getattr(func, "__name__", str(func))
        self.violations.append(f"{name}: {what} at {here[-1] if here else '?'}")

    def _move_target(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
        """Where a move or factory call puts its result ("cuda", "cpu" or None: not a move);
        rewrites args/kwargs in place so that the real call stays on the CPU."""
        if name == "cuda":
            return "cuda"
        if name == "cpu":
            return "cpu"
        target: str | None = None
        if "device" in kwargs:
            target = "cuda" if _is_cuda(kwargs["device"]) else "cpu"
            kwargs["device"] = "cpu"
        if name == "to":
            for i, a in enumerate(args[1:], 1):
                if isinstance(a, torch.Tensor):  # .to(other): other's device and dtype
                    target = "cuda" if a in self.tagged else "cpu"
                    args[i] = a.dtype
                elif _is_cuda(a) or _is_cpu(a):
                    target = "cuda" if _is_cuda(a) else "cpu"
                    args[i] = "cpu"
        return target

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func == _DEVICE_GET:
            with torch._C.DisableTorchFunction():
                return CUDA if args[0] in self.tagged else func(*args)
        if func == _DATA_SET:  # Module.to(): param.data = moved
            out = func(*args)
            if args[1] in self.tagged:
                self.tagged[args[0]] = True
            else:
                self.tagged.pop(args[0], None)
            return out
        name = getattr(func, "__name__", "")
        if name == "_has_compatible_shallow_copy_type":
            return func(*args, **(kwargs or {}))
        args, kwargs = list(args), dict(kwargs or {})
        target = self._move_target(name, args, kwargs)
        if name == "cuda":
            func, args = torch.Tensor.to, [args[0]]
            kwargs.pop("non_blocking", None)
        inputs = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
        gpu = [t for t in inputs if t in self.tagged]
        if target is None:
            host = [t for t in inputs if t not in self.tagged and t.numel() > 1]
            if name in ("numpy", "__array__") and gpu:
                self._violation(func, "numpy() of a CUDA tensor")
            elif gpu and host:
                shapes = [tuple(t.shape) for t in host]
                self._violation(func, f"mixes CUDA tensors with CPU tensors of shapes {shapes}")
        out = func(*args, **kwargs)
        if target is not None and any(out is t for t in inputs):
            out = out.clone()  # a move that aliased its input: the copy lives elsewhere
        if target == "cuda" or (target is None and gpu):
            self.tag(out)
        return out


@contextmanager
def fake_cuda() -> Iterator[FakeCuda]:
    """Run the block as if a CUDA device were present; yields the mode (see `.violations`)."""
    mode = FakeCuda()

    class Generator(torch._C.Generator):  # a class, so `torch.Generator | None` still works
        def __new__(cls, device: Any = "cpu") -> torch.Generator:  # type: ignore[misc]
            return torch._C.Generator("cpu")

    with ExitStack() as stack:
        stack.enter_context(mock.patch("torch.cuda.is_available", return_value=True))
        stack.enter_context(mock.patch("torch.cuda.device_count", return_value=1))
        stack.enter_context(mock.patch("torch.cuda.synchronize", lambda *a, **k: None))
        stack.enter_context(mock.patch("torch.cuda.get_device_name", return_value="FakeCuda"))
        stack.enter_context(mock.patch("torch.cuda.set_device", lambda *a, **k: None))
        stack.enter_context(mock.patch("torch.cuda.is_bf16_supported", return_value=True))
        stack.enter_context(mock.patch("torch.cuda.current_device", return_value=0))
        rng = mock.patch("torch.cuda.get_rng_state", lambda *a, **k: torch.get_rng_state())
        stack.enter_context(rng)
        stack.enter_context(mock.patch("torch.cuda.set_rng_state", lambda *a, **k: None))
        stack.enter_context(mock.patch("torch.Generator", Generator))
        stack.enter_context(mode)
        yield mode
