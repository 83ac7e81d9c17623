"""The LSTM recurrence, time-major, with a hand-written gradient.

Gate order i, f, g, o; i, f, o are sigmoids and g a tanh. All four go through one tanh, since
sigmoid(z) = (1 + tanh(z / 2)) / 2: act = tanh(z * scale) * scale + shift with (scale, shift) =
(0.5, 0.5) on the sigmoid columns and (1, 0) on g, so each step runs one matrix product and one fused
elementwise kernel.

Autodiff of the scan stores a dozen [T,B,H] residual stacks and runs about fifteen small kernels per
step backwards; on a CPU those per-step kernels, not the FLOPs, bound an LSTM this small. The VJP
below keeps only the activated gates and the cell states, computes every per-step factor of the gate
gradients for all steps at once before the reverse loop, and carries only (dh, dc) through it: one
broadcast-multiply and one product with the transposed kernel per step. The kernel's gradient is one
matrix product over all steps afterwards. `benchmarks/FINDINGS.md` has the measurements.
"""

import jax
import jax.numpy as jnp
import numpy as np

_SIGMOID_GATES = (0, 1, 3)  # i, f, o


def _gate_affine(hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (scale, shift) with act = tanh(z * scale) * scale + shift for all four gates."""
    scale = np.ones((4, hidden), np.float32)
    shift = np.zeros((4, hidden), np.float32)
    scale[list(_SIGMOID_GATES)] = 0.5
    shift[list(_SIGMOID_GATES)] = 0.5
    return scale.reshape(-1), shift.reshape(-1)


def _forward(gates_x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(hs, cs) f32[T,B,H] and the activated gates f32[T,B,4H], from zero initial states."""
    scale, shift = _gate_affine(kernel.shape[0])
    zeros = jnp.zeros((gates_x.shape[1], kernel.shape[0]), gates_x.dtype)

    def step(carry, gx):
        h, c = carry
        act = jnp.tanh((gx + h @ kernel) * scale) * scale + shift
        i, f, g, o = jnp.split(act, 4, axis=-1)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, act)

    _, (hs, cs, acts) = jax.lax.scan(step, (zeros, zeros), gates_x)
    return hs, cs, acts


@jax.custom_vjp
def lstm(gates_x: jax.Array, kernel: jax.Array) -> jax.Array:
    """f32[T,B,4H] input projections (bias included), f32[H,4H] recurrent kernel -> f32[T,B,H] states."""
    return _forward(gates_x, kernel)[0]


def _lstm_fwd(gates_x, kernel):
    """The forward pass and the residuals the backward pass needs."""
    hs, cs, acts = _forward(gates_x, kernel)
    return hs, (hs, cs, acts, kernel)


def _lstm_bwd(residuals, d_hs):
    """Reverse loop over the two [B,H] carries; everything else vectorised over all steps.

    With tc = tanh(c): dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tc_t^2) and the gate gradients
    dz_t = [dc_t g i(1-i), dc_t c_{t-1} f(1-f), dc_t i(1-g^2), dh_t tc o(1-o)] = sel(dh_t, dc_t) * P_t,
    where P f32[T,B,4,H] is computed before the loop.
    """
    hs, cs, acts, kernel = residuals
    steps, batch, hidden = hs.shape
    zeros = jnp.zeros((batch, hidden), hs.dtype)
    c_prev = jnp.concatenate([zeros[None], cs[:-1]])
    i, f, g, o = (acts.reshape(steps, batch, 4, hidden)[:, :, k] for k in range(4))
    tc = jnp.tanh(cs)
    factors = jnp.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], axis=2)
    dh_to_dc = o * (1 - tc * tc)
    f_next = jnp.concatenate([f[1:], zeros[None]])
    kernel_t = kernel.T
    o_column = jnp.asarray([0.0, 0.0, 0.0, 1.0], hs.dtype).reshape(1, 4, 1)

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_out, p, to_dc, fn = inputs
        dh = dh_out + dh_next
        dc = dc_next * fn + dh * to_dc
        dz = ((dc[:, None] + o_column * (dh - dc)[:, None]) * p).reshape(batch, 4 * hidden)
        return (dz @ kernel_t, dc), dz

    _, dz = jax.lax.scan(step, (zeros, zeros), (d_hs, factors, dh_to_dc, f_next), reverse=True)
    h_prev = jnp.concatenate([zeros[None], hs[:-1]]).reshape(-1, hidden)
    return dz, (dz.reshape(-1, 4 * hidden).T @ h_prev).T  # this order runs fastest on XLA:CPU


lstm.defvjp(_lstm_fwd, _lstm_bwd)
