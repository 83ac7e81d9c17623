"""Statistical baselines from statsforecast behind one contract: history f[S,T] -> f[S,H,Q] revenue.

Each series is fitted on exactly the history it is given (the caller passes training months only):
- The series starts at its first observed month and ends at its last (a late start is simply a
  shorter series). Interior masked months are filled by linear interpolation between the observed
  neighbours, not with 0: a masked month is missing data, not zero sales, and a 0 would drag level
  models down and make seasonal naive forecast 0 for that month a year later.
- A series whose last months are masked is forecast past the gap on its own time index, and only
  the months T..T+H-1 are kept, so the seasonal phase stays right.
- Quantiles: q < 0.5 is the lower bound of statsforecast's interval at level 100 (1 - 2q), q > 0.5
  the upper bound at level 100 (2q - 1), and q = 0.5 the point forecast ('mean' column; the
  Gaussian intervals of naive/ETS/ARIMA are symmetric about it, Theta's are simulated around it).
- Fallbacks, so every series gets a finite forecast from every model: a model that raises falls
  back to Naive (statsforecast's `fallback_model`); seasonal naive uses Naive on a series with at
  most `season_length` months (seasonal naive needs one full season plus one month for an
  interval); any other non-finite output for a series is replaced by its Naive forecast. A series
  whose observed history is constant (all zero included) gets that constant at every quantile; a
  series with no observed month gets 0.
- Revenue cannot be negative, so every output is clipped at 0 (the lower bound of revenue; it uses
  nothing from the actuals). Quantiles are then sorted along Q so they never cross.
Deterministic: each series is fitted on its own (one process by default, `n_jobs` forked workers on
request, the same fits either way); AutoTheta's interval simulation uses a fixed seed.

Engines (`baselines.engine`): `local` runs statsforecast in this process (and its `n_jobs` forks);
`dask` sends blocks of series to the workers of a Dask cluster, each running the same local fits, so
the forecasts are the same bit for bit. The cluster is the one at $SALESJAX_DASK_SCHEDULER
(`tcp://host:8786`), else a local one of `n_jobs` worker processes (spawned, not forked: safe after
JAX has started). statsforecast's own Dask path (a dask DataFrame through fugue) is not used: fugue's
group-by on Dask loses the series id column under pandas 3 and fugue >= 0.9.6 requires pandas < 3, and
it would return float32 forecasts.
"""

import contextlib
import functools
import logging
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
from distributed import Client, LocalCluster, default_client
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

from salesjax.errors import SalesjaxError

logger = logging.getLogger(__name__)
BASELINES = ("naive", "seasonal_naive", "ets", "arima", "theta")
ENGINES = ("local", "dask")
SCHEDULER = "SALESJAX_DASK_SCHEDULER"
TASKS_PER_WORKER = 4  # blocks of series per worker thread: fit times vary, small blocks balance the load


def make_models(season_length: int, names: tuple[str, ...] = BASELINES) -> list:
    """The statsforecast models of `names` (of BASELINES), in BASELINES order, each aliased by its name."""
    models = [
        Naive(alias="naive"),
        SeasonalNaive(season_length, alias="seasonal_naive"),
        AutoETS(season_length=season_length, alias="ets"),
        AutoARIMA(season_length=season_length, alias="arima"),
        AutoTheta(season_length=season_length, alias="theta"),
    ]
    return [model for model in models if model.alias in names]


def _level(q: float) -> int | float:
    """Interval level 100 |1 - 2q| (percent), int when whole: it names statsforecast's columns."""
    level = round(100.0 * abs(1.0 - 2.0 * q), 8)
    return int(level) if level.is_integer() else level


def quantile_columns(quantiles: tuple[float, ...]) -> tuple[list[int | float], list[str]]:
    """Levels to request and, per quantile, the statsforecast column suffix holding it."""
    if not all(0.0 < q < 1.0 for q in quantiles):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {quantiles}")
    suffixes = ["" if np.isclose(q, 0.5) else f"-{'lo' if q < 0.5 else 'hi'}-{_level(q)}" for q in quantiles]
    levels = sorted({_level(q) for q in quantiles if not np.isclose(q, 0.5)})
    return levels, suffixes


def _series_frame(s: int, y: np.ndarray, observed: np.ndarray) -> pd.DataFrame:
    """Rows (unique_id, ds, y) of series s, first to last observed month, gaps interpolated."""
    t_obs = np.flatnonzero(observed)
    t = np.arange(t_obs[0], t_obs[-1] + 1)
    values = np.interp(t, t_obs, y[t_obs].astype(np.float64))
    return pd.DataFrame({"unique_id": s, "ds": t, "y": values})


def _constant_rows(history: np.ndarray, history_mask: np.ndarray) -> np.ndarray:
    """bool[S]: series whose observed months all hold one value (or that have none)."""
    high = np.where(history_mask, history, -np.inf).max(axis=1)
    low = np.where(history_mask, history, np.inf).min(axis=1)
    return ~history_mask.any(axis=1) | (high == low)


def _constant_forecast(history: np.ndarray, history_mask: np.ndarray, horizon: int, n_q: int) -> np.ndarray:
    """f64[S,H,Q]: each series' last observed value (0 if none) at every month and quantile."""
    last = history_mask.shape[1] - 1 - np.argmax(history_mask[:, ::-1], axis=1)
    value = np.where(history_mask.any(axis=1), history[np.arange(len(last)), last], 0.0)
    return np.broadcast_to(value[:, None, None], (len(value), horizon, n_q)).astype(np.float64)


def _forecast(
    df: pd.DataFrame,
    steps: int,
    season_length: int,
    levels: list[int | float],
    n_jobs: int = 1,
    names: tuple[str, ...] = BASELINES,
) -> pd.DataFrame:
    """statsforecast's forecast frame of `names`, `steps` months past each series' end, for `df`'s rows."""
    # statsforecast's bar, hidden by `salesjax -q`, and for a subset (the LSTMs' own AutoETS fit)
    progress = names == BASELINES and logger.isEnabledFor(logging.INFO)
    models = make_models(season_length, names)
    sf = StatsForecast(models=models, freq=1, n_jobs=n_jobs, fallback_model=Naive(), verbose=progress)
    # On short series AutoETS tries candidates with 0 residual degrees of freedom (a divide-by-zero
    # warning); a non-finite forecast that results is replaced by Naive in _apply_fallbacks.
    with np.errstate(divide="ignore", invalid="ignore"):
        return sf.forecast(h=steps, df=df, level=levels)


def _current_client() -> Client | None:
    """The Dask client this process already uses, if any."""
    try:
        return default_client()
    except ValueError:
        return None


def _connect(address: str) -> Client:
    """A client of the scheduler at `address`; an unreachable one is one line."""
    try:
        return Client(address)
    except OSError as exc:
        raise SalesjaxError(f"{SCHEDULER}={address}: cannot reach the Dask scheduler ({exc})") from None


@contextlib.contextmanager
def dask_client(n_workers: int) -> Iterator[Client]:
    """The current Dask client, else one of the cluster at $SALESJAX_DASK_SCHEDULER or of a local one."""
    if (current := _current_client()) is not None:
        yield current
    elif address := os.environ.get(SCHEDULER):
        with _connect(address) as client:
            yield client
    else:
        local = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with local, Client(local) as client:
            yield client


def _forecast_on_dask(
    df: pd.DataFrame,
    steps: int,
    season_length: int,
    levels: list[int | float],
    n_workers: int,
    names: tuple[str, ...] = BASELINES,
) -> pd.DataFrame:
    """`_forecast` of blocks of whole series on the workers of `dask_client(n_workers)`, concatenated."""
    with dask_client(n_workers) as client:
        ids = df["unique_id"].unique()
        n_tasks = min(len(ids), TASKS_PER_WORKER * sum(client.nthreads().values()))
        blocks = [df[df["unique_id"].isin(part)] for part in np.array_split(ids, n_tasks)]
        options = {"steps": steps, "season_length": season_length, "levels": levels, "names": names}
        tasks = client.map(_forecast, blocks, **options)
        return pd.concat(client.gather(tasks), ignore_index=True)


def _fit_predict(
    history: np.ndarray,
    history_mask: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    season_length: int,
    levels: list[int | float],
    n_jobs: int = 1,
    engine: str = "local",
    names: tuple[str, ...] = BASELINES,
) -> pd.DataFrame:
    """statsforecast forecast frame of `names` for series `rows`, covering months T..T+H-1 of each."""
    frames = [_series_frame(s, history[s], history_mask[s]) for s in rows]
    last = np.array([f["ds"].iat[-1] for f in frames])
    n_months = history.shape[1]
    steps = horizon + int((n_months - 1 - last).max())
    df = pd.concat(frames, ignore_index=True)
    if engine == "dask":
        fc = _forecast_on_dask(df, steps, season_length, levels, n_jobs, names)
    else:
        fc = _forecast(df, steps, season_length, levels, n_jobs, names)
    return fc[(fc["ds"] >= n_months) & (fc["ds"] < n_months + horizon)]


def _to_array(fc: pd.DataFrame, column: str, n_series: int, n_months: int, horizon: int) -> np.ndarray:
    """f64[S,H] from one forecast column (rows not in `fc` stay NaN)."""
    out = np.full((n_series, horizon), np.nan)
    out[fc["unique_id"].to_numpy(), fc["ds"].to_numpy() - n_months] = fc[column].to_numpy()
    return out


def forecast_baselines(
    history: np.ndarray,
    history_mask: np.ndarray,
    horizon: int,
    season_length: int,
    quantiles: tuple[float, ...],
    n_jobs: int = 1,
    engine: str = "local",
    names: tuple[str, ...] = BASELINES,
) -> dict[str, np.ndarray]:
    """Each baseline's f64[S,H,Q] forecast (revenue, >= 0) from history f[S,T], mask bool[S,T].

    `names` (of BASELINES, "naive" among them: it is the fallback) limits the fits to those baselines.

    `n_jobs` > 1 fits the series in that many forked worker processes (the same per-series fits, so
    the same forecasts); fork before the JAX runtime starts in the process, never after. `engine`
    "dask" fits them on a Dask cluster instead (module docstring), `n_jobs` workers when local.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if "naive" not in names or not set(names) <= set(BASELINES):
        raise ValueError(f"names must be of {BASELINES} and hold 'naive', got {names}")
    levels, suffixes = quantile_columns(quantiles)
    n_series, n_months = history.shape
    constant = _constant_rows(history, history_mask)
    base = _constant_forecast(history, history_mask, horizon, len(quantiles))
    out = {name: base.copy() for name in names}
    rows = np.flatnonzero(~constant)
    if rows.size:
        fc = _fit_predict(history, history_mask, rows, horizon, season_length, levels, n_jobs, engine, names)
        for name in names:
            for k, suffix in enumerate(suffixes):
                column = _to_array(fc, name + suffix, n_series, n_months, horizon)
                out[name][rows, :, k] = column[rows]
        _apply_fallbacks(out, history_mask, rows, season_length)
    return {name: np.sort(np.clip(out[name], 0.0, None), axis=-1) for name in names}


def _apply_fallbacks(
    out: dict[str, np.ndarray], history_mask: np.ndarray, rows: np.ndarray, season_length: int
) -> None:
    """Replace, in place, seasonal naive on short series and any non-finite series by Naive."""
    observed = history_mask[rows]
    first = np.argmax(observed, axis=1)
    last = observed.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    if "seasonal_naive" in out:
        short = rows[last - first + 1 <= season_length]
        out["seasonal_naive"][short] = out["naive"][short]
    for name in out:
        bad = rows[~np.isfinite(out[name][rows]).all(axis=(1, 2))]
        out[name][bad] = out["naive"][bad]


def ets_point(history: np.ndarray, history_mask: np.ndarray, horizon: int, season_length: int) -> np.ndarray:
    """f64[S,H] AutoETS's point forecast (revenue, >= 0) from history f[S,T], with the fallbacks above.

    Remembered for the last few inputs: the single LSTM and the seed ensemble, trained on the same
    months, share one fit.
    """
    values, mask = np.ascontiguousarray(history, np.float64).tobytes(), history_mask.astype(bool).tobytes()
    return _ets_point(values, mask, history.shape, horizon, season_length).copy()


@functools.lru_cache(maxsize=4)
def _ets_point(values: bytes, mask: bytes, shape: tuple[int, int], horizon: int, season: int) -> np.ndarray:
    """`ets_point` of a history given as bytes (hashable, so the fits can be remembered)."""
    history = np.frombuffer(values).reshape(shape)
    history_mask = np.frombuffer(mask, bool).reshape(shape)
    fits = forecast_baselines(history, history_mask, horizon, season, (0.5,), names=("naive", "ets"))
    return fits["ets"][..., 0]
