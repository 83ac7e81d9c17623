"""The report as Markdown: the opening sections, then the results, fixed templates filled with numbers."""

import numpy as np
import pandas as pd

from salesjax.report.figures import caption
from salesjax.report.frames import GRID_STORES
from salesjax.report.inputs import Inputs
from salesjax.report.opening import mase_sentence, section_data, section_method, section_overview
from salesjax.report.tables import METRICS, fmt, marked_table, table
from salesjax.report.view import View, period_label

LEVELS = ("store_category", "store", "category", "total")
BOTTOM_COLUMNS = ("mae", "rmse", "mase", "wape", "relative_bias", "crps_scaled", "coverage_80")
TOP_GAP, TOP_FINDINGS = 5, 5
AGGREGATION = (
    "Every model's store, category and company forecasts are sums of its store x category median "
    "forecasts, so the levels add up exactly. {baselines} The LSTMs' intervals at those levels are "
    "calibrated on their hold-out errors (split conformal, `salesjax/calibration.py`); the baselines' are "
    "the sums of their series' quantiles, which is too wide unless the series' errors move together."
)
RECONCILED = {
    "wls": "The LSTMs forecast the store x category series (bottom-up). Each baseline is fitted at every "
    "level (each store's, each category's and the company's summed revenue too) and its forecasts of all "
    "levels are reconciled by weighted least squares, each weighed by its own forecast variance "
    "(`baselines.reconcile: wls`, `salesjax/reconcile.py`), so its upper levels use their own fits.",
    "bottom_up": "Every model, the baselines too, is fitted on the store x category series only "
    "(bottom-up; `baselines.reconcile: bottom_up`).",
}


def level_table(levels: pd.DataFrame, world: str, level: str) -> dict[str, dict[str, float]]:
    """{model: {metric: value}} of one level and world from levels.csv rows."""
    rows = levels[(levels["target"] == world) & (levels["level"] == level)]
    return {str(r.pop("model")): r for r in rows.drop(columns=["level", "target"]).to_dict("records")}


def _columns(tables: dict, names: list[str], keys) -> list[tuple[str, str, list[float]]]:
    """(title, metric, values) per (level, metric) of `keys`, for the models `names`."""
    return [
        (f"{level} {METRICS[k][0]}" if level != "store_category" else METRICS[k][0], k, values)
        for level, k in keys
        if np.isfinite(values := [tables[level].get(n, {}).get(k, np.nan) for n in names]).any()
    ]


def section_comparison(inputs: Inputs, view: View) -> list[str]:
    """The store x category comparison table and the MASE sentence for each target world."""
    period = period_label(view.cfg)
    lines = ["## Comparison with the baselines (store x category)", ""]
    lines += [
        "MAE and RMSE in AZN per store x category month; MASE, WAPE, scaled CRPS and coverage are ratios, "
        "relative bias a share of the actual revenue. Best value per column in bold (bias: closest to 0; "
        "coverage: closest to nominal). A model with a single quantile has no CRPS or coverage.",
        "",
    ]
    for world in view.worlds:
        bottom = level_table(inputs.levels, world, "store_category")
        names = [m for m in view.models if m in bottom]
        columns = _columns({"store_category": bottom}, names, [("store_category", k) for k in BOTTOM_COLUMNS])
        lines += [f"### Against the {world} actuals", ""]
        lines += marked_table("model", names, columns) + [""]
        lines += [mase_sentence(world, period, bottom, view.headline), ""]
    return lines


def level_lines(tables: dict, names: list[str], world: str, period: str, headline: str) -> list[str]:
    """The MASE-at-every-level table of one world and a sentence per level saying who wins."""
    keys = [(level, "mase") for level in LEVELS] + [("total", "relative_bias")]
    keys += [(level, "coverage_80") for level in LEVELS] + [("total", "crps_scaled")]
    lines = marked_table("model", names, _columns(tables, names, keys)) + [""]
    for level in LEVELS:
        sentence = mase_sentence(world, period, tables[level], headline)
        lines.append(f"- {level.replace('_', ' x ')}: {sentence}")
    return lines + [""]


def section_levels(inputs: Inputs, view: View) -> list[str]:
    """MASE at every level, the total's bias and every level's coverage, one table per world."""
    aggregation = AGGREGATION.format(baselines=RECONCILED[view.cfg.baselines.reconcile])
    lines = ["## Every level of the hierarchy", "", aggregation, ""]
    lines += ["MASE uses each level's own summed training history.", ""]
    period = period_label(view.cfg)
    for world in view.worlds:
        tables = {level: level_table(inputs.levels, world, level) for level in LEVELS}
        names = [m for m in view.models if m in tables["total"]]
        lines += [f"### Against the {world} actuals", ""]
        lines += level_lines(tables, names, world, period, view.headline)
    return lines


def section_calibration(inputs: Inputs, view: View) -> list[str]:
    """Empirical against nominal coverage of the headline model's intervals, per level and world."""
    lines = ["## Calibration of the intervals", ""]
    lines += [
        f"The share of months inside {view.headline}'s central 50%, 80% and 90% intervals, per level. "
        "The store x category intervals are the model's own quantiles; the upper levels' are calibrated "
        "on the hold-out (see above).",
        "",
    ]
    for world in view.worlds:
        tables = {level: level_table(inputs.levels, world, level) for level in LEVELS}
        keys = [(level, k) for level in LEVELS for k in ("coverage_50", "coverage_80", "coverage_90")]
        lines += [f"### Against the {world} actuals", ""]
        lines += marked_table("model", [view.headline], _columns(tables, [view.headline], keys)) + [""]
        lines += [f"![Calibration against the {world} actuals](evaluate/calibration_{world}.png)", ""]
    return lines


def headline_tables(headline: dict) -> dict[str, dict[str, dict[str, float]]]:
    """Per level, {model: {metric: value}} from headline metrics named `metric` or `metric_<level>`."""
    out: dict[str, dict[str, dict[str, float]]] = {level: {} for level in LEVELS}
    for model, values in headline.items():
        for key, value in values.items():
            level = next((lv for lv in LEVELS[1:] if key.endswith(f"_{lv}")), "store_category")
            metric = key.removesuffix(f"_{level}")
            out[level].setdefault(model, {})[metric] = value
    return out


def section_backtest(inputs: Inputs, view: View) -> list[str]:
    """The rolling-origin backtest: every model's mean over the origins at every level."""
    origins = ", ".join(view.cfg.backtest.origins)
    lines = ["## Rolling-origin backtest", ""]
    lines += [
        f"Every forecaster refitted on the months before each origin ({origins}) and scored on the "
        f"{view.cfg.model.horizon} months after it (cut at the end of the test period); the means over "
        "the origins. The counterfactual world is scored where it differs from the observed one, and "
        "takes the observed scores at the origins where the two are the same world.",
        "",
    ]
    for world, result in inputs.backtest.items():
        tables = headline_tables(result["mean"])
        names = [m for m in view.models if m in result["mean"]]
        lines += [f"### Against the {world} actuals", ""]
        lines += level_lines(tables, names, world, "the backtest (mean over origins)", view.headline)
    lines += ["![MASE per origin](backtest/error_by_origin.png)", ""]
    return lines


def section_forecast(inputs: Inputs, view: View) -> list[str]:
    """The forecast beyond the data: every model's company total per month and the fan charts."""
    total = inputs.forecast[inputs.forecast["level"] == "total"]
    if total.empty:
        return []
    months = sorted(total["month"].unique())
    lines = ["## Forecast beyond the data", ""]
    lines += [
        f"Every forecaster refitted on all observed months of the {view.cfg.data.target} world (the "
        "evaluation's hyperparameters and epoch rule) and forecast "
        f"{_span(months)}. Company total per month, the mean in million AZN (for the LSTMs the mean of "
        "their quantile grid; upper levels are sums of the series' means, so they add up).",
        "",
    ]
    wide = total.pivot(index="month", columns="model", values="mean")
    names = [m for m in view.models if m in wide.columns] + [m for m in wide.columns if m not in view.models]
    rows = [[month] + [fmt(wide.loc[month, m], "mazn") for m in names] for month in months]
    rows.append(["year"] + [fmt(wide[m].sum(), "mazn") for m in names])
    lines += table(["month"] + names, rows) + [""]
    lines += ["![Company total: forecast](forecast/fan_total.png)", ""]
    n = inputs.forecast.loc[inputs.forecast["level"] == "store", "store"].nunique()
    drawn = "Every store" if n <= GRID_STORES else f"The {GRID_STORES:,} largest of the {n:,} stores"
    lines += [f"![{drawn}: forecast](forecast/fan_stores.png)", ""]
    return lines


def _span(months: list[str]) -> str:
    """'2021-01..2021-12' for a list of YYYY-MM months."""
    return f"{months[0]}..{months[-1]}"


def section_sweep(inputs: Inputs, view: View) -> list[str]:
    """The learning-rate x weight-decay x seed grid, scored on the validation hold-out."""
    members = inputs.sweep.get("members", {})
    if not members:
        return []
    lines = ["## Hyperparameter sweep", ""]
    lines += [
        "One vmapped program trains the grid on the months before the validation hold-out; each member "
        "keeps its best hold-out epoch. Chosen on the hold-out only, never on the test months.",
        "",
    ]
    header = ["member", "learning rate", "weight decay", "seed", "hold-out loss", "epoch"]
    rows = [
        [name, f"{m['learning_rate']:g}", f"{m['weight_decay']:g}", str(m["seed"]), f"{m['val_loss']:.4f}"]
        + [str(m["epoch"])]
        for name, m in members.items()
    ]
    chosen = inputs.sweep["chosen"]
    lines += table(header, rows) + [""]
    lines += [
        f"Lowest hold-out loss: member {chosen['member']} (learning rate {chosen['learning_rate']:g}, "
        f"weight decay {chosen['weight_decay']:g}); the defaults are learning rate "
        f"{view.cfg.train.learning_rate:g}, weight decay {view.cfg.train.weight_decay:g}.",
        "",
    ]
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
            f"**Figure {i}.** {caption(name, view)}",
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
        section_calibration,
        section_backtest,
        section_sweep,
        section_forecast,
        section_gap,
    )
    lines = [line for section in sections for line in section(inputs, view)]
    lines += section_figures(figures, view) + section_findings(inputs, view) + section_training(inputs, view)
    return "\n".join(lines).rstrip("\n") + "\n"
