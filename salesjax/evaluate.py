"""Every forecaster on the test months, scored the same way at every level (pure: no file IO).

Upper levels (total, store, category) are sums of the store x category forecasts and actuals, so the
levels agree by construction. MASE at a level uses that level's own summed training history.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd

from salesjax import calibration, metrics

GAP_COLUMNS = (
    "level",
    "name",
    "model",
    "observed",
    "counterfactual",
    "forecast",
    "gap",
    "predicted_gap",
    "share_predicted",
)


class Forecast(NamedTuple):
    """One model's test-period forecast.

    Upper levels sum the series' forecasts. With `offsets` (the LSTMs), each upper level's quantiles are
    its summed point forecast plus calibrated offsets in units of its summed `unit` (see
    `salesjax.calibration`); without (the baselines), they are the sums of the series' quantiles.
    """

    values: np.ndarray  # f64[S,H,Q] revenue quantiles
    quantiles: tuple[float, ...]
    unit: np.ndarray | None = None  # f64[S] revenue unit of each series' intervals
    offsets: dict[str, list[float]] | None = None  # upper level -> f64[Q] offsets in units

    def median(self) -> np.ndarray:
        """f64[S,H] point forecast."""
        return self.values[..., self.quantiles.index(0.5)]


def ensemble_forecast(prediction, months: slice, quantiles: tuple[float, ...], offsets: dict) -> Forecast:
    """The members' mean quantiles over `months` of a `train.Prediction`, with its hold-out calibration.

    With a weight in the calibration (`calibration.WEIGHT`), the quantiles move so that the median is the
    weighted blend of the network and its reference (`calibration.weighted`); with an ETS weight
    (`calibration.ETS_WEIGHT`), they move again so that it is that blend's weighted mean with AutoETS.
    """
    values = prediction.values.mean(axis=0)
    median = quantiles.index(0.5)
    if calibration.WEIGHT in offsets:
        values = calibration.weighted(values, prediction.reference, median, offsets[calibration.WEIGHT][0])
    if calibration.ETS_WEIGHT in offsets:
        values = calibration.weighted(values, prediction.ets, median, offsets[calibration.ETS_WEIGHT][0])
    return Forecast(values[:, months], tuple(quantiles), prediction.unit, offsets)


class Truth(NamedTuple):
    """What forecasts are scored against, for one target world."""

    actual: np.ndarray  # f64[S,H] revenue in the test months
    mask: np.ndarray  # bool[S,H]
    history: np.ndarray  # f64[S,T] revenue in the training months (for MASE scales)
    history_mask: np.ndarray  # bool[S,T]


def score_levels(
    truth: Truth, forecasts: dict[str, Forecast], store: np.ndarray, category: np.ndarray, season_length: int
) -> pd.DataFrame:
    """One row per (level, model): every metric of `metrics.summarize` plus the MASE scale rules used."""
    rows = []
    for level, (groups, n) in metrics.level_groups(store, category).items():
        history = metrics.aggregate(np.where(truth.history_mask, truth.history, 0.0), groups, n)
        history_mask = metrics.aggregate(truth.history_mask.astype(float), groups, n) > 0
        scale, rules = metrics.mase_scale(history, history_mask, season_length)
        for model, fc in forecasts.items():
            actual, pred, mask = metrics.aggregate_masked(truth.actual, fc.values, truth.mask, groups, n)
            if fc.offsets and level in fc.offsets:
                unit = metrics.aggregate(np.where(truth.mask, fc.unit[:, None], 0.0), groups, n)
                point = pred[..., fc.quantiles.index(0.5)]
                pred = calibration.level_quantiles(point, unit, fc.offsets[level])
            summary = metrics.summarize(actual, pred, fc.quantiles, mask, scale)
            rows.append(
                {"level": level, "model": model} | summary | {"mase_naive1_series": rules.count("naive")}
            )
    return pd.DataFrame(rows)


def score_series(truth: Truth, forecasts: dict[str, Forecast], season_length: int) -> pd.DataFrame:
    """One row per (model, series): MAE, RMSE and MASE of the point forecast, and the MASE scale rule.

    `metrics.by_series` scores all series at once (no Python loop over the series).
    """
    scale, rules = metrics.mase_scale(truth.history, truth.history_mask, season_length)
    frames = [
        pd.DataFrame(
            {"model": model, "series": np.arange(len(scale))}
            | metrics.by_series(truth.actual, fc.median(), truth.mask, scale)
            | {"mase_scale": np.asarray(scale, np.float64), "mase_rule": rules}
        )
        for model, fc in forecasts.items()
    ]
    return pd.concat(frames, ignore_index=True)


def score_horizons(truth: Truth, forecasts: dict[str, Forecast]) -> pd.DataFrame:
    """One row per (model, horizon month): store x category MAE and RMSE."""
    rows = []
    for model, fc in forecasts.items():
        by_h = metrics.by_horizon(truth.actual, fc.median(), truth.mask)
        for h, (mae, rmse) in enumerate(zip(by_h["mae"], by_h["rmse"], strict=True), start=1):
            rows.append({"model": model, "horizon": h, "mae": mae, "rmse": rmse})
    return pd.DataFrame(rows)


def disruption_gap(
    observed: Truth, counterfactual: Truth, forecasts: dict[str, Forecast], store, category, names
) -> pd.DataFrame:
    """Revenue lost to the disruption (counterfactual - observed) and how much each model 'predicted'.

    A model's predicted gap is its point forecast minus the observed revenue; `share_predicted` is
    predicted gap / true gap. Rows per level (total, store, category) and group; `names` maps a level to
    its group labels.
    """
    mask = observed.mask & counterfactual.mask
    rows = []
    for level, (groups, n) in metrics.level_groups(store, category).items():
        if level == "store_category":
            continue
        obs = metrics.aggregate(np.where(mask, observed.actual, 0.0), groups, n).sum(axis=1)
        cf = metrics.aggregate(np.where(mask, counterfactual.actual, 0.0), groups, n).sum(axis=1)
        for model, fc in forecasts.items():
            pred = metrics.aggregate(np.where(mask, fc.median(), 0.0), groups, n).sum(axis=1)
            for g in range(n):
                gap, predicted = cf[g] - obs[g], pred[g] - obs[g]
                rows.append(
                    {"level": level, "name": names[level][g], "model": model, "observed": obs[g]}
                    | {"counterfactual": cf[g], "forecast": pred[g], "gap": gap, "predicted_gap": predicted}
                    | {"share_predicted": predicted / gap if gap != 0 else np.nan}
                )
    return pd.DataFrame(rows)
