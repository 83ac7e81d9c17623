"""Intervals at the aggregate levels, calibrated on the hold-out's out-of-sample errors (split conformal).

A store, category or company total is the sum of its series' point forecasts (bottom-up). Summing the
series' quantiles instead would assume their errors move together and give far too wide intervals, so
each upper level gets its own: its quantile q is the summed point forecast plus its unit (the summed
window levels of its series) times the q-quantile of the scaled errors (actual - point) / unit that the
early-stopping fit made on the hold-out months, which it never trained on. The errors are centred on
their median first, so the point forecast stays the middle of its intervals (offset 0 at q = 0.5) and
a hold-out bias shifts nothing.

The hold-out also weighs the network against its own reference (the seasonal profile times the window's
level): the point forecast is reference + weight x (network - reference), with the weight in WEIGHTS that
has the least absolute error on the hold-out months (`choose_weight`). On a panel where what the network
learned does not carry over to months it never saw, the weight falls, and the forecast moves towards its
reference; every quantile moves with the point. With `model.combine: ets` a second weight, chosen the
same way on the hold-out's first origin, weighs that blend against AutoETS's point forecast from the
same months (w x blend + (1 - w) x ETS): a forecast combination that falls back to ETS where the hold-out
says the network does worse. Where the months before the hold-out hold two seasons (ETS_MIN_MONTHS),
AutoETS fits the season itself; with fewer it has no season to fit (its seasonal states start from a
decomposition of two seasons), so it is fitted without one to the series divided by its seasonal
profile (`train.ets_forecast`), and the hold-out never weighs a flat forecast against a seasonal one.
Pure numpy; no file IO.
"""

import numpy as np

from salesjax import metrics

UPPER_LEVELS = ("total", "store", "category")
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # candidate weights of the network against its reference
WEIGHT = "weight"  # the calibration's key of the chosen weight (a one-element list, as the offsets are lists)
ETS_WEIGHT = "ets_weight"  # the key of the blend's chosen weight against AutoETS (`model.combine: ets`)
ETS_SEASON = "ets_season"  # the season length of the AutoETS weighed (`train.ets_forecast`)
ETS_MIN_MONTHS = 24  # AutoETS fits its own season where the months before the hold-out hold two seasons


def blend(point: np.ndarray, reference: np.ndarray, weight: float) -> np.ndarray:
    """reference + weight x (point - reference), elementwise."""
    return reference + weight * (point - reference)


def choose_weight(
    point: np.ndarray, reference: np.ndarray, actual: np.ndarray, unit: np.ndarray, mask: np.ndarray
) -> float:
    """The weight in WEIGHTS whose blend has the least absolute error over the masked cells, in units.

    All arrays f64[S,O,H] (revenue; unit: each series' window level); a tie goes to the larger weight.
    """
    errors = [np.where(mask, np.abs(blend(point, reference, w) - actual) / unit, 0.0).sum() for w in WEIGHTS]
    best = min(errors)
    return max(w for w, e in zip(WEIGHTS, errors, strict=True) if e == best)


def weighted(values: np.ndarray, reference: np.ndarray, median: int, weight: float) -> np.ndarray:
    """Quantiles f64[S,H,Q] shifted so that their median is the blend with reference f64[S,H] (>= 0)."""
    shift = blend(values[..., median], reference, weight) - values[..., median]
    return np.clip(values + shift[..., None], 0.0, None)


def _sums(values: np.ndarray, mask: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """f64[G,...]: per group, the sum of `values` f[S,...] over the cells where mask bool[S,...] holds."""
    return metrics.aggregate(np.where(mask, values, 0.0), groups, n)


def level_offsets(
    point: np.ndarray,
    actual: np.ndarray,
    unit: np.ndarray,
    mask: np.ndarray,
    store: np.ndarray,
    category: np.ndarray,
    quantiles: tuple[float, ...],
) -> dict[str, list[float]]:
    """Per upper level, the offsets f64[Q] in units: quantiles of the centred (actual - point) / unit.

    point and actual f64[S,O,H] revenue of the hold-out forecasts made at O origins, unit f64[S,O,H]
    (each series' window level), mask bool[S,O,H] where the actual month is in the hold-out.
    """
    out = {}
    for level in UPPER_LEVELS:
        groups, n = metrics.level_groups(store, category)[level]
        seen = _sums(mask.astype(float), mask, groups, n) > 0
        error = _sums(actual, mask, groups, n) - _sums(point, mask, groups, n)
        errors = error[seen] / _sums(unit, mask, groups, n)[seen]
        centred = errors - np.median(errors)
        out[level] = [0.0 if np.isclose(q, 0.5) else float(np.quantile(centred, q)) for q in quantiles]
    return out


def level_quantiles(point: np.ndarray, unit: np.ndarray, offsets: list[float]) -> np.ndarray:
    """f64[G,H,Q] quantiles of a level from its point forecast f64[G,H] and unit f64[G,H] (revenue)."""
    values = point[..., None] + unit[..., None] * np.asarray(offsets)
    return np.sort(np.clip(values, 0.0, None), axis=-1)
