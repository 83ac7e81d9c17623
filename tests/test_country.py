"""Issue #13: any country's calendar, from prepare to a saved model that records it."""

import json
from types import SimpleNamespace

import jax
import numpy as np
import pandas as pd
import pytest
import yaml

from salesjax import checkpoint, features, stages, train
from salesjax.cli import main
from salesjax.config import parse_config
from salesjax.errors import SalesjaxError


def write(root, params: dict) -> None:
    """params.yaml in `root`."""
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_an_australian_panel_is_prepared_on_the_australian_calendar(panel_csv, params, monkeypatch):
    params["data"].update(country="AU")
    monkeypatch.chdir(panel_csv)
    stages.prepare(parse_config(params))
    cal = pd.read_parquet(panel_csv / "artifacts/prepared/calendar.parquet").set_index("month")
    assert cal.columns.tolist() == [
        *features.BASE_FEATURES,
        "new_year",
        "christmas",
        "black_friday",
        "school_start",
    ]
    # January 2019: New Year's Day and Australia Day; April 2019: Good Friday, Easter Monday and Anzac Day.
    assert cal.loc["2019-01", "holidays"] == pytest.approx(2 / 5)
    assert cal.loc["2019-04", "holidays"] == pytest.approx(3 / 5)
    assert cal.loc["2019-03", "holidays"] == 0  # no Novruz


def test_training_refuses_a_calendar_prepared_for_another_country(panel_csv, params, monkeypatch):
    monkeypatch.chdir(panel_csv)
    stages.prepare(parse_config(params))
    params["data"].update(country="AU")
    with pytest.raises(SalesjaxError, match="prepared for another data.country or data.events"):
        stages.run_train(parse_config(params))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"country": "AU", "events": ["Novruz"]}, "data.events: 'Novruz' is neither a built-in rule"),
        ({"country": "XX"}, "params: 'data.country' 'XX' is not a two-letter country code"),
    ],
)
def test_a_calendar_that_cannot_be_built_is_one_error_line(
    panel_csv, params, monkeypatch, capsys, data, message
):
    params["data"].update(data)
    write(panel_csv, params)
    monkeypatch.chdir(panel_csv)
    code = main(["prepare"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (panel_csv / "artifacts").exists()


def test_a_saved_model_records_its_calendar_and_is_rebuilt_from_it(tmp_path, config):
    settings = features.CalendarSettings("AU", ("anzac_day", "christmas"))
    shapes = (features.num_features(len(settings.columns())), 3, 2)
    _, params = train.init_members(config.model, shapes, [0])
    scaler = features.Scaler.fit(np.ones((6, 4)), np.ones((6, 4), bool))
    trained = SimpleNamespace(params=params, scaler=scaler, calibration={})
    checkpoint.save_forecaster(trained, config.model, settings, [0], (3, 2), tmp_path)
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["calendar"] == {"country": "AU", "events": ["anzac_day", "christmas"]}
    saved = checkpoint.load_forecaster(tmp_path)
    assert jax.tree.all(jax.tree.map(np.array_equal, saved.params, params))
    assert saved.calendar == settings
    spec["calendar"]["events"].append("black_friday")  # one more input column than the saved weights
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(SalesjaxError, match="params.msgpack"):
        checkpoint.load_forecaster(tmp_path)
