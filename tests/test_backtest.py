"""Rolling-origin backtest on the tiny panel: outputs, the per-origin months, and no look-ahead."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_panel, tiny_params
from flax import serialization

from salesjax import backtest, stages
from salesjax.config import SplitConfig, parse_config
from salesjax.data.panel import Panel
from salesjax.errors import SalesjaxError

MODELS = ["lstm", "lstm_ensemble", "naive", "seasonal_naive", "ets", "arima", "theta"]
ORIGINS = ["2019-07", "2020-02"]


def backtest_params() -> dict:
    """Tiny params with two origins, the last cut short by split.test_end (2020-03)."""
    params = tiny_params()
    params["backtest"].update(origins=ORIGINS, ensemble_size=1)
    return params


def prepared_root(root, params: dict):
    """The tiny panel and `params` in `root`, prepared; the config."""
    make_panel().to_csv(root / "panel.csv", index=False)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cfg = parse_config(params)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        stages.prepare(cfg)
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """prepare + backtest-baselines + backtest on the tiny panel; (root, config)."""
    root = tmp_path_factory.mktemp("backtest")
    cfg = prepared_root(root, backtest_params())
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        backtest.run_backtest_baselines(cfg)
        backtest.run_backtest(cfg)
    return root, cfg


def saved(root) -> dict:
    """The backtest-baselines artifact of a run."""
    return serialization.msgpack_restore((root / backtest.BASELINE_FORECASTS).read_bytes())


@pytest.fixture(scope="module")
def prepared(run):
    """The prepared panel and calendar of the run."""
    root, cfg = run
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return stages.load_prepared(cfg)


def test_backtest_json_has_the_mean_over_origins_of_every_model_at_every_level(run):
    root, _ = run
    results = json.loads((root / "reports/backtest.json").read_text())
    table = pd.read_csv(root / "reports/backtest/metrics.csv")
    assert list(results) == ["observed"] and list(results["observed"]["mean"]) == MODELS
    for values in results["observed"]["mean"].values():
        assert {"mase", "mase_store", "mase_category", "mase_total", "relative_bias_total"} <= set(values)
        assert all(np.isfinite(v) for v in values.values())
    for level, key in (("store_category", "mase"), ("total", "mase_total")):
        rows = table[(table["model"] == "lstm") & (table["level"] == level)]
        assert sorted(rows["origin"]) == sorted(ORIGINS)
        assert results["observed"]["mean"]["lstm"][key] == pytest.approx(rows["mase"].mean(), rel=1e-5)


def test_a_world_not_scored_at_an_origin_takes_the_observed_rows_there():
    table = pd.DataFrame(
        {"origin": ["a", "b", "b"], "target": ["observed", "observed", "counterfactual"]}
        | {"level": ["total"] * 3, "model": ["m"] * 3, "mase": [1.0, 2.0, 4.0]}
    )
    rows = backtest.world_rows(table, "counterfactual")
    assert rows.set_index("origin")["mase"].to_dict() == {"a": 1.0, "b": 4.0}


def test_metrics_csv_and_figure(run):
    root, _ = run
    table = pd.read_csv(root / "reports/backtest/metrics.csv")
    assert list(table.columns[:4]) == ["origin", "target", "level", "model"]
    assert set(table["target"]) == {"observed"}  # the tiny panel has no counterfactual world
    assert len(table) == len(ORIGINS) * 4 * len(MODELS)
    assert (root / "reports/backtest/error_by_origin.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_error_by_origin_figure_is_byte_stable(run, tmp_path):
    table = pd.read_csv(run[0] / "reports/backtest/metrics.csv")
    first, _ = (backtest.error_by_origin(table, tmp_path / f"{k}.png") for k in "ab")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert [line.get_label() for line in first.axes[0].get_lines()][: len(MODELS)] == MODELS


def test_origins_test_horizon_months_cut_at_test_end(prepared):
    panel, _ = prepared
    cfg = parse_config(backtest_params())
    first, last = backtest.origins(cfg, panel)
    assert (first.start, first.stop) == (18, 21)  # 2019-07..2019-09: model.horizon months
    assert (last.start, last.stop) == (25, 27)  # 2020-02..2020-03: cut at split.test_end
    # the baselines forecast every origin through split.test_end, whatever model.horizon is
    assert [(o.start, o.stop) for o in backtest.baseline_origins(cfg, panel)] == [(18, 27), (25, 27)]


def test_hold_out_is_at_most_half_of_an_origins_training_months():
    train_cfg = parse_config(tiny_params()).train
    assert backtest.origin_train_config(train_cfg, 24).validation_months == 6
    assert backtest.origin_train_config(train_cfg, 9).validation_months == 4


def _poisoned(panel: Panel, start: int) -> Panel:
    """The panel with every month from `start` on exploded and marked available."""
    worlds = {w: v.copy() for w, v in panel.worlds.items()}
    for values in worlds.values():
        values[:, start:] = values[:, start:] * 1e6 + 1e9
    available = panel.available.copy()
    available[:, start:] = True
    return dataclasses.replace(panel, worlds=worlds, available=available)


def test_nothing_at_or_after_the_origin_reaches_any_forecaster(run, prepared):
    panel, calendar = prepared
    cfg = parse_config(backtest_params())
    origin, fit_span = backtest.origins(cfg, panel)[0], backtest.baseline_origins(cfg, panel)[0]
    forecasts = {}
    for name, world in {"clean": panel, "poisoned": _poisoned(panel, origin.start)}.items():
        history, available = backtest.training_months(cfg, world, origin)
        n_test = origin.stop - origin.start
        forecasts[name] = backtest.origin_baselines(cfg, world, fit_span) | {
            m: f.values
            for m, f in backtest.lstm_forecasts(cfg, world, calendar, history, available, n_test).items()
        }
    assert set(forecasts["clean"]) == set(MODELS)
    for model in MODELS:
        np.testing.assert_array_equal(forecasts["clean"][model], forecasts["poisoned"][model])
    for model, values in saved(run[0])[origin.label].items():  # the stage saved exactly these forecasts
        np.testing.assert_array_equal(values, forecasts["clean"][model])


def test_a_longer_baseline_forecast_begins_with_the_shorter_one(run, prepared):
    """Why one fit through split.test_end serves every model.horizon: the saved prefix is the short fit."""
    panel, _ = prepared
    cfg = parse_config(backtest_params())
    origin = backtest.origins(cfg, panel)[0]
    short = backtest.baseline_forecasts(cfg, panel, *backtest.training_months(cfg, panel, origin), 2)
    for model, fc in short.items():
        np.testing.assert_array_equal(saved(run[0])[origin.label][model][:, :2], fc.values)


def test_the_test_start_origin_takes_the_evaluations_fit(tmp_path, monkeypatch):
    params = backtest_params()
    params["backtest"]["origins"] = ["2020-01"]
    cfg = prepared_root(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    stages.run_baselines(cfg)
    panel, _ = stages.load_prepared(cfg)
    (origin,) = backtest.baseline_origins(cfg, panel)
    refit = backtest.origin_baselines(cfg, panel, origin)
    with monkeypatch.context() as patch:
        patch.setattr(backtest, "origin_baselines", lambda *_: pytest.fail("refitted the evaluation's fit"))
        backtest.run_backtest_baselines(cfg)
    evaluation = serialization.msgpack_restore(stages.BASELINES.read_bytes())
    assert set(saved(tmp_path)["2020-01"]) == set(refit) == set(evaluation)
    for model, values in saved(tmp_path)["2020-01"].items():
        np.testing.assert_array_equal(values, evaluation[model])
        np.testing.assert_array_equal(values, refit[model])  # the same forecasts as fitting again


@pytest.mark.parametrize(
    ("train_end", "label", "reuses"),
    [("2019-12", "2020-01", True), ("2019-12", "2019-07", False), ("2019-11", "2020-01", False)],
)
def test_only_the_origin_with_the_evaluations_months_reuses_its_fit(train_end, label, reuses):
    split = SplitConfig(train_start="2018-01", train_end=train_end, test_start="2020-01", test_end="2020-03")
    assert backtest.reuses_evaluation(split, backtest.Origin(label, 0, 1)) is reuses


def test_backtest_without_saved_baselines_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SalesjaxError, match="missing; run `dvc repro backtest_baselines`") as info:
        backtest.saved_baselines(backtest.Origin("2019-07", 18, 21))
    assert "\n" not in str(info.value)


def test_counterfactual_is_scored_only_where_it_differs():
    months = pd.period_range("2019-01", "2020-06", freq="M")
    observed = np.arange(2 * len(months), dtype=float).reshape(2, -1) + 1.0
    counterfactual = observed.copy()
    counterfactual[:, months >= pd.Period("2020-01", "M")] += 5.0
    panel = Panel(
        months=months,
        stores=("S0",),
        categories=("C0", "C1"),
        store=np.zeros(2, np.int32),
        category=np.arange(2, dtype=np.int32),
        available=np.ones(observed.shape, bool),
        worlds={"observed": observed, "counterfactual": counterfactual},
    )
    cfg = parse_config(backtest_params())
    before = backtest.Origin("2019-07", 6, 9)
    overlapping = backtest.Origin("2019-11", 10, 13)
    assert list(backtest.truths(cfg, panel, before)) == ["observed"]
    assert list(backtest.truths(cfg, panel, overlapping)) == ["observed", "counterfactual"]


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["2019-13"], "YYYY-MM"),
        (["2019-07", "2019-01"], "increasing"),
        ([], "non-empty"),
        (["2018-04"], "at least 4 training months"),
        (["2020-04"], "split.test_end"),
    ],
)
def test_bad_origins_fail_with_one_line(origins, message):
    params = backtest_params()
    params["backtest"]["origins"] = origins
    with pytest.raises(SalesjaxError, match=message) as info:
        parse_config(params)
    assert "\n" not in str(info.value)


def test_series_new_at_an_origin_are_not_scored(config):
    months = pd.period_range("2019-01", "2019-06", freq="M")
    available = np.array([[True] * 6, [False] * 3 + [True] * 3])
    panel = Panel(
        months=months,
        stores=("A",),
        categories=("x", "y"),
        store=np.zeros(2, np.int32),
        category=np.arange(2, dtype=np.int32),
        available=available,
        worlds={"observed": np.where(available, 5.0, 0.0)},
    )
    truth = backtest.truths(config, panel, backtest.Origin("2019-04", 3, 6))["observed"]
    assert truth.mask[0].all() and not truth.mask[1].any()
