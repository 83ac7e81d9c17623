"""A researcher's own monthly panel with the usual defects: prepare -> train -> baselines -> evaluate."""

import io
import json
import logging

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_panel, tiny_params

from salesjax import features, stages
from salesjax.config import parse_config
from salesjax.data.panel import build_panel

MODELS = {"lstm", "lstm_ensemble", "naive", "seasonal_naive", "ets", "arima", "theta"}
GAPPY, LATE, SHORT, ZERO = ("S0", "C0"), ("S0", "C1"), ("S1", "C1"), ("S2", "C1")
TEST_ONLY = [("S3", "C0"), ("S1", "C2")]  # a new store and a new category, seen only in 2020


def own_panel() -> pd.DataFrame:
    """The tiny panel with gaps, a late start, a short history, an all-zero series and test-only pairs."""
    panel = make_panel()
    pair = list(zip(panel["store"], panel["category"], strict=True))
    at = {key: pd.Series([p == key for p in pair], index=panel.index) for key in (GAPPY, LATE, SHORT, ZERO)}
    drop = at[GAPPY] & panel["month"].isin(["2018-05", "2019-03", "2020-02"])
    drop |= at[LATE] & (panel["month"] < "2018-09")
    drop |= at[SHORT] & (panel["month"] < "2019-10")  # 3 training months, context 6
    panel.loc[at[ZERO] & (panel["month"] <= "2019-12"), "revenue"] = 0.0
    new = [(m, s, c, 500.0) for s, c in TEST_ONLY for m in ("2020-01", "2020-02", "2020-03")]
    return pd.concat([panel[~drop], pd.DataFrame(new, columns=panel.columns)], ignore_index=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The four stages on the own panel in a fresh directory; (root, config, printed output)."""
    root = tmp_path_factory.mktemp("own_panel")
    own_panel().sample(frac=1.0, random_state=0).to_csv(root / "panel.csv", index=False)  # any row order
    params = tiny_params()
    params["train"].update(ensemble_size=1)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cfg = parse_config(params)
    printed = io.StringIO()
    logger, handler = logging.getLogger("salesjax"), logging.StreamHandler(printed)  # the stages' messages
    logger.addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            for stage in (stages.prepare, stages.run_train, stages.run_baselines, stages.run_evaluate):
                stage(cfg)
    finally:
        logger.removeHandler(handler)
    return root, cfg, printed.getvalue()


@pytest.fixture(scope="module")
def forecasts(run):
    """The evaluated forecasts table, one row per model, series and test month."""
    return pd.read_parquet(run[0] / "artifacts/evaluation/forecasts.parquet")


def test_metrics_for_every_model(run):
    metrics = json.loads((run[0] / "reports/metrics.json").read_text())["observed"]
    assert set(metrics) == MODELS
    for values in metrics.values():
        keys = ("mase", "wape", "relative_bias", "mase_store", "mase_category", "mase_total")
        assert all(np.isfinite(values[k]) for k in keys)


@pytest.mark.parametrize("pair", [GAPPY, LATE, SHORT, ZERO])
def test_defective_histories_are_kept_and_forecast_by_every_model(forecasts, pair):
    rows = forecasts[(forecasts["store"] == pair[0]) & (forecasts["category"] == pair[1])]
    assert set(rows["model"]) == MODELS
    assert len(rows) == len(MODELS) * 3  # every test month
    assert np.isfinite(rows[["q0.1", "q0.5", "q0.9"]].to_numpy()).all()
    assert (rows["q0.1"] >= 0).all()


def test_missing_months_are_masked_not_zero(forecasts):
    gappy = forecasts[(forecasts["store"] == "S0") & (forecasts["category"] == "C0")]
    assert gappy.loc[gappy["month"] == "2020-02", "observed"].isna().all()
    assert gappy.loc[gappy["month"] != "2020-02", "observed"].notna().all()


def test_short_history_is_padded_and_masked(run):
    root, cfg, _ = run
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        panel, calendar = stages.load_prepared(cfg)
    history, available = stages.training_history(cfg, panel)
    s = [
        (panel.stores[a], panel.categories[b]) for a, b in zip(panel.store, panel.category, strict=True)
    ].index(SHORT)
    assert available[s].sum() == 3 < cfg.model.context
    scaler = features.Scaler.fit(history, available)
    origin = np.array([history.shape[1]])
    windows = features.make_windows(
        history, available, calendar, scaler, panel.store, panel.category, origin,
        context=cfg.model.context, horizon=cfg.model.horizon, require_target=False,
    )  # fmt: skip
    observed_flag = windows.x[s, : cfg.model.context, 1]
    np.testing.assert_array_equal(observed_flag, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(windows.x[s, :3, 0], 0.0)


def test_prepare_json_counts_and_flags(run):
    counts = json.loads((run[0] / "reports/prepare.json").read_text())["panel"]
    assert counts == {
        "series": 6,
        "series_only_in_test": 2,
        "stores_only_in_test": 1,
        "categories_only_in_test": 1,
        "series_all_zero_in_training": 1,
        "series_late_start": 2,
        "series_with_gaps": 1,
        "series_shorter_than_context": 1,
    }


def test_test_only_pairs_get_a_clear_message(run):
    printed = run[2]
    assert "2 store x category pair(s) appear only in the test months: S1 / C2, S3 / C0" in printed
    assert "no model forecasts them" in printed
    assert "stores only in the test months (no training history): S3" in printed
    assert "categories only in the test months (no training history): C2" in printed
    assert "1 series are zero in every training month" in printed and "S2 / C1" in printed


def test_short_series_counted_without_the_stage(config):
    """build_panel counts histories shorter than the model's context."""
    monthly = own_panel().assign(month=lambda f: pd.PeriodIndex(f["month"], freq="M"))
    _, counts = build_panel(monthly, None, config.split, explicit_zeros=False, context=config.model.context)
    assert counts["series_shorter_than_context"] == 1
    _, counts = build_panel(monthly, None, config.split, explicit_zeros=False, context=1)
    assert counts["series_shorter_than_context"] == 0
