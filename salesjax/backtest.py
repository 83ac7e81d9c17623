"""Rolling-origin backtest: every forecaster re-fitted at several forecast origins and scored the same way.

An origin is the first forecast month o (`backtest.origins`). Its training months are
split.train_start..o-1 and its test months o..min(o + model.horizon - 1, split.test_end). The panel's
arrays are sliced to the training months before anything is fitted, so nothing at or after the origin
can reach the scaler, the early stopping, the refit or the baselines (tests/test_backtest.py poisons
those months and asserts identical forecasts).

- LSTMs: the single model (K=1, seed train.seed) and a seed ensemble of `backtest.ensemble_size`
  members, both via `train.train_forecaster`. Its hold-out is the last train.validation_months of the
  origin's training months, but at most half of them: an early origin (12 training months on the
  default data) still keeps as many months before the hold-out as in it.
- Baselines: the statsforecast models of `salesjax.baselines` on the same training months. They run
  for every origin before the first JAX computation, because `backtest.n_jobs` > 1 forks worker
  processes, and forking a process whose JAX runtime has started can deadlock.
- Scores: `evaluate.score_levels` against the observed world, and against the counterfactual world
  where it differs from the observed one in the origin's test months (before the disruption the two
  are the same world). MASE scales come from the origin's own training months.
"""

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from salesjax import baselines, evaluate, features, train
from salesjax.config import Config, TrainConfig
from salesjax.data.panel import Panel
from salesjax.errors import SalesjaxError
from salesjax.plots import colour, save  # importing plots selects the Agg backend
from salesjax.stages import QUANTILES, REPORTS, load_prepared, write_json

METRICS = ("mae", "rmse", "mase", "wape", "smape", "bias")
OUT = REPORTS / "backtest"


class Origin(NamedTuple):
    """One forecast origin: its label and its months as positions on the panel's month axis."""

    label: str  # YYYY-MM of the first forecast month
    start: int  # position of the first forecast month = number of training months
    stop: int  # one past the last test month


def origins(cfg: Config, panel: Panel) -> list[Origin]:
    """The configured origins; each tests model.horizon months, cut at split.test_end."""
    last = panel.index(cfg.split.months()[3]) + 1
    out = []
    for label in cfg.backtest.origins:
        start = panel.index(pd.Period(label, "M"))
        out.append(Origin(label, start, min(start + cfg.model.horizon, last)))
        if not panel.available[:, start : out[-1].stop].any():  # after the data: nothing to score
            raise SalesjaxError(
                f"backtest.origins: {label} has no observed test month; choose origins in the data"
            )
    return out


def training_months(cfg: Config, panel: Panel, origin: Origin) -> tuple[np.ndarray, np.ndarray]:
    """Revenue f64[S,T0] (data.target world) and availability bool[S,T0] of the months before `origin`."""
    return panel.worlds[cfg.data.target][:, : origin.start], panel.available[:, : origin.start]


def baseline_forecasts(
    cfg: Config, history: np.ndarray, available: np.ndarray, n_test: int
) -> dict[str, evaluate.Forecast]:
    """Each baseline's f64[S,n_test,Q] forecast (revenue) from the training months f64[S,T0] only."""
    fcs = baselines.forecast_baselines(
        history, available, n_test, cfg.evaluate.season_length, QUANTILES, n_jobs=cfg.backtest.n_jobs
    )
    return {name: evaluate.Forecast(fcs[name], QUANTILES) for name in baselines.BASELINES}


def origin_train_config(cfg: TrainConfig, n_months: int) -> TrainConfig:
    """`cfg` for an origin with `n_months` training months: the hold-out is at most half of them."""
    return dataclasses.replace(cfg, validation_months=min(cfg.validation_months, n_months // 2))


def lstm_forecasts(
    cfg: Config, panel: Panel, calendar: np.ndarray, history: np.ndarray, available: np.ndarray, n_test: int
) -> dict[str, evaluate.Forecast]:
    """The single LSTM's and the seed ensemble's f64[S,n_test,Q] forecasts from f64[S,T0] training months.

    `calendar` is the prepared f32[context + M + horizon, Fc]; only its rows up to the forecast's last
    month are passed on (the calendar is known in advance, but nothing later is needed).
    """
    n_months = history.shape[1]
    calendar = calendar[: cfg.model.context + n_months + cfg.model.horizon]
    num_ids = (len(panel.stores), len(panel.categories))
    train_cfg = origin_train_config(cfg.train, n_months)
    seeds = [cfg.train.seed + k for k in range(cfg.backtest.ensemble_size)]
    runs = {"lstm": seeds[:1], "lstm_ensemble": seeds}
    graphdef, _ = train.init_members(cfg.model, (features.num_features(), *num_ids), seeds[:1])
    data = (history, available, calendar, panel.store, panel.category)
    fits, out = {}, {}
    for name, member_seeds in runs.items():
        key = tuple(member_seeds)
        fits[key] = fits.get(key) or train.train_forecaster(
            *data, num_ids, cfg.model, train_cfg, member_seeds
        )
        members = train.forecast(graphdef, fits[key].params, fits[key].scaler, *data, cfg.model)
        out[name] = evaluate.Forecast(members.mean(axis=0)[:, :n_test], cfg.model.quantiles)
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


def _rounded(values: dict) -> dict:
    """METRICS of one row as floats with 6 significant digits (stable JSON bytes)."""
    return {k: float(f"{values[k]:.6g}") for k in METRICS if pd.notna(values[k])}


def summary(table: pd.DataFrame) -> dict:
    """{"origins": {origin: {model: metrics}}, "mean": {model: metrics}}: store x category, observed."""
    rows = table[(table["target"] == "observed") & (table["level"] == "store_category")]
    per_origin = {
        origin: {r["model"]: _rounded(r) for r in group.to_dict("records")}
        for origin, group in rows.groupby("origin", sort=False)
    }
    mean = rows.groupby("model", sort=False)[list(METRICS)].mean()
    return {"origins": per_origin, "mean": {m: _rounded(r) for m, r in mean.to_dict("index").items()}}


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
    """Re-fit and score every forecaster at each origin; write reports/backtest.json and reports/backtest/."""
    panel, calendar = load_prepared(cfg)
    plan = origins(cfg, panel)
    start = time.perf_counter()
    fitted = {
        o.label: baseline_forecasts(cfg, *training_months(cfg, panel, o), o.stop - o.start) for o in plan
    }
    print(f"backtest: baselines at {len(plan)} origins in {time.perf_counter() - start:.1f} s")
    tables = []
    for origin in plan:
        start = time.perf_counter()
        history, available = training_months(cfg, panel, origin)
        forecasts = lstm_forecasts(cfg, panel, calendar, history, available, origin.stop - origin.start)
        tables.append(score(cfg, panel, origin, forecasts | fitted[origin.label]))
        print(f"backtest: LSTMs at origin {origin.label} in {time.perf_counter() - start:.1f} s")
    table = pd.concat(tables, ignore_index=True)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "metrics.csv", index=False, float_format="%.6g")
    results = summary(table)
    write_json(results, REPORTS / "backtest.json")
    error_by_origin(table, OUT / "error_by_origin.png")
    for origin, models in results["origins"].items():
        print(f"backtest {origin}: " + ", ".join(f"{m} MASE {v['mase']:.3f}" for m, v in models.items()))
