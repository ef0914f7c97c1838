"""Policies shipped inside the package, loadable by name offline: `tt/<name>`.

Each is a folder `share/shipped/<name>/` with the layout of a Hub repository (`policy.tt` and its
model card `README.md`, which says how it was trained), so shipping a policy is copying what
`tt push RUN --folder src/trajectory_transformer/share/shipped/<name>` writes. The folder is the
registry: a name is shipped when its folder holds a `policy.tt`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TTError

__all__ = ["NAMESPACE", "SHIPPED_DIR", "card_path", "names", "policy_path"]

NAMESPACE = "tt/"
"""Names of shipped policies start with this (`tt/pendulum-quickstart`)."""
SHIPPED_DIR = Path(__file__).parent / "shipped"


def names() -> list[str]:
    """Every shipped policy's name, sorted."""
    if not SHIPPED_DIR.is_dir():
        return []
    found = (p.name for p in SHIPPED_DIR.iterdir() if (p / "policy.tt").is_file())
    return sorted(NAMESPACE + name for name in found)


def _folder(name: str) -> Path:
    slug = name.removeprefix(NAMESPACE)
    folder = SHIPPED_DIR / slug
    if "/" in slug or slug in ("", ".", "..") or not (folder / "policy.tt").is_file():
        raise TTError(
            f"{name!r}: no such shipped policy; shipped: {', '.join(names()) or 'none'} "
            "(a Hub repository is named user/name)"
        )
    return folder


def policy_path(name: str) -> Path:
    """The `policy.tt` of a shipped policy; an unknown name is a TTError listing the shipped ones."""
    return _folder(name) / "policy.tt"


def card_path(name: str) -> Path:
    """The model card (README.md) of a shipped policy."""
    return _folder(name) / "README.md"
