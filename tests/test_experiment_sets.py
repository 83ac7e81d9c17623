"""Named experiment sets become `dvc exp run -S` overrides that DVC applies to exactly the intended params."""

import shutil

import pytest
import yaml
from conftest import ROOT
from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

from salesjax import cli, experiment_sets
from salesjax.config import load_config
from salesjax.errors import SalesjaxError

SETS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))


@pytest.fixture(autouse=True)
def in_repository(monkeypatch):
    """Experiment sets are read from experiments/ under the working directory."""
    monkeypatch.chdir(ROOT)


def _dvc_params(tmp_path, overrides: list[str]):
    """params.yaml after DVC's own `-S` handling of `overrides` (pairs without the -S flags), as a Config."""
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply_overrides(path, overrides)
    return load_config(path)


def test_the_required_sets_exist():
    assert {"default", "thesis", "sweep"} <= set(SETS)


@pytest.mark.parametrize("name", [s for s in SETS if s != "sweep"])
def test_dvc_applies_a_set_as_load_config_does(tmp_path, name):
    pairs = experiment_sets.overrides(name)[1::2]
    assert _dvc_params(tmp_path, pairs) == load_config(experiment=name)


def test_every_grid_point_of_the_sweep_set_is_valid(tmp_path):
    pairs = experiment_sets.overrides("sweep")[1::2]
    points = get_hydra_sweeps({"params.yaml": pairs})
    assert len(points) == 8  # hidden_size x context x learning_rate
    configs = [_dvc_params(tmp_path, point["params.yaml"]) for point in points]
    assert {(c.model.hidden_size, c.model.context, c.train.learning_rate) for c in configs} == {
        (h, c, lr) for h in (16, 32) for c in (6, 12) for lr in (1.0e-3, 3.0e-3)
    }
    assert all(c.train.ensemble_size == 1 for c in configs)


def test_sets_name_only_existing_params():
    params = experiment_sets.flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for name in SETS:
        fixed, grid = experiment_sets.read_set(name)
        assert set(fixed) | set(grid) <= set(params), name


def test_values_render_without_shell_quoting():
    assert experiment_sets.render([0.1, 0.5, 0.9], "q") == "[0.1,0.5,0.9]"
    assert experiment_sets.render(None, "p") == "null"
    assert experiment_sets.render("2019-01", "s") == "2019-01"
    assert experiment_sets.render("12", "s") == "'12'"  # a string that Hydra would read as an int
    with pytest.raises(SalesjaxError, match="cannot be passed unquoted"):
        experiment_sets.render("two words", "s")


def test_cli_prints_one_override_a_line(capsys):
    assert cli.main(["experiment", "thesis"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "-S model.hidden_size=50" in lines and "-S model.quantiles=[0.5]" in lines
    assert all(line.startswith("-S ") and " " not in line[3:] for line in lines)
    assert cli.main(["experiment", "default"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_unknown_set_is_a_one_line_error(capsys):
    assert cli.main(["experiment", "nope"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: no experiment set 'nope' (experiments/nope.yaml does not exist)"
    )
