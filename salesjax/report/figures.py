"""The report's figures, drawn by `salesjax.plots` from the display frames, and their captions."""

from pathlib import Path

import pandas as pd

from salesjax import plots
from salesjax.report.frames import (
    GRID_STORES,
    HEATMAP_STORES,
    TOP_CATEGORIES,
    TOP_STORES,
    heatmap_series,
    horizon_table,
    last_training_totals,
    store_frames,
    top_category_frames,
    yearly_bars,
)
from salesjax.report.inputs import Inputs
from salesjax.report.view import View

FORECAST_FIGURES = (  # drawn by _forecast_figures, in report order
    "store_forecasts",
    "top_categories",
    "growth_rates",
    "heatmap_rmse",
    "heatmap_mae",
    "yearly_totals",
)
FIGURE_CAPTIONS = {
    "store_forecasts": "Monthly revenue {grid_stores}: actual {target} (solid), {other}the "
    "{headline} forecast (median, red) and its 80% interval (band: the sum of the series' 10% and 90% "
    "quantiles, wider than the interval of the store total unless the series' errors move together).",
    "top_categories": "The {n_cat} largest categories (by training revenue) of the {n_store} largest stores: "
    "actual {target}, {other}the {headline} forecast and its 80% interval.",
    "growth_rates": "Month-to-month growth of company revenue in the test period: actual vs the forecasts of "
    "{headline} and the best baseline ({baseline}). The first month's growth is relative to the last "
    "training month.",
    "heatmap_rmse": "RMSE of {headline} per store x category against {target} (AZN, log colour scale; rows "
    "and columns by training revenue, largest first{heatmap_stores}).",
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


def draw_figures(inputs: Inputs, view: View, company: pd.DataFrame, folder: Path) -> list[str]:
    """Write every figure to `folder` as <name>.png and return the names drawn, in report order."""
    names = _forecast_figures(inputs, view, company, folder)
    names += _optional_figures(inputs, view, company, folder)
    plots.error_by_horizon(horizon_table(inputs, view), view.worlds[0], folder / "error_by_horizon.png")
    return [*names, "error_by_horizon"]


def _forecast_figures(inputs: Inputs, view: View, company: pd.DataFrame, folder: Path) -> list[str]:
    """The headline forecast against the actuals: grids, growth, error heatmaps and yearly totals."""
    target, worlds = view.worlds[0], view.worlds
    title = f"{view.headline} forecast vs actual ({target}) per store"
    plots.forecast_grid(*store_frames(inputs, view), worlds, folder / "store_forecasts.png", title)
    title = f"{view.headline} forecast vs actual ({target}): top categories of the largest stores"
    plots.forecast_grid(*top_category_frames(inputs, view), worlds, folder / "top_categories.png", title)
    growth_models = [m for m in (view.headline, view.best_baseline) if m]
    previous = last_training_totals(inputs, view)
    plots.growth_rates(company, previous, worlds, growth_models, folder / "growth_rates.png")
    series = heatmap_series(inputs, view)
    for value in ("rmse", "mae"):
        title = f"{value.upper()} of {view.headline} per store x category (vs {target})"
        plots.error_heatmap(
            series,
            value,
            view.stores[:HEATMAP_STORES],
            view.categories,
            folder / f"heatmap_{value}.png",
            title,
        )
    plots.yearly_totals(yearly_bars(inputs, view, company), worlds, folder / "yearly_totals.png")
    return list(FORECAST_FIGURES)


def _optional_figures(inputs: Inputs, view: View, company: pd.DataFrame, folder: Path) -> list[str]:
    """The disruption (with a counterfactual world) and the training curves (with a fit's curves)."""
    names = []
    if "counterfactual" in view.worlds:
        plots.disruption(company, view.models, folder / "disruption.png")
        names.append("disruption")
    if inputs.curves:
        plots.training_curves(inputs.curves, _chosen_epochs(inputs), folder / "training_curves.png")
        names.append("training_curves")
    return names


def _largest(limit: int, view: View) -> str:
    """'the <limit> largest of the <n> stores' when a figure draws only the largest; else ''."""
    return f"the {limit:,} largest of the {len(view.stores):,} stores" if len(view.stores) > limit else ""


def caption(name: str, view: View) -> str:
    """The caption of one figure (saying so where it draws only the largest stores)."""
    other = f"actual {view.worlds[1]} (dashed), " if len(view.worlds) > 1 else ""
    grid = _largest(GRID_STORES, view)
    heatmap = _largest(HEATMAP_STORES, view)
    return FIGURE_CAPTIONS[name].format(
        target=view.worlds[0],
        other=other,
        headline=view.headline,
        baseline=view.best_baseline,
        n_cat=TOP_CATEGORIES,
        n_store=TOP_STORES,
        grid_stores=f"of {grid} (largest first)" if grid else "per store (largest first)",
        heatmap_stores=f"; {heatmap}" if heatmap else "",
    )
