"""Rolling-origin backtest: every forecaster re-fitted at several forecast origins and scored the same way.

An origin is the first forecast month o (`backtest.origins`). Its training months are
split.train_start..o-1 and its test months o..min(o + model.horizon - 1, split.test_end). The panel's
arrays are sliced to the training months before anything is fitted, so nothing at or after the origin
can reach the scaler, the early stopping, the refit or the baselines (tests/test_backtest.py poisons
those months and asserts identical forecasts).

Two DVC stages, so that each is rerun only by what it depends on:
- `backtest_baselines` (`run_backtest_baselines`): the statsforecast models of `salesjax.baselines` at
  every origin, saved to artifacts/backtest/baselines.msgpack. It depends on the data, the split,
  data.target, evaluate.season_length, baselines.engine/n_jobs and backtest.origins, not on the LSTM's
  params (with baselines.engine dask, one Dask cluster serves every origin). Each origin
  is forecast through split.test_end, which serves any model.horizon (a baseline's longer forecast
  begins with its shorter one, bit for bit; tests/test_backtest.py checks the saved prefix). The origin
  split.test_start, when the training months run up to it, has the evaluation's training and test
  months: it takes the `baselines` stage's fit instead of fitting the same thing again. A stage of its
  own (not folded into `baselines`) so that changing the origins leaves the evaluation alone. Its
  `baselines.n_jobs` > 1 forks worker processes; the stage never starts JAX, and forking a process whose
  JAX runtime has started can deadlock.
- `backtest` (`run_backtest`): the LSTMs, the single model (K=1, seed train.seed) and a seed ensemble of
  `backtest.ensemble_size` members, both via `train.train_forecaster`. Its hold-out is the last
  train.validation_months of the origin's training months, but at most half of them: an early origin
  (12 training months on the default data) still keeps as many months before the hold-out as in it.
  Then every forecaster is scored: `evaluate.score_levels` against the observed world, and against the
  counterfactual world where it differs from the observed one in the origin's test months (before the
  disruption the two are the same world). MASE scales come from the origin's own training months.
"""

import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from flax import serialization
from matplotlib.figure import Figure

from salesjax import artifacts, baselines, evaluate, features, train
from salesjax.config import Config, SplitConfig, TrainConfig
from salesjax.data.panel import Panel
from salesjax.errors import SalesjaxError
from salesjax.plots import colour, save  # importing plots selects the Agg backend
from salesjax.stages import (
    ARTIFACTS,
    BASELINES,
    QUANTILES,
    REPORTS,
    fit_baselines,
    headline_metrics,
    load_prepared,
    panel_covariates,
    write_json,
)

logger = logging.getLogger(__name__)
OUT = REPORTS / "backtest"
BASELINE_FORECASTS = ARTIFACTS / "backtest" / "baselines.msgpack"


class Origin(NamedTuple):
    """One forecast origin: its label and its months as positions on the panel's month axis."""

    label: str  # YYYY-MM of the first forecast month
    start: int  # position of the first forecast month = number of training months
    stop: int  # one past the last test month


def baseline_origins(cfg: Config, panel: Panel) -> list[Origin]:
    """The configured origins, each tested through split.test_end: the months its baselines forecast."""
    last = panel.index(cfg.split.months()[3]) + 1
    return [Origin(label, panel.index(pd.Period(label, "M")), last) for label in cfg.backtest.origins]


def origins(cfg: Config, panel: Panel) -> list[Origin]:
    """The configured origins; each tests model.horizon months, cut at split.test_end."""
    out = [o._replace(stop=min(o.start + cfg.model.horizon, o.stop)) for o in baseline_origins(cfg, panel)]
    for origin in out:
        if not panel.available[:, origin.start : origin.stop].any():  # after the data: nothing to score
            raise SalesjaxError(
                f"backtest.origins: {origin.label} has no observed test month; choose origins in the data"
            )
    return out


def training_months(cfg: Config, panel: Panel, origin: Origin) -> tuple[np.ndarray, np.ndarray]:
    """Revenue f64[S,T0] (data.target world) and availability bool[S,T0] of the months before `origin`."""
    return panel.worlds[cfg.data.target][:, : origin.start], panel.available[:, : origin.start]


def baseline_forecasts(
    cfg: Config, panel: Panel, history: np.ndarray, available: np.ndarray, n_test: int
) -> dict[str, evaluate.Forecast]:
    """`fit_baselines` as forecasts to score (the backtest stage reads them from the saved artifact)."""
    fcs = fit_baselines(cfg, panel, history, available, n_test)
    return {name: evaluate.Forecast(fcs[name], QUANTILES) for name in baselines.BASELINES}


def origin_baselines(cfg: Config, panel: Panel, origin: Origin) -> dict[str, np.ndarray]:
    """Each baseline's f64[S,stop-start,Q] forecast (revenue) of `origin`, fitted on the months before it."""
    return fit_baselines(cfg, panel, *training_months(cfg, panel, origin), origin.stop - origin.start)


def reuses_evaluation(split: SplitConfig, origin: Origin) -> bool:
    """Whether `origin` has the evaluation's training and test months, so the evaluation's fit is its fit."""
    _, train_end, test_start, _ = split.months()
    return pd.Period(origin.label, "M") == test_start and train_end + 1 == test_start


def _fit_or_reuse(cfg: Config, panel: Panel, origin: Origin) -> dict[str, np.ndarray]:
    """One origin's baseline forecasts: the evaluation's saved fit where it is the same fit, else fitted."""
    if reuses_evaluation(cfg.split, origin):
        logger.info(f"backtest-baselines: origin {origin.label} taken from {BASELINES}")
        return artifacts.read(BASELINES, "baselines", _restore)
    start = time.perf_counter()
    fit = origin_baselines(cfg, panel, origin)
    logger.info(f"backtest-baselines: origin {origin.label} fitted in {time.perf_counter() - start:.1f} s")
    return fit


def _cluster(cfg: Config) -> contextlib.AbstractContextManager:
    """One Dask client for every origin when baselines.engine is dask (else nothing)."""
    if cfg.baselines.engine == "dask":
        return baselines.dask_client(cfg.baselines.n_jobs)
    return contextlib.nullcontext()


def run_backtest_baselines(cfg: Config) -> None:
    """Forecast every origin with every baseline and save the forecasts for the backtest stage."""
    panel, _ = load_prepared(cfg)
    with _cluster(cfg):
        fits = {o.label: _fit_or_reuse(cfg, panel, o) for o in baseline_origins(cfg, panel)}
    BASELINE_FORECASTS.parent.mkdir(parents=True, exist_ok=True)
    BASELINE_FORECASTS.write_bytes(serialization.msgpack_serialize(fits))


def _restore(path: Path) -> dict:
    """The msgpack dictionary saved at `path`."""
    return serialization.msgpack_restore(path.read_bytes())


def saved_baselines(origin: Origin) -> dict[str, evaluate.Forecast]:
    """The saved baseline forecasts of `origin`, cut to its test months."""
    saved = artifacts.read(BASELINE_FORECASTS, "backtest_baselines", _restore)
    if origin.label not in saved:
        raise SalesjaxError(
            f"{BASELINE_FORECASTS} has no origin {origin.label}: rerun `salesjax backtest-baselines`"
        )
    n_test = origin.stop - origin.start
    return {
        name: evaluate.Forecast(saved[origin.label][name][:, :n_test], QUANTILES)
        for name in baselines.BASELINES
    }


def origin_train_config(cfg: TrainConfig, n_months: int) -> TrainConfig:
    """`cfg` for an origin with `n_months` training months: the hold-out is at most half of them."""
    return dataclasses.replace(cfg, validation_months=min(cfg.validation_months, n_months // 2))


def lstm_forecasts(
    cfg: Config, panel: Panel, calendar: np.ndarray, history: np.ndarray, available: np.ndarray, n_test: int
) -> dict[str, evaluate.Forecast]:
    """The single LSTM's and the seed ensemble's f64[S,n_test,Q] forecasts from f64[S,T0] training months.

    `calendar` is the prepared f32[context + M + horizon, Fc]; only its rows up to the forecast's last
    month are passed on (the calendar is known in advance, but nothing later is needed), and so for the
    panel's covariates.
    """
    n_months = history.shape[1]
    rows = slice(0, cfg.model.context + n_months + cfg.model.horizon)
    calendar = calendar[rows]
    covariates = panel_covariates(cfg, panel)
    covariates = None if covariates is None else covariates[:, rows]
    num_ids = (len(panel.stores), len(panel.categories))
    train_cfg = origin_train_config(cfg.train, n_months)
    seeds = [cfg.train.seed + k for k in range(cfg.backtest.ensemble_size)]
    runs = {"lstm": seeds[:1], "lstm_ensemble": seeds}
    width = features.num_features(calendar.shape[1], len(panel.covariate_names))
    graphdef, _ = train.init_members(cfg.model, (width, *num_ids), seeds[:1])
    data = (history, available, calendar, panel.store, panel.category)
    fits, out = {}, {}
    for name, member_seeds in runs.items():
        key = tuple(member_seeds)
        fits[key] = fits.get(key) or train.train_forecaster(
            *data, num_ids, cfg.model, train_cfg, member_seeds, covariates=covariates
        )
        scaler, season = fits[key].scaler, train.ets_season(fits[key].calibration)
        prediction = train.forecast(graphdef, fits[key].params, scaler, *data, cfg.model, covariates, season)
        months = slice(0, n_test)
        out[name] = evaluate.ensemble_forecast(prediction, months, cfg.model.quantiles, fits[key].calibration)
    return out


def truths(cfg: Config, panel: Panel, origin: Origin) -> dict[str, evaluate.Truth]:
    """Test-month actuals per world: observed, and counterfactual where it differs in these months.

    A series with no month before the origin is new at that origin: like a pair seen only in the test
    months of the evaluate stage, it is left out of the scores (its existence is not known at the origin).
    """
    cols = slice(origin.start, origin.stop)
    history, available = training_months(cfg, panel, origin)
    observed = panel.worlds["observed"][:, cols]
    mask = panel.available[:, cols] & available.any(axis=1)[:, None]
    return {
        world: evaluate.Truth(values[:, cols], mask, history, available)
        for world, values in panel.worlds.items()
        if world == "observed" or not np.array_equal(values[:, cols], observed)
    }


def score(cfg: Config, panel: Panel, origin: Origin, forecasts: dict) -> pd.DataFrame:
    """Long table (origin, target, level, model, metrics...) of every forecast at every level."""
    season = cfg.evaluate.season_length
    tables = [
        evaluate.score_levels(truth, forecasts, panel.store, panel.category, season).assign(target=world)
        for world, truth in truths(cfg, panel, origin).items()
    ]
    table = pd.concat(tables, ignore_index=True).assign(origin=origin.label)
    return table[
        ["origin", "target", "level", "model", *table.columns.drop(["origin", "target", "level", "model"])]
    ]


def world_rows(table: pd.DataFrame, world: str) -> pd.DataFrame:
    """Rows scored against `world`, plus the observed rows where it was not scored (equal to observed)."""
    scored = table[table["target"] == world]
    rest = table[(table["target"] == "observed") & ~table["origin"].isin(scored["origin"])]
    return pd.concat([scored, rest.assign(target=world)], ignore_index=True)


def summary(table: pd.DataFrame) -> dict:
    """{world: {"mean": {model: headline metrics}}}: `stages.headline_metrics` of the mean over origins."""
    out = {}
    for world in table["target"].unique():
        rows = world_rows(table, world)
        numeric = rows.columns.drop(["origin", "target", "level", "model"])
        mean = rows.groupby(["level", "model"], sort=False)[list(numeric)].mean().reset_index()
        out[world] = {"mean": headline_metrics(mean)}
    return out


def error_by_origin(table: pd.DataFrame, path: Path) -> Figure:
    """Each model's store x category MASE (observed world) per origin, as lines over the origins."""
    rows = table[(table["target"] == "observed") & (table["level"] == "store_category")]
    wide = rows.pivot(index="origin", columns="model", values="mase").loc[rows["origin"].unique()]
    fig, ax = plt.subplots(figsize=(7, 4))
    for model in rows["model"].unique():
        ax.plot(range(len(wide)), wide[model], marker="o", color=colour(model), label=model)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xticks(range(len(wide)), list(wide.index))
    ax.set_xlabel("forecast origin (first forecast month)")
    ax.set_ylabel("MASE, store x category (observed)")
    ax.set_title("Rolling-origin backtest: error per origin")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return save(fig, path)


def run_backtest(cfg: Config) -> None:
    """Re-fit the LSTMs at each origin, score them beside the saved baselines; write the reports."""
    panel, calendar = load_prepared(cfg)
    tables = []
    for origin in origins(cfg, panel):
        start = time.perf_counter()
        history, available = training_months(cfg, panel, origin)
        forecasts = lstm_forecasts(cfg, panel, calendar, history, available, origin.stop - origin.start)
        tables.append(score(cfg, panel, origin, forecasts | saved_baselines(origin)))
        logger.info(f"backtest: LSTMs at origin {origin.label} in {time.perf_counter() - start:.1f} s")
    table = pd.concat(tables, ignore_index=True)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "metrics.csv", index=False, float_format="%.6g")
    results = summary(table)
    write_json(results, REPORTS / "backtest.json")
    error_by_origin(table, OUT / "error_by_origin.png")
    for world, result in results.items():
        means = result["mean"].items()
        logger.info(f"backtest mean ({world}): " + ", ".join(f"{m} MASE {v['mase']:.3f}" for m, v in means))
