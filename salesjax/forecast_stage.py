"""The DVC stages that forecast beyond the data (`forecast-baselines`, `forecast`); applying a saved model.

Both stages fit on every observed month of the prepared panel (split.train_start through the data's
last observed month, at most split.test_end; data.target's world) and forecast forecast.horizon months
after the last one. `forecast_baselines` fits the baselines into artifacts/forecast_baselines, so a
model or train change refits none of them. `forecast` refits the single LSTM (K=1) and the seed ensemble
(train.ensemble_size members) with the evaluation's hyperparameters and epoch rule, and writes:
- artifacts/forecast/models/{lstm,lstm_ensemble}: the refit models, each with the history it forecast
  from (`salesjax.api.Forecaster.save`), ready for `salesjax forecast --model`;
- artifacts/forecast/forecast.parquet: the tidy table (`salesjax.forecast`) of every model and level;
- reports/forecast/forecast.csv (small, in git): the upper levels of every model and the store x
  category rows of lstm_ensemble, revenue in whole currency units (the full table is over 2 MB);
- reports/forecast/fan_total.png and fan_stores.png: fan charts of lstm_ensemble, for the report (the
  stores' chart draws at most FAN_STORES stores, the largest by observed revenue).

Store x category pairs that appear only after split.train_end are not in the prepared panel, so they
are not forecast. The file IO lives here, so `salesjax.forecast` stays pure and `salesjax.api` imports
no plotting.
"""

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from flax import serialization
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from salesjax import api, artifacts, baselines, checkpoint, evaluate, forecast, plots, reconcile
from salesjax.config import Config
from salesjax.data.panel import Panel
from salesjax.data.schema import read_table, same_file, write_table
from salesjax.errors import SalesjaxError
from salesjax.stages import ARTIFACTS, REPORTS, load_prepared

logger = logging.getLogger(__name__)

OUT = ARTIFACTS / "forecast"
BASELINE_FITS = ARTIFACTS / "forecast_baselines" / "baselines.msgpack"
MODELS = OUT / "models"
REPORT = REPORTS / "forecast"
SHOWN_MODEL = "lstm_ensemble"  # its store x category rows go to the CSV, its fans to the figures
BANDS = ((0.05, 0.95, 0.15), (0.1, 0.9, 0.25), (0.25, 0.75, 0.4))  # 90, 80, 50% intervals: (low, high, alpha)
# The most stores fan_stores.png draws, the largest by observed revenue (the report's GRID_STORES; the default
# chain has 20, all drawn): a panel per store grows the image with the chain (250 stores: 63 rows of panels).
FAN_STORES = 20


def observed_rows(cfg: Config, panel: Panel) -> pd.DataFrame:
    """Long rows of data.target's world over the prepared panel's observed months (through the last one)."""
    observed = np.flatnonzero(panel.available.any(axis=0))
    return forecast.long_rows(panel, cfg.data.target, int(observed[-1]) + 1)


def refit(frame: pd.DataFrame, cfg: Config) -> dict[str, api.Forecaster]:
    """The single LSTM and the seed ensemble trained on long rows `frame` (the same fit when K = 1)."""
    single = api.fit(frame, cfg, members=1, name="lstm")
    if cfg.train.ensemble_size == 1:
        return {
            "lstm": single,
            "lstm_ensemble": api.Forecaster(single.saved, single.history, "lstm_ensemble"),
        }
    return {"lstm": single, "lstm_ensemble": api.fit(frame, cfg, name="lstm_ensemble")}


def run_forecast_baselines(cfg: Config) -> None:
    """Fit every baseline on all observed months and save its f64[S,forecast.horizon,Q] forecast."""
    panel, _ = load_prepared(cfg)
    months = forecast.check_months(cfg.forecast.horizon, cfg.model.horizon)
    frame = observed_rows(cfg, panel)
    history = forecast.dense_panel(frame)
    fits = reconcile.coherent_baselines(
        history.worlds["observed"],
        history.available,
        history.store,
        history.category,
        months,
        cfg.evaluate.season_length,
        cfg.model.quantiles,
        cfg.baselines.reconcile,
        cfg.baselines.n_jobs,
        cfg.baselines.engine,
    )
    saved = {"first_month": str(frame["month"].max() + 1), "forecasts": fits}
    BASELINE_FITS.parent.mkdir(parents=True, exist_ok=True)
    BASELINE_FITS.write_bytes(serialization.msgpack_serialize(saved))


def baseline_tables(cfg: Config, model: api.Forecaster, months: int) -> list[pd.DataFrame]:
    """Each saved baseline's tidy table (`run_forecast_baselines`), over the series `model` forecasts."""
    keep, _ = forecast.silent_series(model.history, model.saved.trained_on, model.saved.model_cfg.context)
    shape = (len(keep), months, len(cfg.model.quantiles))
    saved, fits = artifacts.read(BASELINE_FITS, "forecast_baselines", lambda path: _read_fits(path, shape))
    first = model.history.months[-1] + 1
    if saved != str(first):
        raise SalesjaxError(
            f"{BASELINE_FITS}: the baselines forecast from {saved}, the LSTMs from {first}; "
            "run `dvc repro forecast_baselines`"
        )
    return [
        forecast.baseline_table(
            evaluate.Forecast(fits[name], cfg.model.quantiles), model.saved.trained_on, keep, first, name
        )
        for name in baselines.BASELINES
    ]


def _read_fits(path: Path, shape: tuple[int, int, int]) -> tuple[str, dict[str, np.ndarray]]:
    """(first forecast month, each baseline's f64[S,months,Q] forecast, checked to be of `shape`)."""
    saved = serialization.msgpack_restore(path.read_bytes())
    out = {name: np.asarray(saved["forecasts"][name], np.float64) for name in baselines.BASELINES}
    if any(fc.shape != shape for fc in out.values()):
        raise ValueError(f"forecasts are not of shape {shape} (series, forecast months, quantiles)")
    return str(saved["first_month"]), out


def report_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the CSV kept in git: every upper level, and the store x category rows of SHOWN_MODEL."""
    return table[(table["level"] != "store_category") | (table["model"] == SHOWN_MODEL)]


def future_covariates(cfg: Config, frame: pd.DataFrame, months: int) -> pd.DataFrame | None:
    """forecast.covariates_path's rows, checked (before any training) to cover every forecast month.

    None without data.covariates; a missing file, column or value is one line.
    """
    names = cfg.data.covariates
    if not names:
        return None
    first = frame["month"].max() + 1
    if cfg.forecast.covariates_path is None:
        raise SalesjaxError(
            f"data.covariates {list(names)} need their values for {first}..{first + months - 1}: set "
            "forecast.covariates_path to a file of month, store, category and those columns"
        )
    future = read_table(Path(cfg.forecast.covariates_path))
    trained_on = checkpoint.TrainedOn.of(forecast.dense_panel(frame), first, first)
    context = cfg.model.context
    keep, _ = forecast.silent_series(forecast.window(frame, trained_on, context), trained_on, context)
    forecast.future_covariates(future, trained_on, names, first, months, keep, "forecast.covariates_path")
    return future


def run_forecast(cfg: Config) -> None:
    """Refit the LSTMs on all observed months; their and the saved baselines' forecast.horizon months."""
    panel, _ = load_prepared(cfg)
    months = forecast.check_months(cfg.forecast.horizon, cfg.model.horizon)
    frame = observed_rows(cfg, panel)
    future = future_covariates(cfg, frame, months)
    models = refit(frame, cfg)
    tables = [model.predict(months, future) for model in models.values()]
    tables += baseline_tables(cfg, models[SHOWN_MODEL], months)
    table = pd.concat(tables, ignore_index=True)
    for name, model in models.items():
        model.save(MODELS / name)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_parquet(OUT / "forecast.parquet", index=False)
    REPORT.mkdir(parents=True, exist_ok=True)
    report_rows(table).to_csv(REPORT / "forecast.csv", index=False, float_format="%.0f")
    shown = table[table["model"] == SHOWN_MODEL]
    fan_charts(frame, shown, REPORT)
    last = frame["month"].max()
    logger.info(
        f"forecast: refit through {last}; company total {last + 1}..{last + months}: {_totals(table)}"
    )


def _totals(table: pd.DataFrame) -> str:
    """Each model's forecast company total over all forecast months (its mean), in millions."""
    total = table[table["level"] == "total"].groupby("model", sort=False)["mean"].sum()
    return ", ".join(f"{model} {value / 1e6:,.2f}M" for model, value in total.items())


def run_apply(
    model_dir: Path, data: Path, months: int | None, out: Path, covariates: Path | None = None
) -> None:
    """Forecast a panel file with a saved model, without retraining, into the table `out` (.csv/.parquet).

    A model with covariates reads them from the panel's columns and their forecast-month values from
    the file `covariates` (month, store, category + the covariates).
    """
    inputs = [path for path in (data, covariates) if path is not None]
    if any(same_file(out, path) for path in inputs) or out.resolve().is_relative_to(model_dir.resolve()):
        raise SalesjaxError(f"--out {out} is an input or inside the model directory; choose another path")
    model = api.Forecaster.load(model_dir).with_data(read_table(data))
    months = model.saved.model_cfg.horizon if months is None else months
    table = model.predict(months, None if covariates is None else read_table(covariates))
    write_table(table, out)
    n_series = len(table.loc[table["level"] == "store_category", ["store", "category"]].drop_duplicates())
    trained = f"{model.saved.trained_on.first_month}..{model.saved.trained_on.last_month}"
    span = f"{table['month'].min()}..{table['month'].max()}"
    print(
        f"forecast: {n_series} series, {span}, by {model.name} (trained on {trained}, not retrained): {out}"
    )


def fan_charts(frame: pd.DataFrame, table: pd.DataFrame, out: Path) -> tuple[Figure, Figure]:
    """The company total's fan chart and one panel per store, from the observed rows and one model's table.

    Beyond FAN_STORES stores only the FAN_STORES largest (by observed revenue) get a panel, in store order.
    """
    history = frame.assign(month=frame["month"].astype(str))
    total = history.groupby("month", as_index=False)["revenue"].sum().assign(panel="company total")
    stores = history.groupby(["store", "month"], as_index=False)["revenue"].sum()
    fc = table.assign(panel=np.where(table["level"] == "total", "company total", "store " + table["store"]))
    figure = fan_chart(
        total, fc[fc["level"] == "total"], out / "fan_total.png", "Company revenue: forecast", 1
    )
    title, n = "Revenue per store: forecast", stores["store"].nunique()
    if n > FAN_STORES:
        size = stores.groupby("store")["revenue"].sum().sort_values(ascending=False, kind="stable")
        stores = stores[stores["store"].isin(size.index[:FAN_STORES])]
        title = f"Revenue of the {FAN_STORES:,} largest of the {n:,} stores: forecast"
    stores = stores.assign(panel="store " + stores["store"])
    return figure, fan_chart(stores, fc[fc["level"] == "store"], out / "fan_stores.png", title, 4)


def fan_chart(history: pd.DataFrame, fc: pd.DataFrame, path: Path, title: str, ncols: int) -> Figure:
    """One fan per `panel` label: history (month, revenue), then the median and the 50/80/90% bands.

    history: panel, month, revenue; fc: panel, month, q columns (bands whose quantiles are missing are
    not drawn).
    """
    panels = list(pd.unique(history["panel"]))
    nrows = -(-len(panels) // ncols)
    width = 10.0 if ncols == 1 else 16.0
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, (4.0 if ncols == 1 else 2.8) * nrows), squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, panels, strict=False):
        _fan(ax, history[history["panel"] == name], fc[fc["panel"] == name])
        ax.set_title(name, fontsize=9)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return plots.save(fig, path)


def _fan(ax, history: pd.DataFrame, fc: pd.DataFrame) -> None:
    """One panel of `fan_chart`, months at integer positions labelled at each January."""
    months = list(history["month"]) + list(fc["month"])
    x_fc = len(history) + np.arange(len(fc))
    ax.plot(np.arange(len(history)), history["revenue"], label="observed", **plots.TARGET_STYLE)
    colour = plots.colour(SHOWN_MODEL)
    for low, high, alpha in BANDS:
        columns = forecast.quantile_names((low, high))
        if set(columns) <= set(fc.columns):
            label = f"{round(100 * (high - low))}% interval"
            ax.fill_between(
                x_fc, fc[columns[0]], fc[columns[1]], color=colour, alpha=alpha, lw=0, label=label
            )
    ax.plot(x_fc, fc["q0.5"], color=colour, linewidth=1.4, label="median")
    ticks = [i for i, m in enumerate(months) if m.endswith("-01")] or [0]
    ax.set_xticks(ticks, [months[i][:4] if months[i].endswith("-01") else months[i] for i in ticks])
    ax.set_xlim(-0.5, len(months) - 0.5)
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.tick_params(labelsize=7)
