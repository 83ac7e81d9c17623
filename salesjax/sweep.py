"""In-process hyperparameter sweep: a same-shape grid trained as one vmapped program, chosen on the hold-out.

Every (learning rate, weight decay, seed) point of the `sweep` grid is one member of a single
`train.fit` call: the optimiser's peak learning rate and weight decay are injected hyperparameters,
so the members share one compiled step and differ only in their optimiser state. The fit and hold-out
windows are the ones `train.train_forecaster` uses for its early-stopping fit (the last
train.validation_months training months held out, the scaler fitted on the months before them), so
a member's score equals that of a run trained alone with the same (seed, learning rate, weight decay)
(tests/test_sweep.py). The chosen member has the lowest validation loss; no test month is read.
"""

import itertools
import logging
import time
from typing import NamedTuple

import numpy as np

from salesjax import distributed, features, train
from salesjax.config import Config, SweepConfig
from salesjax.stages import REPORTS, load_prepared, panel_covariates, training_history, write_json

logger = logging.getLogger(__name__)


class Member(NamedTuple):
    """One grid point."""

    learning_rate: float
    weight_decay: float
    seed: int


def grid(cfg: SweepConfig) -> list[Member]:
    """Every (learning rate, weight decay, seed) combination, seeds varying fastest."""
    return [Member(*point) for point in itertools.product(cfg.learning_rates, cfg.weight_decays, cfg.seeds)]


def member_scores(result: train.FitResult) -> tuple[np.ndarray, np.ndarray]:
    """Each member's best validation loss f32[K] and the 1-based epoch i32[K] it was reached at."""
    return result.val_loss[result.epochs - 1, np.arange(len(result.epochs))], result.epochs


def summary(members: list[Member], losses: np.ndarray, epochs: np.ndarray) -> dict:
    """sweep.json: every member's hyperparameters and score, and the member with the lowest val_loss."""
    rows = {
        f"member_{k}": m._asdict() | {"val_loss": float(f"{losses[k]:.6g}"), "epoch": int(epochs[k])}
        for k, m in enumerate(members)
    }
    chosen = int(np.argmin(losses))
    return {"members": rows, "chosen": {"member": chosen} | rows[f"member_{chosen}"]}


def run_sweep(cfg: Config) -> None:
    """Train the sweep grid as one vmapped program on the validation hold-out; write reports/sweep.json."""
    panel, calendar = load_prepared(cfg)
    history, available = training_history(cfg, panel)
    ids, hold = (panel.store, panel.category), cfg.train.validation_months
    fit_windows, hold_out = train.validation_windows(
        history, available, calendar, *ids, cfg.model, hold, panel_covariates(cfg, panel)
    )
    members = grid(cfg.sweep)
    width = features.num_features(calendar.shape[1], len(panel.covariate_names))
    shapes = (width, len(panel.stores), len(panel.categories))
    start = time.perf_counter()
    result = train.fit(
        cfg.model,
        cfg.train,
        fit_windows,
        shapes,
        [m.seed for m in members],
        val=hold_out,
        hypers=[(m.learning_rate, m.weight_decay) for m in members],
        label="sweep",
    )
    losses, epochs = member_scores(result)
    results = summary(members, losses, epochs)
    if distributed.is_main():
        write_json(results, REPORTS / "sweep.json")
    c = results["chosen"]
    logger.info(
        f"sweep: {len(members)} member(s) in one program, {time.perf_counter() - start:.1f} s; chosen member "
        f"{c['member']} (learning_rate {c['learning_rate']:g}, weight_decay {c['weight_decay']:g}, "
        f"seed {c['seed']}): val_loss {c['val_loss']:.4f} at epoch {c['epoch']}"
    )
