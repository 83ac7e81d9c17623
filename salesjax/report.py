"""The report stage: figures, DVC plot files, report.md and a self-contained report.html.

Everything in the report comes from the earlier stages' outputs and params; the prose is fixed
templates filled with those numbers. The HTML is made from the same markdown by a small converter
for the subset written here (headings, paragraphs, pipe tables, images, lists, **bold**, `code`),
with every image embedded as a base64 data URI, inline CSS and no scripts, so it renders offline.
Given the same inputs, every output is the same bytes.
"""

import base64
import html
import json
import logging
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

from salesjax import artifacts, plots
from salesjax.config import Config, experiment_path
from salesjax.stages import ARTIFACTS, PREPARED, REPORTS

logger = logging.getLogger(__name__)

FIGURES = REPORTS / "figures"
PLOTS = REPORTS / "plots"
NEURAL = ("lstm_ensemble", "lstm", "thesis")
QUANTILE_COLUMNS = ["q0.1", "q0.5", "q0.9"]
METRICS = {  # column title, number format, how "best" is judged
    "mae": ("MAE", "azn", "min"),
    "rmse": ("RMSE", "azn", "min"),
    "mase": ("MASE", "ratio", "min"),
    "wape": ("WAPE", "ratio", "min"),
    "smape": ("sMAPE %", "2dp", "min"),
    "bias": ("bias", "azn", "zero"),
    "pinball": ("pinball", "azn", "min"),
    "coverage_80": ("coverage 80%", "ratio", "0.8"),
}
LEVEL_COLUMNS = [("total", "mae"), ("total", "mase"), ("total", "wape")] + [
    (level, m) for level in ("store", "category") for m in ("mase", "wape")
]
TOP_STORES, TOP_CATEGORIES, TOP_GAP, TOP_FINDINGS = 3, 4, 5, 5


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


class View(NamedTuple):
    """What every section needs to know besides the inputs."""

    cfg: Config
    worlds: list[str]  # the target world first, then the other one when the input has it
    models: list[str]  # in the order of the forecasts table
    headline: str  # the model the figures and findings follow (the seed ensemble)
    best_baseline: str  # lowest store x category MASE on the target among the non-LSTM models
    stores: list[str]  # by training revenue, largest first
    categories: list[str]


# ---------------------------------------------------------------------------------------------- inputs


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
    )


def _ranked(panel: pd.DataFrame, cfg: Config, key: str) -> list[str]:
    """Values of `key` ordered by training revenue of the target world, largest first."""
    train = panel[panel["month"] <= cfg.split.train_end]
    totals = train.groupby(key)[cfg.data.target].sum().sort_values(ascending=False, kind="stable")
    return [str(k) for k in totals.index]


def best_baseline(table: dict) -> str:
    """The non-LSTM model with the lowest MASE in one world's {model: metrics} (ties: first listed)."""
    baselines = [m for m in table if m not in NEURAL and np.isfinite(table[m].get("mase", np.nan))]
    return min(baselines, key=lambda m: table[m]["mase"]) if baselines else ""


def make_view(cfg: Config, inputs: Inputs) -> View:
    """The worlds, models and orderings every section shares."""
    worlds = [w for w in ("observed", "counterfactual") if w in inputs.panel.columns]
    models = [str(m) for m in pd.unique(inputs.forecasts["model"])]
    return View(
        cfg=cfg,
        worlds=sorted(worlds, key=lambda w: w != cfg.data.target),
        models=models,
        headline=next((m for m in NEURAL[:2] if m in models), models[0]),
        best_baseline=best_baseline(inputs.metrics.get(cfg.data.target, {})),
        stores=_ranked(inputs.panel, cfg, "store"),
        categories=_ranked(inputs.panel, cfg, "category"),
    )


# -------------------------------------------------------------------------------- frames for display


def company_forecast(inputs: Inputs, view: View) -> pd.DataFrame:
    """Per test month (and its horizon): each world's company revenue and each model's median total.

    Medians are summed over the series whose target actual exists, as the metrics do.
    """
    fc = inputs.forecasts
    target = view.worlds[0]
    actual = fc[fc["model"] == view.models[0]].groupby("month")[view.worlds].sum()
    medians = fc[fc[target].notna()].pivot_table(index="month", columns="model", values="q0.5", aggfunc="sum")
    out = actual.add_prefix("actual_").join(medians[view.models]).reset_index().rename_axis(columns=None)
    end = pd.Period(view.cfg.split.train_end, "M")
    out.insert(1, "horizon", [(pd.Period(m, "M") - end).n for m in out["month"]])
    return out


def horizon_table(inputs: Inputs, view: View) -> pd.DataFrame:
    """Horizon and one store x category MAE column per model, against the target world."""
    rows = inputs.horizon[inputs.horizon["target"] == view.worlds[0]]
    table = rows.pivot(index="horizon", columns="model", values="mae")[view.models]
    return table.reset_index().rename_axis(columns=None)


def _grid_frames(inputs: Inputs, view: View, keys: list[str], label) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(actuals over all months, headline forecast over test months) summed to `keys`, labelled by `label`."""
    actual = inputs.panel.groupby([*keys, "month"], as_index=False)[view.worlds].sum()
    fc = inputs.forecasts
    fc = fc[(fc["model"] == view.headline) & fc[view.worlds[0]].notna()]
    forecast = fc.groupby([*keys, "month"], as_index=False)[QUANTILE_COLUMNS].sum(min_count=1)
    return actual.assign(panel=label(actual)), forecast.assign(panel=label(forecast))


def _in_order(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Rows of `frame` with their `panel` label in `order`, panels in that order, months ascending."""
    rank = {p: i for i, p in enumerate(order)}
    kept = frame[frame["panel"].isin(rank)]
    return kept.assign(_rank=kept["panel"].map(rank)).sort_values(["_rank", "month"]).drop(columns="_rank")


def store_frames(inputs: Inputs, view: View) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Actuals and headline forecast per store, stores by training revenue."""
    actual, forecast = _grid_frames(inputs, view, ["store"], lambda f: "store " + f["store"])
    order = [f"store {s}" for s in view.stores]
    return _in_order(actual, order), _in_order(forecast, order)


def top_category_frames(inputs: Inputs, view: View) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Actuals and headline forecast of the largest categories of the largest stores (by training revenue)."""
    panel = inputs.panel[inputs.panel["month"] <= view.cfg.split.train_end]
    order = []
    for store in view.stores[:TOP_STORES]:
        own = panel[panel["store"] == store].groupby("category")[view.cfg.data.target].sum()
        top = own.sort_values(ascending=False, kind="stable").index[:TOP_CATEGORIES]
        order += [f"store {store} / {c}" for c in top]
    actual, forecast = _grid_frames(
        inputs, view, ["store", "category"], lambda f: "store " + f["store"] + " / " + f["category"]
    )
    return _in_order(actual, order), _in_order(forecast, order)


def _months_label(months: list[str]) -> str:
    """'2020' for a whole calendar year, else 'first..last'."""
    whole = len(months) == 12 and months[0].endswith("-01") and months[0][:4] == months[-1][:4]
    return months[0][:4] if whole else f"{months[0]}..{months[-1]}"


def period_label(cfg: Config) -> str:
    """The test period as a short label."""
    return _months_label(
        [str(m) for m in pd.period_range(cfg.split.test_start, cfg.split.test_end, freq="M")]
    )


def yearly_bars(inputs: Inputs, view: View, company: pd.DataFrame) -> pd.DataFrame:
    """Bars (label, value, kind): each training year's actual, then the test period's actuals, forecasts."""
    train = inputs.panel[inputs.panel["month"] <= view.cfg.split.train_end]
    rows = []
    for year, part in train.groupby(train["month"].str[:4]):
        n = part["month"].nunique()
        label = year if n == 12 else f"{year} ({n} months)"
        totals = part[view.worlds].sum()
        for world in view.worlds:
            if world == view.worlds[0] or not np.isclose(totals[world], totals[view.worlds[0]]):
                rows.append((f"{label}\nactual\n{world}", totals[world], world))
    period = period_label(view.cfg)
    rows += [(f"{period}\nactual\n{w}", company[f"actual_{w}"].sum(), w) for w in view.worlds]
    rows += [(f"{period}\n{m}", company[m].sum(), m) for m in view.models]
    return pd.DataFrame(rows, columns=["label", "value", "kind"])


def last_training_totals(inputs: Inputs, view: View) -> dict[str, float]:
    """Company revenue of the last training month per world (where growth of the first test month starts)."""
    last = inputs.panel[inputs.panel["month"] == view.cfg.split.train_end]
    return {w: float(last[w].sum()) for w in view.worlds}


def heatmap_series(inputs: Inputs, view: View) -> pd.DataFrame:
    """series.csv rows of the headline model against the target world."""
    s = inputs.series
    return s[(s["model"] == view.headline) & (s["target"] == view.worlds[0])]


# ------------------------------------------------------------------------------------------- figures

FIGURE_CAPTIONS = {
    "store_forecasts": "Monthly revenue per store (largest first): actual {target} (solid), {other}the "
    "{headline} forecast (median, red) and its 80% interval (band: the sum of the series' 10% and 90% "
    "quantiles, wider than the interval of the store total unless the series' errors move together).",
    "top_categories": "The {n_cat} largest categories (by training revenue) of the {n_store} largest stores: "
    "actual {target}, {other}the {headline} forecast and its 80% interval.",
    "growth_rates": "Month-to-month growth of company revenue in the test period: actual vs the forecasts of "
    "{headline} and the best baseline ({baseline}). The first month's growth is relative to the last "
    "training month.",
    "heatmap_rmse": "RMSE of {headline} per store x category against {target} (AZN, log colour scale; rows "
    "and columns by training revenue, largest first).",
    "heatmap_mae": "MAE of {headline} per store x category against {target} (AZN, log colour scale).",
    "yearly_totals": "Yearly company revenue: actual training years and, for the test period, each world's "
    "actual and each model's forecast total.",
    "disruption": "Observed vs counterfactual company revenue in the test period, the gap between them and "
    "each model's forecast; below, the gap and each model's predicted gap (forecast - observed).",
    "training_curves": "Training and validation loss (member mean, scaled series) per epoch of each "
    "validation fit; dotted lines mark the epochs chosen per member.",
    "error_by_horizon": "Store x category MAE against {target} by horizon month, every model.",
}


def _chosen_epochs(inputs: Inputs) -> dict[str, list[int]]:
    """Fit name -> the epochs chosen on the hold-out, per member."""
    return {name: list(t.get("epochs", [])) for name, t in inputs.training.items()}


def draw_figures(inputs: Inputs, view: View, company: pd.DataFrame) -> list[str]:
    """Write every figure to reports/figures and return the names drawn, in report order."""
    target, worlds = view.worlds[0], view.worlds
    title = f"{view.headline} forecast vs actual ({target}) per store"
    plots.forecast_grid(*store_frames(inputs, view), worlds, FIGURES / "store_forecasts.png", title)
    title = f"{view.headline} forecast vs actual ({target}): top categories of the largest stores"
    plots.forecast_grid(*top_category_frames(inputs, view), worlds, FIGURES / "top_categories.png", title)
    growth_models = [m for m in (view.headline, view.best_baseline) if m]
    previous = last_training_totals(inputs, view)
    plots.growth_rates(company, previous, worlds, growth_models, FIGURES / "growth_rates.png")
    series = heatmap_series(inputs, view)
    for value in ("rmse", "mae"):
        title = f"{value.upper()} of {view.headline} per store x category (vs {target})"
        plots.error_heatmap(
            series, value, view.stores, view.categories, FIGURES / f"heatmap_{value}.png", title
        )
    plots.yearly_totals(yearly_bars(inputs, view, company), worlds, FIGURES / "yearly_totals.png")
    names = [
        "store_forecasts",
        "top_categories",
        "growth_rates",
        "heatmap_rmse",
        "heatmap_mae",
        "yearly_totals",
    ]
    if "counterfactual" in worlds:
        plots.disruption(company, view.models, FIGURES / "disruption.png")
        names.append("disruption")
    if inputs.curves:
        plots.training_curves(inputs.curves, _chosen_epochs(inputs), FIGURES / "training_curves.png")
        names.append("training_curves")
    plots.error_by_horizon(horizon_table(inputs, view), target, FIGURES / "error_by_horizon.png")
    return [*names, "error_by_horizon"]


def _caption(name: str, view: View) -> str:
    """The caption of one figure."""
    other = f"actual {view.worlds[1]} (dashed), " if len(view.worlds) > 1 else ""
    return FIGURE_CAPTIONS[name].format(
        target=view.worlds[0],
        other=other,
        headline=view.headline,
        baseline=view.best_baseline,
        n_cat=TOP_CATEGORIES,
        n_store=TOP_STORES,
    )


# ------------------------------------------------------------------------------------- formatting


def fmt(value, kind: str = "ratio") -> str:
    """A number for the report: AZN with thousands separators, ratios to 3 decimals, '–' when missing."""
    if value is None or not np.isfinite(value):
        return "–"
    if kind == "mazn":
        return f"{value / 1e6:,.3f}"
    formats = {"azn": "{:,.0f}", "ratio": "{:.3f}", "2dp": "{:.2f}", "int": "{:,.0f}", "share": "{:.1%}"}
    return formats[kind].format(value)


def _cell(text: str) -> str:
    """A table cell with pipes escaped."""
    return str(text).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A pipe table; `align` has one 'l' or 'r' per column (default: the first left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _badness(metric: str, value: float) -> float:
    """How far a metric value is from ideal: the value, |bias|, or |coverage - 0.8|."""
    rule = METRICS[metric][2]
    return abs(value) if rule == "zero" else abs(value - 0.8) if rule == "0.8" else value


def _marked(values: list[float], metric: str) -> list[str]:
    """Formatted values with the best ones in bold."""
    finite = [_badness(metric, v) for v in values if v is not None and np.isfinite(v)]
    best = min(finite) if finite else None
    out = []
    for v in values:
        text = fmt(v, METRICS[metric][1])
        is_best = best is not None and v is not None and np.isfinite(v) and _badness(metric, v) == best
        out.append(f"**{text}**" if is_best else text)
    return out


def _marked_table(first: str, names: list[str], columns: list[tuple[str, str, list[float]]]) -> list[str]:
    """A table of one row per name and one column (title, metric, values) each, best values bold."""
    cells = [_marked(values, metric) for _, metric, values in columns]
    rows = [[name] + [c[i] for c in cells] for i, name in enumerate(names)]
    return table([first] + [title for title, _, _ in columns], rows)


# ---------------------------------------------------------------------------------------- sections


def mase_sentence(world: str, period: str, table_: dict, headline: str) -> str:
    """Whether the headline model's MASE is below every baseline's in one world (computed, both ways)."""
    subject = "the LSTM ensemble" if headline == "lstm_ensemble" else f"the {headline} model"
    own = table_.get(headline, {}).get("mase", np.nan)
    baselines = sorted(
        (table_[m]["mase"], m)
        for m in table_
        if m not in NEURAL and np.isfinite(table_[m].get("mase", np.nan))
    )
    if not np.isfinite(own) or not baselines:
        return f"On {world} {period} there is no MASE of {subject} and a baseline to compare."
    head = f"On {world} {period} {subject}'s MASE ({fmt(own)})"
    beating = [(v, m) for v, m in baselines if v <= own]
    if not beating:
        return f"{head} is below every baseline (best: {baselines[0][1]} {fmt(baselines[0][0])})."
    listed = ", ".join(f"{m} {fmt(v)}" for v, m in beating)
    return f"{head} is NOT below every baseline ({listed} {'beats' if len(beating) == 1 else 'beat'} it)."


def section_overview(inputs: Inputs, view: View) -> list[str]:
    """Title, what the report is, and the headline sentences."""
    period = period_label(view.cfg)
    lines = ["# Monthly revenue per store x category: forecasts and evaluation", ""]
    lines += [
        "Generated by `salesjax report` from the outputs of the prepare, train, baselines and evaluate "
        f"stages. The figures compare against the **{view.worlds[0]}** world (`data.target`); the test "
        f"period is {view.cfg.split.test_start}..{view.cfg.split.test_end}. Every number and figure below "
        "is computed from those outputs.",
        "",
    ]
    lines += [f"- {mase_sentence(w, period, inputs.metrics.get(w, {}), view.headline)}" for w in view.worlds]
    return lines + [""]


def section_data(inputs: Inputs, view: View) -> list[str]:
    """Rows in, kept and quarantined; series, months and the split."""
    lines = ["## Data", ""]
    rows = []
    for world in view.worlds:
        counts = inputs.prepare.get(world, {})
        reasons = (
            ", ".join(
                f"{k.removeprefix('quarantined_')} {v:,}"
                for k, v in counts.items()
                if k.startswith("quarantined_")
            )
            or "none"
        )
        rows.append(
            [world]
            + [fmt(counts.get(k, np.nan), "int") for k in ("rows_in", "rows_kept", "rows_quarantined")]
            + [reasons]
        )
    lines += table(["input", "rows in", "kept", "quarantined", "quarantine reasons"], rows, "lrrrl") + [""]
    panel = inputs.panel
    months = sorted(panel["month"].unique())
    counts = inputs.prepare.get("panel", {})
    split = view.cfg.split
    n_train = len(pd.period_range(split.train_start, split.train_end, freq="M"))
    n_test = len(pd.period_range(split.test_start, split.test_end, freq="M"))
    lines += [
        f"The panel has {counts.get('series', panel[['store', 'category']].drop_duplicates().shape[0]):,} "
        f"store x category series ({panel['store'].nunique()} stores x {panel['category'].nunique()} "
        f"categories seen in training) over {len(months)} months, {months[0]}..{months[-1]}; "
        f"{fmt(panel['available'].mean(), 'share')} of the series-months are available. "
        f"Series seen only in the test months (cannot be forecast): {counts.get('series_only_in_test', 0)}; "
        f"series with zero training revenue: {counts.get('series_all_zero_in_training', 0)}.",
        "",
        f"Split: training {split.train_start}..{split.train_end} ({n_train} months), "
        f"test {split.test_start}..{split.test_end} ({n_test} months). Nothing is fitted on test months.",
        "",
    ]
    return lines


def _thesis_overrides(cfg: Config) -> list[list[str]]:
    """Rows (setting, params.yaml, thesis replication) from experiments/thesis.yaml, if it exists."""
    path = experiment_path("thesis")
    if not path.exists():
        return []
    overrides = yaml.safe_load(path.read_text()) or {}
    rows = []
    for section, values in overrides.items():
        for key, value in values.items():
            default = getattr(getattr(cfg, section), key)
            rows.append([f"{section}.{key}", _plain(default), _plain(value)])
    return rows


def _plain(value) -> str:
    """A params value as short text (lists without brackets noise)."""
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def section_method(inputs: Inputs, view: View) -> list[str]:
    """The model, training, validation, baselines and the thesis replication, from params."""
    m, t, s = view.cfg.model, view.cfg.train, view.cfg.split
    layers = f"{m.num_layers} layer{'s' if m.num_layers > 1 else ''} of {m.hidden_size} units"
    baselines = ", ".join(x for x in view.models if x not in NEURAL)
    lines = ["## Method", ""]
    lines += [
        f"- **Model.** The LSTM ({layers}, dropout {m.dropout}) reads the last {m.context} months of a "
        f"series' scaled revenue with calendar features and store ({m.store_embedding}-d) and category "
        f"({m.category_embedding}-d) embeddings, and forecasts the next {m.horizon} months at once as the "
        f"quantiles {_plain(m.quantiles)} ({t.loss} loss). Windows are cut per series, never across series.",
        f"- **Training.** AdamW, peak learning rate {t.learning_rate:g} (warm-up {t.warmup_steps} steps, "
        f"then cosine decay), weight decay {t.weight_decay:g}, batch {t.batch_size}, gradient norm clipped "
        f"at {t.clip_norm:g}, at most {t.max_epochs} epochs.",
        f"- **Validation.** The last {t.validation_months} training months are held out; the epoch with the "
        f"lowest hold-out loss is chosen (early stopping, patience {t.patience}), then the model is refit "
        f"on all training months {s.train_start}..{s.train_end} for that many epochs. Test months are never "
        f"used to fit, scale or choose anything.",
        f"- **Seed ensemble.** `lstm_ensemble` has {t.ensemble_size} members (seeds {t.seed}.."
        f"{t.seed + t.ensemble_size - 1}) trained as one vmapped program; its quantiles are the members' "
        f"mean. `lstm` is the single model (K=1, seed {t.seed}).",
        f"- **Baselines.** {baselines}: fitted per series on exactly the training months "
        f"(statsforecast; season length {view.cfg.evaluate.season_length}).",
        f"- **Metrics.** In AZN per store x category month; MASE divides each series' MAE by its "
        f"in-sample seasonal-naive (season {view.cfg.evaluate.season_length}; naive where a series is too "
        f"short) MAE on the training months, then averages over series. Upper levels sum the series' "
        f"forecasts and actuals.",
        "",
    ]
    return lines + _thesis_method(view)


def _thesis_method(view: View) -> list[str]:
    """The thesis replication: its settings and how it differs from the thesis."""
    lines = ["### The thesis replication", ""]
    if "thesis" not in view.models:
        return lines + ["The thesis replication was not trained (no `thesis` forecasts).", ""]
    rows = _thesis_overrides(view.cfg)
    if rows:
        lines += ["`thesis` is the model above with the settings of `experiments/thesis.yaml`:", ""]
        lines += table(["setting", "params.yaml", "thesis"], rows, "lll") + [""]
    lines += [
        "It follows the thesis's architecture and optimiser as closely as honesty allows, and differs from "
        "the thesis in four ways: the number of epochs is chosen on a hold-out inside the training years "
        "(never on the test year); windows are cut per series (never across series); each series is scaled "
        "with statistics of its training months only; and forecasts are not clipped to the actuals. Its "
        "figures here come from its real forecasts, not from placeholder numbers.",
        "",
    ]
    return lines


def _metric_rows(table_: dict, models: list[str]) -> tuple[list[str], list[tuple[str, str, list[float]]]]:
    """Models present and the headline metric columns of one world's metrics.json entry."""
    names = [m for m in models if m in table_] + [m for m in table_ if m not in models]
    columns = [
        (title, key, [table_[n].get(key, np.nan) for n in names]) for key, (title, _, _) in METRICS.items()
    ]
    return names, columns


def section_comparison(inputs: Inputs, view: View) -> list[str]:
    """The store x category comparison table and the MASE sentence for each target world."""
    period = period_label(view.cfg)
    lines = ["## Comparison with the baselines (store x category)", ""]
    lines += [
        "MAE, RMSE, bias and pinball in AZN per store x category month; MASE, WAPE and coverage are ratios; "
        "sMAPE in percent (0..200). Best value per column in bold (bias: closest to 0; coverage 80%: closest "
        "to 0.800). A model with a single quantile has no pinball or coverage.",
        "",
    ]
    for world in view.worlds:
        table_ = inputs.metrics.get(world, {})
        names, columns = _metric_rows(table_, view.models)
        lines += [f"### Against the {world} actuals", ""]
        lines += _marked_table("model", names, columns) + [""]
        lines += [mase_sentence(world, period, table_, view.headline), ""]
    return lines


def section_levels(inputs: Inputs, view: View) -> list[str]:
    """Total, store and category metrics in one compact table per world."""
    lines = ["## Other levels (total, store, category)", ""]
    lines += [
        "Forecasts and actuals summed to each level; MASE uses that level's own summed training history. "
        "Total MAE in AZN per month.",
        "",
    ]
    for world in view.worlds:
        rows = inputs.levels[inputs.levels["target"] == world].set_index(["level", "model"])
        names = [m for m in view.models if ("total", m) in rows.index]
        columns = [
            (
                f"{level} {METRICS[k][0]}",
                k,
                [rows.loc[(level, m), k] if (level, m) in rows.index else np.nan for m in names],
            )
            for level, k in LEVEL_COLUMNS
        ]
        lines += [f"### Against the {world} actuals", ""] + _marked_table("model", names, columns) + [""]
    return lines


def _gap_table(gap: pd.DataFrame, level: str, models: list[str]) -> list[str]:
    """The largest groups of one level by gap, with each model's share of the gap predicted."""
    rows = gap[gap["level"] == level]
    groups = rows.drop_duplicates("name").sort_values("gap", ascending=False, kind="stable").head(TOP_GAP)
    share = rows.pivot(index="name", columns="model", values="share_predicted")
    body = [
        [
            str(g.name),
            fmt(g.observed, "mazn"),
            fmt(g.counterfactual, "mazn"),
            fmt(g.gap, "mazn"),
            fmt(g.gap / g.counterfactual if g.counterfactual else np.nan, "share"),
        ]
        + [fmt(share.loc[g.name, m], "ratio") if m in share.columns else "–" for m in models]
        for g in groups.itertuples(index=False)
    ]
    return table([level, "observed M AZN", "counterfactual M AZN", "gap M AZN", "gap %"] + models, body)


def section_gap(inputs: Inputs, view: View) -> list[str]:
    """The disruption gap: company total, the largest stores and categories, and each model's share."""
    lines = ["## The disruption gap", ""]
    gap = inputs.gap
    if gap.empty:
        return lines + ["The input has no counterfactual world, so there is no disruption gap to report.", ""]
    company = gap[gap["level"] == "total"]
    first = company.iloc[0]
    lines += [
        f"Over the test period the company's observed revenue was {fmt(first['observed'], 'mazn')} "
        f"million AZN against {fmt(first['counterfactual'], 'mazn')} million AZN in the counterfactual "
        f"world: a gap of {fmt(first['gap'], 'mazn')} million AZN "
        f"({fmt(first['gap'] / first['counterfactual'], 'share')} of the counterfactual). A forecast made "
        "at the end of training cannot know about the disruption; its "
        f"predicted gap (forecast - observed) shows how far it stayed on the undisrupted path: a share of "
        f"1.000 means its total matched the counterfactual, 0 the observed.",
        "",
    ]
    body = [
        [m, fmt(r["forecast"], "mazn"), fmt(r["predicted_gap"], "mazn"), fmt(r["share_predicted"], "ratio")]
        for m in view.models
        for _, r in company[company["model"] == m].iterrows()
    ]
    header = ["model", "forecast total M AZN", "predicted gap M AZN", "share predicted"]
    lines += table(header, body) + [""]
    for level in ("store", "category"):
        lines += [f"The {TOP_GAP} {level} groups with the largest gap (share predicted per model):", ""]
        lines += _gap_table(gap, level, view.models) + [""]
    return lines


def section_figures(names: list[str], view: View) -> list[str]:
    """Every figure with its caption (and a note for one that could not be drawn)."""
    lines = ["## Figures", ""]
    for i, name in enumerate(names, start=1):
        lines += [
            f"**Figure {i}.** {_caption(name, view)}",
            "",
            f"![Figure {i}: {name}](figures/{name}.png)",
            "",
        ]
    if "disruption" not in names:
        lines += ["No counterfactual world in the input: the disruption figure is skipped.", ""]
    return lines


def _group_mase(series: pd.DataFrame, model: str, key: str) -> pd.Series:
    """Mean MASE per store or category over its series with a finite MASE."""
    rows = series[(series["model"] == model) & np.isfinite(series["mase"])]
    return rows.groupby(key)["mase"].mean()


def _findings_table(series: pd.DataFrame, view: View, key: str) -> list[str]:
    """The groups where the headline model errs least and most, beside the best baseline."""
    own = _group_mase(series, view.headline, key).sort_values(kind="stable")
    base = _group_mase(series, view.best_baseline, key)
    pick = list(own.index[:TOP_FINDINGS]) + [
        g for g in own.index[-TOP_FINDINGS:] if g not in own.index[:TOP_FINDINGS]
    ]
    rows = [
        ["lowest" if i < TOP_FINDINGS else "highest", str(g), fmt(own[g]), fmt(base.get(g, np.nan))]
        for i, g in enumerate(pick)
    ]
    return table(["", key, f"{view.headline} MASE", f"{view.best_baseline} MASE"], rows)


def section_findings(inputs: Inputs, view: View) -> list[str]:
    """Per store and per category: where the ensemble errs least and most, by MASE."""
    target = view.worlds[0]
    series = inputs.series[inputs.series["target"] == target]
    lines = ["## Findings per store and per category", ""]
    own = series[series["model"] == view.headline].set_index("series")["mase"]
    base = series[series["model"] == view.best_baseline].set_index("series")["mase"]
    both = own.notna() & base.reindex(own.index).notna()
    wins = int((own[both] < base.reindex(own.index)[both]).sum())
    lines += [
        f"Against the {target} actuals, {view.headline}'s MASE is below the best baseline's "
        f"({view.best_baseline}) on {wins:,} of {int(both.sum()):,} store x category series. A store's or "
        f"category's MASE below is the mean over its series.",
        "",
    ]
    for key in ("store", "category"):
        lines += _findings_table(series, view, key) + [""]
    return lines


def section_training(inputs: Inputs, view: View) -> list[str]:
    """Epochs chosen and final losses of each fit."""
    lines = ["## Training", ""]
    if not inputs.training:
        return lines + ["No training reports were found.", ""]
    rows = []
    for name, fit in inputs.training.items():
        rows.append(
            [
                name,
                str(len(fit.get("epochs", []))),
                ", ".join(str(e) for e in fit.get("epochs", [])),
                fmt(fit.get("train_loss"), "ratio"),
                fmt(fit.get("val_loss"), "ratio"),
            ]
        )
    lines += table(["fit", "members K", "epochs chosen", "final train loss", "hold-out loss"], rows)
    lines += [
        "",
        "Losses are on the scaled series, each in its fit's own loss (not comparable across losses).",
        "",
    ]
    lines += [
        "Wall times are in artifacts/timing/train.json, the one non-deterministic output of the pipeline; "
        "they are kept out of this report and out of DVC's metrics so that both are the same bytes for "
        "the same inputs.",
        "",
    ]
    return lines


def build_markdown(inputs: Inputs, view: View, figures: list[str]) -> str:
    """The whole report as markdown."""
    sections = (
        section_overview,
        section_data,
        section_method,
        section_comparison,
        section_levels,
        section_gap,
    )
    lines = [line for section in sections for line in section(inputs, view)]
    lines += section_figures(figures, view) + section_findings(inputs, view) + section_training(inputs, view)
    return "\n".join(lines).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------- markdown -> HTML

CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; }
td.r, th.r { text-align: right; }
figure { margin: 1em 0; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""
IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


def inline(text: str) -> str:
    """Escape HTML, then render **bold** and `code`."""
    text = html.escape(text, quote=False).replace("\\|", "|")
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _cells(line: str) -> list[str]:
    """The cells of one pipe-table row."""
    return [c.strip() for c in CELL_SPLIT.split(line.strip())[1:-1]]


def _html_row(line: str, tag: str, right: list[bool]) -> str:
    """One table row; right-aligned cells get class "r"."""
    attrs = [' class="r"' if r else "" for r in right]
    cells = [f"<{tag}{a}>{inline(c)}</{tag}>" for c, a in zip(_cells(line), attrs, strict=True)]
    return "<tr>" + "".join(cells) + "</tr>"


def html_table(lines: list[str]) -> str:
    """A pipe table (header, alignment row, body) as an HTML table."""
    right = [c.endswith(":") and not c.startswith(":") for c in _cells(lines[1])]
    body = "\n".join(_html_row(line, "td", right) for line in lines[2:])
    return f"<table>\n<thead>{_html_row(lines[0], 'th', right)}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def html_image(alt: str, src: str, base: Path) -> str:
    """An image embedded as a base64 PNG data URI."""
    data = base64.b64encode((base / src).read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def html_block(lines: list[str], base: Path) -> str:
    """One markdown block (lines without a blank line) as HTML."""
    first = lines[0]
    if first.startswith("#"):
        level = len(first) - len(first.lstrip("#"))
        return f"<h{level}>{inline(first[level:].strip())}</h{level}>"
    if all(line.startswith("|") for line in lines):
        return html_table(lines)
    if all(line.startswith("- ") for line in lines):
        return "<ul>\n" + "\n".join(f"<li>{inline(line[2:])}</li>" for line in lines) + "\n</ul>"
    if len(lines) == 1 and (match := IMAGE.match(first)):
        return html_image(match["alt"], match["src"], base)
    return f"<p>{inline(' '.join(lines))}</p>"


def blocks(markdown: str) -> list[list[str]]:
    """Markdown split into blocks at blank lines."""
    out, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.strip():
            current.append(line)
        elif current:
            out.append(current)
            current = []
    return out


def to_html(markdown: str, base: Path) -> str:
    """A self-contained HTML page of the markdown subset; images are read relative to `base`."""
    parts = blocks(markdown)
    title = inline(parts[0][0].lstrip("#").strip()) if parts else "report"
    body = "\n".join(html_block(b, base) for b in parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------- the stage


def run_report(cfg: Config) -> None:
    """Draw the figures, write the DVC plot files, then report.md and the self-contained report.html."""
    inputs = load_inputs()
    view = make_view(cfg, inputs)
    company = company_forecast(inputs, view)
    plots.write_csv(company, PLOTS / "company_forecast.csv")
    plots.write_csv(horizon_table(inputs, view), PLOTS / "error_by_horizon.csv")
    figures = draw_figures(inputs, view, company)
    markdown = build_markdown(inputs, view, figures)
    (REPORTS / "report.md").write_text(markdown)
    (REPORTS / "report.html").write_text(to_html(markdown, REPORTS))
    logger.info(f"report: {len(figures)} figures, {REPORTS / 'report.md'}, {REPORTS / 'report.html'}")
