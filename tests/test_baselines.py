"""The baselines' contract on a tiny panel, plus exactness and fallback properties."""

import dask
import numpy as np
import pytest
from distributed import get_task_stream

from salesjax import baselines
from salesjax.baselines import BASELINES, forecast_baselines, quantile_columns
from salesjax.errors import SalesjaxError

QUANTILES = (0.1, 0.5, 0.9)
T, H, M = 24, 12, 12
PATTERN = np.array([5.0, 7.0, 9.0, 12.0, 15.0, 14.0, 11.0, 10.0, 8.0, 6.0, 20.0, 30.0]) * 100


def _panel() -> tuple[np.ndarray, np.ndarray]:
    """6 series x 24 months: noisy, late start, interior + trailing gaps, alternating, zero, empty."""
    rng = np.random.default_rng(0)
    history = np.tile(PATTERN, 2)[None] * rng.lognormal(0.0, 0.2, size=(6, T))
    mask = np.ones((6, T), dtype=bool)
    mask[1, :15] = False  # starts in month 15: 9 observed months
    mask[2, 5:8] = False
    mask[2, -3:] = False
    history[3] = np.tile([0.0, 1000.0], T // 2)  # naive's 0.1 quantile would go negative
    history[4] = 0.0
    mask[5] = False
    history[~mask] = np.nan  # never read
    return history, mask


@pytest.fixture(scope="module")
def panel_forecasts() -> dict[str, np.ndarray]:
    return forecast_baselines(*_panel(), horizon=H, season_length=M, quantiles=QUANTILES)


@pytest.mark.parametrize("name", BASELINES)
def test_contract(panel_forecasts, name):
    out = panel_forecasts[name]
    assert out.shape == (6, H, len(QUANTILES)) and out.dtype == np.float64
    assert np.isfinite(out).all() and (out >= 0).all()
    assert (np.diff(out, axis=-1) >= 0).all()
    assert (out[1, :, 1] > 0).all()  # the late-start series gets a real forecast
    np.testing.assert_array_equal(out[4:], 0.0)  # all-zero and never-observed series


def test_negative_bounds_are_clipped_to_zero(panel_forecasts):
    assert (panel_forecasts["naive"][3, :, 0] == 0.0).all()
    assert (panel_forecasts["naive"][3, :, 2] > 0.0).all()


def test_seasonal_naive_is_exact_on_a_periodic_series():
    history = np.tile(PATTERN, 2)[None].repeat(3, axis=0)
    mask = np.ones_like(history, dtype=bool)
    mask[1, :10] = False  # late start with 14 observed months
    mask[2, -3:] = False  # last 3 months missing: the forecast must keep the seasonal phase
    out = forecast_baselines(history, mask, H, M, QUANTILES)["seasonal_naive"]
    np.testing.assert_array_equal(out, np.broadcast_to(PATTERN[None, :, None], out.shape))


def test_constant_history_gives_its_constant():
    history = np.full((1, T), 250.0)
    mask = np.ones((1, T), dtype=bool)
    mask[0, :20] = False
    for name, out in forecast_baselines(history, mask, H, M, QUANTILES).items():
        np.testing.assert_array_equal(out, 250.0, err_msg=name)


def test_short_series_seasonal_naive_falls_back_to_naive():
    history = np.array([[0.0] * 19 + [300.0, 100.0, 200.0, 500.0, 400.0]])
    mask = history > 0
    out = forecast_baselines(history, mask, H, M, QUANTILES)
    np.testing.assert_array_equal(out["seasonal_naive"], out["naive"])
    np.testing.assert_array_equal(out["naive"][0, :, 1], 400.0)


def test_deterministic():
    history, mask = _panel()
    first = forecast_baselines(history[:2], mask[:2], 3, M, QUANTILES)
    second = forecast_baselines(history[:2], mask[:2], 3, M, QUANTILES)
    for name in BASELINES:
        np.testing.assert_array_equal(first[name], second[name])


def test_quantile_columns():
    assert quantile_columns((0.1, 0.5, 0.9)) == ([80], ["-lo-80", "", "-hi-80"])
    levels, suffixes = quantile_columns((0.05, 0.25, 0.75))
    assert levels == [50, 90] and suffixes == ["-lo-90", "-lo-50", "-hi-50"]
    with pytest.raises(ValueError, match="strictly between"):
        quantile_columns((0.0, 0.5))


def test_the_dask_engine_gives_the_local_forecasts(panel_forecasts, monkeypatch):
    """A local cluster of 2 worker processes fits the same series to the same forecasts, bit for bit."""
    monkeypatch.delenv(baselines.SCHEDULER, raising=False)
    with baselines.dask_client(2) as client:  # no scheduler named, no client yet: a local cluster
        assert sorted(client.nthreads().values()) == [1, 1]
        with get_task_stream(client) as stream:
            on_dask = forecast_baselines(*_panel(), H, M, QUANTILES, n_jobs=2, engine="dask")
    fits = {t["key"] for t in stream.data if str(t["key"]).startswith("_forecast")}
    assert len(fits) == 4  # one block per series fitted (of 6: one all-zero, one never observed)
    for name in BASELINES:
        np.testing.assert_array_equal(on_dask[name], panel_forecasts[name], err_msg=name)


def test_an_unreachable_scheduler_is_one_line(monkeypatch):
    monkeypatch.setenv(baselines.SCHEDULER, "tcp://127.0.0.1:9")
    refused = pytest.raises(SalesjaxError, match="SALESJAX_DASK_SCHEDULER=tcp://127.0.0.1:9: cannot reach")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), refused:
        forecast_baselines(*_panel(), H, M, QUANTILES, engine="dask")


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of"):
        forecast_baselines(*_panel(), H, M, QUANTILES, engine="spark")


def test_a_subset_of_names_fits_only_those_and_gives_their_full_forecasts(panel_forecasts):
    subset = forecast_baselines(*_panel(), H, M, QUANTILES, names=("naive", "ets"))
    assert sorted(subset) == ["ets", "naive"]
    for name, out in subset.items():
        np.testing.assert_array_equal(out, panel_forecasts[name], err_msg=name)
    np.testing.assert_array_equal(baselines.ets_point(*_panel(), H, M), panel_forecasts["ets"][..., 1])


def test_names_without_the_naive_fallback_are_refused():
    with pytest.raises(ValueError, match="hold 'naive'"):
        forecast_baselines(*_panel(), H, M, QUANTILES, names=("ets",))


def test_ets_point_fits_each_history_once_and_hands_out_copies(monkeypatch):
    history, mask = _panel()
    history = history[:3] * 1.5  # a history no other test fits, so none is remembered yet
    calls = []

    def counted(*args, **options):
        calls.append(args[0].shape)
        return forecast_baselines(*args, **options)

    monkeypatch.setattr(baselines, "forecast_baselines", counted)
    first = baselines.ets_point(history, mask[:3], H, M)
    first[:] = -1.0
    again = baselines.ets_point(history, mask[:3], H, M)
    assert len(calls) == 1 and (again >= 0).all()
    baselines.ets_point(history, mask[:3], H - 1, M)
    assert len(calls) == 2  # another horizon is another fit
