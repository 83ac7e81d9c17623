"""A small API for notebooks: fit the LSTM seed ensemble on a long table, forecast ahead, save and load.

    model = api.fit(df, load_config())  # df: month, store, category, revenue (+ data.covariates)
    table = model.predict(12)  # the tidy table of `salesjax.forecast`, every level
    table = model.predict(12, covariates=future)  # a model with covariates: their forecast-month values
    model.save("models/mine")
    api.Forecaster.load("models/mine").with_data(newer_df).predict(12)  # no retraining

`fit` trains as the evaluation does (`train.train_forecaster`: epochs chosen by early stopping on the
last train.validation_months, then a refit on every month) on all months of `df` from split.train_start
on. The DVC stage `forecast` and `salesjax forecast --model` go through these same functions.
"""

import dataclasses
import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from salesjax import artifacts, checkpoint, features, forecast, train
from salesjax.config import Config
from salesjax.data.panel import KEYS, Panel, warn_constant_covariates
from salesjax.errors import SalesjaxError

logger = logging.getLogger(__name__)

HISTORY = "history.parquet"  # in a model directory: the months `predict` starts from


@dataclasses.dataclass(frozen=True)
class Forecaster:
    """A trained LSTM forecaster (K members) and the months it forecasts from (`forecast.history_months`)."""

    saved: checkpoint.Saved  # with `trained_on`: the series by name
    history: forecast.History | None  # None: read from a directory without one; give it `with_data`
    name: str = "lstm_ensemble"  # the table's `model` column

    def predict(self, months: int, covariates: pd.DataFrame | None = None) -> pd.DataFrame:
        """The tidy table of the `months` months after the history's last month (see `salesjax.forecast`).

        A model with covariates needs their values in those months: long rows `covariates` (month, store,
        category + the model's covariates); a missing one is one error line naming its month and series.
        """
        if self.history is None:
            raise SalesjaxError(f"{self.name} has no history to forecast from: give it one by with_data(df)")
        months = forecast.check_months(months, self.saved.model_cfg.horizon)
        keep, lines = forecast.silent_series(
            self.history, self.saved.trained_on, self.saved.model_cfg.context
        )
        _say(lines)
        first = self.history.months[-1] + 1
        future = self._future(covariates, first, months, keep)
        fc = forecast.lstm_forecast(self.saved, self.history, months, future)
        return forecast.lstm_table(fc, self.saved.trained_on, keep, first, self.name)

    def _future(self, covariates: pd.DataFrame | None, first: pd.Period, months: int, keep: np.ndarray):
        """f32[S,months,C] covariates of the forecast months, or None for a model without covariates."""
        names = self.saved.covariates
        if not names:
            return None
        if covariates is None:
            raise SalesjaxError(
                f"{self.name} reads the covariates {', '.join(names)}: give their values for {first}.."
                f"{first + months - 1} (predict(months, covariates=df); forecast.covariates_path)"
            )
        where = "covariates"
        return forecast.future_covariates(
            covariates, self.saved.trained_on, names, first, months, keep, where
        )

    def with_data(self, df: pd.DataFrame) -> "Forecaster":
        """This model forecasting from long rows `df` (`forecast.history_months` of them); not retrained.

        Series (and stores, categories) the model was not trained on are named in a printed message and
        skipped; none known at all is an error.
        """
        frame = forecast.validated(df, "data", self.saved.covariates)
        trained_on = self.saved.trained_on
        _say(forecast.unknown_series(frame, trained_on))
        if frame.merge(forecast.series_names(trained_on), on=KEYS).empty:
            raise SalesjaxError(f"no series of the data is one {self.name} was trained on")
        length = forecast.history_months(self.saved.model_cfg)
        history = forecast.window(frame, trained_on, length, self.saved.covariates)
        return dataclasses.replace(self, history=history)

    def save(self, directory: str | Path) -> None:
        """Write the model (`checkpoint.save_forecaster`) and its history to `directory`."""
        out, saved = Path(directory), self.saved
        num_ids = (len(saved.trained_on.stores), len(saved.trained_on.categories))
        spec = (
            saved.model_cfg,
            saved.calendar,
            saved.seeds,
            num_ids,
            out,
            saved.trained_on,
            saved.covariates,
        )
        checkpoint.save_forecaster(saved, *spec)
        if self.history is None:
            (out / HISTORY).unlink(missing_ok=True)  # a history left from an earlier save is not this one's
        else:
            rows = history_rows(self.history, saved.trained_on, saved.covariates)
            rows.to_parquet(out / HISTORY, index=False)

    @classmethod
    def load(cls, directory: str | Path, stage: str = "forecast") -> "Forecaster":
        """A forecaster from a model directory; its history too when the directory has one.

        A missing or damaged file is one line naming `dvc repro <stage>`; a directory that does not name
        its series (saved before model.json recorded them) cannot match a panel and is refused.
        """
        out = Path(directory)
        saved = checkpoint.load_forecaster(out, stage)
        if saved.trained_on is None:
            raise SalesjaxError(
                f"{out / 'model.json'} does not name the series it was trained on (saved by an older "
                f"salesjax); retrain it: `dvc repro {stage}`"
            )
        history = None
        if (out / HISTORY).exists():
            read = functools.partial(read_history, trained_on=saved.trained_on, covariates=saved.covariates)
            history = artifacts.read(out / HISTORY, stage, read)
        return cls(saved, history, out.name)


def _say(lines: list[str]) -> None:
    """Each message line as a warning of the `salesjax` logger, with the command's prefix."""
    for line in lines:
        logger.warning(f"forecast: {line}")


def history_rows(
    history: forecast.History, trained_on: checkpoint.TrainedOn, covariates: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Every (series, month) cell of a history as long rows, revenue NaN where not available."""
    names = forecast.series_names(trained_on)
    n_months = len(history.months)
    return pd.DataFrame(
        {
            "month": np.tile(history.months.astype(str), len(names)),
            "store": np.repeat(names["store"].to_numpy(), n_months),
            "category": np.repeat(names["category"].to_numpy(), n_months),
            "revenue": np.where(history.available, history.values, np.nan).reshape(-1),
        }
        | {name: history.covariates[..., k].reshape(-1) for k, name in enumerate(covariates)}
    )


def read_history(
    path: Path, trained_on: checkpoint.TrainedOn, covariates: tuple[str, ...] = ()
) -> forecast.History:
    """The history saved by `Forecaster.save`; ValueError when its series are not the model's."""
    rows = pd.read_parquet(path)
    months = pd.PeriodIndex(rows["month"].drop_duplicates(), freq="M")
    names = forecast.series_names(trained_on)
    keys = rows[KEYS].iloc[:: len(months)].reset_index(drop=True)
    if len(rows) != len(names) * len(months) or not np.array_equal(keys.to_numpy(str), names.to_numpy(str)):
        raise ValueError("its series are not the model's")
    shape = (len(names), len(months))
    revenue = rows["revenue"].to_numpy(np.float64).reshape(shape)
    known = rows[list(covariates)].to_numpy(np.float32).reshape(*shape, -1) if covariates else None
    return forecast.History(months, np.nan_to_num(revenue, nan=0.0), ~np.isnan(revenue), known)


def train_saved(panel: Panel, config: Config, seeds: list[int]) -> checkpoint.Saved:
    """A model trained on every month of a dense panel as the evaluation trains, as its directory holds it."""
    cfg = config.model
    first, last = panel.months[0] - cfg.context, panel.months[-1] + cfg.horizon
    settings = features.resolve_calendar(first, last, config.data.country, config.data.events)
    cal = forecast.calendar(settings, first, last)
    num_ids = (len(panel.stores), len(panel.categories))
    data = (panel.worlds["observed"], panel.available, cal, panel.store, panel.category, num_ids)
    known = (
        None
        if panel.covariates is None
        else features.pad_covariates(panel.covariates, cfg.context, cfg.horizon)
    )
    trained = train.train_forecaster(*data, cfg, config.train, seeds, covariates=known)
    width = features.num_features(cal.shape[1], len(panel.covariate_names))
    graphdef, _ = train.init_members(cfg, (width, *num_ids), seeds[:1])
    trained_on = checkpoint.TrainedOn.of(panel, panel.months[0], panel.months[-1])
    fitted = (trained.params, trained.scaler, cfg, settings, trained.calibration, seeds, trained_on)
    return checkpoint.Saved(graphdef, *fitted, panel.covariate_names)


def fit(df: pd.DataFrame, config: Config, *, members: int | None = None, name: str = "lstm_ensemble"):
    """A `Forecaster` trained on long rows `df` (month, store, category, revenue) from split.train_start on.

    `df` also has a column of each of data.covariates (warned about when one never varies); `members`
    defaults to train.ensemble_size (seeds train.seed, train.seed + 1, ...).
    """
    names = config.data.covariates
    frame = forecast.validated(df, "data", names)
    frame = frame[frame["month"] >= pd.Period(config.split.train_start, "M")]
    if frame.empty:
        raise SalesjaxError(f"data: no rows from split.train_start {config.split.train_start} on")
    span = f"{frame['month'].min()}..{frame['month'].max()}"
    warn_constant_covariates(frame[list(names)], span, "fit")
    seeds = [config.train.seed + k for k in range(members or config.train.ensemble_size)]
    saved = train_saved(forecast.dense_panel(frame, names), config, seeds)
    history = forecast.window(frame, saved.trained_on, forecast.history_months(config.model), names)
    return Forecaster(saved, history, name)
