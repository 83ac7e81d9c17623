"""Save and load trained forecasters: parameters (msgpack), scaler and model config (JSON); byte-stable.

A model directory describes itself: `model.json` (model config, calendar settings, seeds, vocabulary
sizes) rebuilds the graph, so evaluation needs nothing but the directory.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx, serialization, traverse_util

from salesjax import artifacts
from salesjax.config import ModelConfig
from salesjax.features import CalendarSettings, Scaler, num_features
from salesjax.train import Trained, init_members


def save_params(params: Any, path: Path) -> None:
    """Write an nnx.State of parameters (any leading member axis) to `path`."""
    pure = jax.tree.map(np.asarray, nnx.to_pure_dict(params))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serialization.msgpack_serialize(pure))


def load_params(template: Any, path: Path) -> Any:
    """Read parameters saved by `save_params` into the structure of `template` (an nnx.State).

    Raises ValueError when the file's parameter names or shapes differ from the template's (a partial
    file would otherwise leave some parameters at their random initial values).
    """
    pure = serialization.msgpack_restore(path.read_bytes())
    if _shapes(pure) != _shapes(nnx.to_pure_dict(template)):
        raise ValueError("its parameter names or shapes differ from those model.json describes")
    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, pure)
    return state


def _shapes(pure: Any) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Shape of every leaf of a nested parameter dict, keyed by its path as text."""
    if not isinstance(pure, dict):
        raise ValueError("not a mapping of parameters")
    return {tuple(map(str, k)): np.shape(v) for k, v in traverse_util.flatten_dict(pure).items()}


def save_scaler(scaler: Scaler, path: Path) -> None:
    """Write the per-series scales, the static-feature statistics and the normalisation as JSON."""
    fields = dataclasses.asdict(scaler) | {"scale": scaler.scale.tolist()}
    path.write_text(json.dumps(fields) + "\n")


def load_scaler(path: Path) -> Scaler:
    """Read a scaler written by `save_scaler`."""
    fields = json.loads(path.read_text())
    return Scaler(**fields | {"scale": np.asarray(fields["scale"], np.float64)})


def save_forecaster(
    trained: Trained,
    model_cfg: ModelConfig,
    calendar: CalendarSettings,
    seeds: list[int],
    num_ids: tuple[int, int],
    out: Path,
) -> None:
    """Write a trained forecaster's parameters, scaler, config and calendar settings to directory `out`."""
    save_params(trained.params, out / "params.msgpack")
    save_scaler(trained.scaler, out / "scaler.json")
    (out / "calibration.json").write_text(json.dumps(trained.calibration, indent=2) + "\n")
    spec = {"model": dataclasses.asdict(model_cfg), "calendar": calendar._asdict()}
    spec |= {"seeds": seeds, "num_ids": list(num_ids)}
    (out / "model.json").write_text(json.dumps(spec, indent=2) + "\n")


def _load_spec(path: Path) -> tuple[ModelConfig, CalendarSettings, list[int], tuple[int, int]]:
    """(model config, calendar settings, seeds, vocabulary sizes) from a `model.json`."""
    spec = json.loads(path.read_text())
    model_cfg = ModelConfig(**{**spec["model"], "quantiles": tuple(spec["model"]["quantiles"])})
    calendar = CalendarSettings(str(spec["calendar"]["country"]), tuple(map(str, spec["calendar"]["events"])))
    seeds, num_ids = [int(s) for s in spec["seeds"]], tuple(int(n) for n in spec["num_ids"])
    if not seeds or len(num_ids) != 2:
        raise ValueError("no seeds, or num_ids is not (stores, categories)")
    return model_cfg, calendar, seeds, num_ids


class Saved(NamedTuple):
    """A forecaster read back from its directory."""

    graphdef: Any
    params: Any  # stacked over members
    scaler: Scaler
    model_cfg: ModelConfig
    calendar: CalendarSettings
    calibration: dict[str, list[float]]  # upper level -> interval offsets


def _load_calibration(path: Path) -> dict[str, list[float]]:
    """The upper-level interval offsets of a `calibration.json`."""
    return {level: [float(v) for v in offsets] for level, offsets in json.loads(path.read_text()).items()}


def load_forecaster(out: Path, stage: str = "train") -> Saved:
    """A forecaster from its `save_forecaster` directory.

    A missing or damaged file is one `SalesjaxError` line naming it and `dvc repro <stage>`.
    """
    model_cfg, calendar, seeds, num_ids = artifacts.read(out / "model.json", stage, _load_spec)
    shapes = (num_features(len(calendar.columns())), *num_ids)
    graphdef, template = init_members(model_cfg, shapes, seeds)
    params = artifacts.read(out / "params.msgpack", stage, lambda path: load_params(template, path))
    scaler = artifacts.read(out / "scaler.json", stage, load_scaler)
    calibration = artifacts.read(out / "calibration.json", stage, _load_calibration)
    return Saved(graphdef, params, scaler, model_cfg, calendar, calibration)
