"""Typed, frozen mirrors of params.yaml: no defaults in code, unknown or missing keys are errors."""

import dataclasses
import types
import typing
from pathlib import Path

import holidays
import pandas as pd
import yaml

from salesjax.errors import SalesjaxError

EXPERIMENTS = Path("experiments")
PARAMS = Path("params.yaml")
# The smallest valid value of each bounded number (every member of a list); the types alone let a
# 0 or a negative through, which then crashes deep inside training (an ensemble of 0 members).
AT_LEAST = {
    "model.context": 1,
    "model.horizon": 1,
    "model.hidden_size": 1,
    "model.num_layers": 1,
    "model.store_embedding": 1,
    "model.category_embedding": 1,
    "model.dropout": 0.0,
    "model.level_smoothing": 0.0,
    "train.seed": 0,
    "train.ensemble_size": 1,
    "train.weight_decay": 0.0,
    "train.warmup_steps": 0,
    "train.batch_size": 1,
    "train.min_steps_per_epoch": 1,
    "train.max_epochs": 1,
    "train.patience": 1,
    "train.validation_months": 1,
    "evaluate.season_length": 1,
    "forecast.horizon": 1,
    "data.max_rejected_fraction": 0.0,
    "sweep.weight_decays": 0.0,
    "sweep.seeds": 0,
}
ABOVE = {"train.learning_rate": 0.0, "train.clip_norm": 0.0, "sweep.learning_rates": 0.0}
AT_MOST = {"data.max_rejected_fraction": 1.0}
BELOW = {"model.dropout": 1.0, "model.level_smoothing": 1.0}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PanelColumns:
    """Column names of a monthly panel input."""

    month: str
    store: str
    category: str
    revenue: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the raw input is and how to read it."""

    format: typing.Literal["transactions", "panel"]
    path: str
    counterfactual_path: str | None
    target: typing.Literal["observed", "counterfactual"]
    date_format: str
    min_year: int
    max_year: int
    max_rejected_fraction: float
    panel_columns: PanelColumns
    country: str  # a `holidays` country code: public holidays, working days, default events
    events: tuple[str, ...] | str  # "auto" (the country's default) or event names (features.event_sources)
    covariates: tuple[
        str, ...
    ]  # numeric columns known in advance (promotions, closed days), read by the LSTM
    covariates_path: str | None  # their side file (month, store, category + them); null: the panel's columns


@dataclasses.dataclass(frozen=True, kw_only=True)
class SplitConfig:
    """Training and test months, inclusive, as YYYY-MM."""

    train_start: str
    train_end: str
    test_start: str
    test_end: str

    def months(self) -> tuple[pd.Period, pd.Period, pd.Period, pd.Period]:
        """The four boundaries as monthly periods."""
        return tuple(
            pd.Period(v, "M") for v in (self.train_start, self.train_end, self.test_start, self.test_end)
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of the LSTM forecaster."""

    context: int
    horizon: int
    reference: typing.Literal["profile", "seasonal", "mean"]
    level_smoothing: float
    combine: typing.Literal["ets", "none"]
    hidden_size: int
    num_layers: int
    dropout: float
    store_embedding: int
    category_embedding: int
    quantiles: tuple[float, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation, early stopping and the seed ensemble."""

    loss: typing.Literal["pinball", "mse"]
    seed: int
    ensemble_size: int
    learning_rate: float
    weight_decay: float
    clip_norm: float
    warmup_steps: int
    batch_size: int
    min_steps_per_epoch: int
    max_epochs: int
    patience: int
    validation_months: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Settings of the baselines and metrics."""

    season_length: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class BaselinesConfig:
    """How the statsforecast baselines reach the upper levels, and where they are fitted (the forecasts are
    the same on either engine)."""

    reconcile: typing.Literal["wls", "bottom_up"]  # salesjax.reconcile: every level fitted and reconciled
    engine: typing.Literal["local", "dask"]  # dask: $SALESJAX_DASK_SCHEDULER's cluster, else a local one
    n_jobs: int  # worker processes (local: forked; dask without a scheduler: a local cluster's workers)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BacktestConfig:
    """Rolling forecast origins: each re-fits every forecaster on the months before it."""

    origins: tuple[str, ...] | str  # YYYY-MM first forecast months, or "auto" (parse_config: auto_origins)
    ensemble_size: int  # seed-ensemble members of the backtest's ensemble (kept small for time)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """A same-shape hyperparameter grid trained as one vmapped program, chosen on the hold-out."""

    learning_rates: tuple[float, ...]
    weight_decays: tuple[float, ...]
    seeds: tuple[int, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ForecastConfig:
    """The forecast beyond the data (`salesjax forecast`): months ahead of the data's last month."""

    horizon: int  # at most model.horizon: the LSTM forecasts its months at once (checked by the stage)
    covariates_path: str | None  # data.covariates' values for the forecast months (month, store, category)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """All of params.yaml."""

    data: DataConfig
    split: SplitConfig
    model: ModelConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    baselines: BaselinesConfig
    backtest: BacktestConfig
    sweep: SweepConfig
    forecast: ForecastConfig


def _build(cls: type, raw: object, where: str):
    """Build dataclass `cls` from a YAML mapping, checking keys and scalar types."""
    if not isinstance(raw, dict):
        raise SalesjaxError(f"params: '{where}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    if unknown := sorted(set(raw) - set(fields)):
        raise SalesjaxError(f"params: unknown key '{where}.{unknown[0]}'")
    if missing := [name for name in fields if name not in raw]:
        raise SalesjaxError(f"params: missing key '{where}.{missing[0]}'")
    return cls(**{name: _coerce(hints[name], raw[name], f"{where}.{name}") for name in fields})


def _coerce(hint, value, where: str):
    """Check one value against its annotation, converting lists to tuples and ints to floats."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for alternative in (a for a in args if a is not type(None)):
            try:
                return _coerce(alternative, value, where)
            except SalesjaxError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise SalesjaxError(f"params: '{where}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SalesjaxError(f"params: '{where}' must be a list")
        return tuple(_coerce(args[0], v, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise SalesjaxError(f"params: '{where}' must be {hint.__name__}, got {value!r}")
    return value


def _check(cfg: Config) -> None:
    """Cross-field rules that a single type cannot express."""
    try:
        train_start, train_end, test_start, test_end = cfg.split.months()
    except ValueError as exc:
        raise SalesjaxError(f"params: split months must be YYYY-MM ({exc})") from None
    if not train_start <= train_end < test_start <= test_end:
        raise SalesjaxError("params: split must satisfy train_start <= train_end < test_start <= test_end")
    if (test_end - train_end).n > cfg.model.horizon:
        raise SalesjaxError("params: the months from split.train_end to split.test_end exceed model.horizon")
    _check_ranges(cfg)
    check_date_format(cfg.data.date_format, "params: 'data.date_format'")
    _check_calendar(cfg.data)
    _check_covariates(cfg.data)
    if cfg.data.min_year > cfg.data.max_year:
        raise SalesjaxError("params: data.min_year must not exceed data.max_year")
    if cfg.train.loss == "mse" and cfg.model.quantiles != (0.5,):
        raise SalesjaxError("params: train.loss 'mse' forecasts one value: set model.quantiles to [0.5]")
    if list(cfg.model.quantiles) != sorted(set(cfg.model.quantiles)) or 0.5 not in cfg.model.quantiles:
        raise SalesjaxError("params: model.quantiles must be increasing, distinct and include 0.5")
    if not all(0.0 < q < 1.0 for q in cfg.model.quantiles):
        raise SalesjaxError("params: model.quantiles must lie strictly between 0 and 1")
    _check_sweep(cfg.sweep)


def _check_calendar(data: DataConfig) -> None:
    """data.country is a two-letter code of the holidays package; data.events is 'auto' or distinct names.

    Whether each event name is a holiday of the country is known only with the data's years: prepare
    checks it when it builds the calendar (features.event_sources).
    """
    if not (len(data.country) == 2 and data.country in holidays.list_supported_countries()):
        raise SalesjaxError(
            f"params: 'data.country' {data.country!r} is not a two-letter country code of the holidays "
            'package (e.g. AZ, AU); list them with: uv run python -c "import holidays; '
            'print(sorted(c for c in holidays.list_supported_countries() if len(c) == 2))"'
        )
    if isinstance(data.events, str) and data.events != "auto":
        raise SalesjaxError(
            f"params: 'data.events' must be 'auto' or a list of event names, got {data.events!r}"
        )
    if not isinstance(data.events, str) and len(set(data.events)) != len(data.events):
        raise SalesjaxError(f"params: 'data.events' lists an event twice: {list(data.events)}")


def _check_covariates(data: DataConfig) -> None:
    """data.covariates: distinct names, none a key or revenue column; transactions need a side file."""
    names, columns = data.covariates, dataclasses.astuple(data.panel_columns)
    if len(set(names)) != len(names) or set(names) & {*columns, "month", "store", "category", "revenue"}:
        raise SalesjaxError(
            f"params: 'data.covariates' must be distinct names other than the panel's key and revenue "
            f"columns, got {list(names)}"
        )
    if names and data.format == "transactions" and data.covariates_path is None:
        raise SalesjaxError(
            "params: data.covariates with data.format 'transactions' needs data.covariates_path, a file "
            "with columns month, store, category and the covariates"
        )


def calendar_months(cfg: Config) -> tuple[pd.Period, pd.Period]:
    """First and last month of the prepared calendar: model.context before the split, model.horizon after."""
    train_start, _, _, test_end = cfg.split.months()
    return train_start - cfg.model.context, test_end + cfg.model.horizon


def _check_ranges(cfg: Config) -> None:
    """Every bounded number of AT_LEAST, ABOVE, AT_MOST and BELOW within its bound."""
    rules = [(AT_LEAST, "at least", float.__ge__), (ABOVE, "above", float.__gt__)]
    rules += [(AT_MOST, "at most", float.__le__), (BELOW, "below", float.__lt__)]
    for bounds, words, holds in rules:
        for key, bound in bounds.items():
            section, name = key.split(".")
            values = getattr(getattr(cfg, section), name)
            for value in values if isinstance(values, tuple) else (values,):
                if not holds(float(value), float(bound)):
                    raise SalesjaxError(f"params: '{key}' must be {words} {bound}, got {value!r}")


def check_date_format(date_format: str, where: str) -> None:
    """Fail with one line when `date_format` is not a usable strptime format (e.g. '%Q')."""
    try:
        pd.to_datetime(pd.Series(["2000-01-01"]), format=date_format, errors="coerce")
    except ValueError as exc:
        raise SalesjaxError(f"{where} {date_format!r} is not a strptime date format ({exc})") from None


def _check_backtest(cfg: Config) -> None:
    """Backtest origins: YYYY-MM, increasing, after at least 4 training months and not after test_end."""
    try:
        origins = [pd.Period(o, "M") for o in cfg.backtest.origins]
    except ValueError as exc:
        raise SalesjaxError(f"params: backtest.origins must be YYYY-MM ({exc})") from None
    train_start, _, _, test_end = cfg.split.months()
    if not origins or origins != sorted(set(origins)):
        raise SalesjaxError("params: backtest.origins must be a non-empty, increasing list of months")
    if (origins[0] - train_start).n < 4 or origins[-1] > test_end:
        raise SalesjaxError(
            "params: backtest.origins must leave at least 4 training months and not pass split.test_end"
        )
    if cfg.backtest.ensemble_size < 1 or cfg.baselines.n_jobs < 1:
        raise SalesjaxError("params: backtest.ensemble_size and baselines.n_jobs must be at least 1")


def auto_origins(split: SplitConfig, season_length: int) -> tuple[str, ...]:
    """`backtest.origins: auto`: split.test_start and the origins 12 and 6 months before it, where allowed.

    split.test_start (the evaluation's own origin) needs at least `season_length` training months. An
    earlier origin is kept only with more than `season_length`: with one season or less, seasonal naive
    falls back to naive (`salesjax.baselines`) and no model sees a month a year before another, so such
    an origin would measure forecasters without their season.
    """
    train_start, _, test_start, _ = split.months()
    if (test_start - train_start).n < season_length:
        raise SalesjaxError(
            f"params: backtest.origins 'auto' needs at least {season_length} months from "
            "split.train_start to split.test_start; give the origins as a list"
        )
    earlier = [test_start - back for back in (12, 6)]
    return (*(str(o) for o in earlier if (o - train_start).n > season_length), str(test_start))


def _expand_origins(cfg: Config) -> BacktestConfig:
    """cfg.backtest with `origins: auto` replaced by the months it stands for."""
    origins = cfg.backtest.origins
    if isinstance(origins, str):
        if origins != "auto":
            raise SalesjaxError(
                f"params: backtest.origins must be a list of YYYY-MM months or 'auto', got {origins!r}"
            )
        origins = auto_origins(cfg.split, cfg.evaluate.season_length)
    return dataclasses.replace(cfg.backtest, origins=origins)


def _check_sweep(sweep: SweepConfig) -> None:
    """Every sweep dimension has at least one value."""
    if not (sweep.learning_rates and sweep.weight_decays and sweep.seeds):
        raise SalesjaxError("params: sweep.learning_rates, weight_decays and seeds must each be non-empty")


def parse_config(raw: object) -> Config:
    """Validate a params mapping (as read from YAML) into a Config; `backtest.origins: auto` is expanded."""
    cfg = _build(Config, raw, "params")
    _check(cfg)
    cfg = dataclasses.replace(cfg, backtest=_expand_origins(cfg))
    _check_backtest(cfg)
    return cfg


def merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied key by key (nested mappings merge, other values replace)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _read_yaml(path: Path) -> object:
    """Parse one YAML file, failing with a one-line error."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SalesjaxError(f"cannot read params file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SalesjaxError(f"params file {path} is not valid YAML: {exc}".splitlines()[0]) from None


def experiment_path(name: str) -> Path:
    """The overrides file of a named experiment set."""
    return EXPERIMENTS / f"{name}.yaml"


def load_config(path: Path = PARAMS, experiment: str | None = None) -> Config:
    """Read and validate params.yaml, with a named experiment's overrides applied on top."""
    if not Path(path).exists():
        raise SalesjaxError(
            f"cannot read params file {path}: not found in {Path.cwd()}; run salesjax from the repository "
            "root (where params.yaml is) or pass --params"
        )
    raw = _read_yaml(path)
    if experiment is not None:
        overrides = _read_yaml(experiment_path(experiment))
        if not isinstance(raw, dict) or not isinstance(overrides, dict):
            raise SalesjaxError(f"params and experiment '{experiment}' must be mappings")
        raw = merge(raw, overrides)
    return parse_config(raw)
