"""Forecasting beyond the data: the stage's tidy table, a saved model applied to a panel, the notebook API."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, make_panel, tiny_params

from salesjax import api, baselines, forecast, forecast_stage, stages
from salesjax.cli import main
from salesjax.config import parse_config
from salesjax.errors import SalesjaxError

MODELS = ["lstm", "lstm_ensemble", "naive", "seasonal_naive", "ets", "arima", "theta"]
QUANTILES = ["q0.05", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.95"]
COLUMNS = ["month", "level", "store", "category", "model", "mean", *QUANTILES]
HORIZON = 3  # the tiny model's horizon
ENSEMBLE = "artifacts/forecast/models/lstm_ensemble"


def forecast_params() -> dict:
    """The tiny params with a forecast as long as the tiny model's horizon."""
    params = tiny_params()
    params["forecast"]["horizon"] = HORIZON
    return params


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """prepare and the forecast stage run on the tiny panel (2018-01..2020-03): (root, full table)."""
    root = tmp_path_factory.mktemp("forecast")
    make_panel().to_csv(root / "panel.csv", index=False)
    params = forecast_params()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        cfg = parse_config(params)
        stages.prepare(cfg)
        forecast_stage.run_forecast_baselines(cfg)
        mp.setattr(forecast_stage.baselines, "forecast_baselines", _refit_baselines)
        forecast_stage.run_forecast(cfg)
    return root, pd.read_parquet(root / "artifacts/forecast/forecast.parquet")


FIT_BASELINES = baselines.forecast_baselines


def _refit_baselines(*args, names=baselines.BASELINES, **options):
    """Stands in for the baseline fit where the forecast stage must read the saved fits instead (the
    LSTMs' own AutoETS, `model.combine`, still fits)."""
    if names == baselines.BASELINES:
        raise AssertionError("the forecast stage refit a baseline")
    return FIT_BASELINES(*args, names=names, **options)


def apply(root, data: pd.DataFrame, out: str, *extra: str) -> tuple[int, pd.DataFrame | None]:
    """`salesjax forecast --model <the stage's ensemble> --data <data> --out <out>` in `root`."""
    data.to_csv(root / "new_panel.csv", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        code = main(["forecast", "--model", ENSEMBLE, "--data", "new_panel.csv", "--out", out, *extra])
    return code, pd.read_parquet(root / out) if code == 0 else None


def test_the_forecast_covers_every_series_and_month_at_every_level(stage):
    _, table = stage
    assert list(table.columns) == COLUMNS
    assert list(pd.unique(table["model"])) == MODELS
    months = ["2020-04", "2020-05", "2020-06"]  # the three months after the data's last one
    groups = {"total": 1, "store": 3, "category": 2, "store_category": 6}
    for (model, level), rows in table.groupby(["model", "level"]):
        assert model in MODELS
        assert len(rows) == groups[level] * HORIZON
        assert sorted(rows["month"].unique()) == months
    bottom = table[table["level"] == "store_category"]
    assert set(zip(bottom["store"], bottom["category"], strict=True)) == {
        (f"S{s}", f"C{c}") for s in range(3) for c in range(2)
    }
    assert (table.loc[table["level"] == "total", ["store", "category"]] == "all").all().all()


def test_quantiles_do_not_cross_and_are_finite(stage):
    _, table = stage
    values = table[QUANTILES].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    assert (np.diff(values, axis=1) >= 0).all()
    assert np.isfinite(table["mean"]).all()


def test_the_levels_add_up(stage):
    _, table = stage
    bottom = table[table["level"] == "store_category"]
    for level, keys in {
        "total": ["month"],
        "store": ["store", "month"],
        "category": ["category", "month"],
    }.items():
        upper = table[table["level"] == level].set_index(["model", *keys]).sort_index()
        sums = bottom.groupby(["model", *keys]).sum(numeric_only=True).sort_index()
        np.testing.assert_allclose(upper["mean"], sums["mean"], rtol=1e-12)
        baselines = upper.index.get_level_values("model").isin(MODELS[2:])
        np.testing.assert_allclose(
            upper.loc[baselines, QUANTILES], sums.loc[baselines, QUANTILES], rtol=1e-12
        )


def test_means_are_the_trapezoid_integral_and_the_baselines_median(stage):
    _, table = stage
    np.testing.assert_allclose(forecast.trapezoid_mean(np.array([1.0, 2.0, 4.0]), (0.1, 0.5, 0.9)), 2.3)
    bottom = table[table["level"] == "store_category"]
    lstm = bottom["model"].str.startswith("lstm")
    expected = forecast.trapezoid_mean(
        bottom.loc[lstm, QUANTILES].to_numpy(), (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    )
    np.testing.assert_allclose(bottom.loc[lstm, "mean"], expected)
    np.testing.assert_array_equal(bottom.loc[~lstm, "mean"], bottom.loc[~lstm, "q0.5"])


def test_the_report_files(stage):
    root, table = stage
    csv = pd.read_csv(root / "reports/forecast/forecast.csv", keep_default_na=False)
    assert set(csv["model"]) == set(MODELS)
    assert set(csv.loc[csv["level"] == "store_category", "model"]) == {"lstm_ensemble"}
    assert len(csv) == len(forecast_stage.report_rows(table))
    for name in ("fan_total.png", "fan_stores.png"):
        assert (root / "reports/forecast" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_fan_charts_are_byte_stable(stage, tmp_path):
    root, table = stage
    frame = forecast.validated(pd.read_csv(root / "panel.csv"), "panel")
    forecast_stage.fan_charts(frame, table[table["model"] == "lstm_ensemble"], tmp_path)
    for name in ("fan_total.png", "fan_stores.png"):
        assert (tmp_path / name).read_bytes() == (root / "reports/forecast" / name).read_bytes()


def test_the_store_fans_draw_only_the_largest_stores(stage, tmp_path, monkeypatch):
    """Beyond FAN_STORES stores only the largest (by observed revenue) get a panel, and the title says so."""
    from salesjax.report.frames import GRID_STORES

    assert forecast_stage.FAN_STORES == GRID_STORES  # the report's caption counts with GRID_STORES
    root, table = stage
    frame = forecast.validated(pd.read_csv(root / "panel.csv"), "panel")
    size = frame.groupby("store")["revenue"].sum().sort_values(ascending=False)
    assert len(size) > 1 and size.iloc[0] > size.iloc[1]  # one largest store
    shown = table[table["model"] == "lstm_ensemble"]
    _, every = forecast_stage.fan_charts(frame, shown, tmp_path)
    assert [ax.get_title() for ax in every.axes if ax.get_visible()] == [
        f"store {s}" for s in sorted(size.index)
    ]
    assert every.get_suptitle() == "Revenue per store: forecast"
    monkeypatch.setattr(forecast_stage, "FAN_STORES", 1)
    _, largest = forecast_stage.fan_charts(frame, shown, tmp_path)
    assert [ax.get_title() for ax in largest.axes if ax.get_visible()] == [f"store {size.index[0]}"]
    assert largest.get_suptitle() == f"Revenue of the 1 largest of the {len(size)} stores: forecast"


def test_the_forecast_baselines_stage_fits_with_its_workers_and_the_forecast_reads_its_file(
    stage, monkeypatch
):
    """baselines.reconcile, .n_jobs and .engine reach the fit; a missing, mis-shaped or stale saved fit is
    one line."""
    root, _ = stage
    params = forecast_params()
    params["baselines"] = {"reconcile": "bottom_up", "engine": "local", "n_jobs": 3}
    monkeypatch.chdir(root)
    cfg = parse_config(params)
    calls = []

    def fit_baselines(history, available, store, category, months, season, quantiles, method, n_jobs, engine):
        calls.append((months, method, n_jobs, engine))
        return {name: np.zeros((len(history), months, len(quantiles))) for name in baselines.BASELINES}

    saved = forecast_stage.BASELINE_FITS.read_bytes()
    monkeypatch.setattr(forecast_stage.reconcile, "coherent_baselines", fit_baselines)
    try:
        forecast_stage.run_forecast_baselines(cfg)
        assert calls == [(HORIZON, "bottom_up", 3, "local")]
        model = api.Forecaster.load(root / ENSEMBLE)
        tables = forecast_stage.baseline_tables(cfg, model, HORIZON)
        assert [t["model"].iloc[0] for t in tables] == list(baselines.BASELINES)
        assert all((t[QUANTILES] == 0).all().all() for t in tables)
        with pytest.raises(SalesjaxError, match=r"damaged \(ValueError: forecasts are not of shape"):
            forecast_stage.baseline_tables(cfg, model, HORIZON - 1)
        later = model.with_data(
            pd.concat([pd.read_csv(root / "panel.csv"), make_panel(start="2020-04", end="2020-04")])
        )
        with pytest.raises(SalesjaxError, match=r"from 2020-04, the LSTMs from 2020-05; run `dvc repro"):
            forecast_stage.baseline_tables(cfg, later, HORIZON)
        forecast_stage.BASELINE_FITS.unlink()
        with pytest.raises(SalesjaxError, match=r"missing; run `dvc repro forecast_baselines`"):
            forecast_stage.baseline_tables(cfg, model, HORIZON)
    finally:
        forecast_stage.BASELINE_FITS.write_bytes(saved)


def test_a_model_directory_that_does_not_name_its_series_is_refused(stage, tmp_path):
    root, _ = stage
    old = shutil.copytree(root / ENSEMBLE, tmp_path / "old")
    spec = json.loads((old / "model.json").read_text())
    for key in ("stores", "categories", "series", "training_months"):
        del spec[key]
    (old / "model.json").write_text(json.dumps(spec))
    with pytest.raises(SalesjaxError, match="does not name the series it was trained on"):
        api.Forecaster.load(old)


def test_the_cli_on_the_stages_data_reproduces_its_table(stage):
    root, table = stage
    code, out = apply(root, pd.read_csv(root / "panel.csv"), "again.parquet")
    assert code == 0
    expected = table[table["model"] == "lstm_ensemble"].reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected, check_exact=True)


def _files(directory) -> dict[str, bytes]:
    """Every file under `directory` by relative path."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_an_extended_panel_is_forecast_after_its_last_month_without_retraining(stage):
    root, table = stage
    before = (_files(root / "artifacts/forecast/models"), (root / "params.yaml").read_bytes())
    extended = pd.concat([pd.read_csv(root / "panel.csv"), make_panel(start="2020-04", end="2020-06")])
    code, out = apply(root, extended, "extended.parquet")
    assert code == 0
    assert (_files(root / "artifacts/forecast/models"), (root / "params.yaml").read_bytes()) == before
    shifted = pd.PeriodIndex(table["month"], freq="M") + 3
    assert sorted(out["month"].unique()) == sorted(shifted.astype(str).unique())
    ensemble = table[table["model"] == "lstm_ensemble"]
    assert len(out) == len(ensemble)
    assert not np.allclose(out["q0.5"], ensemble["q0.5"])  # it read the new months


def test_unknown_series_stores_and_categories_are_named_and_skipped(stage, capsys):
    root, table = stage
    panel = pd.read_csv(root / "panel.csv")
    new = pd.DataFrame(
        {"month": "2020-03", "store": ["S9", "S0"], "category": ["C0", "C7"], "revenue": [10.0, 20.0]}
    )
    code, out = apply(root, pd.concat([panel, new]), "unknown.parquet")
    printed = capsys.readouterr().err  # warnings of the salesjax logger
    assert code == 0
    assert "2 series the model was not trained on are skipped" in printed
    assert "S0 / C7, S9 / C0" in printed
    assert re.search(r"1 stores unknown to the model: S9\b", printed)
    assert re.search(r"1 categories unknown to the model: C7\b", printed)
    assert not ({"S9"} & set(out["store"]) or {"C7"} & set(out["category"]))
    pd.testing.assert_frame_equal(out, table[table["model"] == "lstm_ensemble"].reset_index(drop=True))


def test_a_panel_of_unknown_series_only_is_refused(stage, capsys):
    root, _ = stage
    panel = make_panel().assign(store=lambda f: "X" + f["store"])
    code, _ = apply(root, panel, "none.parquet")
    assert code == 2
    assert "no series of the data is one lstm_ensemble was trained on" in capsys.readouterr().err


def test_the_forecast_reads_the_profile_s_complete_years_before_its_context(stage):
    root, table = stage
    panel = pd.read_csv(root / "panel.csv")
    ensemble = table[table["model"] == "lstm_ensemble"].reset_index(drop=True)
    code, out = apply(root, panel[panel["month"] >= "2019-10"], "context_only.parquet")  # 6 months
    assert code == 0
    assert not np.allclose(out["q0.5"], ensemble["q0.5"])  # without the years before it, another profile
    code, again = apply(root, panel, "again.parquet")
    pd.testing.assert_frame_equal(again, ensemble)  # the saved model's history holds every month


def test_a_series_silent_in_the_window_is_left_out(stage, capsys):
    root, _ = stage
    panel = pd.read_csv(root / "panel.csv")
    silent = (panel["store"] == "S2") & (panel["category"] == "C1") & (panel["month"] >= "2019-10")
    code, out = apply(root, panel[~silent], "silent.parquet")
    assert code == 0
    assert (
        "1 series have no revenue in 2019-10..2020-03 and are not forecast: S2 / C1"
        in capsys.readouterr().err
    )
    bottom = out[out["level"] == "store_category"]
    assert len(bottom) == 5 * HORIZON and not ((bottom["store"] == "S2") & (bottom["category"] == "C1")).any()


def test_more_months_than_the_horizon_are_refused(stage, capsys):
    root, _ = stage
    code, _ = apply(root, pd.read_csv(root / "panel.csv"), "long.parquet", "--months", "4")
    assert code == 2
    assert "cannot forecast 4 months with a model of horizon 3" in capsys.readouterr().err


def readme_example() -> str:
    """The Python block of the README's "Forecasting ahead" section."""
    section = (ROOT / "README.md").read_text().split("## Forecasting ahead", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    make_panel().to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(forecast_params(), sort_keys=False))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(readme_example(), namespace)
    assert list(namespace["table"].columns) == COLUMNS
    reloaded = namespace["api"].Forecaster.load("my_model").predict(HORIZON)
    pd.testing.assert_frame_equal(reloaded.assign(model="lstm_ensemble"), namespace["table"])
