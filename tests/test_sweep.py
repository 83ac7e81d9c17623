"""The vmapped sweep: every member scores as a run trained alone, and the choice is the hold-out argmin."""

import json

import numpy as np
import pytest
import yaml
from conftest import make_panel, tiny_params

from salesjax import features, stages, sweep, train
from salesjax.config import parse_config

LEARNING_RATES, WEIGHT_DECAYS, SEEDS = [1.0e-3, 1.0e-2], [1.0e-2], [0, 1]  # the first is the config's


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """prepare + sweep on the tiny panel; (root, config, prepared panel, calendar)."""
    root = tmp_path_factory.mktemp("sweep")
    make_panel().to_csv(root / "panel.csv", index=False)
    params = tiny_params()
    params["sweep"].update(learning_rates=LEARNING_RATES, weight_decays=WEIGHT_DECAYS, seeds=SEEDS)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cfg = parse_config(params)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        stages.prepare(cfg)
        sweep.run_sweep(cfg)
        panel, calendar = stages.load_prepared(cfg)
    return root, cfg, panel, calendar


@pytest.fixture(scope="module")
def results(run):
    """reports/sweep.json of the run."""
    return json.loads((run[0] / "reports/sweep.json").read_text())


def _windows(cfg, panel, calendar):
    """(training history, availability, fit windows, hold-out windows) of the tiny run."""
    history, available = stages.training_history(cfg, panel)
    fit_windows, hold_out = train.validation_windows(
        history, available, calendar, panel.store, panel.category, cfg.model, cfg.train.validation_months
    )
    return history, available, fit_windows, hold_out


def test_grid_order_and_size(results):
    members = list(results["members"].values())
    assert len(members) == len(LEARNING_RATES) * len(WEIGHT_DECAYS) * len(SEEDS)
    assert [(m["learning_rate"], m["weight_decay"], m["seed"]) for m in members[:2]] == [
        (1.0e-3, 1.0e-2, 0),
        (1.0e-3, 1.0e-2, 1),
    ]


def test_each_member_equals_a_run_trained_alone(run, results):
    _, cfg, panel, calendar = run
    _, _, fit_windows, hold_out = _windows(cfg, panel, calendar)
    shapes = (features.num_features(calendar.shape[1]), len(panel.stores), len(panel.categories))
    for member in results["members"].values():
        alone = train.fit(
            cfg.model,
            cfg.train,
            fit_windows,
            shapes,
            [member["seed"]],
            val=hold_out,
            hypers=[(member["learning_rate"], member["weight_decay"])],
        )
        loss, epoch = sweep.member_scores(alone)
        assert member["val_loss"] == pytest.approx(float(loss[0]), rel=1e-4)
        assert member["epoch"] == int(epoch[0])


def test_sweep_windows_are_the_early_stopping_fit_of_train_forecaster(run, results):
    """The member with the config's (learning rate, weight decay, seed) scores as train_forecaster's."""
    _, cfg, panel, calendar = run
    history, available, _, _ = _windows(cfg, panel, calendar)
    num_ids = (len(panel.stores), len(panel.categories))
    trained = train.train_forecaster(
        history, available, calendar, panel.store, panel.category, num_ids, cfg.model, cfg.train, [0]
    )
    loss, epoch = sweep.member_scores(trained.validation)
    member = results["members"]["member_0"]
    assert (member["learning_rate"], member["weight_decay"]) == (
        cfg.train.learning_rate,
        cfg.train.weight_decay,
    )
    assert member["val_loss"] == pytest.approx(float(loss[0]), rel=1e-4)
    assert member["epoch"] == int(epoch[0])


def test_chosen_member_is_the_validation_argmin(results):
    losses = [m["val_loss"] for m in results["members"].values()]
    chosen = results["chosen"]
    assert chosen["member"] == int(np.argmin(losses))
    assert chosen == {"member": chosen["member"]} | results["members"][f"member_{chosen['member']}"]
    assert not any("test" in key for key in chosen)
