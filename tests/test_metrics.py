"""Each metric against numbers worked out by hand on tiny arrays."""

import math

import numpy as np
import pytest

from salesjax import metrics

# 2 series x 3 months; the last cell of series 1 does not count (its actual is missing: NaN).
ACTUAL = np.array([[10.0, 20.0, 30.0], [0.0, 5.0, np.nan]])
PRED = np.array([[12.0, 18.0, 30.0], [0.0, 10.0, 20.0]])
MASK = np.array([[True, True, True], [True, True, False]])
# Counted errors p - a: 2, -2, 0, 0, 5 (n = 5); |a| sums to 65.


def test_point_metrics_by_hand():
    assert metrics.mae(ACTUAL, PRED, MASK) == pytest.approx(9 / 5)
    assert metrics.rmse(ACTUAL, PRED, MASK) == pytest.approx(math.sqrt(33 / 5))
    assert metrics.wape(ACTUAL, PRED, MASK) == pytest.approx(9 / 65)
    # 200|e| / (|a| + |p|) per cell: 400/22, 400/38, 0/60, 0 (a = p = 0), 1000/15.
    assert metrics.smape(ACTUAL, PRED, MASK) == pytest.approx((400 / 22 + 400 / 38 + 1000 / 15) / 5)
    assert metrics.bias(ACTUAL, PRED, MASK) == pytest.approx(5 / 5)


def test_mask_excludes_cells():
    wild = PRED.copy()
    wild[1, 2] = 1.0e9
    for f in (metrics.mae, metrics.rmse, metrics.wape, metrics.smape, metrics.bias):
        assert f(ACTUAL, wild, MASK) == f(ACTUAL, PRED, MASK)
    # Unmasking the last cell brings its error (20 - 40 = -20) in: MAE (9 + 20) / 6.
    full = np.where(MASK, ACTUAL, 40.0)
    assert metrics.mae(full, PRED, np.ones_like(MASK)) == pytest.approx(29 / 6)
    assert math.isnan(metrics.mae(ACTUAL, PRED, np.zeros_like(MASK)))


def test_bias_sign_is_over_forecast_positive():
    assert metrics.bias(np.array([[10.0]]), np.array([[13.0]]), np.array([[True]])) == 3.0


QUANTILES = (0.1, 0.5, 0.9)
Q_ACTUAL = np.array([[10.0, 20.0, 100.0]])
Q_PRED = np.array([[[8.0, 10.0, 13.0], [21.0, 22.0, 25.0], [0.0, 100.0, 200.0]]])
Q_MASK = np.array([[True, True, False]])


def test_pinball_by_hand():
    # cell a=10: 0.1*2 + 0 + 0.1*3 = 0.5; cell a=20: 0.9*1 + 0.5*2 + 0.1*5 = 2.4; 2 cells x 3 q.
    assert metrics.pinball(Q_ACTUAL, Q_PRED, QUANTILES, Q_MASK) == pytest.approx(2.9 / 6)


def test_scaled_crps_and_quantile_hits_by_hand():
    # 2 x (0.5 + 2.4) / 3 quantiles over the |actual| sum 30; hits: 10 <= (8, 10, 13), 20 <= (21, 22, 25).
    assert metrics.scaled_crps(Q_ACTUAL, Q_PRED, QUANTILES, Q_MASK) == pytest.approx(2 * 2.9 / 3 / 30)
    np.testing.assert_allclose(metrics.quantile_hits(Q_ACTUAL, Q_PRED, Q_MASK), [0.5, 1.0, 1.0])


def test_every_symmetric_pair_of_quantiles_gets_its_coverage():
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.9)
    pred = np.stack([Q_PRED[..., 0] - 1, Q_PRED[..., 0], Q_PRED[..., 1], Q_PRED[..., 2], Q_PRED[..., 2]], -1)
    out = metrics.summarize(Q_ACTUAL, pred, quantiles, Q_MASK, np.ones(1))
    assert out["coverage_50"] == 0.5 and "coverage_90" not in out and "coverage_80" not in out


def test_coverage_by_hand():
    # 8 <= 10 <= 13 inside, 21 <= 20 not; the masked third cell (inside) does not count.
    lower, upper = Q_PRED[..., 0], Q_PRED[..., 2]
    assert metrics.coverage(Q_ACTUAL, lower, upper, Q_MASK) == 0.5
    assert metrics.coverage(Q_ACTUAL, lower, upper, np.ones_like(Q_MASK)) == pytest.approx(2 / 3)


def _history() -> tuple[np.ndarray, np.ndarray]:
    """4 series x 13 months exercising each MASE-scale rule."""
    history = np.zeros((4, 13))
    mask = np.ones((4, 13), dtype=bool)
    history[0] = np.arange(13)  # 13 observed: seasonal |12 - 0| = 12 (naive-1 would give 1)
    history[1, 1:] = [0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5]  # late start, 12 observed
    mask[1, 0] = False  # naive-1 over 11 pairs: (2 + 3) / 11
    history[2] = np.arange(13)
    history[2, 3] = 99.0
    mask[2, 3] = False  # 12 observed; pairs touching month 3 are skipped: 10 pairs of 1
    history[3] = 7.0  # constant: seasonal scale 0
    return history, mask


def test_mase_scale_rules():
    scale, rules = metrics.mase_scale(*_history(), season_length=12)
    assert rules == ["seasonal_naive", "naive", "naive", "seasonal_naive"]
    np.testing.assert_allclose(scale, [12.0, 5 / 11, 1.0, 0.0])


def test_mase_scale_without_pairs_is_nan():
    history = np.array([[1.0, 5.0, 2.0]])
    scale, rules = metrics.mase_scale(history, np.array([[True, False, True]]), 12)
    assert rules == ["naive"] and np.isnan(scale[0])


def test_mase_leaves_out_and_counts():
    actual = np.array([[10.0, 10.0], [1.0, 1.0], [3.0, 3.0], [4.0, 4.0]])
    pred = np.array([[12.0, 8.0], [2.0, 3.0], [5.0, 5.0], [0.0, 0.0]])
    mask = np.array([[True, True], [True, False], [True, True], [False, False]])
    scale = np.array([2.0, 0.5, 0.0, 1.0])
    # kept: series 0 MAE 2 / 2 = 1, series 1 MAE 1 / 0.5 = 2; series 2 (scale 0) and 3 (no test
    # month) left out.
    value, excluded = metrics.mase(actual, pred, mask, scale)
    assert value == pytest.approx(1.5) and excluded == 2


def test_summarize_keys_and_values():
    quantile_pred = np.stack([PRED - 5.0, PRED, PRED + 5.0], axis=-1)
    scale = np.array([1.0, 2.0])
    out = metrics.summarize(ACTUAL, quantile_pred, QUANTILES, MASK, scale)
    assert set(out) == {"mae", "rmse", "mase", "wape", "smape", "bias", "pinball", "coverage_80"} | {
        "mase_series_excluded",
        "crps_scaled",
        "relative_bias",
    }
    assert out["mae"] == pytest.approx(9 / 5)
    # MASE: series 0 MAE 4/3 / 1, series 1 MAE 5/2 / 2; mean (4/3 + 5/4) / 2.
    assert out["mase"] == pytest.approx((4 / 3 + 5 / 4) / 2) and out["mase_series_excluded"] == 0
    # |e| <= 5 in every counted cell, so every actual lies in [p - 5, p + 5].
    assert out["coverage_80"] == 1.0


def test_summarize_single_quantile_omits_interval_metrics():
    out = metrics.summarize(ACTUAL, PRED[..., None], (0.5,), MASK, np.ones(2))
    assert "pinball" not in out and "coverage_80" not in out
    assert out["rmse"] == pytest.approx(math.sqrt(33 / 5))
    with pytest.raises(ValueError, match="0.5"):
        metrics.summarize(ACTUAL, PRED[..., None], (0.4,), MASK, np.ones(2))


def test_aggregate_is_coherent():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 100.0, size=(4, 3, 2))
    groups = metrics.level_groups(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    assert set(groups) == set(metrics.LEVELS)
    total = metrics.aggregate(values, *groups["total"])
    np.testing.assert_allclose(total[0], values.sum(axis=0))
    store = metrics.aggregate(values, *groups["store"])
    np.testing.assert_allclose(store, [values[0] + values[1], values[2] + values[3]])
    category = metrics.aggregate(values, *groups["category"])
    np.testing.assert_allclose(category.sum(axis=0), total[0])
    np.testing.assert_allclose(metrics.aggregate(values, *groups["store_category"]), values)


def test_aggregate_masked_sums_only_counted_cells():
    quantile_pred = np.stack([PRED, PRED], axis=-1)
    actual, pred, mask = metrics.aggregate_masked(ACTUAL, quantile_pred, MASK, np.zeros(2, int), 1)
    np.testing.assert_allclose(actual, [[10.0, 25.0, 30.0]])  # the NaN cell is left out
    np.testing.assert_allclose(pred[..., 0], [[12.0, 28.0, 30.0]])  # and so is its forecast, 20
    assert mask.tolist() == [[True, True, True]]


def test_by_horizon_by_hand():
    out = metrics.by_horizon(ACTUAL, PRED, MASK)
    # month 0: |e| 2, 0; month 1: 2, 5; month 2: 0 (series 1 masked).
    np.testing.assert_allclose(out["mae"], [1.0, 3.5, 0.0])
    np.testing.assert_allclose(out["rmse"], [math.sqrt(2.0), math.sqrt(14.5), 0.0])


def test_by_series_by_hand():
    out = metrics.by_series(ACTUAL, PRED, MASK, np.array([2.0, 0.0]))
    # series 0: |e| 2, 2, 0 over 3 months; series 1: 0, 5 over 2 (its scale 0 leaves MASE out).
    np.testing.assert_allclose(out["mae"], [4 / 3, 2.5])
    np.testing.assert_allclose(out["rmse"], [math.sqrt(8 / 3), math.sqrt(12.5)])
    np.testing.assert_allclose(out["mase"], [2 / 3, np.nan])


def test_by_series_equals_each_series_alone():
    rng = np.random.default_rng(0)
    actual, pred = rng.gamma(2.0, 50.0, (40, 12)), rng.gamma(2.0, 50.0, (40, 12))
    mask = rng.random((40, 12)) < 0.8
    mask[3] = False  # no test month: every value NaN
    scale = rng.gamma(2.0, 10.0, 40)
    scale[[5, 6]] = [0.0, np.nan]
    out = metrics.by_series(np.where(mask, actual, np.nan), pred, mask, scale)
    for s in range(40):
        one = (actual[s : s + 1], pred[s : s + 1], mask[s : s + 1])
        np.testing.assert_equal(out["mae"][s], metrics.mae(*one))
        np.testing.assert_equal(out["rmse"][s], metrics.rmse(*one))
        np.testing.assert_equal(out["mase"][s], metrics.mase(*one, scale[s : s + 1])[0])
