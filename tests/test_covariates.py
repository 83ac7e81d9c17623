"""Known-in-advance covariates: validation, windows, training-month standardisation, saved models, errors."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from salesjax import api, calibration, cli, features, train
from salesjax.config import PanelColumns, parse_config
from salesjax.data.panel import build_panel
from salesjax.data.schema import validate_panel
from salesjax.errors import SalesjaxError
from tests.conftest import make_panel

COLUMNS = PanelColumns(month="month", store="store", category="category", revenue="revenue")
CONTEXT, HORIZON, MONTHS = 4, 3, 12


def _windows(covariates: np.ndarray | None, origins: np.ndarray) -> features.Windows:
    """Windows of 2 series with a flat calendar of 2 columns and the given padded covariates."""
    rng = np.random.default_rng(0)
    history = rng.uniform(1.0, 2.0, (2, MONTHS))
    available = np.ones(history.shape, bool)
    calendar = np.zeros((CONTEXT + MONTHS + HORIZON, 2), np.float32)
    scaler = features.Scaler.fit(history, available, "seasonal", None if covariates is None else covariates)
    return features.make_windows(
        history,
        available,
        calendar,
        scaler,
        np.array([0, 1]),
        np.array([0, 0]),
        origins,
        context=CONTEXT,
        horizon=HORIZON,
        require_target=False,
        covariates=None if covariates is None else features.pad_covariates(covariates, CONTEXT, HORIZON),
    )


@pytest.mark.parametrize("step", [1, CONTEXT + 1])  # the spike's window step: in the context, in the horizon
def test_covariate_spike_moves_one_step_with_its_month(step):
    origin, column = 6, features.num_features(2, 1) - 2  # the covariate sits just before the static input

    def covariate_input(month: int) -> np.ndarray:
        raw = np.zeros((2, MONTHS, 1), np.float32)
        raw[:, month] = 5.0
        return _windows(raw, np.array([origin])).x[..., column]  # [series, window step]

    month = origin - CONTEXT + step  # window step t reads history month origin - context + t
    before, after = covariate_input(month), covariate_input(month + 1)
    assert before.argmax(axis=1).tolist() == [step, step]
    assert after.argmax(axis=1).tolist() == [step + 1, step + 1]
    np.testing.assert_array_equal(before[:, :-1], after[:, 1:])  # the same input, one step later


def test_no_covariates_gives_the_windows_of_before():
    origins = np.arange(2, MONTHS)
    plain = _windows(None, origins)
    empty = _windows(np.zeros((2, MONTHS, 0), np.float32), origins)
    assert plain.x.shape == (2 * len(origins), CONTEXT + HORIZON, 7 + 2 + 1) == empty.x.shape
    assert features.num_features(2) == features.num_features(2, 0) == 10
    np.testing.assert_array_equal(plain.x, empty.x)
    np.testing.assert_array_equal(plain.y, empty.y)


def test_standardisation_uses_training_months_only(config):
    frame = make_panel(stores=2, categories=2, end="2019-12")
    panel = api.forecast.dense_panel(api.forecast.validated(frame, "data"))
    s, m = panel.available.shape
    raw = np.random.default_rng(1).uniform(0, 3, (s, m, 1)).astype(np.float32)
    padded = features.pad_covariates(raw, config.model.context, config.model.horizon)
    leaked = padded.copy()
    leaked[:, config.model.context + 18 :] = 1e6  # months after the 18 training months
    history, available = panel.worlds["observed"][:, :18], panel.available[:, :18]
    ids, num_ids = (panel.store, panel.category), (len(panel.stores), len(panel.categories))
    cal = np.zeros((config.model.context + 18 + config.model.horizon, 3), np.float32)
    scalers = [
        train.train_forecaster(
            history,
            available,
            cal,
            *ids,
            num_ids,
            config.model,
            config.train,
            [0],
            covariates=c[:, : len(cal)],
        ).scaler
        for c in (padded, leaked)
    ]
    assert scalers[0].covariate_mean == scalers[1].covariate_mean == (pytest.approx(raw[:, :18].mean()),)
    assert scalers[0].covariate_std == scalers[1].covariate_std == (pytest.approx(raw[:, :18].std()),)


def test_panel_covariates_are_validated_and_quarantined():
    frame = make_panel(stores=1, categories=1, end="2018-06").assign(promo=["1", "0", "x", "", "2", "0"])
    result = validate_panel(frame, COLUMNS, ("promo",))
    assert result.counts == {"bad_covariate": 2}
    assert len(result.kept) + len(result.quarantined) == len(frame)
    assert result.kept["promo"].tolist() == [1.0, 0.0, 2.0, 0.0]
    with pytest.raises(SalesjaxError, match=r"^missing covariate column 'price'.*data\.covariates$"):
        validate_panel(frame, COLUMNS, ("price",))


def test_a_covariate_that_never_varies_in_training_is_named(config, caplog):
    frame = make_panel(stores=2, categories=1)
    monthly = frame.assign(
        month=pd.PeriodIndex(frame["month"], freq="M"), revenue=frame["revenue"].astype(float)
    )
    closed = monthly[["month", "store", "category"]].assign(
        closed=np.where(monthly["month"] >= pd.Period("2020-01", "M"), 3.0, 0.0),
        promo=np.arange(len(monthly)),
    )
    with caplog.at_level(logging.WARNING, logger="salesjax"):
        build_panel(monthly, None, config.split, explicit_zeros=False, context=6, covariates=closed)
    warnings = [r.getMessage() for r in caplog.records if "never varies" in r.getMessage()]
    assert len(warnings) == 1 and "'closed'" in warnings[0] and "always 0" in warnings[0]


@pytest.fixture
def saved_model(params, tmp_path, monkeypatch):
    """A one-member model reading the covariate `promo`, saved with its history to tmp_path/model.

    Its hold-out weight is 1: the network is what reads the covariates, and a weight of 0 would hide it.
    """
    monkeypatch.setattr(calibration, "choose_weight", lambda *arrays: 1.0)
    params["data"]["covariates"] = ["promo"]
    frame = make_panel(stores=2, categories=2, end="2019-12")
    frame["promo"] = (np.arange(len(frame)) % 5 == 0).astype(float)
    model = api.fit(frame, parse_config(params), members=1)
    model.save(tmp_path / "model")
    frame.to_csv(tmp_path / "panel.csv", index=False)
    return tmp_path / "model"


def _future(months: int) -> pd.DataFrame:
    """promo values of every series of `make_panel(2, 2)` for `months` months from 2020-01."""
    keys = pd.MultiIndex.from_product(
        [pd.period_range("2020-01", periods=months, freq="M").astype(str), ["S0", "S1"], ["C0", "C1"]],
        names=["month", "store", "category"],
    )
    return keys.to_frame(index=False).assign(promo=1.0)


def test_saved_model_keeps_its_covariates_and_uses_their_future_values(saved_model):
    assert json.loads((saved_model / "model.json").read_text())["covariates"] == ["promo"]
    model = api.Forecaster.load(saved_model)
    assert model.saved.covariates == ("promo",)
    assert np.isfinite(model.history.covariates).all()
    with_promo = model.predict(3, covariates=_future(3))
    without = model.predict(3, covariates=_future(3).assign(promo=0.0))
    assert with_promo.shape == without.shape
    assert not np.allclose(with_promo["q0.5"], without["q0.5"])
    with pytest.raises(SalesjaxError, match="reads the covariates promo"):
        model.predict(3)


def test_a_missing_future_covariate_is_one_line_naming_month_and_series(saved_model, capsys):
    future = _future(3)
    future = future.drop(index=future.index[(future["month"] == "2020-02") & (future["store"] == "S1")][1:])
    future.to_csv(saved_model.parent / "future.csv", index=False)
    argv = ["forecast", "--model", str(saved_model), "--data", str(saved_model.parent / "panel.csv")]
    argv += ["--months", "3", "--out", str(saved_model.parent / "out.csv")]
    code = cli.main([*argv, "--covariates", str(saved_model.parent / "future.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(
        "error: covariates: no value of the covariates promo for 2020-02, series S1 / C1"
    )
    assert not (saved_model.parent / "out.csv").exists()
    assert (
        cli.main([*argv, "--covariates", str(saved_model.parent / "future.csv").replace("future", "x")]) == 2
    )
