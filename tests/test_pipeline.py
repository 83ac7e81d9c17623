"""End to end on a tiny panel, prepare to evaluate; the thesis's mistakes made impossible."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, make_panel, run_stages, tiny_params

from salesjax import calibration, checkpoint, evaluate, stages, train
from salesjax.cli import main
from salesjax.config import parse_config

MODELS = {"lstm", "lstm_ensemble", "naive", "seasonal_naive", "ets", "arima", "theta"}
METRICS = {"mase", "wape", "relative_bias", "coverage_80", "crps_scaled", "mase_store", "mase_category"} | {
    "mase_total",
    "relative_bias_total",
    "coverage_80_total",
    "crps_scaled_total",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_run):
    """The tiny pipeline run on clean data and on data whose test months' revenue is poisoned."""
    base = tmp_path_factory.mktemp("pipeline")
    panel = make_panel()
    test = panel["month"] >= "2020-01"
    panel.loc[test, "revenue"] = panel.loc[test, "revenue"] * 1e6 + 1e9
    return {
        False: (tiny_run(base / "False"), parse_config(tiny_params())),
        True: (base / "True", run_stages(base / "True", panel)),
    }


def read(root, name):
    """Bytes of a file in a run."""
    return (root / name).read_bytes()


def test_metrics_json_names_every_model_and_metric(runs):
    root, _ = runs[False]
    metrics = json.loads(read(root, "reports/metrics.json"))
    assert set(metrics) == {"observed"}
    assert set(metrics["observed"]) == MODELS
    for values in metrics["observed"].values():
        assert set(values) == METRICS
        assert all(np.isfinite(v) for v in values.values())


def test_levels_are_coherent(runs):
    root, _ = runs[False]
    forecasts = pd.read_parquet(root / "artifacts/evaluation/forecasts.parquet")
    levels = pd.read_csv(root / "reports/evaluate/levels.csv")
    for model, rows in forecasts.groupby("model"):
        total = rows.groupby("month")["q0.5"].sum()
        bottom_mae = levels[(levels["level"] == "total") & (levels["model"] == model)]["mae"].item()
        actual = rows.groupby("month")["observed"].sum()
        assert bottom_mae == pytest.approx(np.mean(np.abs(total - actual)), rel=1e-5)


def test_checkpoint_round_trip_reproduces_the_evaluated_forecast(runs):
    root, cfg = runs[False]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        panel, calendar = stages.load_prepared(cfg)
        history, available = stages.training_history(cfg, panel)
        saved = checkpoint.load_forecaster(stages.MODELS / "lstm")
    data = (history, available, calendar, panel.store, panel.category, saved.model_cfg)
    season = train.ets_season(saved.calibration)
    prediction = train.forecast(saved.graphdef, saved.params, saved.scaler, *data, ets_season=season)
    quantiles = saved.model_cfg.quantiles
    again = evaluate.ensemble_forecast(prediction, slice(None), quantiles, saved.calibration).median()
    forecasts = pd.read_parquet(root / "artifacts/evaluation/forecasts.parquet").query("model == 'lstm'")
    np.testing.assert_allclose(forecasts["q0.5"].to_numpy(), again.reshape(-1), rtol=1e-6)
    reported = json.loads((root / "reports/train/metrics.json").read_text())["lstm"]
    for key in (calibration.WEIGHT, calibration.ETS_WEIGHT, calibration.ETS_SEASON):
        assert reported[key] == saved.calibration[key][0]


@pytest.mark.parametrize(
    "name",
    [
        "artifacts/models/lstm/params.msgpack",
        "artifacts/models/lstm_ensemble/params.msgpack",
        "artifacts/models/lstm/scaler.json",
        "artifacts/models/lstm_ensemble/calibration.json",
        "reports/train/metrics.json",
        "reports/train/live/metrics.json",
        "reports/train/live/plots/metrics/lstm_ensemble/validation/member_1/val_loss.tsv",
        "artifacts/baselines/forecasts.msgpack",
    ],
)
def test_test_months_cannot_reach_training_scaling_or_early_stopping(runs, name):
    """The thesis stopped early on its test year; here poisoning the test months changes nothing fitted."""
    assert read(runs[False][0], name) == read(runs[True][0], name)


def test_forecasts_are_never_clipped_or_filled_from_actuals(runs):
    """The thesis scored max(pred, actual); here the forecasts stay the same when the actuals explode."""
    clean, poisoned = (
        pd.read_parquet(runs[p][0] / "artifacts/evaluation/forecasts.parquet") for p in (False, True)
    )
    quantiles = ["q0.1", "q0.5", "q0.9"]
    pd.testing.assert_frame_equal(clean[quantiles], poisoned[quantiles])
    assert (poisoned["observed"] > 1e9).all() and (poisoned["q0.5"] < 1e8).all()
    # the forecasts checked include AutoETS's share of the combination (`model.combine`)
    weights = json.loads((runs[True][0] / "reports/train/metrics.json").read_text())
    assert min(weights[name][calibration.ETS_WEIGHT] for name in ("lstm", "lstm_ensemble")) < 1.0


def test_prepare_refuses_input_with_too_many_rejected_rows(panel_csv, monkeypatch, capsys):
    panel = pd.read_csv(panel_csv / "panel.csv")
    panel.loc[::10, "revenue"] = -1.0  # 10% of the rows, above the 1% allowed by data.max_rejected_fraction
    panel.to_csv(panel_csv / "panel.csv", index=False)
    monkeypatch.chdir(panel_csv)
    assert main(["prepare"]) == 2
    err = capsys.readouterr().err
    assert re.match(r"error: observed: 10\.\d% of rows rejected, above data.max_rejected_fraction", err)
    assert err.count("\n") == 1
    assert "bad_revenue" in err and "Traceback" not in err


def test_prepare_keeps_every_row_accounted_for(panel_csv, monkeypatch):
    panel = pd.read_csv(panel_csv / "panel.csv")
    panel.loc[3, "month"] = "03-2019"  # one bad row, under the limit
    panel.to_csv(panel_csv / "panel.csv", index=False)
    monkeypatch.chdir(panel_csv)
    assert main(["prepare"]) == 0
    counts = json.loads((panel_csv / "reports/prepare.json").read_text())["observed"]
    assert counts["rows_in"] == len(panel) == counts["rows_kept"] + counts["rows_quarantined"]
    assert counts["quarantined_bad_month"] == 1
    assert len(pd.read_parquet(panel_csv / "artifacts/prepared/quarantine.parquet")) == 1


def test_wall_times_are_written_outside_dvcs_outputs(runs):
    """Wall times differ on every run: kept out of the DVC metrics so a forced rerun leaves dvc.lock alone."""
    root, _ = runs[False]
    timing = json.loads(read(root, "artifacts/timing/train.json"))
    assert set(timing) == {"lstm_k1_seconds", "lstm_ensemble_k2_seconds"}
    assert all(v > 0 for v in timing.values())
    assert not (root / "reports/train/timing.json").exists()
    assert "timing" not in (ROOT / "dvc.yaml").read_text()


def test_train_logs_every_epoch_of_every_member_with_dvclive(runs):
    root, cfg = runs[False]
    live = root / "reports/train/live"
    assert sorted(p.name for p in live.iterdir()) == ["metrics.json", "plots"]  # no report, no dvc.yaml
    summary = json.loads((live / "metrics.json").read_text())
    members = {"lstm": 1, "lstm_ensemble": cfg.train.ensemble_size}
    assert set(summary) == {*members, "step"}
    for fit, k in members.items():
        assert set(summary[fit]["validation"]) == {f"member_{m}" for m in range(k)}
        tables = [
            pd.read_csv(path, sep="\t")
            for path in sorted((live / "plots/metrics" / fit / "validation").glob("member_*/*.tsv"))
        ]
        assert len(tables) == 4 * k
        epochs = list(range(1, len(tables[0]) + 1))
        assert 1 <= len(epochs) <= cfg.train.max_epochs
        for table in tables:
            assert list(table.columns) == ["step", table.columns[1]]  # no timestamp column
            assert table.columns[1] in {"train_loss", "val_loss", "grad_norm", "learning_rate"}
            assert table["step"].tolist() == epochs and np.isfinite(table.iloc[:, 1]).all()
