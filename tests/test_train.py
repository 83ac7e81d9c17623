"""The model and its training: shapes, learning, compilation, ensembles, determinism, no leakage."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import make_panel

from salesjax import baselines, calibration, features, train
from salesjax.errors import SalesjaxError

TRAIN_MONTHS = 24


def tiny_arrays(config, months: int = TRAIN_MONTHS):
    """(history f64[S,months], available, calendar, store, category, num_ids) from the tiny panel."""
    wide = make_panel().pivot_table(index=["store", "category"], columns="month", values="revenue")
    store = wide.index.get_level_values(0).factorize()[0].astype(np.int32)
    category = wide.index.get_level_values(1).factorize()[0].astype(np.int32)
    history = wide.to_numpy()[:, :months]
    start = pd.Period("2018-01", "M")
    calendar = features.monthly_calendar(
        start - config.model.context,
        start + months + config.model.horizon,
        config.data.country,
        config.data.events,
    ).to_numpy()
    num_ids = (int(store.max()) + 1, int(category.max()) + 1)
    return history, np.ones_like(history, bool), calendar, store, category, num_ids


def tiny_windows(config):
    """All training windows of the tiny panel and the model's (F, stores, categories)."""
    history, available, calendar, store, category, num_ids = tiny_arrays(config)
    windows = features.make_windows(
        history,
        available,
        calendar,
        features.Scaler.fit(history, available),
        store,
        category,
        np.arange(1, TRAIN_MONTHS),
        context=config.model.context,
        horizon=config.model.horizon,
        require_target=True,
    )
    return windows, (features.num_features(calendar.shape[1]), *num_ids)


def leaves(params):
    """Parameter leaves as numpy arrays."""
    return [np.asarray(x) for x in jax.tree.leaves(params)]


def one_step(config, windows, shapes, seeds, steps=1):
    """`steps` train steps on the first batch as one epoch program: (initial params, state, losses)."""
    graphdef, params = train.init_members(config.model, shapes, seeds)
    tx = train.make_optimizer(config.train, 100)
    epoch = train.make_train_epoch(graphdef, tx, train.pinball_loss, config.model.quantiles)
    before = leaves(params)
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    state = train.TrainState(jnp.zeros(len(seeds), jnp.int32), keys, params, jax.vmap(tx.init)(params))
    batch = np.random.default_rng(0).permutation(len(windows.y))[: config.train.batch_size]
    idx = np.tile(batch.astype(np.int32), (steps, len(seeds), 1))
    state, stats = epoch(state, windows, idx, np.ones(idx.shape, np.float32))
    return before, state, [float(x) for x in stats["loss"][:, 0]]


def test_forecast_shape_finite_and_monotone(config):
    windows, shapes = tiny_windows(config)
    graphdef, params = train.init_members(config.model, shapes, [0])
    pred = train.make_predict(graphdef)(params, windows.x, windows.store, windows.category)
    assert pred.shape == (1, len(windows.y), config.model.horizon, len(config.model.quantiles))
    assert bool(jnp.all(jnp.isfinite(pred)))
    assert bool(jnp.all(jnp.diff(pred, axis=-1) >= 0))


def test_one_step_changes_every_parameter_leaf(config):
    windows, shapes = tiny_windows(config)
    before, state, _ = one_step(config, windows, shapes, [0])
    for old, new in zip(before, leaves(state.params), strict=True):
        assert not np.array_equal(old, new)


def test_loss_falls_on_a_batch_it_can_overfit(config):
    windows, shapes = tiny_windows(config)
    cfg = dataclasses.replace(
        config, train=dataclasses.replace(config.train, learning_rate=1.0e-2, warmup_steps=1)
    )
    _, _, losses = one_step(cfg, windows, shapes, [0], steps=150)
    assert losses[-1] < 0.5 * losses[0]


def test_epoch_program_equals_its_steps_run_one_by_one_and_compiles_once(config):
    windows, shapes = tiny_windows(config)
    assert len(windows.y) % config.train.batch_size != 0
    graphdef, params = train.init_members(config.model, shapes, [0])
    tx = train.make_optimizer(config.train, 100)
    epoch = train.make_train_epoch(graphdef, tx, train.pinball_loss, config.model.quantiles)
    step = jax.jit(train.make_train_step(graphdef, tx, train.pinball_loss, config.model.quantiles))
    state = train.TrainState(
        jnp.zeros(1, jnp.int32), jnp.stack([jax.random.key(0)]), params, jax.vmap(tx.init)(params)
    )
    rngs = [np.random.default_rng(0)]
    idx, valid = train.epoch_batches(rngs, len(windows.y), config.train.batch_size)
    assert valid[-1, 0].sum() < config.train.batch_size  # the last batch really is ragged
    one_by_one = state
    for s in range(idx.shape[0]):
        one_by_one, _ = step(one_by_one, windows, idx[s], valid[s])
    whole, stats = epoch(jax.tree.map(jnp.copy, state), windows, idx, valid)
    assert stats["loss"].shape == (idx.shape[0], 1)
    for a, b in zip(leaves(one_by_one.params), leaves(whole.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    epoch(whole, windows, *train.epoch_batches(rngs, len(windows.y), config.train.batch_size))
    assert epoch._cache_size() == 1


def test_vmapped_ensemble_equals_members_trained_alone(config):
    windows, shapes = tiny_windows(config)
    val = windows._replace(**{k: v[-20:] for k, v in windows._asdict().items()})
    together = train.fit(config.model, config.train, windows, shapes, [3, 4], val=val)
    for k, seed in enumerate([3, 4]):
        alone = train.fit(config.model, config.train, windows, shapes, [seed], val=val)
        assert alone.epochs[0] == together.epochs[k]
        np.testing.assert_allclose(alone.val_loss[:, 0], together.val_loss[:, k], rtol=1e-5)
        for a, b in zip(leaves(alone.params), leaves(together.params), strict=True):
            np.testing.assert_allclose(a[0], b[k], rtol=1e-4, atol=1e-6)


def test_training_is_bit_identical_when_repeated(config):
    windows, shapes = tiny_windows(config)
    first = train.fit(config.model, config.train, windows, shapes, [0], epochs=np.array([2]))
    second = train.fit(config.model, config.train, windows, shapes, [0], epochs=np.array([2]))
    for a, b in zip(leaves(first.params), leaves(second.params), strict=True):
        assert a.tobytes() == b.tobytes()


def test_non_finite_loss_stops_training_naming_step_and_member(config):
    windows, shapes = tiny_windows(config)
    poisoned = windows._replace(y=np.where(np.arange(len(windows.y))[:, None] == 5, np.nan, windows.y))
    with pytest.raises(SalesjaxError, match=r"step \d+ .*member 1 \(seed 8\)"):
        train.fit(config.model, config.train, poisoned, shapes, [7, 8], epochs=np.array([1, 1]))


def test_future_covariates_reach_every_horizon_step(config):
    history, available, calendar, store, category, num_ids = tiny_arrays(config)
    trained = train.train_forecaster(
        history, available, calendar, store, category, num_ids, config.model, config.train, [0]
    )
    graphdef, _ = train.init_members(config.model, (features.num_features(calendar.shape[1]), *num_ids), [0])
    base = train.forecast(
        graphdef, trained.params, trained.scaler, history, available, calendar, store, category, config.model
    ).values
    assert np.isfinite(base).all() and (base >= 0).all()  # revenue: level x (reference + output), >= 0
    holiday = features.BASE_FEATURES.index("holidays")
    for h in range(config.model.horizon):
        changed = calendar.copy()
        changed[config.model.context + TRAIN_MONTHS + h, holiday] += 2.0
        pred = train.forecast(
            graphdef,
            trained.params,
            trained.scaler,
            history,
            available,
            changed,
            store,
            category,
            config.model,
        ).values
        moved = np.abs(pred - base)[..., 1].max(axis=(0, 1))  # median, per horizon step
        assert moved[h] > 0
        assert np.all(moved[:h] == 0)  # the recurrence runs forward: earlier months cannot see it


def test_training_calibrates_every_upper_level_and_keeps_the_point(config):
    history, available, calendar, store, category, num_ids = tiny_arrays(config)
    args = (store, category, num_ids, config.model, config.train, [0])
    trained = train.train_forecaster(history, available, calendar, *args)
    offsets = dict(trained.calibration)
    assert offsets.pop(calibration.WEIGHT)[0] in calibration.WEIGHTS
    assert offsets.pop(calibration.ETS_WEIGHT)[0] in calibration.WEIGHTS  # `model.combine: ets`
    assert offsets.pop(calibration.ETS_SEASON) == [1.0]  # 18 months before the hold-out: one season
    assert set(offsets) == set(calibration.UPPER_LEVELS)
    for level in offsets.values():
        assert level[config.model.quantiles.index(0.5)] == 0.0  # the point forecast stays
        assert level == sorted(level) and level[0] < 0 < level[-1]


@pytest.mark.parametrize(("months", "weight"), [(24, 0.0), (18, 1.0)])
def test_the_hold_out_weighs_the_reference_only_after_a_season_before_it(config, monkeypatch, months, weight):
    """With 18 training months, the 12 before the 6-month hold-out hold no month and its year-ago month."""
    history, available, calendar, store, category, num_ids = tiny_arrays(config)
    monkeypatch.setattr(calibration, "choose_weight", lambda *arrays: 0.0)
    keep = config.model.context + months + config.model.horizon
    args = (store, category, num_ids, config.model, config.train, [0])
    trained = train.train_forecaster(history[:, :months], available[:, :months], calendar[:keep], *args)
    assert trained.calibration[calibration.WEIGHT] == [weight]


def test_window_chunks_cover_every_window_once_in_one_shape(config):
    windows, _ = tiny_windows(config)
    n = len(windows.y)
    assert train.window_chunks(windows, n) == [windows]  # a set that fits goes through whole
    chunks = train.window_chunks(windows, 7)
    assert len(chunks) == -(-n // 7) and {len(c.y) for c in chunks} == {7}
    for field in windows._fields:
        joined = np.concatenate([getattr(c, field) for c in chunks])
        np.testing.assert_array_equal(joined[:n], getattr(windows, field))
        assert not joined[n:].any()  # padding: zero windows, mask 0


def test_chunked_validation_loss_and_predictions_equal_one_pass(config, monkeypatch):
    """Beyond EVAL_WINDOWS the hold-out loss and the predictions go in chunks, with the same numbers."""
    windows, shapes = tiny_windows(config)
    val = windows._replace(**{k: v[-20:] for k, v in windows._asdict().items()})
    whole = train.fit(config.model, config.train, windows, shapes, [3, 4], val=val)
    one_pass = train.predict_windows(*train.init_members(config.model, shapes, [3, 4]), windows)
    monkeypatch.setattr(train, "EVAL_WINDOWS", 6)  # 20 hold-out windows: 4 chunks, the last padded
    chunked = train.fit(config.model, config.train, windows, shapes, [3, 4], val=val)
    np.testing.assert_allclose(chunked.val_loss, whole.val_loss, rtol=1e-5)
    np.testing.assert_array_equal(chunked.epochs, whole.epochs)
    in_chunks = train.predict_windows(*train.init_members(config.model, shapes, [3, 4]), windows)
    np.testing.assert_allclose(in_chunks, one_pass, rtol=1e-4, atol=1e-6)  # XLA: other batch shape


def test_the_batch_shrinks_so_that_an_epoch_has_at_least_min_steps_per_epoch(config):
    cfg = dataclasses.replace(config.train, batch_size=128, min_steps_per_epoch=16)
    assert train.batch_size(cfg, 170) == 11  # ceil(170 / 16): 16 steps instead of 2
    assert train.batch_size(cfg, 10_000) == 128  # a large panel keeps train.batch_size
    assert train.batch_size(cfg, 170, devices=4) == 12  # a multiple of the devices along the batch
    assert train.batch_size(dataclasses.replace(cfg, min_steps_per_epoch=1), 170) == 128
    with pytest.raises(SalesjaxError, match="train.batch_size=128 must divide over 3 devices"):
        train.batch_size(cfg, 170, devices=3)


@pytest.mark.parametrize(("scale", "weight"), [(1.0, 0.0), (50.0, 1.0)])
def test_the_hold_out_weighs_ets_from_the_months_before_it(config, monkeypatch, scale, weight):
    """An AutoETS stand-in that forecasts the hold-out exactly takes all the weight; a wild one none."""
    history, available, calendar, store, category, num_ids = tiny_arrays(config, months=27)
    train_cfg = dataclasses.replace(config.train, validation_months=3)  # 24 months before the hold-out
    seen = []

    def ets_point(before, before_available, steps, season):
        seen.append(before.shape[1])
        return scale * history[:, before.shape[1] : before.shape[1] + steps]

    monkeypatch.setattr(train.baselines, "ets_point", ets_point)
    args = (store, category, num_ids, config.model, train_cfg, [0])
    trained = train.train_forecaster(history, available, calendar, *args)
    assert trained.calibration[calibration.ETS_WEIGHT] == [weight]
    assert trained.calibration[calibration.ETS_SEASON] == [12.0]
    assert seen == [calibration.ETS_MIN_MONTHS]  # fitted once, on the months before the hold-out


def test_with_one_season_before_the_hold_out_ets_fits_the_deseasonalised_months(config, monkeypatch):
    history, available, calendar, store, category, num_ids = tiny_arrays(config)  # 18 before the hold-out
    seen = []

    def ets_point(before, before_available, steps, season):
        seen.append((before.shape[1], season))
        return np.ones((len(before), steps))

    monkeypatch.setattr(train.baselines, "ets_point", ets_point)
    args = (store, category, num_ids, config.model, config.train, [0])
    trained = train.train_forecaster(history, available, calendar, *args)
    assert seen == [(18, 1)]  # once, without a season, on the months before the hold-out only
    assert trained.calibration[calibration.ETS_SEASON] == [1.0]
    assert train.ets_season(trained.calibration) == 1


def test_deseasonalised_ets_continues_a_steady_season_and_needs_a_year_for_it():
    rng = np.random.default_rng(0)
    season = rng.uniform(0.5, 1.5, (3, 12))
    season /= season.mean(axis=1, keepdims=True)
    history = 100.0 * np.tile(season, 2)[:, :18]  # a constant level times a steady season
    available = np.ones(history.shape, bool)
    ahead = train.ets_forecast(history, available, 6, 1)
    np.testing.assert_allclose(ahead, 100.0 * season[:, 6:12])  # the season goes on from the profile
    flat = train.ets_forecast(history[:, :11], available[:, :11], 6, 1)  # no complete year: no profile
    np.testing.assert_array_equal(flat, baselines.ets_point(history[:, :11], available[:, :11], 6, 1))
    assert train.ets_season({calibration.WEIGHT: [1.0]}) is None  # no AutoETS in the calibration
