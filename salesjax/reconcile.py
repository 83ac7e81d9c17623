"""Coherent baselines: each statsforecast baseline fitted at every level of the hierarchy, then reconciled.

`baselines.reconcile` chooses how a baseline's store, category and company forecasts come about:
- `bottom_up`: only the store x category series are fitted; the upper levels are their sums.
- `wls`: the upper series (each store's, each category's and the company's summed revenue) are fitted
  too, by the same model, and the forecasts of all levels are reconciled by weighted least squares
  (MinT with a diagonal covariance, Wickramasuriya, Athanasopoulos & Hyndman 2019; hierarchicalforecast's
  `MinTrace(method="wls_var")` weighs by in-sample residual variances instead). At each horizon step h
  every base forecast is weighed by the inverse of its own forecast variance, read from its 80%
  interval ((q0.9 - q0.1) / (2 z0.9))^2, so a precise upper fit moves its noisy series and a noisy one
  barely moves them. In the constraint form (C = [I, -A], A the upper series' sums of the bottom
  series, d = the upper forecasts minus the sums of the bottom ones):

      reconciled bottom = bottom + W_b A^T (W_u + A W_b A^T)^-1 d

  a solve of the upper series' size, not the bottom's. A forecast that is coherent already (naive and
  seasonal naive on gapless histories) comes back unchanged.

Either way the result is a bottom-level forecast, so every upper level is the sum of its series, and the
levels add up exactly. Each series' quantiles move with its point (the median), keeping their width;
upper-level intervals are the sums of the series' quantiles, as for the bottom-up baselines. Revenue is
clipped at 0 after the move and the quantiles are sorted, as `salesjax.baselines` does.
"""

from statistics import NormalDist

import numpy as np

from salesjax import baselines, metrics

RECONCILERS = ("wls", "bottom_up")
VARIANCE_PAIR = (0.1, 0.9)  # the interval each base forecast's variance is read from
RELATIVE_FLOOR = 1e-12  # variances below this share of a step's largest count as this share (exact fits)


def upper_rows(store: np.ndarray, category: np.ndarray) -> np.ndarray:
    """f64[U,S]: which series each upper series sums (the company, then each store, then each category)."""
    rows = []
    for level, (groups, n) in metrics.level_groups(store, category).items():
        if level != "store_category":
            rows.append(np.arange(n)[:, None] == groups[None, :])
    return np.concatenate(rows).astype(np.float64)


def upper_series(
    history: np.ndarray, history_mask: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The upper series' revenue f64[U,T] and availability bool[U,T]: sums of their series' observed months.

    A series adds nothing before its first observed month or after its last (it did not exist, or the data
    stop). A month it misses between them is missing data, so every upper series holding it is
    unobserved that month (and interpolated by the fit, as a series' own gap is), never summed as 0.
    """
    months = np.arange(history_mask.shape[1])
    first = np.argmax(history_mask, axis=1)[:, None]
    last = history_mask.shape[1] - 1 - np.argmax(history_mask[:, ::-1], axis=1)[:, None]
    gap = (months >= first) & (months <= last) & ~history_mask & history_mask.any(axis=1)[:, None]
    observed = (upper @ history_mask > 0) & ~(upper @ gap > 0)
    return upper @ np.where(history_mask, history, 0.0), observed


def wls(base: np.ndarray, variance: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """f64[S,H] reconciled bottom forecasts from base f64[U+S,H] (upper rows first) and their variances.

    `upper` is f64[U,S] (`upper_rows`). Variances are floored at RELATIVE_FLOOR of each step's largest,
    so exact fits (constant series, zero-width intervals) weigh the most without a singular solve.
    """
    n_upper = upper.shape[0]
    top = variance.max(axis=0, keepdims=True)
    variance = np.maximum(variance, RELATIVE_FLOOR * np.where(top > 0, top, 1.0))
    out = np.empty_like(base[n_upper:])
    for h in range(base.shape[1]):
        w_upper, w_bottom = variance[:n_upper, h], variance[n_upper:, h]
        gap = base[:n_upper, h] - upper @ base[n_upper:, h]
        system = np.diag(w_upper) + (upper * w_bottom) @ upper.T
        out[:, h] = base[n_upper:, h] + w_bottom * (upper.T @ np.linalg.solve(system, gap))
    return out


def coherent_baselines(
    history: np.ndarray,
    history_mask: np.ndarray,
    store: np.ndarray,
    category: np.ndarray,
    horizon: int,
    season_length: int,
    quantiles: tuple[float, ...],
    method: str,
    n_jobs: int = 1,
    engine: str = "local",
) -> dict[str, np.ndarray]:
    """Each baseline's coherent f64[S,H,Q] forecast (revenue, >= 0) from history f[S,T], mask bool[S,T].

    `method` is one of RECONCILERS (module docstring); `store` and `category` are the series' int codes.
    """
    if method not in RECONCILERS:
        raise ValueError(f"method must be one of {RECONCILERS}, got {method!r}")
    options = {"season_length": season_length, "n_jobs": n_jobs, "engine": engine}
    if method == "bottom_up":
        return baselines.forecast_baselines(history, history_mask, horizon, quantiles=quantiles, **options)
    upper = upper_rows(store, category)
    upper_history, upper_mask = upper_series(history, history_mask, upper)
    stacked = np.concatenate([upper_history, history])
    stacked_mask = np.concatenate([upper_mask, history_mask])
    fitted = tuple(sorted({*quantiles, *VARIANCE_PAIR, 0.5}))
    fits = baselines.forecast_baselines(stacked, stacked_mask, horizon, quantiles=fitted, **options)
    low, median, high = (fitted.index(q) for q in (*VARIANCE_PAIR[:1], 0.5, VARIANCE_PAIR[1]))
    z = NormalDist().inv_cdf(VARIANCE_PAIR[1]) - NormalDist().inv_cdf(VARIANCE_PAIR[0])
    keep = [fitted.index(q) for q in quantiles]
    out = {}
    for name, fc in fits.items():
        variance = ((fc[..., high] - fc[..., low]) / z) ** 2
        bottom = fc[len(upper) :]
        shift = wls(fc[..., median], variance, upper) - bottom[..., median]
        out[name] = np.sort(np.clip(bottom[..., keep] + shift[..., None], 0.0, None), axis=-1)
    return out
