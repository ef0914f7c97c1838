"""H1: does the discounted, penalised objective rank the dataset's episodes like the score does?"""
import json, sys
import numpy as np
import minari


def spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float); rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])

out = {}
for ds_id in sys.argv[1:]:
    ds = minari.load_dataset(ds_id)
    eps = [(np.asarray(e.rewards, float), bool(np.asarray(e.terminations)[-1])) for e in ds.iterate_episodes()]
    R = np.array([r.sum() for r, _ in eps]); L = np.array([len(r) for r, _ in eps]); term = np.array([t for _, t in eps])
    rows = {}
    for g in (0.99, 0.997, 0.999, 1.0):
        for pen in (-100.0, 0.0):
            D = np.array([(r * g ** np.arange(len(r))).sum() + (pen * g ** len(r) if t else 0.0) for r, t in eps])
            rho = spearman(D, R)
            k = max(1, len(eps) // 10)
            top = np.argsort(-D)[:k]
            rows[f"gamma={g},penalty={pen:g}"] = {
                "spearman_vs_return": round(float(rho), 3),
                "top10pct_mean_return": round(float(R[top].mean()), 1),
                "top10pct_mean_length": round(float(L[top].mean()), 1),
                "top10pct_reward_per_step": round(float((R[top] / L[top]).mean()), 2),
            }
    k = max(1, len(eps) // 10); topR = np.argsort(-R)[:k]
    out[ds_id] = {"episodes": len(eps), "return_mean": round(float(R.mean()), 1), "length_mean": round(float(L.mean()), 1),
                  "terminated": int(term.sum()), "best10pct_by_return": {"mean_return": round(float(R[topR].mean()), 1), "mean_length": round(float(L[topR].mean()), 1), "reward_per_step": round(float((R[topR]/L[topR]).mean()), 2)},
                  "rankings": rows}
print(json.dumps(out, indent=1))
