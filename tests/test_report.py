"""The HTML report: self-contained, every section present, missing parts become notes.

The browser test opens the report in headless Chromium (Debian package `chromium`) and reads back
data attributes that the report's inline script sets on <body> once images and video have loaded.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trajectory_transformer import runs
from trajectory_transformer.config import config_to_dict, load_config
from trajectory_transformer.data.episodes import DatasetInfo
from trajectory_transformer.envs.loop import RolloutResult
from trajectory_transformer.errors import TTError
from trajectory_transformer.evaluation.metrics import Reference, summarize
from trajectory_transformer.evaluation.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "summary",
    "training",
    "discretization",
    "returns",
    "score",
    "latency",
    "dataset",
    "config",
    "video",
)
CHROMIUM = "/usr/bin/chromium"


def _summary(returns: list[float], lo: float = -10.0, hi: float = 100.0) -> dict:
    """A summary in exactly the format `tt eval` writes (evaluation.metrics.summarize)."""
    r = np.asarray(returns, dtype=np.float64)
    result = RolloutResult(
        returns=r,
        lengths=np.full(len(r), 200, np.int64),
        terminated=np.arange(len(r)) % 2 == 0,
        seeds=np.arange(len(r), dtype=np.int64),
        n_envs=4,
        wall_s=40.0,
        env_s=1.0,
        agent_s=33.0,
        agent_calls=len(r) * 50,
    )
    summary = summarize(result, Reference(lo, hi, "dataset"))
    summary["returns"] = result.returns.tolist()  # as evaluate_agent adds them
    return summary


def _make_run(root: Path, video: bool = True) -> Path:
    """A synthetic run folder holding every part the report reads."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    # real config keys: the fixture goes through the same config classes as a real run
    config = load_config(
        None,
        ["name=synthetic <run> & co", "data.dataset=local/pendulum-v0", "model.n_layer=2",
         "model.n_embd=64", "train.batch_size=64", "plan.beam_width=32", "plan.horizon=5",
         "eval.episodes=12"],
    )  # fmt: skip
    (root / runs.CONFIG_FILE).write_text(json.dumps(config_to_dict(config)))
    dataset = DatasetInfo(
        dataset="local/pendulum-v0",
        env_id="Pendulum-v1",
        observation_dim=3,
        action_dim=1,
        ref_min_score=-10.0,
        ref_max_score=100.0,
        n_episodes=50,
        n_transitions=10000,
        discretization_error=[0.01, 0.02, 0.005, 0.03, 0.012, 0.2],
    )
    (root / runs.DATASET_FILE).write_text(json.dumps(dataset.to_dict()))
    lines = []
    for step in range(0, 200, 10):
        decay = np.exp(-step / 80)
        lines.append(
            json.dumps(
                {
                    "step": step,
                    "epoch": step // 50,
                    "tokens": step * 640,
                    "losses/total": 3 * decay + 0.2,
                    "losses/obs": 2.5 * decay + 0.2,
                    "losses/act": 3.5 * decay + 0.3,
                    "losses/reward": 1.5 * decay + 0.1,
                    "losses/value": 1.8 * decay + 0.1,
                    "accuracy/obs": 1 - decay * 0.9,
                    "accuracy/act": 1 - decay * 0.95,
                    "charts/lr": 6e-4 * min(1.0, step / 50),
                    "charts/grad_norm": 1.0 + rng.random(),
                    "charts/tokens_per_s": 5000 + 100 * rng.random(),
                }
            )
        )
    lines.append('{"step": 200, "loss": 0.3')  # a partial line, as a killed run leaves
    (root / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (root / "phases.json").write_text(
        json.dumps({"collect_s": 12.5, "train_s": 180.2, "eval_s": 40.0})
    )
    (root / "eval").mkdir(exist_ok=True)
    tt = _summary([float(x) for x in rng.normal(90, 5, 12)])
    tt.update(
        {
            "plan": {"beam": 32, "horizon": 5},
            "plan_audit": {
                "predicted_mean": 123.25, "realized_mean": 101.5, "bias_mean": 21.75,
                "bias_ci95": [11.5, 32.0], "correlation": 0.875, "plans": 96,
            },
        }
    )  # fmt: skip
    (root / "eval" / "eval.json").write_text(json.dumps(tt))
    (root / "eval" / "eval_behaviour.json").write_text(
        json.dumps(_summary([float(x) for x in rng.normal(85, 8, 12)]))
    )
    (root / "eval" / "eval_random.json").write_text(
        json.dumps(_summary([float(x) for x in rng.normal(-10, 3, 12)]))
    )
    if video:
        _write_mp4(root / "videos" / "episode0.mp4")
    return root


def _write_mp4(path: Path, n_frames: int = 12) -> None:
    """A tiny real H.264 MP4 (64×64, multiple of 16 so ffmpeg does not resize)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.zeros((n_frames, 64, 64, 3), dtype=np.uint8)
    for i in range(n_frames):
        frames[i, :, : 4 * (i + 1)] = (255, 120, 0)
    imageio.mimwrite(path, list(frames), fps=10, codec="libx264", pixelformat="yuv420p")


def _data_uris(text: str, mime: str) -> list[bytes]:
    pattern = rf'src="data:{re.escape(mime)};base64,([A-Za-z0-9+/=]+)"'
    return [base64.b64decode(m) for m in re.findall(pattern, text)]


def test_full_report_is_self_contained(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run")
    out = write_report(run)
    assert out == run / "report.html"
    text = out.read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', text, re.IGNORECASE)
    assert "@import" not in text and "url(" not in text
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text
    # Everything present: no "not available" note anywhere.
    assert "Not available" not in text, re.findall(r'class="note">[^<]*', text)
    # Untrusted text is escaped.
    assert "synthetic &lt;run&gt; &amp; co" in text and "<run>" not in text
    pngs = _data_uris(text, "image/png")
    # losses, accuracy, lr, grad_norm, tokens_per_s, discretization, returns, score
    assert len(pngs) >= 8
    for png in pngs:
        assert png.startswith(PNG_MAGIC)
    Image.open(io.BytesIO(pngs[0])).verify()
    videos = _data_uris(text, "video/mp4")
    assert len(videos) == 1 and videos[0] == (run / "videos" / "episode0.mp4").read_bytes()
    for needle in (
        "losses/act",
        "accuracy/obs",
        "Pendulum-v1",
        "behaviour",
        "random",
        "plan_ms_per_step",
        "0 = random",
    ):
        assert needle in text
    assert "1 unreadable line(s)" in text
    # the plan audit of the planner's evaluation, with its interval
    assert "123.2 vs 101.5 (21.75 [11.5, 32]; correlation 0.88)" in text
    # No leftover temporary file from the atomic write.
    assert [p.name for p in run.glob(".report.html*")] == []


def test_missing_parts_become_notes(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    text = write_report(run).read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert text.count("Not available") >= len(SECTIONS)
    assert "metrics.jsonl not found" in text and "eval.json not found" in text


def test_corrupt_and_partial_parts(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", video=False)
    (run / "config.json").write_text("{not json")
    info = json.loads((run / runs.DATASET_FILE).read_text())
    (run / runs.DATASET_FILE).write_text(json.dumps({**info, "discretization_error": "oops"}))
    (run / "eval" / "eval_random.json").unlink()
    ev = json.loads((run / "eval" / "eval.json").read_text())
    for key in ("normalized_score", "normalized_score_ci95", "reference"):
        del ev[key]  # the report computes the score from returns and the dataset's references
    (run / "eval" / "eval.json").write_text(json.dumps(ev))
    out = write_report(run, out=tmp_path / "elsewhere" / "r.html")
    text = out.read_text()
    assert "config.json could not be read" in text
    assert "dataset.json has no discretization_error" in text
    assert "eval/eval_random.json not found" in text
    assert "no videos/*.mp4" in text
    expected = 100 * (np.mean(ev["returns"]) + 10) / 110
    assert f"{expected:.4g}" in text


def test_missing_run_dir_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(TTError, match="no such run folder"):
        write_report(tmp_path / "nope")


def _chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        if os.environ.get("TT_SKIP_BROWSER") == "1":
            pytest.skip("TT_SKIP_BROWSER=1 and chromium is not installed")
        pytest.fail(
            "headless Chromium is needed for the report browser test: install it with "
            "`sudo apt-get install -y chromium` (Debian/Ubuntu), or set TT_SKIP_BROWSER=1 to skip"
        )
    return path


def _chromium_args(exe: str, profile: Path) -> list[str]:
    return [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}",
    ]


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    exe = _chromium()
    run = _make_run(tmp_path / "run")
    report = write_report(run)
    url = report.resolve().as_uri()
    base = _chromium_args(exe, tmp_path / "profile")
    dom = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r"<body([^>]*)>", dom.stdout)
    assert m, f"no <body> in the dumped DOM; stderr: {dom.stderr[-2000:]}"
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1)))
    assert attrs.get("report-script") == "ok", attrs
    assert attrs.get("js-errors") == "0", attrs
    assert int(attrs["images-total"]) >= 8, attrs
    assert attrs["images-loaded"] == attrs["images-total"], attrs
    assert "video-error" not in attrs, attrs
    assert attrs.get("video-ready") == "1", attrs
    assert attrs.get("video-width") == "64", attrs

    shot = tmp_path / "report.png"
    res = subprocess.run(
        [*base, "--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG_MAGIC)
    target = os.environ.get("TT_REPORT_SCREENSHOT")
    if target:  # lets `make` or a person keep the screenshot for the README
        shutil.copyfile(shot, target)


def test_recorded_total_time_is_not_added_to_the_phases(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", video=False)
    (run / "phases.json").write_text(
        json.dumps({"train_s": 100.0, "eval_s": 50.0, "total_s": 180.0})
    )
    text = write_report(run).read_text()
    assert "3.0 min" in text  # total_s, not 330 s
    assert "330 s" not in text and "330.0 s" not in text


def test_discretization_dims_are_named_with_the_goal_last() -> None:
    """A goal run's discretizer: per-step observation, action, reward, value, then the goal."""
    from trajectory_transformer.evaluation.report.sections import _dim_names

    pointmaze = {"observation_dim": 8, "action_dim": 2}  # the env's observation, goal included
    assert _dim_names(pointmaze, 12, goal_dim=2) == [
        *(f"obs{i}" for i in range(6)), "act0", "act1", "reward", "value", "goal0", "goal1",
    ]  # fmt: skip
    assert _dim_names(pointmaze, 12)[-2:] == ["reward", "value"]
    assert _dim_names(pointmaze, 7) == [f"d{i}" for i in range(7)]


def test_a_goal_run_leads_with_its_success_rate(tmp_path: Path) -> None:
    """Goal episodes end at success, so their returns are not a score: the headline is success."""
    run = _make_run(tmp_path / "run", video=False)
    result = RolloutResult(
        returns=np.ones(4),
        lengths=np.array([30, 40, 300, 50], np.int64),
        terminated=np.zeros(4, bool),
        seeds=np.arange(4, dtype=np.int64),
        n_envs=4,
        wall_s=10.0,
        env_s=1.0,
        agent_s=8.0,
        agent_calls=300,
        success_step=np.array([30, 40, -1, 50], np.int64),
    )
    (run / "eval" / "eval.json").write_text(json.dumps(summarize(result, Reference(0, 1, "x"))))
    text = write_report(run).read_text()
    kpis = text.split('<div class="kpis">', 1)[1].split("</div></div></div>", 1)[0]
    assert "TT success rate" in kpis and "75%" in kpis and "Wilson" in kpis
    assert "TT normalized score" not in kpis
    assert "behaviour normalized score" in kpis  # a policy without success keeps its score
