"""The inputs shaped for display: company totals, per-horizon errors, grids, bars (sums at most)."""

import numpy as np
import pandas as pd

from salesjax.report.inputs import Inputs
from salesjax.report.view import View, period_label

QUANTILE_COLUMNS = ["q0.1", "q0.5", "q0.9"]
TOP_STORES, TOP_CATEGORIES = 3, 4
# The most stores a figure draws, largest first (the default chain has 20, all drawn): a panel or a heatmap
# row per store grows the image with the chain (250 stores: a grid 14,112 pixels tall) and reads as nothing.
GRID_STORES, HEATMAP_STORES = 20, 100


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


def store_frames(inputs: Inputs, view: View, limit: int = GRID_STORES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Actuals and headline forecast of the `limit` largest stores (by training revenue), largest first."""
    actual, forecast = _grid_frames(inputs, view, ["store"], lambda f: "store " + f["store"])
    order = [f"store {s}" for s in view.stores[:limit]]
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
