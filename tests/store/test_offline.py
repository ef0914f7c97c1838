"""A remote Minari id without network fails at once, with a hint that runs here."""

from __future__ import annotations

import shlex
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from trajectory_transformer import store
from trajectory_transformer.cli import parse_args
from trajectory_transformer.errors import TTError
from trajectory_transformer.sources.hints import collect_hint
from trajectory_transformer.sources.recipe_catalog import parse_recipe


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connect fails at once (as on a machine without network); records the targets."""
    tried: list[Any] = []

    def refuse(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        tried.append(address)
        raise socket.gaierror(-2, "Name or service not known")

    for key in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "MINARI_REMOTE", "HF_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tried


def test_offline_remote_id_fails_before_any_download(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    import minari.storage.hosting

    downloads: list[str] = []
    monkeypatch.setattr(
        minari.storage.hosting, "download_dataset", lambda *a, **k: downloads.append(a[0])
    )
    start = time.monotonic()
    with pytest.raises(TTError) as err:
        store.load_minari("mujoco/hopper/medium-v0")
    assert time.monotonic() - start < 5  # no retries
    assert downloads == [] and no_network == [("huggingface.co", 443)]
    msg = str(err.value)
    assert "\n" not in msg and "no network: huggingface.co:443 cannot be reached" in msg
    assert msg.endswith(
        "make a local one with: tt collect --recipe hopper-medium-quick, then "
        "data.dataset=tt/hopper/medium-quick-v1"
    )
    assert list(minari_tmp.iterdir()) == []  # nothing staged


def test_probe_follows_offline_mode_proxy_and_endpoint(
    monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert store.network_problem() == "HF_HUB_OFFLINE is set" and no_network == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org:8443")
    assert store.network_problem() is not None and no_network[-1] == ("hub.example.org", 8443)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    assert store.network_problem() is not None and no_network[-1] == ("proxy.local", 3128)
    monkeypatch.setenv("MINARI_REMOTE", "s3://elsewhere")  # unknown remote: Minari itself tries
    assert store.network_problem() is None


def test_probe_passes_when_the_host_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    class Conn:
        def close(self) -> None:
            pass

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: Conn())
    assert store.network_problem() is None


@pytest.mark.parametrize(
    ("remote", "recipe", "local"),
    [
        ("mujoco/hopper/medium-v0", "hopper-medium-quick", "tt/hopper/medium-quick-v1"),
        ("mujoco/walker2d/medium-replay-v0", "walker2d-medium-replay-quick",
         "tt/walker2d/medium-replay-quick-v1"),
        ("mujoco/halfcheetah/simple-v0", "halfcheetah-medium-quick",
         "tt/halfcheetah/medium-quick-v1"),
        ("D4RL/pointmaze/large-dense-v2", "pointmaze-large-dense-quick",
         "tt/pointmaze/large-dense-quick-v0"),
    ],
)  # fmt: skip
def test_remote_ids_hint_the_recipe_that_makes_a_local_stand_in(
    remote: str, recipe: str, local: str
) -> None:
    hint = collect_hint(remote)
    assert hint.startswith(f"tt collect --recipe {recipe}, then data.dataset={local}")
    command = hint.split(",")[0]
    assert parse_args(shlex.split(command)[1:]).recipe == recipe  # a command `tt` accepts
    if not recipe.startswith("pointmaze"):
        assert parse_recipe(recipe)  # a recipe that exists
    assert collect_hint(local) == f"tt collect --recipe {recipe}"  # it writes the id it names


def test_other_remote_ids_collect_under_tt_with_policies_that_exist() -> None:
    hint = collect_hint("mujoco/invertedpendulum/medium-v0")
    assert hint == (
        "tt collect collect.env=InvertedPendulum-v5 collect.policy=<random|sb3:ALGO:PATH> "
        "collect.dataset_id=tt/invertedpendulum/medium-v0, then "
        "data.dataset=tt/invertedpendulum/medium-v0"
    )
    assert "expert" not in hint  # no scripted expert for InvertedPendulum
