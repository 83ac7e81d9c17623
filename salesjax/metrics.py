"""Mask-aware forecast metrics in revenue units: numpy only, summed first and divided once.

Shapes: S series (store x category), T history months, H horizon months, Q quantiles.
`actual: f[S,H]` and `pred: f[S,H]` are revenue; `quantile_pred: f[S,H,Q]` is revenue;
`mask: bool[S,H]` is True where the actual exists and counts. Cells where the mask is False are
never read arithmetically (they may hold NaN). Every metric below is over the masked cells
C = {(s, h) : mask[s, h]} with n = |C|, e = pred - actual; a metric over an empty C is NaN.
"""

import numpy as np

LEVELS = ("total", "store", "category", "store_category")


def _masked(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """f64 copy of `x` with cells outside `mask` set to 0 (so NaN there cannot leak into sums)."""
    return np.where(mask, np.asarray(x, dtype=np.float64), 0.0)


def _divide(num: float, den: float) -> float:
    """num / den as a Python float, NaN when den == 0."""
    return float(num / den) if den != 0 else float("nan")


def _error(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """f64[S,H] error pred - actual on masked cells, 0 elsewhere."""
    return _masked(pred, mask) - _masked(actual, mask)


def mae(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    """MAE = sum_C |p - a| / n (revenue)."""
    return _divide(np.abs(_error(actual, pred, mask)).sum(), mask.sum())


def rmse(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    """RMSE = sqrt(sum_C (p - a)^2 / n) (revenue)."""
    return float(np.sqrt(_divide(np.square(_error(actual, pred, mask)).sum(), mask.sum())))


def wape(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    """WAPE = sum_C |p - a| / sum_C |a| (a ratio, not percent; NaN when sum_C |a| = 0)."""
    abs_actual = np.abs(_masked(actual, mask)).sum()
    return _divide(np.abs(_error(actual, pred, mask)).sum(), abs_actual)


def smape(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    """sMAPE = sum_C 200 |p - a| / (|a| + |p|) / n, percent 0..200; a cell with a = p = 0 adds 0."""
    a, p = _masked(actual, mask), _masked(pred, mask)
    den = np.abs(a) + np.abs(p)
    terms = 200.0 * np.abs(p - a) / np.where(den > 0, den, 1.0)
    return _divide(terms.sum(), mask.sum())


def bias(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    """Bias = sum_C (p - a) / n (revenue; positive = over-forecast)."""
    return _divide(_error(actual, pred, mask).sum(), mask.sum())


def relative_bias(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    """Relative bias = sum_C (p - a) / sum_C |a| (a ratio; +0.03 = 3% over-forecast in total)."""
    return _divide(_error(actual, pred, mask).sum(), np.abs(_masked(actual, mask)).sum())


def pinball(
    actual: np.ndarray, quantile_pred: np.ndarray, quantiles: tuple[float, ...], mask: np.ndarray
) -> float:
    """Pinball = sum_C sum_q max(q (a - p_q), (q - 1)(a - p_q)) / (n Q) (revenue)."""
    q = np.asarray(quantiles, dtype=np.float64)
    diff = _masked(actual, mask)[..., None] - np.where(mask[..., None], quantile_pred, 0.0)
    loss = np.maximum(q * diff, (q - 1.0) * diff)
    return _divide(loss.sum(), mask.sum() * q.size)


def scaled_crps(
    actual: np.ndarray, quantile_pred: np.ndarray, quantiles: tuple[float, ...], mask: np.ndarray
) -> float:
    """Scaled CRPS = 2 sum_C sum_q pinball_q / (Q sum_C |a|): the CRPS approximated on the forecast's
    quantiles (GluonTS's mean weighted quantile loss), divided by the actuals' absolute sum (a ratio)."""
    total = pinball(actual, quantile_pred, quantiles, mask) * mask.sum() * len(quantiles)
    return _divide(2.0 * total, len(quantiles) * np.abs(_masked(actual, mask)).sum())


def quantile_hits(actual: np.ndarray, quantile_pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """f64[Q]: the share of masked actuals at or below each quantile forecast (nominal: the quantile)."""
    below = mask[..., None] & (actual[..., None] <= quantile_pred)
    return below.sum(axis=(0, 1)) / max(mask.sum(), 1)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, mask: np.ndarray) -> float:
    """Coverage = |{c in C : lower_c <= a_c <= upper_c}| / n (a share in 0..1)."""
    inside = mask & (np.asarray(lower) <= actual) & (actual <= np.asarray(upper))
    return _divide(inside.sum(), mask.sum())


def _pair_mae(history: np.ndarray, history_mask: np.ndarray, lag: int) -> np.ndarray:
    """f64[S]: mean over t with both t and t - lag observed of |y_t - y_{t-lag}|; NaN if no pair."""
    both = history_mask[:, lag:] & history_mask[:, :-lag]
    diff = _masked(history[:, lag:], both) - _masked(history[:, :-lag], both)
    count = both.sum(axis=1)
    total = np.abs(diff).sum(axis=1)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


def mase_scale(
    history: np.ndarray, history_mask: np.ndarray, season_length: int
) -> tuple[np.ndarray, list[str]]:
    """Per-series MASE scale f64[S] from training history f[S,T] (revenue) and which rule each used.

    With m = season_length and pairs taken only where both months are observed (masked months
    break pairs; the months are otherwise contiguous):
      seasonal_naive: scale_s = mean_t |y_t - y_{t-m}|, used when series s has >= m + 1 observed
                      months and at least one such pair;
      naive:          scale_s = mean_t |y_t - y_{t-1}| otherwise.
    A series with no usable pair gets NaN (and `mase` leaves it out, like a scale of 0).
    """
    seasonal = _pair_mae(history, history_mask, season_length)
    naive = _pair_mae(history, history_mask, 1)
    use_seasonal = (history_mask.sum(axis=1) >= season_length + 1) & np.isfinite(seasonal)
    rules = ["seasonal_naive" if s else "naive" for s in use_seasonal]
    return np.where(use_seasonal, seasonal, naive), rules


def mase(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray, scale: np.ndarray) -> tuple[float, int]:
    """MASE = mean over kept series s of (sum_h mask|p - a| / sum_h mask) / scale_s, and #left out.

    A series is left out when its scale is 0 or not finite, or its test mask is empty; the second
    value counts the left-out series. NaN when every series is left out.
    """
    count = mask.sum(axis=1)
    abs_err = np.abs(_error(actual, pred, mask)).sum(axis=1)
    keep = (count > 0) & np.isfinite(scale) & (scale > 0)
    ratio = abs_err[keep] / count[keep] / scale[keep]
    return _divide(ratio.sum(), keep.sum()), int((~keep).sum())


def _quantile_index(quantiles: tuple[float, ...], target: float) -> int | None:
    """Index of the quantile nearest `target` when it equals `target` (to 1e-9), else None."""
    idx = int(np.argmin(np.abs(np.asarray(quantiles) - target)))
    return idx if np.isclose(quantiles[idx], target, rtol=0.0, atol=1e-9) else None


def summarize(
    actual: np.ndarray,
    quantile_pred: np.ndarray,
    quantiles: tuple[float, ...],
    mask: np.ndarray,
    scale: np.ndarray,
) -> dict[str, float]:
    """All metrics of f[S,H,Q] quantile forecasts; the point forecast is the 0.5 quantile.

    Keys: mae, rmse, mase, wape, smape, bias, relative_bias, mase_series_excluded (int); plus pinball
    and crps_scaled when Q > 1, and coverage_N (share of actuals inside [q, 1 - q], N = 100 (1 - 2q))
    for every pair of quantiles q < 0.5 and 1 - q that the forecast has.
    """
    median = _quantile_index(quantiles, 0.5)
    if median is None:
        raise ValueError(f"quantiles {quantiles} have no 0.5 (the point forecast)")
    pred = quantile_pred[..., median]
    mase_value, excluded = mase(actual, pred, mask, scale)
    out = {"mae": mae(actual, pred, mask), "rmse": rmse(actual, pred, mask), "mase": mase_value}
    out |= {f.__name__: f(actual, pred, mask) for f in (wape, smape, bias, relative_bias)}
    out["mase_series_excluded"] = excluded
    if len(quantiles) > 1:
        out["pinball"] = pinball(actual, quantile_pred, quantiles, mask)
        out["crps_scaled"] = scaled_crps(actual, quantile_pred, quantiles, mask)
    for q in sorted(q for q in quantiles if q < 0.5):
        low, high = _quantile_index(quantiles, q), _quantile_index(quantiles, 1.0 - q)
        if high is not None:
            lower, upper = quantile_pred[..., low], quantile_pred[..., high]
            out[f"coverage_{round(100 * (1 - 2 * q))}"] = coverage(actual, lower, upper, mask)
    return out


def aggregate(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """f64[G,...]: out[g] = sum_{s : groups[s] = g} values[s] for values f[S,...], groups int[S].

    Upper levels are sums of the bottom level, so forecasts and actuals are coherent by
    construction. Values must be finite: zero masked cells first (see `aggregate_masked`).
    """
    out = np.zeros((n_groups, *values.shape[1:]), dtype=np.float64)
    np.add.at(out, np.asarray(groups), np.asarray(values, dtype=np.float64))
    return out


def aggregate_masked(
    actual: np.ndarray,
    quantile_pred: np.ndarray,
    mask: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group actual f[S,H], quantile_pred f[S,H,Q], mask bool[S,H] into f[G,H], f[G,H,Q], bool[G,H].

    Only bottom cells that count are summed, on both sides: actual_g = sum_{s in g} mask a_s and
    pred_g = sum_{s in g} mask p_s, so a group never compares a forecast with a missing actual.
    mask_g = any_{s in g} mask_s.

    Quantiles at upper levels are approximate: the sum of per-series quantiles is the quantile of
    the sum only when the series' errors are comonotone (perfectly dependent). For less correlated,
    roughly symmetric errors the summed 0.1 and 0.9 quantiles give a wider (conservative) band than
    the true one, so coverage there leans high and pinball is an approximation.
    """
    agg_actual = aggregate(_masked(actual, mask), groups, n_groups)
    agg_pred = aggregate(np.where(mask[..., None], quantile_pred, 0.0), groups, n_groups)
    return agg_actual, agg_pred, aggregate(mask.astype(np.float64), groups, n_groups) > 0


def level_groups(store_codes: np.ndarray, category_codes: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Map each of LEVELS to (group code int[S] per series, number of groups).

    Codes are 0-based: store groups are the store codes (max + 1 groups), category groups the
    category codes; store_category is the bottom level itself (each series is one store x
    category pair), and total puts every series in group 0.
    """
    store_codes, category_codes = np.asarray(store_codes), np.asarray(category_codes)
    n = store_codes.shape[0]
    return {
        "total": (np.zeros(n, dtype=np.int64), 1),
        "store": (store_codes.astype(np.int64), int(store_codes.max(initial=-1)) + 1),
        "category": (category_codes.astype(np.int64), int(category_codes.max(initial=-1)) + 1),
        "store_category": (np.arange(n, dtype=np.int64), n),
    }


def by_horizon(actual: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict[str, list[float]]:
    """Per horizon h over its n_h masked series: mae = sum |e| / n_h, rmse = sqrt(sum e^2 / n_h)."""
    err = _error(actual, pred, mask)
    count = mask.sum(axis=0)
    mae_h = [_divide(a, c) for a, c in zip(np.abs(err).sum(axis=0), count, strict=True)]
    mse_h = [_divide(a, c) for a, c in zip(np.square(err).sum(axis=0), count, strict=True)]
    return {"mae": mae_h, "rmse": [float(np.sqrt(v)) for v in mse_h]}


def by_series(
    actual: np.ndarray, pred: np.ndarray, mask: np.ndarray, scale: np.ndarray
) -> dict[str, np.ndarray]:
    """f64[S] per series s over its n_s masked months: mae = sum |e| / n_s, rmse = sqrt(sum e^2 / n_s), and
    mase = mae / scale_s; NaN where n_s = 0, and mase also where scale_s is 0 or not finite.

    Each value equals `mae`, `rmse` and `mase` of that series' row alone; one pass over all series.
    """
    err = _error(actual, pred, mask)
    count = mask.sum(axis=1)
    mae_s = np.divide(np.abs(err).sum(axis=1), count, out=np.full(count.shape, np.nan), where=count > 0)
    mse_s = np.divide(np.square(err).sum(axis=1), count, out=np.full(count.shape, np.nan), where=count > 0)
    keep = (count > 0) & np.isfinite(scale) & (scale > 0)
    mase_s = np.divide(mae_s, scale, out=np.full(count.shape, np.nan), where=keep)
    return {"mae": mae_s, "rmse": np.sqrt(mse_s), "mase": mase_s}
