"""Save and load model parameters (msgpack) and the scaler (JSON); both byte-stable."""

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from salesjax.features import Scaler


def save_params(params: Any, path: Path) -> None:
    """Write an nnx.State of parameters (any leading member axis) to `path`."""
    pure = jax.tree.map(np.asarray, nnx.to_pure_dict(params))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serialization.msgpack_serialize(pure))


def load_params(template: Any, path: Path) -> Any:
    """Read parameters saved by `save_params` into the structure of `template` (an nnx.State)."""
    pure = serialization.msgpack_restore(path.read_bytes())
    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, pure)
    return state


def save_scaler(scaler: Scaler, path: Path) -> None:
    """Write the per-series scales and the static-feature statistics as JSON."""
    fields = {"scale": scaler.scale.tolist(), "log_mean": scaler.log_mean, "log_std": scaler.log_std}
    path.write_text(json.dumps(fields) + "\n")


def load_scaler(path: Path) -> Scaler:
    """Read a scaler written by `save_scaler`."""
    fields = json.loads(path.read_text())
    return Scaler(np.asarray(fields["scale"], np.float64), fields["log_mean"], fields["log_std"])
