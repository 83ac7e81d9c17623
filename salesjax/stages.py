"""The DVC stages: each is a short recipe of named calls and the only place that reads and writes files."""

import contextlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from dvclive import Live
from flax import serialization

from salesjax import (
    artifacts,
    baselines,
    calibration,
    checkpoint,
    distributed,
    evaluate,
    features,
    plots,
    reconcile,
    train,
)
from salesjax.config import Config, DataConfig, calendar_months, experiment_path
from salesjax.data.panel import Panel, build_panel, monthly_revenue
from salesjax.data.schema import (
    Validated,
    read_table,
    same_file,
    validate_covariates,
    validate_panel,
    validate_transactions,
    write_table,
)
from salesjax.errors import SalesjaxError

ARTIFACTS = Path("artifacts")
PREPARED = ARTIFACTS / "prepared"
MODELS = ARTIFACTS / "models"
REPORTS = Path("reports")
BASELINES = ARTIFACTS / "baselines" / "forecasts.msgpack"
TIMING = ARTIFACTS / "timing"  # wall times: git-ignored and not in dvc.yaml, so reruns leave dvc.lock alone
PREPARE_REPORT = REPORTS / "prepare.json"
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)  # of the baselines: the median, 50, 80, 90% intervals
# metrics.json: a lean view for `dvc metrics diff` / `dvc exp show`; the full tables are the CSV files.
HEADLINE_METRICS = {
    "store_category": ("mase", "wape", "relative_bias", "coverage_80", "crps_scaled"),
    "store": ("mase",),
    "category": ("mase",),
    "total": ("mase", "relative_bias", "coverage_80", "crps_scaled"),
}
logger = logging.getLogger(__name__)


def write_json(obj: object, path: Path) -> None:
    """Write JSON with a stable layout (the same object always gives the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _validated(cfg: DataConfig, table: pd.DataFrame, covariates: tuple[str, ...] = ()) -> Validated:
    """Validate one raw table in the configured format (a panel with `covariates` columns)."""
    if cfg.format == "panel":
        return validate_panel(table, cfg.panel_columns, covariates)
    return validate_transactions(
        table, date_format=cfg.date_format, min_year=cfg.min_year, max_year=cfg.max_year
    )


def _monthly(cfg: DataConfig, validated: Validated) -> pd.DataFrame:
    """The (month, store, category, revenue) rows of a validated input."""
    if cfg.format == "transactions":
        return monthly_revenue(validated.kept)
    return validated.kept.drop(columns=list(cfg.covariates if cfg.covariates_path is None else ()))


INPUT_PARAMS = {"observed": "path", "counterfactual": "counterfactual_path", "covariates": "covariates_path"}


def _raw_inputs(data: DataConfig) -> dict[str, Path]:
    """The raw files of each world, and of the covariates when they come in a side file."""
    inputs = {"observed": Path(data.path)}
    if data.counterfactual_path is not None:
        inputs["counterfactual"] = Path(data.counterfactual_path)
    if data.covariates and data.covariates_path is not None:
        inputs["covariates"] = Path(data.covariates_path)
    return inputs


def _validated_inputs(data: DataConfig, inputs: dict[str, Path]) -> dict[str, Validated]:
    """Each input validated: the covariates' side file by its own contract, the observed panel with them.

    A file that breaks its contract is named with the param that points at it, and a counterfactual one
    with the fix for data without a second world.
    """
    out = {}
    for name, path in inputs.items():
        table = read_table(path)
        try:
            if name == "covariates":
                out[name] = validate_covariates(table, data.panel_columns, data.covariates)
            else:
                in_panel = data.covariates if name == "observed" and data.covariates_path is None else ()
                out[name] = _validated(data, table, in_panel)
        except SalesjaxError as exc:
            fix = (
                "; without a second world, set data.counterfactual_path=null"
                if name == "counterfactual"
                else ""
            )
            raise SalesjaxError(f"{path} (data.{INPUT_PARAMS[name]}): {exc}{fix}") from None
    return out


def _covariate_rows(data: DataConfig, validated: dict[str, Validated]) -> pd.DataFrame | None:
    """(month, store, category + data.covariates) rows of the side file or the panel; None without any."""
    if not data.covariates:
        return None
    kept = validated["covariates" if "covariates" in validated else "observed"].kept
    return kept[["month", "store", "category", *data.covariates]]


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


def _refuse_overwriting_inputs(inputs: dict[str, Path]) -> None:
    """Fail when a raw input is a file that prepare writes."""
    written = [
        *(PREPARED / f"{name}.parquet" for name in ("panel", "calendar", "quarantine")),
        PREPARE_REPORT,
    ]
    for world, path in inputs.items():
        if hit := next((out for out in written if same_file(path, out)), None):
            raise SalesjaxError(
                f"data path {path} ({world}) is {hit}, which prepare writes; keep raw inputs in data/"
            )


def prepare(cfg: Config) -> None:
    """Validate the raw input, aggregate it to the monthly panel, and compute the calendar features."""
    data = cfg.data
    if data.target == "counterfactual" and data.counterfactual_path is None:
        raise SalesjaxError("data.target is 'counterfactual' but data.counterfactual_path is null")
    inputs = _raw_inputs(data)
    _refuse_overwriting_inputs(inputs)
    calendar = features.monthly_calendar(*calendar_months(cfg), data.country, data.events)  # checks events
    validated = _validated_inputs(data, inputs)
    counts = {world: _row_counts(world, v, data.max_rejected_fraction) for world, v in validated.items()}
    quarantine = pd.concat([v.quarantined.assign(world=w) for w, v in validated.items()], ignore_index=True)
    monthly = {world: _monthly(data, v) for world, v in validated.items() if world != "covariates"}
    panel, series = build_panel(
        monthly["observed"],
        monthly.get("counterfactual"),
        cfg.split,
        explicit_zeros=data.format == "transactions",
        context=cfg.model.context,
        covariates=_covariate_rows(data, validated),
    )
    PREPARED.mkdir(parents=True, exist_ok=True)
    panel.to_parquet(PREPARED / "panel.parquet", index=False)
    calendar.reset_index().assign(month=lambda f: f["month"].astype(str)).to_parquet(
        PREPARED / "calendar.parquet", index=False
    )
    write_table(quarantine.astype(str), PREPARED / "quarantine.parquet")
    write_json(counts | {"panel": series}, PREPARE_REPORT)
    logger.info(f"prepare: {series['series']} series x {panel['month'].nunique()} months; rows {counts}")


def load_prepared(cfg: Config) -> tuple[Panel, np.ndarray]:
    """The prepared panel and the calendar f32[context + months + horizon, Fc] aligned with it.

    Missing, damaged or prepared for other split months or another context/horizon: one line saying
    to rerun prepare.
    """
    panel = artifacts.read(
        PREPARED / "panel.parquet", "prepare", lambda p: _read_panel(p, cfg.data.covariates)
    )
    calendar = artifacts.read(PREPARED / "calendar.parquet", "prepare", _read_calendar)
    train_start, _, _, test_end = cfg.split.months()
    if panel.months[0] != train_start or panel.months[-1] != test_end:
        raise SalesjaxError(
            f"{PREPARED / 'panel.parquet'}: prepared for {panel.months[0]}..{panel.months[-1]}, not the "
            f"split's {train_start}..{test_end}; run `dvc repro prepare`"
        )
    if cfg.data.target not in panel.worlds:
        raise SalesjaxError(
            f"{PREPARED / 'panel.parquet'}: has no '{cfg.data.target}' world (data.target); "
            "run `dvc repro prepare`"
        )
    if len(calendar) != cfg.model.context + len(panel.months) + cfg.model.horizon:
        raise SalesjaxError(
            f"{PREPARED / 'calendar.parquet'}: prepared for another model.context or model.horizon; "
            "run `dvc repro prepare`"
        )
    return panel, calendar


def _read_panel(path: Path, covariates: tuple[str, ...]) -> Panel:
    """The dense panel of a prepared panel.parquet, with the columns of `covariates` (data.covariates)."""
    frame = pd.read_parquet(path)
    if frame.empty:
        raise ValueError("no rows")
    if missing := [c for c in covariates if c not in frame.columns]:
        raise ValueError(f"it has no covariate column '{missing[0]}' (data.covariates)")
    return Panel.from_frame(frame, covariates)


def _read_calendar(path: Path) -> np.ndarray:
    """The calendar features f32[months, Fc] of a prepared calendar.parquet."""
    return pd.read_parquet(path).drop(columns="month").to_numpy(np.float32)


def training_history(cfg: Config, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Revenue f64[S,Th] and availability bool[S,Th] of the training months only."""
    train_start, train_end, _, _ = cfg.split.months()
    start, stop = panel.index(train_start), panel.index(train_end) + 1
    return panel.worlds[cfg.data.target][:, start:stop], panel.available[:, start:stop]


def _training_report(trained: train.Trained) -> dict:
    """Final losses, the epochs chosen on the hold-out (member mean for an ensemble) and the weights the
    hold-out chose, if any: the network's against its reference (`weight`) and that blend's against
    AutoETS (`ets_weight`, with `ets_season`: 12 where AutoETS fits the season, 1 where the profile
    gives it; `salesjax.calibration`)."""
    best = trained.validation.epochs - 1
    keys = (calibration.WEIGHT, calibration.ETS_WEIGHT, calibration.ETS_SEASON)
    weights = {key: trained.calibration[key][0] for key in keys if key in trained.calibration}
    return {
        "train_loss": float(trained.refit.train_loss[-1].mean()),
        "val_loss": float(trained.validation.val_loss[best, np.arange(len(best))].mean()),
        "epochs": [int(e) for e in trained.validation.epochs],
    } | weights


def _live(reports: Path) -> contextlib.AbstractContextManager[Live | None]:
    """DVCLive logger writing `reports`/live in process 0 (no report, no dvc.yaml, no experiment); else None.

    Studio stays offline through .dvc/config (`studio.offline`); nothing in the files is a timestamp.
    """
    if not distributed.is_main():
        return contextlib.nullcontext()
    return Live(str(reports / "live"), report=None, save_dvc_exp=False, dvcyaml=False)


def _epoch_logger(live: Live | None, fit: str) -> train.EpochCallback | None:
    """`fit`'s on_epoch callback: each member's values as <fit>/validation/member_<k>/<name>, step = epoch."""
    if live is None:
        return None

    def on_epoch(epoch: int, metrics: dict[str, np.ndarray]) -> None:
        """Log one epoch and rewrite metrics.json, so `dvc exp show` follows the run."""
        live.step = epoch
        for name, values in metrics.items():
            for k, value in enumerate(values):
                live.log_metric(f"{fit}/validation/member_{k}/{name}", float(f"{value:.6g}"))
        live.make_summary()

    return on_epoch


def _calendar_settings(cfg: Config, calendar: np.ndarray) -> features.CalendarSettings:
    """data.country and data.events as a model records them, checked against the prepared calendar's width."""
    settings = features.resolve_calendar(*calendar_months(cfg), cfg.data.country, cfg.data.events)
    if len(settings.columns()) != calendar.shape[1]:
        raise SalesjaxError(
            f"{PREPARED / 'calendar.parquet'}: prepared for another data.country or data.events; "
            "run `dvc repro prepare`"
        )
    return settings


def run_train(cfg: Config, experiment: str | None = None) -> None:
    """Train the single LSTM (K=1) and its seed ensemble (K members, one vmapped program).

    The default run writes artifacts/models/{lstm,lstm_ensemble} (with K=1 the ensemble is the single
    model); a named experiment set trains its single model into artifacts/models/<name> and
    reports/train_<name>. Per-epoch curves of each early-stopping fit go to DVCLive in <reports>/live
    (a fit shared by both names is logged once). Wall times go to artifacts/timing/<stage>.json,
    outside DVC's view.
    """
    panel, calendar = load_prepared(cfg)
    settings = _calendar_settings(cfg, calendar)
    history, available = training_history(cfg, panel)
    num_ids = (len(panel.stores), len(panel.categories))
    args = (history, available, calendar, panel.store, panel.category, num_ids, cfg.model, cfg.train)
    seeds = [cfg.train.seed + k for k in range(cfg.train.ensemble_size)]
    runs = {experiment or "lstm": seeds[:1]} | ({"lstm_ensemble": seeds} if experiment is None else {})
    reports = REPORTS / ("train" if experiment is None else f"train_{experiment}")
    covariates = panel_covariates(cfg, panel)
    fits = {}
    with _live(reports) as live:
        for name, member_seeds in runs.items():
            same = next((fits[n] for n in fits if runs[n] == member_seeds), None)
            on_epoch = _epoch_logger(live, name)
            fits[name] = same or train.train_forecaster(*args, member_seeds, on_epoch, covariates)
    if not distributed.is_main():
        return
    for name, trained in fits.items():
        trained_on = checkpoint.TrainedOn.of(panel, cfg.split.train_start, cfg.split.train_end)
        checkpoint.save_forecaster(
            trained, cfg.model, settings, runs[name], num_ids, MODELS / name, trained_on, cfg.data.covariates
        )
    reports_by_fit = {name: _training_report(t) for name, t in fits.items()}
    write_json(reports_by_fit, reports / "metrics.json")
    timing = {
        f"{name}_k{len(runs[name])}_seconds": round(t.validation.seconds + t.refit.seconds, 2)
        for name, t in fits.items()
    }
    write_json(timing, TIMING / f"{reports.name}.json")
    for name, report in reports_by_fit.items():
        logger.info(f"train {name}: epochs {report['epochs']} chosen, val_loss {report['val_loss']:.4f}")


def panel_covariates(cfg: Config, panel: Panel) -> np.ndarray | None:
    """The prepared panel's covariates aligned with its calendar (`features.pad_covariates`); None without."""
    if panel.covariates is None:
        return None
    return features.pad_covariates(panel.covariates, cfg.model.context, cfg.model.horizon)


def _test_window(cfg: Config) -> slice:
    """Positions of the test months within a forecast that starts right after split.train_end."""
    _, train_end, test_start, test_end = cfg.split.months()
    first = (test_start - train_end).n - 1
    return slice(first, first + (test_end - test_start).n + 1)


def evaluated_models() -> dict[str, str]:
    """Model directory -> the DVC stage that trains it, for every LSTM the evaluate stage scores.

    The default run's lstm and lstm_ensemble always; the thesis replication when experiments/thesis.yaml
    defines it (as in the repository, whose dvc.yaml trains it in `train_thesis`).
    """
    thesis = {"thesis": "train_thesis"} if experiment_path("thesis").exists() else {}
    return {"lstm": "train", "lstm_ensemble": "train"} | thesis


def _model_forecasts(cfg: Config, panel: Panel, calendar: np.ndarray, history, available) -> dict:
    """Forecasts of every expected LSTM (the seed ensemble averages its members' quantiles).

    A model that is expected but missing or damaged is an error, never silently left out.
    """
    out = {}
    for name, stage in evaluated_models().items():
        saved = checkpoint.load_forecaster(MODELS / name, stage)
        if len(saved.scaler.scale) != len(panel.store):
            raise SalesjaxError(
                f"{MODELS / name}: trained on {len(saved.scaler.scale)} series, the prepared panel has "
                f"{len(panel.store)}; run `dvc repro {stage}`"
            )
        if saved.covariates != cfg.data.covariates:
            raise SalesjaxError(
                f"{MODELS / name}: reads the covariates {list(saved.covariates)}, data.covariates is "
                f"{list(cfg.data.covariates)}; run `dvc repro {stage}`"
            )
        data = (history, available, calendar, panel.store, panel.category, saved.model_cfg)
        covariates = panel_covariates(cfg, panel)
        season = train.ets_season(saved.calibration)
        prediction = train.forecast(saved.graphdef, saved.params, saved.scaler, *data, covariates, season)
        quantiles = saved.model_cfg.quantiles
        out[name] = evaluate.ensemble_forecast(prediction, _test_window(cfg), quantiles, saved.calibration)
    return out


def run_baselines(cfg: Config) -> None:
    """Fit the statsforecast baselines on exactly the training months and save their test forecasts."""
    panel, _ = load_prepared(cfg)
    history, available = training_history(cfg, panel)
    window = _test_window(cfg)
    fcs = fit_baselines(cfg, panel, history, available, window.stop)
    BASELINES.parent.mkdir(parents=True, exist_ok=True)
    BASELINES.write_bytes(serialization.msgpack_serialize({k: v[:, window] for k, v in fcs.items()}))


def fit_baselines(
    cfg: Config, panel: Panel, history: np.ndarray, available: np.ndarray, n_test: int
) -> dict[str, np.ndarray]:
    """Each baseline's coherent f64[S,n_test,Q] forecast (revenue, at QUANTILES) from training months
    f64[S,T0] of `panel`'s series, reconciled as `baselines.reconcile` says (`salesjax.reconcile`)."""
    return reconcile.coherent_baselines(
        history,
        available,
        panel.store,
        panel.category,
        n_test,
        cfg.evaluate.season_length,
        QUANTILES,
        cfg.baselines.reconcile,
        cfg.baselines.n_jobs,
        cfg.baselines.engine,
    )


def _baseline_forecasts(cfg: Config, panel: Panel) -> dict:
    """The saved baseline forecasts f64[S,test months,Q]; missing, damaged or mis-shaped is one line."""
    window = _test_window(cfg)
    shape = (len(panel.store), window.stop - window.start, len(QUANTILES))
    return artifacts.read(BASELINES, "baselines", lambda path: _read_baselines(path, shape))


def _read_baselines(path: Path, shape: tuple[int, int, int]) -> dict:
    """Each baseline's forecast from the saved msgpack, checked to be f64[S,test months,Q]."""
    fcs = serialization.msgpack_restore(path.read_bytes())
    out = {
        name: evaluate.Forecast(np.asarray(fcs[name], np.float64), QUANTILES) for name in baselines.BASELINES
    }
    if any(fc.values.shape != shape for fc in out.values()):
        raise ValueError(f"forecasts are not of shape {shape} (series, test months, quantiles)")
    return out


def _truths(cfg: Config, panel: Panel, history, available) -> dict[str, evaluate.Truth]:
    """The test-period actuals of each world the input has."""
    _, _, test_start, test_end = cfg.split.months()
    cols = slice(panel.index(test_start), panel.index(test_end) + 1)
    return {
        world: evaluate.Truth(values[:, cols], panel.available[:, cols], history, available)
        for world, values in panel.worlds.items()
    }


def _forecast_table(cfg: Config, panel: Panel, forecasts: dict, truths: dict) -> pd.DataFrame:
    """Long table: one row per model, series and test month with its quantiles and the actuals."""
    _, _, test_start, test_end = cfg.split.months()
    months = pd.period_range(test_start, test_end, freq="M").astype(str)
    grid = pd.MultiIndex.from_product([range(len(panel.store)), months], names=["series", "month"]).to_frame(
        index=False
    )
    grid["store"] = np.asarray(panel.stores)[panel.store][grid["series"]]
    grid["category"] = np.asarray(panel.categories)[panel.category][grid["series"]]
    for world, truth in truths.items():
        grid[world] = np.where(truth.mask, truth.actual, np.nan).reshape(-1)
    frames = []
    for model, fc in forecasts.items():
        quantiles = {f"q{q:g}": fc.values[..., k].reshape(-1) for k, q in enumerate(fc.quantiles)}
        frames.append(grid.assign(model=model, **quantiles))
    return pd.concat(frames, ignore_index=True)


def headline_metrics(levels: pd.DataFrame) -> dict:
    """{model: {metric: value}} of HEADLINE_METRICS; names carry the level except at the bottom level."""
    out: dict[str, dict[str, float]] = {}
    for row in levels.to_dict("records"):
        level = row["level"]
        for k in HEADLINE_METRICS[level]:
            if k in row and pd.notna(row[k]):
                name = k if level == "store_category" else f"{k}_{level}"
                out.setdefault(row["model"], {})[name] = float(f"{row[k]:.6g}")
    return out


def run_evaluate(cfg: Config) -> None:
    """Score the LSTMs and the baselines on the test months of every world, at every level."""
    panel, calendar = load_prepared(cfg)
    history, available = training_history(cfg, panel)
    fitted = _baseline_forecasts(cfg, panel)  # read first: a damaged file fails before any forecast is made
    forecasts = _model_forecasts(cfg, panel, calendar, history, available) | fitted
    truths = _truths(cfg, panel, history, available)
    season = cfg.evaluate.season_length
    levels = {
        w: evaluate.score_levels(t, forecasts, panel.store, panel.category, season) for w, t in truths.items()
    }
    headline = {world: headline_metrics(table) for world, table in levels.items()}
    out = REPORTS / "evaluate"
    out.mkdir(parents=True, exist_ok=True)
    write_json(headline, REPORTS / "metrics.json")
    level_table = pd.concat([t.assign(target=w) for w, t in levels.items()])
    level_table.to_csv(out / "levels.csv", index=False, float_format="%.6g")
    for world in truths:
        plots.calibration(level_table, "lstm_ensemble", world, out / f"calibration_{world}.png")
    series = pd.concat(
        [evaluate.score_series(t, forecasts, season).assign(target=w) for w, t in truths.items()]
    )
    series["store"] = np.asarray(panel.stores)[panel.store][series["series"]]
    series["category"] = np.asarray(panel.categories)[panel.category][series["series"]]
    series.to_csv(out / "series.csv", index=False, float_format="%.6g")
    horizons = pd.concat([evaluate.score_horizons(t, forecasts).assign(target=w) for w, t in truths.items()])
    horizons.to_csv(out / "horizon.csv", index=False, float_format="%.6g")
    gap = pd.DataFrame(columns=list(evaluate.GAP_COLUMNS))
    if {"observed", "counterfactual"} <= truths.keys():
        names = {"total": ["company"], "store": list(panel.stores), "category": list(panel.categories)}
        gap = evaluate.disruption_gap(
            truths["observed"], truths["counterfactual"], forecasts, panel.store, panel.category, names
        )
    gap.to_csv(out / "gap.csv", index=False, float_format="%.6g")  # header only without a counterfactual
    (ARTIFACTS / "evaluation").mkdir(parents=True, exist_ok=True)
    _forecast_table(cfg, panel, forecasts, truths).to_parquet(
        ARTIFACTS / "evaluation" / "forecasts.parquet", index=False
    )
    for world, table in headline.items():
        logger.info(f"{world}: " + ", ".join(f"{m} MASE {v['mase']:.3f}" for m, v in table.items()))
