"""Prototypes of a faster salesjax train step, measured against the current one (not used by salesjax).

Each prototype is a drop-in replacement for one piece of `salesjax/model.py` or `salesjax/train.py`;
`benchmarks/compare_step.py` patches them in one at a time and times the real `train.make_train_step`.

- `lstm_scan`: the recurrence with a hand-written VJP. Forward per step: one matmul and one fused
  elementwise kernel (all four gates through a single tanh, since sigmoid(z) = (1 + tanh(z/2)) / 2);
  it keeps the activated gates f32[T,B,4H] and the cell states f32[T,B,H]. Backward: the per-step
  factors of dz are computed for all steps at once before the loop; the reverse loop then carries
  only (dh, dc) and runs one broadcast-multiply and dz @ K^T per step; the recurrent kernel's
  gradient is one matmul over all steps after it. Autodiff of the plain scan stores a dozen [T,B,H]
  residual stacks and runs ~15 small kernels per step instead.
- `hash_dropout`: the dropout mask from a counter-based integer hash (murmur3's fmix32 of a per-call
  seed drawn from the key plus the element index) instead of `jax.random.bernoulli`, whose threefry
  bits cost ~1 ms per [256,24,64] mask on this CPU against ~0.05 ms for the hash.
- `forecaster_call`: time-major all the way (one transpose of the small input, none per layer), and
  dropout on the last layer only at the `horizon` steps the head reads.
- `make_multi_step`: `n` train steps per dispatch as a `lax.scan` over stacked batch indices, so the
  Python cost of a call (flattening the nnx state pytree, ~0.2-0.4 ms) and `fit`'s per-step slicing of
  the device index arrays are paid once per `n` steps.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Gate order i, f, g, o (as salesjax.model.LSTMLayer): sigmoid, sigmoid, tanh, sigmoid.
_SIGMOID_GATES = (0, 1, 3)


def _gate_affine(hidden: int) -> tuple[jax.Array, jax.Array]:
    """Per-column (scale, shift) so that act = tanh(z * scale) * scale + shift gives all four gates."""
    scale = np.ones(4 * hidden, np.float32)
    shift = np.zeros(4 * hidden, np.float32)
    for gate in _SIGMOID_GATES:
        scale[gate * hidden : (gate + 1) * hidden] = 0.5
        shift[gate * hidden : (gate + 1) * hidden] = 0.5
    return jnp.asarray(scale), jnp.asarray(shift)


def _forward(gates_x: jax.Array, kernel: jax.Array, unroll: int):
    """The recurrence: f32[T,B,4H] input projections, f32[H,4H] -> hs, cs f32[T,B,H], acts f32[T,B,4H]."""
    hidden = kernel.shape[0]
    scale, shift = _gate_affine(hidden)
    zeros = jnp.zeros((gates_x.shape[1], hidden), gates_x.dtype)

    def step(carry, gx):
        h, c = carry
        act = jnp.tanh((gx + h @ kernel) * scale) * scale + shift
        i, f, g, o = jnp.split(act, 4, axis=-1)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, act)

    _, (hs, cs, acts) = jax.lax.scan(step, (zeros, zeros), gates_x, unroll=unroll)
    return hs, cs, acts


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def lstm_scan(gates_x: jax.Array, kernel: jax.Array, unroll: int = 1) -> jax.Array:
    """f32[T,B,4H] input projections (bias included), f32[H,4H] recurrent kernel -> f32[T,B,H]."""
    return _forward(gates_x, kernel, unroll)[0]


def _lstm_fwd(gates_x, kernel, unroll):
    """Forward pass keeping the residuals the backward pass needs."""
    hs, cs, acts = _forward(gates_x, kernel, unroll)
    return hs, (hs, cs, acts, kernel)


def _lstm_bwd(unroll, residuals, d_hs):
    """Reverse scan over the two [B,H] carries only; everything else is vectorised over all steps.

    With tc = tanh(c): dc_t = dc_{t+1} * f_{t+1} + dh_t * o_t (1 - tc_t^2) and
    dz_t = [dc_t g i(1-i), dc_t c_{t-1} f(1-f), dc_t i (1-g^2), dh_t tc o(1-o)] = sel(dh_t, dc_t) * P_t,
    where P (f32[T,B,4,H]) and o (1 - tc^2) are computed before the loop in one pass over all steps.
    Per step the loop runs one small broadcast-multiply kernel and dz @ K^T.
    """
    hs, cs, acts, kernel = residuals
    steps, batch, hidden = hs.shape
    zeros = jnp.zeros((batch, hidden), hs.dtype)
    c_prev = jnp.concatenate([zeros[None], cs[:-1]])
    a4 = acts.reshape(steps, batch, 4, hidden)
    i, f, g, o = a4[:, :, 0], a4[:, :, 1], a4[:, :, 2], a4[:, :, 3]
    tc = jnp.tanh(cs)
    p4 = jnp.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], axis=2)
    dh_to_dc = o * (1 - tc * tc)
    f_next = jnp.concatenate([f[1:], zeros[None]])
    kernel_t = kernel.T
    is_o = jax.lax.broadcasted_iota(jnp.int32, (1, 4, 1), 1) == 3

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_out, p, a, fn = inputs
        dh = dh_out + dh_next
        dc = dc_next * fn + dh * a
        dz = (jnp.where(is_o, dh[:, None], dc[:, None]) * p).reshape(batch, 4 * hidden)
        return (dz @ kernel_t, dc), dz

    _, dz = jax.lax.scan(step, (zeros, zeros), (d_hs, p4, dh_to_dc, f_next), reverse=True, unroll=unroll)
    h_prev = jnp.concatenate([zeros[None], hs[:-1]])
    d_kernel = jnp.einsum("tbh,tbg->hg", h_prev, dz)
    return dz, d_kernel


lstm_scan.defvjp(_lstm_fwd, _lstm_bwd)


def reference_scan(gates_x: jax.Array, kernel: jax.Array, unroll: int = 1) -> jax.Array:
    """The current salesjax.model.LSTMLayer recurrence (autodiff), time-major, for comparison."""
    zeros = jnp.zeros((gates_x.shape[1], kernel.shape[0]), gates_x.dtype)

    def step(carry, gx):
        h, c = carry
        i, f, g, o = jnp.split(gx + h @ kernel, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    return jax.lax.scan(step, (zeros, zeros), gates_x, unroll=unroll)[1]


def hash_keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """bool mask, True with probability 1 - rate: fmix32(index * golden + seed) >= rate * 2^32."""
    seed = jax.random.bits(key, (), jnp.uint32)
    x = jax.lax.iota(jnp.uint32, int(np.prod(shape))).reshape(shape) * jnp.uint32(0x9E3779B9) + seed
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    x = x ^ (x >> 16)
    return x >= jnp.uint32(min(int(rate * 2.0**32), 2**32 - 1))


def hash_dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout with `hash_keep_mask`; the identity when `key` is None."""
    if key is None or rate == 0.0:
        return x
    return jnp.where(hash_keep_mask(key, x.shape, rate), x / (1.0 - rate), 0.0)


def layer_call(self, xt: jax.Array, scan=lstm_scan) -> jax.Array:
    """Time-major LSTMLayer.__call__: f32[T,B,I] -> f32[T,B,Hd] with `scan` (same parameters)."""
    return scan(self.input(xt), self.recurrent.kernel[...])


def forecaster_call(self, x, store, category, *, key=None, dropout=hash_dropout, scan=lstm_scan):
    """Forecaster.__call__ kept time-major: f32[B,T,F] -> f32[B,H,Q], the same parameters and outputs.

    The inputs are transposed once (F is small); the layers read and write [T,B,*]; the last layer's
    dropout only touches the `horizon` steps the head reads (the other steps' mask was never used).
    """
    static = jnp.concatenate([self.store_embed(store), self.category_embed(category)], axis=-1)
    xt = jnp.swapaxes(x, 0, 1)
    h = jnp.concatenate([xt, jnp.broadcast_to(static[None], (*xt.shape[:2], static.shape[-1]))], -1)
    last = len(self.layers) - 1
    for i, layer in enumerate(self.layers):
        h = layer_call(layer, h, scan)
        if i == last:
            h = h[-self.horizon :]
        h = dropout(h, self.dropout, None if key is None else jax.random.fold_in(key, i))
    raw = self.head(jnp.swapaxes(h, 0, 1))
    return jnp.cumsum(jax.nn.softplus(raw), axis=-1)


def make_multi_step(train_step):
    """Many steps per dispatch: (state, windows, idx i32[n,K,B], valid f32[n,K,B]) -> (state, stats[n,K]).

    `train_step` is `salesjax.train.make_train_step(...)`; inside this jit it is inlined, so n steps
    cost one Python dispatch (an epoch of `fit` becomes one call with n = steps_per_epoch).
    """

    @functools.partial(jax.jit, donate_argnums=0)
    def multi_step(state, windows, idx, valid):
        def body(state, batch):
            return train_step(state, windows, *batch)

        return jax.lax.scan(body, state, (idx, valid))

    return multi_step
