"""How well a run's reward and value predictions fit its own data, teacher-forced.

The plan audit (`plan_audit`) says whether the planner's predicted returns come true in the env;
when they do not, this tells the two reasons apart. Here the model sees the data's own windows
(real observations and actions, as in training) and predicts each transition's reward and value
token; the expectation of each predicted distribution (over the bins' centres, as the planner
scores them) is compared with the continuous reward and reward-to-go in the data. A value head
that fits the data well but whose plans do not come true points to the search leaving the data
(model error the search exploits); one that does not fit even here is under-trained or too small.

In-sample: the run trained on these transitions (every episode, unless data.max_episodes chose a
subset, which is rebuilt with the run's seed), so this is the best the value head does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import runs
from ..data.tokens import load_data_transitions
from ..data.windows import TokenWindows
from ..errors import TTError

__all__ = ["value_fit"]


def _fit(predicted: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Bias, errors and correlation of predictions (n,) against targets (n,)."""
    error = predicted - target
    corr = float(np.corrcoef(predicted, target)[0, 1]) if predicted.std() and target.std() else None
    return {
        "n": int(target.size),
        "target_mean": float(target.mean()),
        "target_std": float(target.std()),
        "predicted_mean": float(predicted.mean()),
        "bias": float(error.mean()),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "correlation": corr,
    }


@torch.no_grad()
def value_fit(
    run_dir: str | Path, windows: int = 2000, seed: int = 0, batch_size: int = 256
) -> dict[str, Any]:
    """Teacher-forced reward and value predictions of `windows` random data windows vs the data.

    Returns {"reward": fit, "value": fit, "value_by_quintile": [...], ...}; a fit holds bias
    (predicted - target), MAE, RMSE and the correlation over every real transition of the windows.
    """
    if windows < 1:
        raise TTError(f"windows={windows}: use at least 1")
    loaded = runs.load_run(run_dir, "cpu")
    cfg, model, disc = loaded.config, loaded.model.eval(), loaded.discretizer
    mcfg = model.config
    if mcfg.goal_dim:
        raise TTError(f"{run_dir}: a goal-conditioned run has no value head to fit")
    data = cfg.data
    tr, _ = load_data_transitions(data, seed=cfg.train.seed)
    td = mcfg.transition_dim
    tokens = np.asarray(disc.encode(tr.joined()))  # (N, td) with the run's own bins
    n_transitions = mcfg.n_transitions  # the model's window, as in training
    windows_ds = TokenWindows(tokens, tr.episode_starts, n_transitions)
    rng = np.random.default_rng(seed)
    # a sorted random subset (all windows, in order, when `windows` covers them)
    starts = np.sort(rng.choice(len(windows_ds), size=min(windows, len(windows_ds)), replace=False))
    bins = np.arange(mcfg.vocab_size)[:, None]  # (V, 1)
    centers = {
        name: torch.as_tensor(disc.decode(bins, dims=[d])[:, 0], dtype=torch.float32)
        for name, d in (("reward", td - 2), ("value", td - 1))
    }  # (V,) each
    sources = {"reward": tr.rewards.astype(np.float64), "value": tr.values.astype(np.float64)}
    # logits at position p predict token p + 1: the value token of transition j (window index
    # j*td + td - 1) is predicted at x index j*td + td - 2, its reward at j*td + td - 3
    j = np.arange(n_transitions)
    at = {"reward": j * td + td - 3, "value": j * td + td - 2}  # (T,) each
    predicted: dict[str, list[np.ndarray]] = {"reward": [], "value": []}
    target: dict[str, list[np.ndarray]] = {"reward": [], "value": []}
    for lo in range(0, starts.size, batch_size):
        idx = starts[lo : lo + batch_size]  # (B,)
        x, _, mask = windows_ds.batch(idx)  # (B, L-1)
        logits = model(x)  # (B, L-1, V)
        # (B, T) transition of each window slot; rows past the data are masked anyway
        rows = np.minimum(idx[:, None] + j[None, :], tr.n_transitions - 1)
        for name, source in sources.items():
            inside = mask[:, at[name]].numpy().astype(bool)  # (B, T) inside the episode
            expected = logits[:, at[name]].softmax(-1) @ centers[name]  # (B, T)
            predicted[name].append(expected.numpy()[inside])
            target[name].append(source[rows][inside])
    pred = {k: np.concatenate(v).astype(np.float64) for k, v in predicted.items()}
    real = {k: np.concatenate(v) for k, v in target.items()}
    edges = np.quantile(real["value"], np.linspace(0, 1, 6))
    which = np.clip(np.searchsorted(edges, real["value"], side="right") - 1, 0, 4)  # (n,)
    quintiles = [
        {
            "target_range": [float(edges[q]), float(edges[q + 1])],
            "target_mean": float(real["value"][which == q].mean()),
            "predicted_mean": float(pred["value"][which == q].mean()),
        }
        for q in range(5)
        if (which == q).any()
    ]
    return {
        "run_dir": str(run_dir),
        "dataset": data.dataset,
        "windows": int(starts.size),
        "n_transitions": n_transitions,
        "seed": seed,
        "in_sample": True,
        "reward": _fit(pred["reward"], real["reward"]),
        "value": _fit(pred["value"], real["value"]),
        "value_by_quintile": quintiles,
        "note": (
            "teacher-forced on the run's own data windows (real observations and actions); "
            "predicted = expectation of the predicted distribution over bin centres (as the "
            "planner scores); targets = the data's continuous reward and discounted "
            "reward-to-go, termination penalty included"
        ),
    }
