"""Reconciled baselines: the WLS algebra, its wiring to the fits of every level, and coherence."""

import numpy as np
import pytest

from salesjax import baselines, reconcile

QUANTILES = (0.1, 0.5, 0.9)
STORE = np.array([0, 0, 1, 1, 1])
CATEGORY = np.array([0, 1, 0, 1, 2])


def test_upper_rows_sum_the_series_of_each_store_category_and_the_company():
    upper = reconcile.upper_rows(STORE, CATEGORY)
    assert upper.shape == (1 + 2 + 3, 5)
    np.testing.assert_array_equal(upper[0], 1.0)
    np.testing.assert_array_equal(upper[1:3], [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(upper[3:], [[1, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1]])


def test_an_upper_month_is_unobserved_where_a_series_misses_it_inside_its_span():
    history = np.arange(5 * 8, dtype=float).reshape(5, 8) + 1
    mask = np.ones_like(history, dtype=bool)
    mask[0, 3] = False  # a gap: series 0 (store 0, category 0) has months before and after it
    mask[4, :2] = False  # a late start: nothing to miss before it
    mask[2] = False  # never observed
    upper = reconcile.upper_rows(STORE, CATEGORY)
    values, observed = reconcile.upper_series(history, mask, upper)
    np.testing.assert_array_equal(values, upper @ np.where(mask, history, 0.0))
    holding = upper[:, 0] > 0  # the company, store 0 and category 0
    np.testing.assert_array_equal(observed[:, 3], ~holding)
    assert not observed[-1, :2].any()  # category 2 is series 4 alone: nothing of it before its start
    observed[:, 3], observed[-1, :2] = True, True
    assert observed.all()


def test_equal_variances_share_the_gap_equally_between_the_total_and_its_series():
    upper = np.ones((1, 2))
    base = np.array([[13.0], [4.0], [6.0]])  # total 13, series 4 + 6 = 10: a gap of 3
    out = reconcile.wls(base, np.ones_like(base), upper)
    np.testing.assert_allclose(out[:, 0], [5.0, 7.0])  # ordinary least squares: each moves by 3 / 3


def test_the_precise_forecast_wins_and_a_coherent_one_is_left_alone():
    upper = np.ones((1, 2))
    base = np.array([[13.0], [4.0], [6.0]])
    precise_total = reconcile.wls(base, np.array([[1e-6], [1.0], [1.0]]), upper)
    np.testing.assert_allclose(precise_total.sum(), 13.0, rtol=1e-5)
    np.testing.assert_allclose(precise_total[:, 0], [5.5, 7.5], rtol=1e-5)  # equal variances split evenly
    precise_series = reconcile.wls(base, np.array([[1.0], [1e-6], [1e-6]]), upper)
    np.testing.assert_allclose(precise_series[:, 0], [4.0, 6.0], rtol=1e-5)
    rng = np.random.default_rng(0)
    bottom = rng.uniform(1, 10, size=(5, 4))
    full = reconcile.upper_rows(STORE, CATEGORY)
    coherent = np.concatenate([full @ bottom, bottom])
    variance = rng.uniform(0.1, 5.0, size=coherent.shape)
    np.testing.assert_allclose(reconcile.wls(coherent, variance, full), bottom, rtol=1e-12)


def _history(months: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    season = 1 + 0.3 * np.sin(np.arange(months) * 2 * np.pi / 12)
    history = 100 * rng.uniform(1, 3, size=(5, 1)) * season * rng.lognormal(0, 0.1, size=(5, months))
    mask = np.ones_like(history, dtype=bool)
    mask[4, :6] = False  # a late start: the upper series sum only what is observed
    return history, mask


def test_every_level_is_fitted_and_the_series_reconciled_by_their_own_variances(monkeypatch):
    history, mask = _history()
    seen = {}

    def fake(stacked, stacked_mask, horizon, quantiles, season_length, n_jobs, engine):
        seen.update(history=stacked, mask=stacked_mask, quantiles=quantiles)
        point = np.repeat(stacked[:, -1:], horizon, axis=1)  # a naive forecast with a width per series
        width = np.linspace(1.0, 3.0, len(stacked))[:, None, None] * np.array([-1.0, 0.0, 1.0])
        fc = point[..., None] + width
        return {"naive": fc, "ets": fc * 1.1}

    monkeypatch.setattr(reconcile.baselines, "forecast_baselines", fake)
    out = reconcile.coherent_baselines(history, mask, STORE, CATEGORY, 3, 12, (0.5, 0.9), "wls")
    upper = reconcile.upper_rows(STORE, CATEGORY)
    assert seen["quantiles"] == (0.1, 0.5, 0.9)  # the variance's interval is fitted even where not asked
    np.testing.assert_allclose(seen["history"][: len(upper)], upper @ np.where(mask, history, 0.0))
    np.testing.assert_array_equal(seen["mask"][len(upper) :], mask)
    for name, factor in (("naive", 1.0), ("ets", 1.1)):
        point = factor * np.repeat(seen["history"][:, -1:], 3, axis=1)
        width = factor * np.linspace(1.0, 3.0, len(point))[:, None]
        variance = np.broadcast_to((2 * width / 2.5631031310892007) ** 2, point.shape)
        expected = reconcile.wls(point, variance, upper)
        np.testing.assert_allclose(out[name][..., 0], expected)
        np.testing.assert_allclose(out[name][..., 1] - out[name][..., 0], width[len(upper) :] * np.ones(3))


@pytest.fixture(scope="module")
def fitted() -> dict[str, dict[str, np.ndarray]]:
    history, mask = _history()
    options = {
        "store": STORE,
        "category": CATEGORY,
        "horizon": 6,
        "season_length": 12,
        "quantiles": QUANTILES,
    }
    return {
        method: reconcile.coherent_baselines(history, mask, method=method, **options)
        for method in ("wls", "bottom_up")
    }


def test_reconciled_baselines_keep_the_contract_and_bottom_up_is_the_plain_fit(fitted):
    history, mask = _history()
    plain = baselines.forecast_baselines(history, mask, 6, 12, QUANTILES)
    for name in baselines.BASELINES:
        out = fitted["wls"][name]
        assert out.shape == (5, 6, 3) and np.isfinite(out).all() and (out >= 0).all()
        assert (np.diff(out, axis=-1) >= 0).all()
        np.testing.assert_array_equal(fitted["bottom_up"][name], plain[name])
    for coherent in ("naive", "seasonal_naive"):  # the sums' forecasts are the forecasts' sums already
        np.testing.assert_allclose(fitted["wls"][coherent], plain[coherent], rtol=1e-12)
    assert not np.allclose(fitted["wls"]["arima"], plain["arima"])  # the upper fits moved the series


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        reconcile.coherent_baselines(*_history(), STORE, CATEGORY, 3, 12, QUANTILES, "mint")
