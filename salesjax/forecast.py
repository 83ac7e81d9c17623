"""Forecasting beyond the data: the history window, the calendar ahead, and coherent tidy tables.

Pure (no file IO); `salesjax.api` (the notebook API) and `salesjax.forecast_stage` (the DVC stage and
`salesjax forecast --model`) call these same functions.

The tidy table has one row per month, level (store_category, store, category, total) and group, with
`store` / `category` set to "all" where a level sums over them, and columns `mean` and `q<quantile>`:
- Upper levels are coherent with the bottom: a group's `mean` is the sum of its series' means.
- A baseline's series mean is its 0.5 output (statsforecast's point forecast is the distribution's mean).
- The LSTM forecasts quantiles only, so a series' mean is approximated by the integral of its quantile
  function over (0, 1): the trapezoid rule on the quantile grid, the function held flat below the
  lowest and above the highest quantile (`trapezoid_mean`). Holding the tails flat ignores revenue
  beyond the 5% / 95% quantiles, so for right-skewed series it leans slightly low.
- Upper-level quantiles: for the LSTMs the summed median plus the hold-out calibration's offsets times
  the summed unit (`calibration.level_quantiles`, as in the evaluation), for the baselines the sums of
  the series' quantiles. An LSTM group's mean is therefore not the mean of its calibrated quantiles.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd

from salesjax import calibration, evaluate, features, metrics, train
from salesjax.checkpoint import Saved, TrainedOn
from salesjax.config import PanelColumns
from salesjax.data.panel import KEYS, Panel
from salesjax.data.schema import Validated, validate_covariates, validate_panel
from salesjax.errors import SalesjaxError

ALL = "all"  # the store or category of a row that sums over it
LEVELS = ("total", "store", "category", "store_category")
PANEL_COLUMNS = PanelColumns(month="month", store="store", category="category", revenue="revenue")
SHOWN = 5  # series named in a message before "and N more"


class History(NamedTuple):
    """The months a forecast starts from, aligned with a model's series (`TrainedOn` order)."""

    months: pd.PeriodIndex  # [C] consecutive months, the last one the panel's last month
    values: np.ndarray  # f64[S,C] revenue, 0 where not available
    available: np.ndarray  # bool[S,C]
    covariates: np.ndarray | None = None  # f32[S,C,n] the model's covariates, NaN where unknown


def quantile_names(quantiles: tuple[float, ...]) -> list[str]:
    """Column names of the quantiles: q0.05, q0.1, ..., as in the evaluation's forecast table."""
    return [f"q{q:g}" for q in quantiles]


def validated(df: pd.DataFrame, where: str, covariates: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows (month period[M], store, category, revenue, covariates) of a long panel; a rejected row: error."""
    result = _clean(validate_panel(df, PANEL_COLUMNS, covariates), where)
    return result.kept[["month", *KEYS, "revenue", *covariates]]


def _clean(result: Validated, where: str) -> Validated:
    """`result` when no row was rejected, else one line counting them by reason."""
    if result.counts:
        reasons = ", ".join(f"{r}: {n}" for r, n in result.counts.items())
        raise SalesjaxError(
            f"{where}: {len(result.quarantined)} rows break the panel contract ({reasons}); list them with "
            "`salesjax validate FILE --format panel --quarantine BAD.csv`"
        )
    return result


def _cells(rows: pd.DataFrame, first: pd.Period, shape: tuple[int, int], covariates: tuple[str, ...]):
    """(revenue f64[S,M], available bool[S,M], covariates f32[S,M,C] NaN where unknown or None) of rows.

    `rows` are long rows with a `series` column; their months are counted from `first`.
    """
    values, available = np.zeros(shape), np.zeros(shape, bool)
    known = np.full((*shape, len(covariates)), np.nan, np.float32)
    cell = (rows["series"].to_numpy(), _month_positions(rows["month"], first))
    values[cell], available[cell] = rows["revenue"].to_numpy(np.float64), True
    known[cell] = rows[list(covariates)].to_numpy(np.float32)
    return values, available, known if covariates else None


def _month_positions(months: pd.Series, first: pd.Period) -> np.ndarray:
    """i64 position of each month (period[M]) counted from `first`."""
    return (months.dt.year * 12 + months.dt.month - (first.year * 12 + first.month)).to_numpy(np.int64)


def dense_panel(frame: pd.DataFrame, covariates: tuple[str, ...] = ()) -> Panel:
    """The dense panel of validated long rows: every store x category pair by every month first..last.

    A month without a row is missing (not available), as for a panel input in `prepare`; series are
    ordered by store then category, as in the prepared panel; `covariates` are columns of `frame`.
    """
    months = pd.period_range(frame["month"].min(), frame["month"].max(), freq="M")
    series = frame[KEYS].drop_duplicates().sort_values(KEYS, ignore_index=True)
    stores, store = np.unique(series["store"].to_numpy(str), return_inverse=True)
    categories, category = np.unique(series["category"].to_numpy(str), return_inverse=True)
    rows = frame.merge(series.reset_index(names="series"), on=KEYS)
    values, available, known = _cells(rows, months[0], (len(series), len(months)), covariates)
    return Panel(
        months=months,
        stores=tuple(stores),
        categories=tuple(categories),
        store=store.astype(np.int32),
        category=category.astype(np.int32),
        available=available,
        worlds={"observed": values},
        covariate_names=covariates,
        covariates=known,
    )


def long_rows(panel: Panel, world: str, stop: int) -> pd.DataFrame:
    """The available cells of `world` (and the covariates) in the panel's months before `stop`, long rows."""
    s, t = np.nonzero(panel.available[:, :stop])
    return pd.DataFrame(
        {
            "month": pd.PeriodIndex(panel.months[t], freq="M"),
            "store": np.asarray(panel.stores)[panel.store[s]],
            "category": np.asarray(panel.categories)[panel.category[s]],
            "revenue": panel.worlds[world][s, t],
        }
        | {name: panel.covariates[s, t, k] for k, name in enumerate(panel.covariate_names)}
    )


def series_names(trained_on: TrainedOn) -> pd.DataFrame:
    """One row (store, category) per series of a model, in its order."""
    return pd.DataFrame(
        {
            "store": np.asarray(trained_on.stores)[trained_on.store],
            "category": np.asarray(trained_on.categories)[trained_on.category],
        }
    )


def _listed(labels: list[str]) -> str:
    """The first SHOWN labels, then how many more."""
    more = f" and {len(labels) - SHOWN} more" if len(labels) > SHOWN else ""
    return ", ".join(labels[:SHOWN]) + more


def unknown_series(frame: pd.DataFrame, trained_on: TrainedOn) -> list[str]:
    """One message line per kind of name in `frame` the model has never seen (none when all are known)."""
    pairs = frame[KEYS].drop_duplicates().merge(series_names(trained_on), how="left", indicator=True)
    new = pairs[pairs["_merge"] == "left_only"].sort_values(KEYS)
    if new.empty:
        return []
    labels = [f"{s} / {c}" for s, c in new[KEYS].itertuples(index=False)]
    lines = [
        f"{len(new)} series the model was not trained on are skipped (no forecast, not guessed): "
        f"{_listed(labels)}"
    ]
    vocabularies = {"store": ("stores", trained_on.stores), "category": ("categories", trained_on.categories)}
    for key, (plural, known) in vocabularies.items():
        if unseen := sorted(set(new[key]) - set(known)):
            lines.append(f"{len(unseen)} {plural} unknown to the model: {_listed(unseen)}")
    return lines


def history_months(model_cfg) -> int | None:
    """How many of the last months a forecast reads: its context, or every month with the profile
    reference, whose seasonal index averages every complete year before the context (as in training)."""
    return None if model_cfg.reference == "profile" else model_cfg.context


def window(
    frame: pd.DataFrame, trained_on: TrainedOn, length: int | None, covariates: tuple[str, ...] = ()
) -> History:
    """The last `length` months (None: all) of validated long rows on the model's series.

    Rows of series the model does not know are left out (`unknown_series` says which); a model series
    without a row in a month is unavailable there (and its `covariates`, columns of `frame`, unknown).
    """
    last = frame["month"].max()
    months = pd.period_range(frame["month"].min() if length is None else last - (length - 1), last, freq="M")
    keys = series_names(trained_on).reset_index(names="series")
    rows = frame[frame["month"] >= months[0]].merge(keys, on=KEYS)
    return History(months, *_cells(rows, months[0], (len(keys), len(months)), covariates))


def future_covariates(
    df: pd.DataFrame,
    trained_on: TrainedOn,
    covariates: tuple[str, ...],
    first: pd.Period,
    months: int,
    keep: np.ndarray,
    where: str,
) -> np.ndarray:
    """f32[S,months,C] of long rows `df` (month, store, category + `covariates`) for `months` from `first`.

    Every month of every forecast series (bool[S] `keep`) needs a value: the first missing one (by month,
    then series) is one SalesjaxError line naming both. Rows of other series or months are ignored.
    """
    rows = _clean(validate_covariates(df, PANEL_COLUMNS, covariates), where).kept
    keys = series_names(trained_on).reset_index(names="series")
    rows = rows[rows["month"] >= first].merge(keys, on=KEYS)
    rows = rows[_month_positions(rows["month"], first) < months]
    _, _, known = _cells(rows.assign(revenue=0.0), first, (len(keys), months), covariates)
    missing = np.isnan(known).any(axis=-1) & keep[:, None]
    if missing.any():
        month, series = np.argwhere(missing.T)[0]
        name = keys.loc[series]
        raise SalesjaxError(
            f"{where}: no value of the covariates {', '.join(covariates)} for {first + int(month)}, series "
            f"{name['store']} / {name['category']} (the first missing; every forecast month of every "
            "forecast series needs one)"
        )
    return known


def check_months(months: int, horizon: int) -> int:
    """`months` when 1 <= months <= the model's horizon (it forecasts its months at once, not recursively)."""
    if not 1 <= months <= horizon:
        raise SalesjaxError(
            f"cannot forecast {months} months with a model of horizon {horizon}: choose 1..{horizon} "
            "(forecast.horizon or --months), or train with a longer model.horizon"
        )
    return months


def calendar(settings: features.CalendarSettings, first: pd.Period, last: pd.Period) -> np.ndarray:
    """The calendar features f32[months, Fc] of months first..last, with the columns a model recorded."""
    return features.monthly_calendar(first, last, settings.country, settings.events).to_numpy(np.float32)


def lstm_forecast(
    saved: Saved, history: History, months: int, future: np.ndarray | None = None
) -> evaluate.Forecast:
    """The members' mean quantiles f64[S,months,Q] for the months after `history`, with its calibration.

    A model with covariates reads `history.covariates` and their `future` f32[S,months,C] values; the
    horizon steps after `months` get the training mean, which cannot change the months before them.
    """
    cfg = saved.model_cfg
    context_start = history.months[0] - cfg.context
    cal = calendar(saved.calendar, context_start, history.months[-1] + cfg.horizon)
    ids = (saved.trained_on.store, saved.trained_on.category)
    data = (history.values, history.available, cal, *ids, cfg)
    covariates = None
    if saved.covariates:
        known = np.concatenate([history.covariates, future], axis=1)
        covariates = features.pad_covariates(known, cfg.context, cfg.horizon - months)
    season = train.ets_season(saved.calibration)
    prediction = train.forecast(saved.graphdef, saved.params, saved.scaler, *data, covariates, season)
    return evaluate.ensemble_forecast(prediction, slice(0, months), cfg.quantiles, saved.calibration)


def trapezoid_mean(values: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """f64[...] approximate mean of quantile forecasts f64[...,Q] at `quantiles` (see the module docstring).

    mean = q_1 v_1 + sum_k (q_{k+1} - q_k) (v_k + v_{k+1}) / 2 + (1 - q_Q) v_Q.
    """
    q = np.asarray(quantiles, np.float64)
    inner = ((q[1:] - q[:-1]) * (values[..., 1:] + values[..., :-1]) / 2).sum(axis=-1)
    return q[0] * values[..., 0] + inner + (1 - q[-1]) * values[..., -1]


def _level_values(fc: evaluate.Forecast, mean: np.ndarray, level: str, groups: np.ndarray, n: int):
    """(quantiles f64[G,H,Q], mean f64[G,H]) of one level: sums, or the calibrated LSTM quantiles."""
    values = metrics.aggregate(fc.values, groups, n)
    if fc.offsets and level in fc.offsets:
        unit = metrics.aggregate(np.broadcast_to(fc.unit[:, None], mean.shape), groups, n)
        point = values[..., fc.quantiles.index(0.5)]
        values = calibration.level_quantiles(point, unit, fc.offsets[level])
    return values, metrics.aggregate(mean, groups, n)


def _groups(level: str, trained_on: TrainedOn, keep: np.ndarray) -> tuple[np.ndarray, int]:
    """(code i64[kept S], number of groups) of a level; each store and category of the model is a group."""
    groups, n = metrics.level_groups(trained_on.store[keep], trained_on.category[keep])[level]
    return groups, {"store": len(trained_on.stores), "category": len(trained_on.categories)}.get(level, n)


def _group_names(level: str, trained_on: TrainedOn, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(store, category) label of every group of a level, "all" where the level sums over it."""
    stores, categories = np.asarray(trained_on.stores), np.asarray(trained_on.categories)
    if level == "store_category":
        return stores[trained_on.store[keep]], categories[trained_on.category[keep]]
    if level == "store":
        return stores, np.full(len(stores), ALL)
    if level == "category":
        return np.full(len(categories), ALL), categories
    return np.array([ALL]), np.array([ALL])


def table(
    fc: evaluate.Forecast,
    mean: np.ndarray,
    trained_on: TrainedOn,
    keep: np.ndarray,
    first_month: pd.Period,
    model: str,
) -> pd.DataFrame:
    """The tidy table of one model's forecast f64[S,H,Q] and series means f64[S,H], over the series `keep`.

    Groups without a kept series are left out. Rows: by level (LEVELS), group, then month.
    """
    kept = fc._replace(values=fc.values[keep], unit=None if fc.unit is None else fc.unit[keep])
    months = pd.period_range(first_month, periods=fc.values.shape[1], freq="M").astype(str)
    frames = []
    for level in LEVELS:
        groups, n = _groups(level, trained_on, keep)
        values, level_mean = _level_values(kept, mean[keep], level, groups, n)
        store, category = _group_names(level, trained_on, keep)
        present = np.bincount(groups, minlength=n) > 0
        frame = pd.DataFrame(
            {
                "month": np.tile(months, n),
                "level": level,
                "store": np.repeat(store, len(months)),
                "category": np.repeat(category, len(months)),
                "model": model,
                "mean": level_mean.reshape(-1),
            }
            | dict(zip(quantile_names(fc.quantiles), values.reshape(-1, len(fc.quantiles)).T, strict=True))
        )
        frames.append(frame[np.repeat(present, len(months))])
    return pd.concat(frames, ignore_index=True)


def lstm_table(fc: evaluate.Forecast, trained_on: TrainedOn, keep: np.ndarray, first_month, model: str):
    """`table` of an LSTM forecast, its series means by `trapezoid_mean`."""
    return table(fc, trapezoid_mean(fc.values, fc.quantiles), trained_on, keep, first_month, model)


def baseline_table(fc: evaluate.Forecast, trained_on: TrainedOn, keep: np.ndarray, first_month, model: str):
    """`table` of a baseline forecast, its series means its 0.5 output."""
    return table(fc, fc.median(), trained_on, keep, first_month, model)


def silent_series(history: History, trained_on: TrainedOn, context: int) -> tuple[np.ndarray, list[str]]:
    """(bool[S] series with an observed month in the last `context` months, a message naming the others)."""
    keep = history.available[:, -context:].any(axis=1)
    if keep.all():
        return keep, []
    names = series_names(trained_on)[~keep]
    labels = [f"{s} / {c}" for s, c in names.itertuples(index=False)]
    span = f"{history.months[-context:][0]}..{history.months[-1]}"
    return keep, [f"{len(labels)} series have no revenue in {span} and are not forecast: {_listed(labels)}"]
