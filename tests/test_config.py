"""params.yaml is the only source of values: typed, no hidden defaults, unknown or missing keys rejected."""

import pytest
import yaml
from conftest import ROOT, tiny_params

from salesjax.config import SplitConfig, auto_origins, load_config, merge, parse_config
from salesjax.errors import SalesjaxError


def test_repository_params_and_experiments_load():
    cfg = load_config(ROOT / "params.yaml")
    assert cfg.model.quantiles == (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    assert cfg.split.train_end == "2019-12"


def test_experiment_overrides_apply_on_top(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_config(experiment="thesis")
    assert (cfg.model.num_layers, cfg.model.hidden_size, cfg.model.dropout) == (2, 50, 0.2)
    assert (cfg.train.loss, cfg.train.batch_size, cfg.train.max_epochs, cfg.train.patience) == (
        "mse",
        32,
        20,
        5,
    )
    assert cfg.data == load_config().data  # untouched sections come from params.yaml


def test_merge_is_deep():
    assert merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"c": 5}}) == {"a": {"b": 1, "c": 5}, "d": 3}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["train"].update(epochs=3), "unknown key 'params.train.epochs'"),
        (lambda p: p["model"].pop("horizon"), "missing key 'params.model.horizon'"),
        (lambda p: p["train"].update(learning_rate="3e-3"), "'params.train.learning_rate' must be float"),
        (lambda p: p["train"].update(batch_size=True), "'params.train.batch_size' must be int"),
        (lambda p: p["data"].update(format="xlsx"), "'params.data.format' must be one of"),
        (lambda p: p["baselines"].update(engine="spark"), "'params.baselines.engine' must be one of"),
        (lambda p: p.pop("baselines"), "missing key 'params.baselines'"),
        (lambda p: p["model"].update(quantiles=[0.1, 0.9]), "include 0.5"),
        (lambda p: p["train"].update(loss="mse"), "mse"),
        (lambda p: p["split"].update(test_start="2019-06"), "train_end < test_start"),
        (lambda p: p["split"].update(test_end="2021-06"), "exceed model.horizon"),
        (lambda p: p["split"].update(train_end="2019-13"), "YYYY-MM"),
        (lambda p: p["train"].update(ensemble_size=0), "'train.ensemble_size' must be at least 1, got 0"),
        (lambda p: p["train"].update(batch_size=-4), "'train.batch_size' must be at least 1"),
        (lambda p: p["train"].update(learning_rate=0.0), "'train.learning_rate' must be above 0"),
        (lambda p: p["model"].update(dropout=1.0), "'model.dropout' must be below 1"),
        (
            lambda p: p["sweep"].update(learning_rates=[1.0e-3, -1.0]),
            "'sweep.learning_rates' must be above 0",
        ),
        (
            lambda p: p["data"].update(max_rejected_fraction=1.5),
            "'data.max_rejected_fraction' must be at most 1",
        ),
        (
            lambda p: p["data"].update(date_format="%Q"),
            "'data.date_format' '%Q' is not a strptime date format",
        ),
        (lambda p: p["data"].update(min_year=2100, max_year=2000), "min_year must not exceed data.max_year"),
        (
            lambda p: p["data"].update(country="XX"),
            "'data.country' 'XX' is not a two-letter country code of the holidays package.*"
            "holidays.list_supported_countries",
        ),
        (lambda p: p["data"].update(country="AZE"), "'data.country' 'AZE' is not a two-letter"),
        (lambda p: p["data"].update(events="all"), "'data.events' must be 'auto' or a list of event names"),
        (lambda p: p["data"].update(events=["novruz", "novruz"]), "'data.events' lists an event twice"),
    ],
)
def test_bad_params_fail_with_one_line(change, message):
    params = tiny_params()
    change(params)
    with pytest.raises(SalesjaxError, match=message) as info:
        parse_config(params)
    assert "\n" not in str(info.value)


def test_ints_are_accepted_where_floats_are_expected():
    params = tiny_params()
    params["train"]["weight_decay"] = 0
    assert parse_config(params).train.weight_decay == 0.0


def test_a_missing_params_file_says_to_run_from_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SalesjaxError, match="run salesjax from the repository root .* or pass --params"):
        load_config()


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(SalesjaxError, match="cannot read params file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(SalesjaxError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(SalesjaxError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_auto_origins_of_the_default_split():
    cfg = load_config(ROOT / "params.yaml")
    assert yaml.safe_load((ROOT / "params.yaml").read_text())["backtest"]["origins"] == "auto"
    assert cfg.backtest.origins == ("2019-07", "2020-01")  # 2019-01 has only 12 training months
    assert auto_origins(cfg.split, 12) == cfg.backtest.origins


@pytest.mark.parametrize(
    ("train_start", "season", "origins"),
    [
        ("2017-12", 12, ("2019-01", "2019-07", "2020-01")),  # 2019-01: 13 training months
        ("2018-01", 12, ("2019-07", "2020-01")),  # 2019-01 would have one season, 12 months
        ("2018-07", 12, ("2020-01",)),  # 2019-07 would have 12 months
        ("2019-01", 12, ("2020-01",)),  # the evaluation's origin needs one season only
        ("2018-06", 6, ("2019-01", "2019-07", "2020-01")),  # a shorter season needs fewer months
    ],
)
def test_auto_origins_keep_earlier_ones_after_more_than_a_season(train_start, season, origins):
    split = SplitConfig(
        train_start=train_start, train_end="2019-12", test_start="2020-01", test_end="2020-12"
    )
    assert auto_origins(split, season) == origins


def test_auto_origins_follow_the_config(params):
    params["split"].update(train_start="2018-06")
    assert parse_config(params).backtest.origins == ("2019-07", "2020-01")
    params["evaluate"].update(season_length=6)
    assert parse_config(params).backtest.origins == ("2019-01", "2019-07", "2020-01")


def test_auto_origins_on_a_short_history_fail_with_one_line():
    params = tiny_params()
    params["split"].update(train_start="2019-06")
    with pytest.raises(SalesjaxError, match="'auto' needs at least 12 months") as info:
        parse_config(params)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("origins", "expected"),
    [(["2019-07"], ("2019-07",)), (["2018-06", "2020-01"], ("2018-06", "2020-01"))],
)
def test_explicit_origins_are_kept(origins, expected):
    params = tiny_params()
    params["backtest"]["origins"] = origins
    assert parse_config(params).backtest.origins == expected


@pytest.mark.parametrize(
    ("origins", "message"),
    [("later", "list of YYYY-MM months or 'auto'"), (5, "must be a list"), ([1], "must be str")],
)
def test_bad_origins_values_fail_with_one_line(origins, message):
    params = tiny_params()
    params["backtest"]["origins"] = origins
    with pytest.raises(SalesjaxError, match=message) as info:
        parse_config(params)
    assert "\n" not in str(info.value)
