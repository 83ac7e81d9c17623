"""Matplotlib figures and DVC plot files of the report stage; computes nothing new.

Every function takes tidy frames already prepared by `salesjax.report` (sums for display at most),
draws one figure, saves it byte-stable (Agg backend, fixed size and dpi, no Software/time metadata)
and returns the closed Figure so tests can inspect what was drawn. Months are 'YYYY-MM' strings,
plotted at integer positions so no date converter is involved.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import EngFormatter, PercentFormatter  # noqa: E402

DPI = 80
MODEL_COLOURS = {
    "lstm_ensemble": "tab:red",
    "lstm": "tab:orange",
    "thesis": "tab:purple",
    "naive": "tab:gray",
    "seasonal_naive": "tab:blue",
    "ets": "tab:green",
    "arima": "tab:brown",
    "theta": "tab:olive",
}
TARGET_STYLE = {"color": "black", "linewidth": 1.4}
OTHER_STYLE = {"color": "dimgray", "linewidth": 1.2, "linestyle": "--"}


def colour(model: str) -> str:
    """The fixed colour of a model (cyan for one this module does not know)."""
    return MODEL_COLOURS.get(model, "tab:cyan")


def save(fig: Figure, path: Path) -> Figure:
    """Write `fig` as a byte-stable PNG, close it, and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return fig


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a DVC plot file: a wide CSV with 6 significant digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g")


def growth(totals: np.ndarray, previous: float) -> np.ndarray:
    """f64[H] month-to-month growth x_t / x_{t-1} - 1 of revenue totals f[H], with x_{-1} = `previous`."""
    totals = np.asarray(totals, dtype=np.float64)
    before = np.concatenate([[previous], totals[:-1]])
    return totals / before - 1.0


def _month_axis(ax, months: list[str]) -> None:
    """Label integer month positions with the year at every January (or the first month)."""
    ticks = [i for i, m in enumerate(months) if m.endswith("-01") or i == 0]
    ax.set_xticks(ticks, [months[i][:4] if months[i].endswith("-01") else months[i] for i in ticks])
    ax.set_xlim(-0.5, len(months) - 0.5)


def _grid(n: int, ncols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    """A figure with n panels on a grid of `ncols` columns; unused panels are hidden."""
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def _forecast_panel(ax, actual: pd.DataFrame, forecast: pd.DataFrame, worlds: list[str], months: list[str]):
    """One panel: the actuals of each world over all months and the forecast median and 80% band."""
    pos = {m: i for i, m in enumerate(months)}
    for world, style in zip(worlds, (TARGET_STYLE, OTHER_STYLE), strict=False):
        ax.plot(actual["month"].map(pos), actual[world], label=f"actual ({world})", **style)
    x = forecast["month"].map(pos)
    if forecast["q0.1"].notna().any():
        ax.fill_between(
            x, forecast["q0.1"], forecast["q0.9"], color="tab:red", alpha=0.2, label="80% interval"
        )
    ax.plot(x, forecast["q0.5"], color="tab:red", linewidth=1.4, label="forecast (median)")
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    _month_axis(ax, months)


def forecast_grid(
    actual: pd.DataFrame, forecast: pd.DataFrame, worlds: list[str], path: Path, title: str, ncols: int = 4
) -> Figure:
    """Monthly forecast vs actual, one panel per `panel` label (in order of first appearance).

    actual: panel, month, one revenue column per world (target first; the second is drawn dashed);
    forecast: panel, month, q0.1, q0.5, q0.9 over the test months (q0.1/q0.9 NaN: no band).
    """
    months = sorted(actual["month"].unique())
    panels = list(pd.unique(actual["panel"]))
    fig, axes = _grid(len(panels), ncols, 16.0, 2.8)
    for ax, name in zip(axes, panels, strict=True):
        _forecast_panel(
            ax, actual[actual["panel"] == name], forecast[forecast["panel"] == name], worlds, months
        )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def growth_rates(
    company: pd.DataFrame, previous: dict[str, float], worlds: list[str], models: list[str], path: Path
) -> Figure:
    """Month-to-month growth of company revenue: actual per world vs each model's forecast.

    company: month, actual_<world> and one median-total column per model over the test months;
    previous: the last training month's company revenue per world (the forecast starts from the target's).
    """
    x = np.arange(len(company))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for world, style in zip(worlds, (TARGET_STYLE, OTHER_STYLE), strict=False):
        rate = growth(company[f"actual_{world}"], previous[world])
        ax.plot(x, rate, marker="o", label=f"actual ({world})", **style)
    for model in models:
        rate = growth(company[model], previous[worlds[0]])
        ax.plot(x, rate, marker="s", color=colour(model), linewidth=1.2, label=f"{model} forecast")
    ax.axhline(0.0, color="lightgray", linewidth=0.8)
    ax.set_xticks(x, list(company["month"]), rotation=45)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("growth over the previous month")
    ax.set_title("Company revenue: month-to-month growth, predicted vs actual")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def error_heatmap(
    series: pd.DataFrame, value: str, stores: list[str], categories: list[str], path: Path, title: str
) -> Figure:
    """Store x category heatmap of `value` on a log colour scale, rows `stores`, columns `categories`.

    series: store, category, `value` (one row per series); cells <= 0 or missing stay blank.
    """
    table = series.pivot(index="store", columns="category", values=value).reindex(
        index=stores, columns=categories
    )
    data = np.ma.masked_invalid(table.to_numpy(np.float64))
    data = np.ma.masked_less_equal(data, 0.0)
    fig, ax = plt.subplots(figsize=(16, 1.5 + 0.3 * len(table)))
    norm = LogNorm(vmin=data.min(), vmax=data.max()) if data.count() else None
    image = ax.imshow(data, aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
    ax.set_yticks(np.arange(len(table)), [str(s) for s in table.index], fontsize=7)
    ax.set_xticks(np.arange(table.shape[1]), [str(c) for c in table.columns], rotation=90, fontsize=7)
    ax.set_ylabel("store")
    fig.colorbar(image, ax=ax, label=f"{value.upper()} (AZN, log scale)", pad=0.01)
    ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def yearly_totals(bars: pd.DataFrame, worlds: list[str], path: Path) -> Figure:
    """Yearly company revenue: one bar per row of `bars` (label, value, kind), kind a world or a model.

    Actuals of worlds[0] (the target) are black, of the other world hatched grey; models have their colours.
    """
    fig, ax = plt.subplots(figsize=(12, 5))
    x = np.arange(len(bars))
    for i, row in enumerate(bars.itertuples(index=False)):
        is_world = row.kind in worlds
        first = is_world and row.kind == worlds[0]
        face = "black" if first else ("lightgray" if is_world else colour(row.kind))
        ax.bar(i, row.value, color=face, edgecolor="black", hatch="//" if is_world and not first else None)
        ax.annotate(f"{row.value / 1e6:,.1f}M", (i, row.value), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, list(bars["label"]), fontsize=7)
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("company revenue (AZN)")
    ax.set_title("Yearly company revenue: actual history and each model's forecast of the test period")
    fig.tight_layout()
    return save(fig, path)


def disruption(company: pd.DataFrame, models: list[str], path: Path) -> Figure:
    """Observed vs counterfactual company revenue per test month with the gap and each model's forecast.

    company: month, actual_observed, actual_counterfactual, one median-total column per model.
    """
    x = np.arange(len(company))
    observed, counterfactual = company["actual_observed"], company["actual_counterfactual"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    top.fill_between(x, observed, counterfactual, color="tab:red", alpha=0.12, label="gap")
    top.plot(x, observed, marker="o", label="actual (observed)", **TARGET_STYLE)
    top.plot(x, counterfactual, marker="o", label="actual (counterfactual)", **OTHER_STYLE)
    bottom.bar(x, counterfactual - observed, color="lightgray", edgecolor="black", label="gap")
    for model in models:
        top.plot(x, company[model], color=colour(model), linewidth=1.1, label=model)
        bottom.plot(x, company[model] - observed, color=colour(model), marker=".", label=model)
    top.yaxis.set_major_formatter(EngFormatter(sep=""))
    bottom.yaxis.set_major_formatter(EngFormatter(sep=""))
    top.set_title("Company revenue in the test period: observed vs counterfactual and the forecasts")
    bottom.set_title("Gap (counterfactual - observed) and each model's predicted gap (forecast - observed)")
    bottom.set_xticks(x, list(company["month"]), rotation=45)
    top.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save(fig, path)


def training_curves(curves: dict[str, pd.DataFrame], chosen: dict[str, list[int]], path: Path) -> Figure:
    """Train and validation loss per epoch, one panel per fit; dotted lines at the epochs chosen.

    curves: fit name -> frame of epoch, train, val (member means); chosen: fit name -> epochs per member.
    """
    fig, axes = _grid(len(curves), max(1, len(curves)), 5.0 * max(1, len(curves)), 3.8)
    for ax, (name, frame) in zip(axes, curves.items(), strict=True):
        ax.plot(frame["epoch"], frame["train"], color=colour(name), label="train")
        ax.plot(frame["epoch"], frame["val"], color=colour(name), linestyle="--", label="validation")
        for epoch in sorted(set(chosen.get(name, []))):
            ax.axvline(epoch, color="gray", linestyle=":", linewidth=0.8)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (scaled)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def error_by_horizon(table: pd.DataFrame, target: str, path: Path) -> Figure:
    """Each model's store x category MAE by horizon month; table: horizon, one MAE column per model."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for model in table.columns.drop("horizon"):
        ax.plot(table["horizon"], table[model], marker="o", color=colour(model), label=model)
    ax.set_xticks(table["horizon"])
    ax.set_xlabel("horizon (months after the end of training)")
    ax.set_ylabel(f"MAE vs {target} (AZN)")
    ax.set_title("Store x category MAE by horizon month")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return save(fig, path)


def calibration(levels: pd.DataFrame, model: str, world: str, path: Path) -> Figure:
    """Empirical against nominal coverage of `model`'s central intervals at each level (levels.csv rows)."""
    rows = levels[(levels["model"] == model) & (levels["target"] == world)].set_index("level")
    columns = sorted((c for c in rows.columns if c.startswith("coverage_")), key=lambda c: int(c[9:]))
    nominal = [int(c[9:]) / 100 for c in columns]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":", label="perfect calibration")
    for level, marker in zip(("store_category", "store", "category", "total"), "osD^", strict=True):
        if level in rows.index:
            ax.plot(nominal, rows.loc[level, columns].to_numpy(float), marker=marker, label=level)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0)), ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel(f"share of {world} months inside")
    ax.set_title(f"Interval calibration: {model}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return save(fig, path)
