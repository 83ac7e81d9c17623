"""The DVC stages: each is a short recipe of named calls and the only place that reads and writes files."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from salesjax import checkpoint, features, train
from salesjax.config import Config, DataConfig
from salesjax.data.panel import Panel, build_panel, monthly_revenue
from salesjax.data.schema import Validated, read_table, validate_panel, validate_transactions, write_table
from salesjax.errors import SalesjaxError

ARTIFACTS = Path("artifacts")
PREPARED = ARTIFACTS / "prepared"
MODELS = ARTIFACTS / "models"
REPORTS = Path("reports")


def write_json(obj: object, path: Path) -> None:
    """Write JSON with a stable layout (the same object always gives the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _validated(cfg: DataConfig, path: Path) -> Validated:
    """Read and validate one raw file in the configured format."""
    table = read_table(path)
    if cfg.format == "panel":
        return validate_panel(table, cfg.panel_columns)
    return validate_transactions(
        table, date_format=cfg.date_format, min_year=cfg.min_year, max_year=cfg.max_year
    )


def _monthly(cfg: DataConfig, validated: Validated) -> pd.DataFrame:
    """The (month, store, category, revenue) rows of a validated input."""
    return monthly_revenue(validated.kept) if cfg.format == "transactions" else validated.kept


def _row_counts(name: str, validated: Validated, limit: float) -> dict:
    """Rows in, kept and quarantined per reason; fails when too many rows were rejected."""
    n_in = len(validated.kept) + len(validated.quarantined)
    fraction = len(validated.quarantined) / n_in
    if fraction > limit:
        top = ", ".join(f"{r}: {n}" for r, n in validated.counts.items())
        raise SalesjaxError(
            f"{name}: {fraction:.1%} of rows rejected, above data.max_rejected_fraction={limit} ({top})"
        )
    return {
        "rows_in": n_in,
        "rows_kept": len(validated.kept),
        "rows_quarantined": len(validated.quarantined),
    } | {f"quarantined_{reason}": n for reason, n in validated.counts.items()}


def prepare(cfg: Config) -> None:
    """Validate the raw input, aggregate it to the monthly panel, and compute the calendar features."""
    data = cfg.data
    if data.target == "counterfactual" and data.counterfactual_path is None:
        raise SalesjaxError("data.target is 'counterfactual' but data.counterfactual_path is null")
    inputs = {"observed": Path(data.path)}
    if data.counterfactual_path is not None:
        inputs["counterfactual"] = Path(data.counterfactual_path)
    validated = {world: _validated(data, path) for world, path in inputs.items()}
    counts = {world: _row_counts(world, v, data.max_rejected_fraction) for world, v in validated.items()}
    quarantine = pd.concat([v.quarantined.assign(world=w) for w, v in validated.items()], ignore_index=True)
    monthly = {world: _monthly(data, v) for world, v in validated.items()}
    panel, series = build_panel(
        monthly["observed"],
        monthly.get("counterfactual"),
        cfg.split,
        explicit_zeros=data.format == "transactions",
    )
    train_start, _, _, test_end = cfg.split.months()
    calendar = features.monthly_calendar(train_start - cfg.model.context, test_end + cfg.model.horizon)
    PREPARED.mkdir(parents=True, exist_ok=True)
    panel.to_parquet(PREPARED / "panel.parquet", index=False)
    calendar.reset_index().assign(month=lambda f: f["month"].astype(str)).to_parquet(
        PREPARED / "calendar.parquet", index=False
    )
    write_table(quarantine.astype(str), PREPARED / "quarantine.parquet")
    write_json(counts | {"panel": series}, REPORTS / "prepare.json")
    print(f"prepare: {series['series']} series x {panel['month'].nunique()} months; rows {counts}")


def load_prepared(cfg: Config) -> tuple[Panel, np.ndarray]:
    """The prepared panel and the calendar f32[context + months + horizon, Fc] aligned with it."""
    panel = Panel.from_frame(pd.read_parquet(PREPARED / "panel.parquet"))
    calendar = pd.read_parquet(PREPARED / "calendar.parquet").drop(columns="month").to_numpy(np.float32)
    return panel, calendar


def training_history(cfg: Config, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Revenue f64[S,Th] and availability bool[S,Th] of the training months only."""
    train_start, train_end, _, _ = cfg.split.months()
    start, stop = panel.index(train_start), panel.index(train_end) + 1
    return panel.worlds[cfg.data.target][:, start:stop], panel.available[:, start:stop]


def _training_report(name: str, trained: train.Trained) -> dict:
    """Final losses and chosen epochs of one trained forecaster (member 0 and the member mean)."""
    best = trained.validation.epochs - 1
    members = np.arange(len(best))
    return {
        f"{name}_train_loss": float(trained.refit.train_loss[-1].mean()),
        f"{name}_val_loss": float(trained.validation.val_loss[best, members].mean()),
        f"{name}_epochs": [int(e) for e in trained.validation.epochs],
    }


def _curves(single: train.Trained, ensemble: train.Trained) -> pd.DataFrame:
    """Per-epoch losses of the validation fits (NaN after a fit stopped early)."""
    frames = {
        "lstm_train": single.validation.train_loss.mean(axis=1),
        "lstm_val": single.validation.val_loss.mean(axis=1),
        "ensemble_train": ensemble.validation.train_loss.mean(axis=1),
        "ensemble_val": ensemble.validation.val_loss.mean(axis=1),
    }
    curves = pd.DataFrame({k: pd.Series(v, dtype="float64") for k, v in frames.items()})
    return curves.rename_axis("epoch").reset_index().assign(epoch=lambda f: f["epoch"] + 1)


def run_train(cfg: Config) -> None:
    """Train the single LSTM (K=1) and its seed ensemble (K members, one vmapped program)."""
    panel, calendar = load_prepared(cfg)
    history, available = training_history(cfg, panel)
    args = (
        history,
        available,
        calendar,
        panel.store,
        panel.category,
        (len(panel.stores), len(panel.categories)),
    )
    seeds = [cfg.train.seed + k for k in range(cfg.train.ensemble_size)]
    single = train.train_forecaster(*args, cfg.model, cfg.train, seeds[:1])
    ensemble = train.train_forecaster(*args, cfg.model, cfg.train, seeds)
    checkpoint.save_params(single.params, MODELS / "lstm.msgpack")
    checkpoint.save_params(ensemble.params, MODELS / "lstm_ensemble.msgpack")
    checkpoint.save_scaler(single.scaler, MODELS / "scaler.json")
    write_json(
        _training_report("lstm", single) | _training_report("lstm_ensemble", ensemble),
        REPORTS / "train" / "metrics.json",
    )
    write_json(
        {
            f"{name}_seconds": round(t.validation.seconds + t.refit.seconds, 2)
            for name, t in (("k1", single), (f"k{len(seeds)}", ensemble))
        },
        REPORTS / "train" / "timing.json",
    )
    _curves(single, ensemble).to_csv(REPORTS / "train" / "curves.csv", index=False, float_format="%.6g")
