"""The Hub with its API stubbed (no network here): `tt push` uploads policy.tt + a model card that
the run's own files fill in, `TTPolicy.from_pretrained` downloads through huggingface_hub, every
Hub failure is one line; shipped policies load by name offline."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import LocalEntryNotFoundError

import trajectory_transformer as tt
from trajectory_transformer.cli import main
from trajectory_transformer.errors import TTError
from trajectory_transformer.share import hub, pretrained

EVAL = [
    "eval.episodes=2",
    "eval.n_envs=2",
    "eval.max_episode_steps=5",
    "eval.device=cpu",
    "eval.progress=false",
    "plan.context=2",
    "plan.beam_width=4",
    "plan.horizon=2",
]


@pytest.fixture(scope="module")
def evaluated_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("hub") / "pendulum-tiny"
    shutil.copytree(tiny_run, run)
    tt.evaluate(run, EVAL)
    return run


class FakeHub:
    """Records what HfApi would have sent; keeps a copy of the uploaded folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.repo: Path = tmp_path / "remote"
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs: Any) -> None:
        self.calls.append(("upload_folder", kwargs))
        shutil.copytree(kwargs["folder_path"], self.repo)


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub(tmp_path)
    monkeypatch.setattr(HfApi, "create_repo", fake.create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake.upload_folder)
    return fake


def test_push_uploads_the_policy_and_a_card_from_the_run(
    evaluated_run: Path, fake_hub: FakeHub
) -> None:
    url = hub.push(evaluated_run, "someone/pendulum-tt")
    assert url == "https://huggingface.co/someone/pendulum-tt"
    assert [c[0] for c in fake_hub.calls] == ["create_repo", "upload_folder"]
    assert fake_hub.calls[1][1]["repo_id"] == "someone/pendulum-tt"
    assert sorted(p.name for p in fake_hub.repo.iterdir()) == ["README.md", "policy.tt"]
    policy = tt.TTPolicy.load(fake_hub.repo / "policy.tt", device="cpu", context=2)
    assert policy.info is not None and policy.info.env_id == "Pendulum-v1"

    card = (fake_hub.repo / "README.md").read_text()
    summary = tt.load_run(evaluated_run)
    info = summary.info
    assert card.startswith("---\nlibrary_name: trajectory-transformer\n")
    assert f"- dataset: `{info.dataset}`" in card  # the dataset id and how it was made
    assert "tt collect collect.env=Pendulum-v1 collect.episodes=6" in card
    assert "collect.policy=expert" in card
    assert "train.seed=0" in card  # the seed
    assert "| plan.beam_width |" in card and "| plan.horizon |" in card  # planner settings
    import json

    result = json.loads((evaluated_run / "eval" / "eval.json").read_text())
    low, high = result["normalized_score_ci95"]
    score = f"{result['normalized_score']:.1f} [{low:.1f}, {high:.1f}]"
    assert f"| planner (plan.mode=beam) | 2 | {score} |" in card  # score with its interval
    assert "tt train data.dataset=tt/pendulum/expert-v0 data.n_bins=16" in card  # reproduce
    assert "train.max_steps=3" in card
    assert "tt eval runs/pendulum-tiny plan.horizon=2 plan.beam_width=4 plan.context=2" in card
    assert 'tt.TTPolicy.from_pretrained("someone/pendulum-tt")' in card


def test_card_of_a_run_never_evaluated_says_so(tiny_run: Path) -> None:
    from trajectory_transformer.share.card import model_card

    assert "Not evaluated yet" in model_card(tiny_run, "u/n")


def test_push_failures_are_one_line(
    evaluated_run: Path, monkeypatch: pytest.MonkeyPatch, fake_hub: FakeHub
) -> None:
    def refuse(api: HfApi, **kwargs: Any) -> None:
        raise huggingface_hub.errors.LocalTokenNotFoundError("Token is required")

    monkeypatch.setattr(HfApi, "upload_folder", refuse)
    with pytest.raises(
        TTError, match="pushing to 'u/n' on the Hugging Face Hub failed: not logged in"
    ):
        hub.push(evaluated_run, "u/n")
    with pytest.raises(TTError, match="give a Hub repository id as user/name"):
        hub.push(evaluated_run, "no-slash")


def test_tt_push_command(
    evaluated_run: Path, fake_hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", str(evaluated_run), "--repo", "someone/p"]) == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/someone/p"
    assert main(["push", str(evaluated_run)]) == 2
    assert "tt push: error: tt push needs --repo user/name" in capsys.readouterr().err
    folder = tmp_path / "local"
    assert main(["push", str(evaluated_run), "--folder", str(folder)]) == 0
    assert (folder / "policy.tt").is_file() and (folder / "README.md").is_file()


def test_from_pretrained_downloads_through_huggingface_hub(
    evaluated_run: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub.push(evaluated_run, "someone/pendulum-tt")
    asked: list[dict[str, Any]] = []

    def download(**kwargs: Any) -> str:  # huggingface_hub's cache, stubbed
        asked.append(kwargs)
        cached = tmp_path / "cache" / kwargs["repo_id"] / kwargs["filename"]
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fake_hub.repo / kwargs["filename"], cached)
        return str(cached)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    policy = tt.TTPolicy.from_pretrained(
        "someone/pendulum-tt", revision="v1", device="cpu", context=2, mode="greedy"
    )
    assert asked[0]["repo_id"] == "someone/pendulum-tt" and asked[0]["filename"] == "policy.tt"
    assert asked[0]["revision"] == "v1"
    want = tt.TTPolicy.load(evaluated_run, device="cpu", context=2, mode="greedy")
    obs = np.array([1.0, 0.0, 0.5], np.float32)
    np.testing.assert_array_equal(policy.act(obs), want.act(obs))


def test_from_pretrained_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(**kwargs: Any) -> str:
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(TTError, match="cannot be reached and the file is not in the local cache"):
        tt.TTPolicy.from_pretrained("someone/missing")
    with pytest.raises(TTError, match="not a Hub repository id"):
        tt.TTPolicy.from_pretrained("a/b/c")


def test_shipped_policies_are_a_folder_registry(
    evaluated_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "shipped")
    hub.write_policy_folder(evaluated_run, tmp_path / "shipped" / "tiny", "tt/tiny")
    assert pretrained.names() == ["tt/tiny"]
    policy = tt.TTPolicy.from_pretrained("tt/tiny", device="cpu", context=2)
    assert policy.run_dir == tmp_path / "shipped" / "tiny" / "policy.tt"
    with pytest.raises(TTError, match=r"'tt/nope': no such shipped policy; shipped: tt/tiny"):
        tt.TTPolicy.from_pretrained("tt/nope")


@pytest.mark.parametrize("name", pretrained.names())
def test_every_shipped_policy_loads_offline_and_acts(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(**kwargs: Any) -> str:
        raise AssertionError("a shipped policy must not touch the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    policy = tt.TTPolicy.from_pretrained(name, device="cpu", mode="greedy")
    card = pretrained.card_path(name).read_text()
    assert "tt train" in card and "## Evaluation" in card  # says how it was trained and scored
    assert policy.info is not None and policy.info.env_id
    env = gym.make(policy.info.env_id)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, reward, *_ = env.step(policy.act(obs))
        policy.observe_reward(reward)
    env.close()


def test_the_quickstart_policy_is_shipped() -> None:
    assert "tt/pendulum-quickstart" in pretrained.names()
    size = pretrained.policy_path("tt/pendulum-quickstart").stat().st_size
    assert size < 2_000_000


def test_push_is_on_the_facade_and_resolve_takes_local_paths(
    evaluated_run: Path, tmp_path: Path
) -> None:
    assert tt.push is hub.push
    folder = hub.write_policy_folder(evaluated_run, tmp_path / "local", "u/n")
    assert hub.resolve(str(folder)) == folder / "policy.tt"  # a folder laid out like a repo
    assert hub.resolve(str(folder / "policy.tt")) == folder / "policy.tt"
    with pytest.raises(TTError, match=r"no policy\.tt in this folder"):
        hub.resolve(str(tmp_path))
