"""The figure functions: each renders a byte-stable PNG from tiny frames and draws the numbers given."""

import numpy as np
import pandas as pd
import pytest

from salesjax import plots

MONTHS = ["2019-11", "2019-12", "2020-01", "2020-02", "2020-03"]
TEST_MONTHS = MONTHS[2:]
MODELS = ["lstm_ensemble", "seasonal_naive"]


def _actual() -> pd.DataFrame:
    """Two panels of actuals in both worlds over all months."""
    rows = [
        (p, m, 100.0 * (i + 1) + k, 110.0 * (i + 1) + k)
        for i, p in enumerate(["a", "b"])
        for k, m in enumerate(MONTHS)
    ]
    return pd.DataFrame(rows, columns=["panel", "month", "observed", "counterfactual"])


def _forecast(band: bool = True) -> pd.DataFrame:
    """Two panels of quantile forecasts over the test months (no band: q0.1 and q0.9 NaN)."""
    rows = [(p, m, 90.0 + k, 100.0 + k, 120.0 + k) for p in ["a", "b"] for k, m in enumerate(TEST_MONTHS)]
    frame = pd.DataFrame(rows, columns=["panel", "month", "q0.1", "q0.5", "q0.9"])
    return frame if band else frame.assign(**{"q0.1": np.nan, "q0.9": np.nan})


def _company() -> pd.DataFrame:
    """Company totals per test month: both worlds' actuals and two models' medians."""
    return pd.DataFrame(
        {
            "month": TEST_MONTHS,
            "horizon": [1, 2, 3],
            "actual_observed": [110.0, 99.0, 99.0],
            "actual_counterfactual": [120.0, 132.0, 66.0],
            "lstm_ensemble": [105.0, 105.0, 84.0],
            "seasonal_naive": [100.0, 125.0, 100.0],
        }
    )


def _series() -> pd.DataFrame:
    """Per-series errors of a 2 x 3 store x category grid with one missing and one zero cell."""
    rows = [("36", "TVs", 10.0), ("36", "Irons", 1000.0), ("36", "Pans", 0.0), ("108", "TVs", 100.0)]
    rows += [("108", "Irons", 5.0)]
    frame = pd.DataFrame(rows, columns=["store", "category", "mae"])
    return frame.assign(rmse=frame["mae"] * 2)


FIGURES = {
    "forecast_grid": lambda p: plots.forecast_grid(
        _actual(), _forecast(), ["observed", "counterfactual"], p, "t"
    ),
    "forecast_grid_no_band": lambda p: plots.forecast_grid(
        _actual(), _forecast(band=False), ["observed"], p, "t", ncols=3
    ),
    "growth_rates": lambda p: plots.growth_rates(
        _company(), {"observed": 100.0, "counterfactual": 100.0}, ["observed", "counterfactual"], MODELS, p
    ),
    "error_heatmap": lambda p: plots.error_heatmap(
        _series(), "rmse", ["36", "108"], ["TVs", "Irons", "Pans"], p, "t"
    ),
    "yearly_totals": lambda p: plots.yearly_totals(
        pd.DataFrame(
            {
                "label": ["2019\nactual", "2020\nactual", "2020\ncf", "2020\nlstm_ensemble"],
                "value": [1.2e6, 1.0e6, 1.5e6, 1.4e6],
                "kind": ["observed", "observed", "counterfactual", "lstm_ensemble"],
            }
        ),
        ["observed", "counterfactual"],
        p,
    ),
    "disruption": lambda p: plots.disruption(_company(), MODELS, p),
    "training_curves": lambda p: plots.training_curves(
        {
            "lstm": pd.DataFrame({"epoch": [1, 2, 3], "train": [0.3, 0.2, 0.1], "val": [0.4, 0.3, 0.35]}),
            "thesis": pd.DataFrame({"epoch": [1, 2], "train": [1.0, 0.5], "val": [1.2, 1.1]}),
        },
        {"lstm": [2], "thesis": [2]},
        p,
    ),
    "error_by_horizon": lambda p: plots.error_by_horizon(
        pd.DataFrame({"horizon": [1, 2, 3], "lstm_ensemble": [1.0, 2.0, 3.0], "naive": [2.0, 2.5, 4.0]}),
        "observed",
        p,
    ),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_renders_byte_stable_png(tmp_path, name):
    """Every figure function writes a non-empty PNG, and drawing it again gives the same bytes."""
    first, second = tmp_path / "a" / f"{name}.png", tmp_path / "b" / f"{name}.png"
    FIGURES[name](first)
    FIGURES[name](second)
    data = first.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert data == second.read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data


def test_heatmap_draws_the_pivot_of_its_input(tmp_path):
    """The image holds exactly the input values in the given order; missing and zero cells are masked."""
    fig = plots.error_heatmap(
        _series(), "mae", ["36", "108"], ["TVs", "Irons", "Pans"], tmp_path / "h.png", "t"
    )
    image = fig.axes[0].images[0]
    expected = np.array([[10.0, 1000.0, np.nan], [100.0, 5.0, np.nan]])
    np.testing.assert_array_equal(np.ma.filled(image.get_array().astype(float), np.nan), expected)
    assert image.norm.vmin == 5.0 and image.norm.vmax == 1000.0
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["36", "108"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["TVs", "Irons", "Pans"]


def test_growth_against_hand_numbers():
    """Growth is x_t / x_{t-1} - 1 with the previous total before the first month."""
    np.testing.assert_allclose(plots.growth(np.array([110.0, 99.0, 99.0]), 100.0), [0.1, -0.1, 0.0])
    np.testing.assert_allclose(plots.growth(np.array([50.0]), 200.0), [-0.75])


def test_growth_figure_plots_those_rates(tmp_path):
    """The growth figure's lines are the actual and predicted rates, forecasts starting from the target."""
    fig = plots.growth_rates(
        _company(), {"observed": 100.0, "counterfactual": 80.0}, ["observed"], MODELS, tmp_path / "g.png"
    )
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [0.1, -0.1, 0.0])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.05, 0.0, -0.2])  # lstm_ensemble from observed 100
    np.testing.assert_allclose(lines[2].get_ydata(), [0.0, 0.25, -0.2])


def test_forecast_grid_one_panel_per_label_in_order(tmp_path):
    """Panels follow the order of the labels in the actuals, each titled by its label."""
    actual = _actual().sort_values("panel", ascending=False, kind="stable")
    fig = plots.forecast_grid(actual, _forecast(), ["observed"], tmp_path / "f.png", "t", ncols=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["b", "a"]


def test_write_csv_six_significant_digits(tmp_path):
    """Plot files are wide CSVs without an index, floats to 6 significant digits."""
    plots.write_csv(pd.DataFrame({"horizon": [1], "lstm": [1234567.891]}), tmp_path / "p" / "x.csv")
    assert (tmp_path / "p" / "x.csv").read_text() == "horizon,lstm\n1,1.23457e+06\n"
