"""The accuracy suite's params overrides (`--set`): parsed as `dvc exp run -S`, validated as params."""

import accuracy
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
