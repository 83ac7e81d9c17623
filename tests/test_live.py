"""Per-epoch training metrics: `fit`'s on_epoch callback (what the train stage hands to DVCLive)."""

import dataclasses

import numpy as np
import pytest
from test_train import tiny_windows

from salesjax import train

QUANTITIES = {"train_loss", "val_loss", "grad_norm", "learning_rate"}


def test_on_epoch_gets_each_member_s_four_quantities_once_per_epoch(config):
    windows, shapes = tiny_windows(config)
    seen = []
    result = train.fit(
        config.model, config.train, windows, shapes, [0, 1], val=windows, on_epoch=lambda *a: seen.append(a)
    )
    assert [epoch for epoch, _ in seen] == list(range(1, len(result.train_loss) + 1))
    for _, metrics in seen:
        assert set(metrics) == QUANTITIES
        assert all(v.shape == (2,) and np.isfinite(v).all() for v in metrics.values())
        assert (metrics["grad_norm"] > 0).all()
    np.testing.assert_array_equal(np.stack([m["train_loss"] for _, m in seen]), result.train_loss)
    np.testing.assert_array_equal(np.stack([m["val_loss"] for _, m in seen]), result.val_loss)


@pytest.mark.parametrize("min_steps", [1, 8])
def test_learning_rate_is_the_schedule_at_each_epoch_s_last_step(config, min_steps):
    windows, shapes = tiny_windows(config)
    cfg = dataclasses.replace(config.train, min_steps_per_epoch=min_steps)
    steps = -(-len(windows.y) // train.batch_size(cfg, len(windows.y)))
    assert steps >= min_steps
    assert steps < cfg.warmup_steps < 3 * steps - 1  # epoch 1 ends in the linear warm-up (0.1 to 1 x peak)
    seen = {}
    hypers = [(1e-3, 0.0), (4e-3, 0.0)]
    epochs = np.array([3, 3])
    train.fit(
        config.model, cfg, windows, shapes, [0, 1], epochs=epochs, hypers=hypers, on_epoch=seen.__setitem__
    )
    fraction = (
        0.1 + 0.9 * (steps - 1) / cfg.warmup_steps
    )  # the step counter of epoch 1's last step: steps - 1
    np.testing.assert_allclose(seen[1]["learning_rate"], np.array([1e-3, 4e-3]) * fraction, rtol=1e-5)
    assert (seen[3]["learning_rate"] < seen[2]["learning_rate"]).all()  # cosine decay after the warm-up
    assert set(seen[3]) == QUANTITIES - {"val_loss"}  # the refit has no hold-out
