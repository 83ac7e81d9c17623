"""Every stage output the report reads, each through `salesjax.artifacts.read` (one line when damaged)."""

import json
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from salesjax import artifacts
from salesjax.stages import ARTIFACTS, PREPARED, REPORTS


class Inputs(NamedTuple):
    """Every stage output the report reads."""

    panel: pd.DataFrame
    forecasts: pd.DataFrame
    metrics: dict
    levels: pd.DataFrame
    series: pd.DataFrame
    horizon: pd.DataFrame
    gap: pd.DataFrame
    prepare: dict
    training: dict  # fit name -> {train_loss, val_loss, epochs}
    curves: dict  # fit name -> frame of epoch, train, val
    backtest: dict  # world -> {"mean": {model: metrics}}
    sweep: dict  # the sweep's members and the chosen one


def _json(path: Path, stage: str) -> dict:
    """A required JSON object; missing or damaged is one line naming it and `dvc repro <stage>`."""
    return artifacts.read(path, stage, _read_object)


def _read_object(path: Path) -> dict:
    """The JSON object in `path` (TypeError when the file holds another JSON value)."""
    obj = json.loads(path.read_text())
    if not isinstance(obj, dict):
        raise TypeError("not a JSON object")
    return obj


def _optional_json(path: Path, stage: str) -> dict:
    """A JSON object, or {} when the file does not exist (an optional fit that was not trained)."""
    return _json(path, stage) if path.exists() else {}


def _csv(path: Path, text: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV of the evaluate stage with the named columns read as text (store ids look like numbers)."""
    return artifacts.read(path, "evaluate", lambda p: pd.read_csv(p, dtype=dict.fromkeys(text, str)))


def _parquet(path: Path, stage: str) -> pd.DataFrame:
    """A required Parquet table of an earlier stage."""
    return artifacts.read(path, stage, pd.read_parquet)


def _curves(path: Path, stage: str) -> dict[str, pd.DataFrame]:
    """Fit name -> (epoch, train, val) from a curves.csv (<fit>_train, <fit>_val columns); {} if absent."""
    return artifacts.read(path, stage, _read_curves) if path.exists() else {}


def _read_curves(path: Path) -> dict[str, pd.DataFrame]:
    """Parse one curves.csv."""
    frame = pd.read_csv(path)
    names = [c.removesuffix("_train") for c in frame.columns if c.endswith("_train")]
    return {
        n: frame[["epoch", f"{n}_train", f"{n}_val"]].set_axis(["epoch", "train", "val"], axis=1).dropna()
        for n in names
    }


def load_inputs() -> Inputs:
    """Read the outputs of prepare, train, train_thesis and evaluate from the working directory."""
    evaluation = REPORTS / "evaluate"
    fits = {REPORTS / "train": "train", REPORTS / "train_thesis": "train_thesis"}
    return Inputs(
        panel=_parquet(PREPARED / "panel.parquet", "prepare"),
        forecasts=_parquet(ARTIFACTS / "evaluation" / "forecasts.parquet", "evaluate"),
        metrics=_json(REPORTS / "metrics.json", "evaluate"),
        levels=_csv(evaluation / "levels.csv"),
        series=_csv(evaluation / "series.csv", ("store", "category")),
        horizon=_csv(evaluation / "horizon.csv"),
        gap=_csv(evaluation / "gap.csv", ("name",)),
        prepare=_json(REPORTS / "prepare.json", "prepare"),
        training={k: v for d, st in fits.items() for k, v in _optional_json(d / "metrics.json", st).items()},
        curves={k: v for d, st in fits.items() for k, v in _curves(d / "curves.csv", st).items()},
        backtest=_json(REPORTS / "backtest.json", "backtest"),
        sweep=_json(REPORTS / "sweep.json", "sweep"),
    )
