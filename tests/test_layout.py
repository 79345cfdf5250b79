"""The design card's layout is present and the layer contract is enforced by import-linter."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_top_level_layout_matches_design_card() -> None:
    for name in ("api", "scheduler", "quotas", "k8s", "charts", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("pyproject.toml", "Makefile", "README.md"):
        assert (ROOT / name).is_file(), name


def test_layer_contract_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"cli", "api", "scheduler", "store | k8s", "quotas"' in text
