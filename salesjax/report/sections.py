"""The report as Markdown: the opening sections, then the results, fixed templates filled with numbers."""

import numpy as np
import pandas as pd

from salesjax.report.figures import caption
from salesjax.report.inputs import Inputs
from salesjax.report.opening import mase_sentence, section_data, section_method, section_overview
from salesjax.report.tables import METRICS, fmt, marked_table, table
from salesjax.report.view import View, period_label

LEVEL_COLUMNS = [("total", "mae"), ("total", "mase"), ("total", "wape")] + [
    (level, m) for level in ("store", "category") for m in ("mase", "wape")
]
TOP_GAP, TOP_FINDINGS = 5, 5


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
        lines += marked_table("model", names, columns) + [""]
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
        lines += [f"### Against the {world} actuals", ""] + marked_table("model", names, columns) + [""]
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
        section_gap,
    )
    lines = [line for section in sections for line in section(inputs, view)]
    lines += section_figures(figures, view) + section_findings(inputs, view) + section_training(inputs, view)
    return "\n".join(lines).rstrip("\n") + "\n"
