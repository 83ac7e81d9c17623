"""Data-parallel training over several devices agrees with one device (host devices stand in for GPUs)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from conftest import tiny_params
    from salesjax.config import parse_config
    from salesjax import train
    from test_train import tiny_windows

    cfg = parse_config(tiny_params())
    windows, shapes = tiny_windows(cfg)
    assert jax.device_count() == 2
    auto = (jax.sharding.AxisType.Auto,) * 2
    one = jax.make_mesh((1, 1), ("member", "data"), devices=jax.devices()[:1], axis_types=auto)
    results = {}
    for name, seeds, mesh in [("one", [0, 1], one), ("data", [0], None), ("members", [0, 1], None)]:
        epochs = np.array([2] * len(seeds))
        fit = train.fit(cfg.model, cfg.train, windows, shapes, seeds, epochs=epochs, mesh=mesh)
        results[name] = [np.asarray(x) for x in jax.tree.leaves(fit.params)]
    assert train.make_mesh(1).shape == {"member": 1, "data": 2}
    assert train.make_mesh(2).shape == {"member": 2, "data": 1}
    for a, b, c in zip(results["one"], results["data"], results["members"], strict=True):
        np.testing.assert_allclose(a[:1], b, rtol=1e-4, atol=1e-6)  # batch split over 2 devices
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)  # members split over 2 devices
    print("ok")
    """
)


def test_two_host_devices_agree_with_one():
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    tests = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tests, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
