"""Upper-level intervals: calibrated on hold-out errors, they reach their nominal coverage; levels add up."""

import numpy as np

from salesjax import calibration, evaluate, metrics, train

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


def test_the_weight_follows_whichever_of_network_and_reference_carries_over_to_the_hold_out():
    rng = np.random.default_rng(2)
    shape = (len(STORE), 6, 3)
    unit = np.full(shape, 100.0)
    actual = unit * rng.uniform(0.8, 1.2, shape)
    noise = unit * 0.3 * rng.standard_normal(shape)
    mask = np.ones(shape, bool)
    # the reference is right and the network adds noise: the reference alone
    assert calibration.choose_weight(actual + noise, actual, actual, unit, mask) == 0.0
    # the network is right and the reference is off: the network alone
    assert calibration.choose_weight(actual, actual + noise, actual, unit, mask) == 1.0
    # both are off by independent errors of the same size: a blend beats either
    other = unit * 0.3 * rng.standard_normal(shape)
    assert 0.0 < calibration.choose_weight(actual + noise, actual + other, actual, unit, mask) < 1.0
    # masked cells count for nothing: the network's noise only where the mask is off
    half = mask.copy()
    half[:, :3] = False
    network = np.where(half, actual, actual + noise)
    assert calibration.choose_weight(network, actual + other, actual, unit, half) == 1.0


def test_a_weighted_forecast_moves_every_quantile_with_its_median():
    rng = np.random.default_rng(3)
    values = np.sort(rng.uniform(50, 150, (len(STORE), 3, 3)), axis=-1)
    reference = rng.uniform(50, 150, (len(STORE), 3))
    moved = calibration.weighted(values, reference, 1, 0.25)
    assert np.allclose(moved[..., 1], reference + 0.25 * (values[..., 1] - reference))
    assert np.allclose(np.diff(moved, axis=-1), np.diff(values, axis=-1))  # the intervals keep their width
    assert np.array_equal(calibration.weighted(values, reference, 1, 1.0), values)
    assert (calibration.weighted(values, -values[..., 2] - 1, 1, 0.0) == 0).all()  # revenue stays >= 0


def test_the_evaluated_forecast_takes_the_weight_from_its_calibration():
    rng = np.random.default_rng(4)
    members = np.sort(rng.uniform(50, 150, (2, len(STORE), 3, 3)), axis=-1)
    reference = rng.uniform(50, 150, (len(STORE), 3))
    prediction = train.Prediction(members, rng.uniform(50, 150, len(STORE)), reference)
    plain = evaluate.ensemble_forecast(prediction, slice(0, 3), QUANTILES, {})
    assert np.array_equal(plain.values, members.mean(axis=0))
    weighted = evaluate.ensemble_forecast(prediction, slice(1, 3), QUANTILES, {calibration.WEIGHT: [0.0]})
    assert np.allclose(weighted.median(), reference[:, 1:])


def test_the_evaluated_forecast_takes_the_ets_weight_after_the_network_weight():
    rng = np.random.default_rng(5)
    members = np.sort(rng.uniform(50, 150, (2, len(STORE), 3, 3)), axis=-1)
    reference, ets = rng.uniform(50, 150, (2, len(STORE), 3))
    prediction = train.Prediction(members, rng.uniform(50, 150, len(STORE)), reference, ets)
    weights = {calibration.WEIGHT: [0.5], calibration.ETS_WEIGHT: [0.25]}
    combined = evaluate.ensemble_forecast(prediction, slice(0, 3), QUANTILES, weights)
    blend = reference + 0.5 * (members.mean(axis=0)[..., 1] - reference)
    assert np.allclose(combined.median(), 0.25 * blend + 0.75 * ets)
    only_ets = evaluate.ensemble_forecast(prediction, slice(0, 3), QUANTILES, {calibration.ETS_WEIGHT: [0.0]})
    assert np.allclose(only_ets.median(), ets)
    assert np.allclose(np.diff(only_ets.values, axis=-1), np.diff(members.mean(axis=0), axis=-1))
