"""Time the real `salesjax.train.make_train_step` with the prototypes of `prototypes.py` patched in.

    uv run python benchmarks/compare_step.py [default|saturated] [rounds] [--multi]

It first checks that the prototype model equals the current one (outputs and gradients, no dropout).
`--multi` adds the current and the all-changes step run 48 steps per dispatch. Variants are compiled
once each, then timed in interleaved rounds (the machine is shared, so a variant is never timed only
while another job happens to run); the table gives the median ms per step.
"""

import contextlib
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import prototypes  # noqa: E402

from salesjax import bench, model  # noqa: E402
from salesjax.config import load_config  # noqa: E402


@contextlib.contextmanager
def patched(forecaster_call=None, dropout=None):
    """Temporarily replace Forecaster.__call__ and/or model._dropout (only while tracing)."""
    saved = model.Forecaster.__call__, model._dropout
    if forecaster_call is not None:
        model.Forecaster.__call__ = forecaster_call
    if dropout is not None:
        model._dropout = dropout
    try:
        yield
    finally:
        model.Forecaster.__call__, model._dropout = saved


saved_dropout = model._dropout
CHUNK = 48  # steps per dispatch for --multi


def forecaster(dropout, scan):
    """prototypes.forecaster_call with the given dropout and recurrence."""

    def call(self, x, store, category, *, key=None):
        return prototypes.forecaster_call(self, x, store, category, key=key, dropout=dropout, scan=scan)

    return call


VARIANTS = {
    "current": {},
    "hash dropout": {"dropout": prototypes.hash_dropout},
    "time-major": {"forecaster_call": forecaster(saved_dropout, prototypes.reference_scan)},
    "time-major + custom VJP": {"forecaster_call": forecaster(saved_dropout, prototypes.lstm_scan)},
    "time-major + hash dropout": {
        "forecaster_call": forecaster(prototypes.hash_dropout, prototypes.reference_scan)
    },
    "all model changes": {"forecaster_call": forecaster(prototypes.hash_dropout, prototypes.lstm_scan)},
}


class MultiStep:
    """A StepRunner's step run `n` steps per dispatch (`prototypes.make_multi_step`)."""

    def __init__(self, runner, n: int):
        """Wrap `runner`'s jitted step."""
        self.runner, self.n = runner, n
        self.multi = prototypes.make_multi_step(runner.step)

    def seconds_per_step(self, windows, steps: int) -> float:
        """Seconds per step over `steps` (rounded up to whole calls of n) random steps."""
        calls = -(-steps // self.n)
        b = self.runner.shape.batch_size
        idx = self.runner.rng.integers(0, len(windows.y), (calls, self.n, 1, b), dtype=np.int32)
        valid = np.ones((self.n, 1, b), np.float32)
        start = time.perf_counter()
        for c in range(calls):
            self.runner.state, stats = self.multi(self.runner.state, windows, idx[c], valid)
        jax.block_until_ready(stats)
        return (time.perf_counter() - start) / (calls * self.n)


def check_equivalence(shape, cfg) -> float:
    """Largest relative difference of outputs and gradients, prototype model against the current one.

    Without dropout (key=None) the time-major custom-VJP forward must equal Forecaster.__call__.
    """
    from flax import nnx

    from salesjax import train

    sizes = (shape.features, shape.num_stores, shape.num_categories)
    graphdef, params = train.init_members(shape.model_config(), sizes, [0])
    params = jax.tree.map(lambda a: a[0], params)
    w = bench.random_windows(shape, 64, np.random.default_rng(5))

    def loss(p):
        pred = nnx.merge(graphdef, p)(w.x, w.store, w.category)
        return (pred * np.arange(1, pred.shape[-1] + 1)).sum(), pred

    (_, ref), ref_g = jax.value_and_grad(loss, has_aux=True)(params)
    with patched(forecaster_call=prototypes.forecaster_call):
        (_, new), new_g = jax.value_and_grad(loss, has_aux=True)(params)
    pairs = [(ref, new), *zip(jax.tree.leaves(ref_g), jax.tree.leaves(new_g), strict=True)]
    return max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in pairs)


def main() -> None:
    """Compile each variant on the named config, time them in interleaved rounds, print a table."""
    name = sys.argv[1] if len(sys.argv) > 1 else "default"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    cfg = load_config()
    shape = bench.default_shape(cfg) if name == "default" else bench.SATURATED
    rng = np.random.default_rng(0)
    windows = jax.device_put(bench.random_windows(shape, 4096, rng))
    difference = check_equivalence(shape, cfg)
    print(f"prototype vs current model, no dropout: max relative difference {difference:.1e}")
    runners = {}
    for label, patch in VARIANTS.items():
        with patched(**patch):  # jit traces on the first call: keep the patch until then
            runners[label] = bench.StepRunner(shape, cfg.train)
            runners[label].seconds_per_step(windows, 3)
    if "--multi" in sys.argv:
        for label in ("current", "all model changes"):
            with patched(**VARIANTS[label]):
                multi = MultiStep(bench.StepRunner(shape, cfg.train), CHUNK)
                multi.seconds_per_step(windows, CHUNK)
            runners[f"{label} + {CHUNK} steps/call"] = multi
    times = {label: [] for label in runners}
    for _ in range(rounds):
        for label, runner in runners.items():
            times[label].append(runner.seconds_per_step(windows, CHUNK if "--multi" in sys.argv else 10))
    base = np.median(times["current"])
    print(f"{name}: batch {shape.batch_size}, median of {rounds} rounds of 10 steps")
    for label, t in times.items():
        print(f"  {label:28s} {np.median(t) * 1e3:8.2f} ms/step  x{base / np.median(t):5.2f}")


if __name__ == "__main__":
    main()
