import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from salesjax.config import ModelConfig
from salesjax.lstm import lstm
from salesjax.model import Forecaster, keep_mask


def reference_lstm(gates_x, kernel):
    """The textbook recurrence (separate sigmoids and tanh), differentiated by JAX's autodiff."""
    zeros = jnp.zeros((gates_x.shape[1], kernel.shape[0]), gates_x.dtype)

    def step(carry, gx):
        h, c = carry
        i, f, g, o = jnp.split(gx + h @ kernel, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    return jax.lax.scan(step, (zeros, zeros), gates_x)[1]


def test_lstm_outputs_and_hand_written_gradients_match_autodiff_of_the_textbook_recurrence():
    rng = np.random.default_rng(0)
    gates_x = jnp.asarray(rng.normal(0, 1.5, (7, 5, 12)), jnp.float32)
    kernel = jnp.asarray(rng.normal(0, 0.8, (3, 12)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(7, 5, 3)), jnp.float32)  # a cotangent that is not all ones
    np.testing.assert_allclose(lstm(gates_x, kernel), reference_lstm(gates_x, kernel), rtol=1e-5, atol=1e-6)
    ours = jax.grad(lambda g, k: (lstm(g, k) * weights).sum(), argnums=(0, 1))(gates_x, kernel)
    theirs = jax.grad(lambda g, k: (reference_lstm(g, k) * weights).sum(), argnums=(0, 1))(gates_x, kernel)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_keep_mask_keeps_the_right_share_and_follows_its_key():
    key = jax.random.key(3)
    mask = np.asarray(keep_mask(key, (200, 500), 0.2))
    assert abs(mask.mean() - 0.8) < 0.005  # 100,000 draws: 5 standard deviations is 0.0063
    assert np.array_equal(mask, np.asarray(keep_mask(key, (200, 500), 0.2)))
    other = np.asarray(keep_mask(jax.random.key(4), (200, 500), 0.2))
    assert 0.3 < (mask != other).mean() < 0.34  # independent masks differ in 2 p (1 - p) = 32%
    assert abs(mask[:, :250].mean() - mask[:, 250:].mean()) < 0.01  # no drift along the index
    assert np.asarray(keep_mask(key, (1000,), 0.0)).all()


def small_config(reference: str = "seasonal") -> ModelConfig:
    return ModelConfig(
        context=5,
        horizon=3,
        reference=reference,
        level_smoothing=0.3,
        combine="none",
        hidden_size=6,
        num_layers=2,
        dropout=0.3,
        store_embedding=2,
        category_embedding=2,
        quantiles=(0.1, 0.5, 0.9),
    )


@pytest.fixture(scope="module")
def model():
    return Forecaster(small_config(), num_features=4, num_stores=3, num_categories=2, rngs=nnx.Rngs(0))


def inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.normal(size=(n, 8, 4)), jnp.float32),
        jnp.asarray(rng.integers(0, 3, n), jnp.int32),
        jnp.asarray(rng.integers(0, 2, n), jnp.int32),
    )


def test_each_window_is_forecast_from_its_own_inputs_only(model):
    x, store, category = inputs(6)
    together = model(x, store, category)
    assert together.shape == (6, 3, 3)
    for b in (0, 5):
        alone = model(x[b : b + 1], store[b : b + 1], category[b : b + 1])
        np.testing.assert_allclose(alone[0], together[b], rtol=1e-5, atol=1e-6)
    changed = model(x.at[2, 0].add(1.0), store, category)
    assert not np.allclose(changed[2], together[2]) and np.allclose(
        np.delete(changed, 2, 0), np.delete(together, 2, 0)
    )


def test_dropout_only_with_a_key_and_a_new_mask_per_key(model):
    x, store, category = inputs(4)
    plain = model(x, store, category)
    np.testing.assert_array_equal(plain, model(x, store, category))
    first = model(x, store, category, key=jax.random.key(0))
    assert not np.allclose(first, plain)
    np.testing.assert_array_equal(first, model(x, store, category, key=jax.random.key(0)))
    assert not np.allclose(first, model(x, store, category, key=jax.random.key(1)))


def test_an_untrained_model_forecasts_its_reference_and_the_thesis_model_does_not(model):
    x, store, category = inputs(50)
    out = np.asarray(model(x, store, category))
    median = out[..., 1]
    assert np.abs(median).max() < 0.05  # the reference, give or take the small initial weights
    spread = out[..., 2] - out[..., 0]  # the 10-90% interval starts near 2 x 1.2816 x INIT_SPREAD
    np.testing.assert_allclose(spread, 2 * 1.2816 * 0.1, atol=0.05)
    thesis = Forecaster(
        small_config("mean"), num_features=4, num_stores=3, num_categories=2, rngs=nnx.Rngs(0)
    )
    assert np.abs(np.asarray(thesis(x, store, category))[..., 1]).max() > 0.1
