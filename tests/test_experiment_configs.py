"""Every experiment YAML parses and instantiates through the real CLI (no training)."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def is_recipe(path: Path) -> bool:
    """A `gan-writer reproduce` recipe (top-level `runs` and `tables`; tests/test_reproduce.py), not a stage config."""
    import yaml

    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return "runs" in cfg and "tables" in cfg


CONFIGS = sorted(p for p in (REPO / "experiments").rglob("*.yaml") if "oracle" not in p.parts and not is_recipe(p))
RECIPES = sorted(p for p in (REPO / "experiments").rglob("*.yaml") if is_recipe(p))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "experiments")))
def test_config_parses(config, capsys, shared_data):
    from gan_writer.cli import main

    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(config), "--print_config"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: gan_writer.systems." in printed
    assert "class_path: gan_writer.data." in printed or "class_path: gan_writer.multimodal.data." in printed


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(REPO / "experiments")))
def test_every_run_of_a_recipe_parses_with_its_overrides(recipe, capsys, shared_data, monkeypatch, tmp_path):
    """Each `gan-writer fit` a recipe would launch (config + overrides, first seed) is accepted by the CLI."""
    from gan_writer.cli import main
    from gan_writer.commands.reproduce import fit_commands, load_recipe, run_dir

    monkeypatch.chdir(REPO)
    loaded = load_recipe(recipe.parent.name, name=recipe.stem)
    seen = set()
    for name, seed, argv in fit_commands(loaded, tmp_path / "runs"):
        if name in seen:
            continue
        seen.add(name)
        with pytest.raises(SystemExit) as done:
            main([*argv, "--print_config"])
        assert done.value.code == 0, (name, argv)
        printed = capsys.readouterr().out
        expected = run_dir(loaded, tmp_path / "runs", name, seed).relative_to(tmp_path / "runs" / f"seed_{seed}")
        assert f"name: {expected}" in printed, name  # the run lands where the tables look for it
