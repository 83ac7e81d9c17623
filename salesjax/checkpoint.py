"""Save and load trained forecasters: parameters (msgpack), scaler and model config (JSON); byte-stable.

A model directory describes itself: `model.json` (model config, calendar settings, seeds, vocabulary
sizes) rebuilds the graph, so evaluation needs nothing but the directory; with `TrainedOn` it also names
its series (stores, categories, the store x category pairs in the scaler's order) and its training
months, so a new panel can be matched to it by name (`salesjax.forecast.window`).
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
from salesjax.data.panel import Panel
from salesjax.errors import SalesjaxError
from salesjax.features import CalendarSettings, Scaler, num_features
from salesjax.train import Trained, init_members


class TrainedOn(NamedTuple):
    """The series a model was trained on, by name, and its first and last training month."""

    stores: tuple[str, ...]
    categories: tuple[str, ...]
    store: np.ndarray  # i32[S] index into stores, in the order of the scaler's and the model's series
    category: np.ndarray  # i32[S] index into categories
    first_month: str  # YYYY-MM
    last_month: str  # YYYY-MM

    @classmethod
    def of(cls, panel: Panel, first_month: object, last_month: object) -> "TrainedOn":
        """The series of `panel` trained on months `first_month`..`last_month` (periods or YYYY-MM)."""
        period = (str(first_month), str(last_month))
        return cls(panel.stores, panel.categories, panel.store, panel.category, *period)

    def spec(self) -> dict:
        """The JSON fields of model.json that name the series and the training months."""
        pairs = zip(self.store.tolist(), self.category.tolist(), strict=True)
        return {
            "stores": list(self.stores),
            "categories": list(self.categories),
            "series": [[self.stores[s], self.categories[c]] for s, c in pairs],
            "training_months": [self.first_month, self.last_month],
        }


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
    """Write the per-series scales, the static-feature statistics and the normalisation as JSON.

    The covariate statistics are written only when there are covariates (a model without stays
    byte-identical to one saved before covariates existed).
    """
    fields = dataclasses.asdict(scaler) | {"scale": scaler.scale.tolist()}
    if not scaler.covariate_mean:
        del fields["covariate_mean"], fields["covariate_std"]
    path.write_text(json.dumps(fields) + "\n")


def load_scaler(path: Path) -> Scaler:
    """Read a scaler written by `save_scaler`."""
    fields = json.loads(path.read_text())
    moments = {k: tuple(map(float, fields[k])) for k in ("covariate_mean", "covariate_std") if k in fields}
    return Scaler(**fields | moments | {"scale": np.asarray(fields["scale"], np.float64)})


def save_forecaster(
    trained: "Trained | Saved",
    model_cfg: ModelConfig,
    calendar: CalendarSettings,
    seeds: list[int],
    num_ids: tuple[int, int],
    out: Path,
    trained_on: TrainedOn | None = None,
    covariates: tuple[str, ...] = (),
) -> None:
    """Write a trained forecaster's parameters, scaler, config and calendar settings to directory `out`.

    `trained` is anything with `params`, `scaler` and `calibration` (a fit, or a forecaster read back);
    `trained_on` adds the series names and training months to model.json, and `covariates` the names of
    the known-in-advance columns the model reads, in order (the key is left out when there are none).
    """
    save_params(trained.params, out / "params.msgpack")
    save_scaler(trained.scaler, out / "scaler.json")
    (out / "calibration.json").write_text(json.dumps(trained.calibration, indent=2) + "\n")
    spec = {"model": dataclasses.asdict(model_cfg), "calendar": calendar._asdict()}
    spec |= {"seeds": seeds, "num_ids": list(num_ids)}
    spec |= trained_on.spec() if trained_on is not None else {}
    spec |= {"covariates": list(covariates)} if covariates else {}
    (out / "model.json").write_text(json.dumps(spec, indent=2) + "\n")


class Spec(NamedTuple):
    """What a `model.json` holds."""

    model_cfg: ModelConfig
    calendar: CalendarSettings
    seeds: list[int]
    num_ids: tuple[int, int]
    trained_on: TrainedOn | None  # None in a directory saved without it
    covariates: tuple[str, ...]


def _load_spec(path: Path) -> Spec:
    """The `Spec` of a `model.json`."""
    spec = json.loads(path.read_text())
    model_cfg = ModelConfig(**{**spec["model"], "quantiles": tuple(spec["model"]["quantiles"])})
    calendar = CalendarSettings(str(spec["calendar"]["country"]), tuple(map(str, spec["calendar"]["events"])))
    seeds, num_ids = [int(s) for s in spec["seeds"]], tuple(int(n) for n in spec["num_ids"])
    if not seeds or len(num_ids) != 2:
        raise ValueError("no seeds, or num_ids is not (stores, categories)")
    trained_on = _trained_on(spec) if "series" in spec else None
    if trained_on is not None and (len(trained_on.stores), len(trained_on.categories)) != num_ids:
        raise ValueError("its stores and categories do not match num_ids")
    covariates = tuple(map(str, spec.get("covariates", ())))
    return Spec(model_cfg, calendar, seeds, num_ids, trained_on, covariates)


def _trained_on(spec: dict) -> TrainedOn:
    """The `TrainedOn` of a model.json's fields (KeyError or ValueError when they are inconsistent)."""
    stores, categories = tuple(map(str, spec["stores"])), tuple(map(str, spec["categories"]))
    store_index = {name: i for i, name in enumerate(stores)}
    category_index = {name: i for i, name in enumerate(categories)}
    store = np.array([store_index[str(s)] for s, _ in spec["series"]], np.int32)
    category = np.array([category_index[str(c)] for _, c in spec["series"]], np.int32)
    first, last = map(str, spec["training_months"])
    return TrainedOn(stores, categories, store, category, first, last)


class Saved(NamedTuple):
    """A forecaster read back from its directory."""

    graphdef: Any
    params: Any  # stacked over members
    scaler: Scaler
    model_cfg: ModelConfig
    calendar: CalendarSettings
    calibration: dict[str, list[float]]  # upper level -> interval offsets; calibration.WEIGHT -> [weight]
    seeds: list[int]  # one per member
    trained_on: TrainedOn | None  # the series by name and the training months; None if saved without
    covariates: tuple[str, ...] = ()  # the known-in-advance columns it reads, in order


def _load_calibration(path: Path) -> dict[str, list[float]]:
    """The upper-level interval offsets of a `calibration.json`."""
    return {level: [float(v) for v in offsets] for level, offsets in json.loads(path.read_text()).items()}


def load_forecaster(out: Path, stage: str = "train") -> Saved:
    """A forecaster from its `save_forecaster` directory.

    A missing or damaged file is one `SalesjaxError` line naming it and `dvc repro <stage>`.
    """
    spec = artifacts.read(out / "model.json", stage, _load_spec)
    shapes = (num_features(len(spec.calendar.columns()), len(spec.covariates)), *spec.num_ids)
    graphdef, template = init_members(spec.model_cfg, shapes, spec.seeds)
    params = artifacts.read(out / "params.msgpack", stage, lambda path: load_params(template, path))
    scaler = artifacts.read(out / "scaler.json", stage, load_scaler)
    calibration = artifacts.read(out / "calibration.json", stage, _load_calibration)
    if spec.trained_on is not None and len(spec.trained_on.store) != len(scaler.scale):
        raise SalesjaxError(
            f"{out}: model.json names {len(spec.trained_on.store)} series, scaler.json has "
            f"{len(scaler.scale)}; run `dvc repro {stage}`"
        )
    if len(scaler.covariate_mean) != len(spec.covariates):
        raise SalesjaxError(
            f"{out}: model.json names {len(spec.covariates)} covariates, scaler.json has statistics of "
            f"{len(scaler.covariate_mean)}; run `dvc repro {stage}`"
        )
    fields = (spec.model_cfg, spec.calendar, calibration, spec.seeds, spec.trained_on, spec.covariates)
    return Saved(graphdef, params, scaler, *fields)
