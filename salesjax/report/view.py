"""What every part of the report shares besides the inputs: the worlds, models, orderings and period."""

from typing import NamedTuple

import numpy as np
import pandas as pd

from salesjax.config import Config
from salesjax.report.inputs import Inputs

NEURAL = ("lstm_ensemble", "lstm", "thesis")


class View(NamedTuple):
    """What every section needs to know besides the inputs."""

    cfg: Config
    worlds: list[str]  # the target world first, then the other one when the input has it
    models: list[str]  # in the order of the forecasts table
    headline: str  # the model the figures and findings follow (the seed ensemble)
    best_baseline: str  # lowest store x category MASE on the target among the non-LSTM models
    stores: list[str]  # by training revenue, largest first
    categories: list[str]


def _ranked(panel: pd.DataFrame, cfg: Config, key: str) -> list[str]:
    """Values of `key` ordered by training revenue of the target world, largest first."""
    train = panel[panel["month"] <= cfg.split.train_end]
    totals = train.groupby(key)[cfg.data.target].sum().sort_values(ascending=False, kind="stable")
    return [str(k) for k in totals.index]


def best_baseline(table: dict) -> str:
    """The non-LSTM model with the lowest MASE in one world's {model: metrics} (ties: first listed)."""
    baselines = [m for m in table if m not in NEURAL and np.isfinite(table[m].get("mase", np.nan))]
    return min(baselines, key=lambda m: table[m]["mase"]) if baselines else ""


def make_view(cfg: Config, inputs: Inputs) -> View:
    """The worlds, models and orderings every section shares."""
    worlds = [w for w in ("observed", "counterfactual") if w in inputs.panel.columns]
    models = [str(m) for m in pd.unique(inputs.forecasts["model"])]
    return View(
        cfg=cfg,
        worlds=sorted(worlds, key=lambda w: w != cfg.data.target),
        models=models,
        headline=next((m for m in NEURAL[:2] if m in models), models[0]),
        best_baseline=best_baseline(inputs.metrics.get(cfg.data.target, {})),
        stores=_ranked(inputs.panel, cfg, "store"),
        categories=_ranked(inputs.panel, cfg, "category"),
    )


def _months_label(months: list[str]) -> str:
    """'2020' for a whole calendar year, else 'first..last'."""
    whole = len(months) == 12 and months[0].endswith("-01") and months[0][:4] == months[-1][:4]
    return months[0][:4] if whole else f"{months[0]}..{months[-1]}"


def period_label(cfg: Config) -> str:
    """The test period as a short label."""
    return _months_label(
        [str(m) for m in pd.period_range(cfg.split.test_start, cfg.split.test_end, freq="M")]
    )
