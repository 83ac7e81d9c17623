"""Upper-level intervals: calibrated on hold-out errors, they reach their nominal coverage; levels add up."""

import numpy as np

from salesjax import calibration, evaluate, metrics

STORES, CATEGORIES = 4, 5
STORE = np.repeat(np.arange(STORES), CATEGORIES)
CATEGORY = np.tile(np.arange(CATEGORIES), STORES)
QUANTILES = (0.1, 0.5, 0.9)


def draws(rng: np.random.Generator, origins: int, horizon: int, shared: float):
    """(point, actual, unit) f64[S,O,H]: actual = point + noise with a common part of share `shared`."""
    shape = (len(STORE), origins, horizon)
    unit = np.broadcast_to(rng.uniform(50, 150, len(STORE))[:, None, None], shape)
    point = unit * rng.uniform(0.8, 1.2, shape)
    common = rng.standard_normal((1, origins, horizon))
    noise = np.sqrt(shared) * common + np.sqrt(1 - shared) * rng.standard_normal(shape)
    return point, point + 0.1 * unit * noise, unit


def test_calibrated_intervals_reach_the_nominal_coverage_at_every_upper_level():
    rng = np.random.default_rng(0)
    point, actual, unit = draws(rng, 1000, 3, shared=0.3)
    offsets = calibration.level_offsets(
        point, actual, unit, np.ones(point.shape, bool), STORE, CATEGORY, QUANTILES
    )
    test_point, test_actual, test_unit = draws(rng, 1000, 3, shared=0.3)
    for level in calibration.UPPER_LEVELS:
        groups, n = metrics.level_groups(STORE, CATEGORY)[level]
        sums = [metrics.aggregate(a, groups, n) for a in (test_point, test_actual, test_unit)]
        q = calibration.level_quantiles(sums[0], sums[2], offsets[level])
        inside = (q[..., 0] <= sums[1]) & (sums[1] <= q[..., 2])
        assert 0.77 < inside.mean() < 0.83, (level, inside.mean())
        summed = metrics.aggregate(test_point + 0.1 * test_unit * 1.2816, groups, n)  # summed 0.9 quantiles
        assert (summed - sums[0]).mean() > (q[..., 2] - sums[0]).mean()  # summing quantiles is wider


def test_the_levels_add_up_and_the_point_is_the_sum_of_the_series_points():
    rng = np.random.default_rng(1)
    values = np.sort(rng.uniform(0, 100, (len(STORE), 3, 3)), axis=-1)
    unit = rng.uniform(50, 150, len(STORE))
    offsets = {level: [-0.5, 0.0, 0.7] for level in calibration.UPPER_LEVELS}
    fc = evaluate.Forecast(values, QUANTILES, unit, offsets)
    actual = rng.uniform(0, 100, (len(STORE), 3))
    mask = np.ones(actual.shape, bool)
    history = rng.uniform(0, 100, (len(STORE), 24))
    truth = evaluate.Truth(actual, mask, history, np.ones(history.shape, bool))
    table = evaluate.score_levels(truth, {"m": fc}, STORE, CATEGORY, 12).set_index("level")
    point = values[..., 1]
    assert np.isclose(table.loc["total", "bias"], (point.sum(axis=0) - actual.sum(axis=0)).mean())
    store_totals = metrics.aggregate(point - actual, STORE, STORES)
    assert np.isclose(table.loc["store", "bias"], store_totals.mean())
