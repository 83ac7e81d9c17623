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
    forecast: pd.DataFrame  # reports/forecast/forecast.csv: the forecast beyond the data


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


def _curves(live: Path, stage: str) -> dict[str, pd.DataFrame]:
    """Fit name -> (epoch, train, val), member means of the DVCLive curves under `live`; {} if absent."""
    fits = sorted((live / "plots" / "metrics").glob("*/validation"))
    return {fit.parent.name: _member_mean(fit, stage) for fit in fits}


def _member_mean(fit: Path, stage: str) -> pd.DataFrame:
    """Mean over the fit's member_<k>/ directories of train_loss.tsv and val_loss.tsv, by epoch (step)."""
    members = [
        pd.concat([artifacts.read(m / f"{q}_loss.tsv", stage, _read_curve) for q in ("train", "val")], axis=1)
        for m in sorted(fit.glob("member_*"))
    ]
    mean = pd.concat(members).groupby(level=0).mean()
    return mean.rename_axis("epoch").reset_index()


def _read_curve(path: Path) -> pd.Series:
    """One DVCLive metric file (step, <name>_loss) as a Series indexed by step, named train or val."""
    frame = pd.read_csv(path, sep="\t")
    name = path.stem.removesuffix("_loss")
    return frame.set_index("step")[path.stem].astype(float).rename(name)


FORECAST_TEXT = {"month": str, "store": str, "category": str}


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
        curves={k: v for d, st in fits.items() for k, v in _curves(d / "live", st).items()},
        backtest=_json(REPORTS / "backtest.json", "backtest"),
        sweep=_json(REPORTS / "sweep.json", "sweep"),
        forecast=artifacts.read(
            REPORTS / "forecast" / "forecast.csv", "forecast", lambda p: pd.read_csv(p, dtype=FORECAST_TEXT)
        ),
    )
