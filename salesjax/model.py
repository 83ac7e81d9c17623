"""The global LSTM forecaster (Flax NNX): forward pass only.

One recurrence runs over `context + horizon` months. Context steps carry the scaled revenue; horizon
steps carry no revenue, only their known-future calendar, so every forecast month sees its own
covariates, and the head reads the hidden state of each horizon step (direct multi-horizon output).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from salesjax.config import ModelConfig


def _forget_bias(key, shape, dtype=jnp.float32):
    """Gate bias with the forget gate (second quarter) at 1, a standard LSTM initialisation."""
    hidden = shape[0] // 4
    return jnp.zeros(shape, dtype).at[hidden : 2 * hidden].set(1.0)


class LSTMLayer(nnx.Module):
    """One LSTM layer: the input projection of all steps is one matrix product, then `lax.scan`."""

    def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
        self.input = nnx.Linear(in_features, 4 * hidden, bias_init=_forget_bias, rngs=rngs)
        self.recurrent = nnx.Linear(
            hidden, 4 * hidden, use_bias=False, kernel_init=nnx.initializers.orthogonal(), rngs=rngs
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """f32[B,T,I] -> f32[B,T,Hd] hidden states, starting from zeros."""
        gates_x = jnp.swapaxes(self.input(x), 0, 1)  # [T,B,4Hd]
        kernel = self.recurrent.kernel[...]
        zeros = jnp.zeros((x.shape[0], kernel.shape[0]), x.dtype)

        def step(carry, gx):
            h, c = carry
            i, f, g, o = jnp.split(gx + h @ kernel, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        _, hs = jax.lax.scan(step, (zeros, zeros), gates_x)
        return jnp.swapaxes(hs, 0, 1)


def _dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout; the identity when `key` is None (evaluation)."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class Forecaster(nnx.Module):
    """Stacked LSTM with store and category embeddings and a monotone quantile head."""

    def __init__(
        self,
        cfg: ModelConfig,
        num_features: int,
        num_stores: int,
        num_categories: int,
        *,
        rngs: nnx.Rngs,
    ):
        self.store_embed = nnx.Embed(num_stores, cfg.store_embedding, rngs=rngs)
        self.category_embed = nnx.Embed(num_categories, cfg.category_embedding, rngs=rngs)
        sizes = [num_features + cfg.store_embedding + cfg.category_embedding] + [
            cfg.hidden_size
        ] * cfg.num_layers
        self.layers = nnx.List(
            [LSTMLayer(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.head = nnx.Linear(cfg.hidden_size, len(cfg.quantiles), rngs=rngs)
        self.horizon = cfg.horizon
        self.dropout = cfg.dropout

    def __call__(
        self, x: jax.Array, store: jax.Array, category: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """f32[B,T,F] scaled inputs, i32[B] ids -> f32[B,H,Q] scaled quantiles, >= 0 and non-decreasing in Q.

        `key` switches dropout on (training); without it the forward pass is deterministic.
        """
        static = jnp.concatenate([self.store_embed(store), self.category_embed(category)], axis=-1)
        h = jnp.concatenate([x, jnp.broadcast_to(static[:, None], (*x.shape[:2], static.shape[-1]))], -1)
        for i, layer in enumerate(self.layers):
            h = _dropout(layer(h), self.dropout, None if key is None else jax.random.fold_in(key, i))
        raw = self.head(h[:, -self.horizon :])
        return jnp.cumsum(jax.nn.softplus(raw), axis=-1)
