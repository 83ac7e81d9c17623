"""Aggregation to the monthly panel: explicit zeros, availability, counterfactual months, test-only pairs."""

import numpy as np
import pandas as pd
import pytest

from salesjax.config import SplitConfig
from salesjax.data.panel import Panel, build_panel, monthly_revenue
from salesjax.errors import SalesjaxError

SPLIT = SplitConfig(train_start="2019-01", train_end="2019-04", test_start="2019-05", test_end="2019-06")


def rows(*items):
    """(month, store, category, revenue) rows as a monthly frame."""
    frame = pd.DataFrame(items, columns=["month", "store", "category", "revenue"])
    return frame.assign(month=pd.PeriodIndex(frame["month"], freq="M"))


def test_monthly_revenue_sums_transactions_per_month():
    kept = pd.DataFrame(
        {
            "SalesDate": pd.to_datetime(["2019-01-05", "2019-01-31", "2019-02-01"]),
            "StoreId": ["36", "36", "36"],
            "ProductCategory": ["TVs"] * 3,
            "Revenue": [100.0, 50.0, 7.0],
        }
    )
    out = monthly_revenue(kept)
    assert out["revenue"].tolist() == [150.0, 7.0]
    assert out["month"].astype(str).tolist() == ["2019-01", "2019-02"]


def test_transactions_give_explicit_zeros_after_the_first_sale():
    monthly = rows(("2019-02", "A", "x", 5.0), ("2019-04", "A", "x", 7.0), ("2019-06", "B", "y", 1.0))
    panel, _ = build_panel(monthly, None, SPLIT, explicit_zeros=True, context=2)
    assert panel["available"].tolist() == [False, True, True, True, True, True]
    assert panel["observed"].tolist() == [0.0, 5.0, 0.0, 7.0, 0.0, 0.0]


def test_panel_gaps_stay_missing():
    monthly = rows(("2019-01", "A", "x", 5.0), ("2019-03", "A", "x", 7.0), ("2019-05", "A", "x", 1.0))
    panel, _ = build_panel(monthly, None, SPLIT, explicit_zeros=False, context=2)
    assert panel["available"].tolist() == [True, False, True, False, True, False]


def test_pairs_only_in_the_test_months_are_counted_not_modelled():
    monthly = rows(("2019-01", "A", "x", 5.0), ("2019-05", "B", "y", 9.0), ("2019-06", "B", "z", 1.0))
    panel, counts = build_panel(monthly, None, SPLIT, explicit_zeros=True, context=2)
    assert counts["series"] == 1 and counts["series_only_in_test"] == 2
    assert set(panel["store"]) == {"A"}


def test_all_zero_training_series_are_flagged():
    monthly = rows(("2019-01", "A", "x", 0.0), ("2019-01", "A", "y", 3.0), ("2019-06", "A", "y", 3.0))
    _, counts = build_panel(monthly, None, SPLIT, explicit_zeros=False, context=2)
    assert counts["series_all_zero_in_training"] == 1


def test_counterfactual_replaces_only_its_own_months():
    monthly = rows(
        *[(m, "A", "x", 10.0) for m in ("2019-01", "2019-02", "2019-03", "2019-04", "2019-05", "2019-06")]
    )
    monthly = pd.concat([monthly, rows(("2019-01", "A", "y", 1.0))])
    # The file covers May and June; A/x has no June row there, so it sold nothing in June in that world.
    counterfactual = rows(("2019-05", "A", "x", 30.0), ("2019-06", "A", "y", 2.0))
    panel, _ = build_panel(monthly, counterfactual, SPLIT, explicit_zeros=True, context=2)
    x = panel[panel["category"] == "x"]
    assert x["observed"].tolist() == [10.0] * 6
    assert x["counterfactual"].tolist() == [10.0, 10.0, 10.0, 10.0, 30.0, 0.0]


def test_no_training_rows_is_a_clear_error():
    with pytest.raises(SalesjaxError, match="no rows fall in the training months"):
        build_panel(rows(("2019-05", "A", "x", 1.0)), None, SPLIT, explicit_zeros=True, context=2)


@pytest.mark.parametrize("explicit_zeros", [True, False])
def test_months_after_the_data_are_unobserved_not_zero(explicit_zeros, caplog):
    monthly = rows(*[(m, "A", "x", 10.0) for m in ("2019-01", "2019-02", "2019-03", "2019-04", "2019-05")])
    panel, _ = build_panel(monthly, None, SPLIT, explicit_zeros=explicit_zeros, context=2)
    assert panel["available"].tolist() == [True] * 5 + [False]
    assert "data ends in 2019-05: test months 2019-06..2019-06 are unobserved" in caplog.text


def test_a_test_period_after_the_data_is_an_error_naming_its_last_month():
    monthly = rows(("2019-01", "A", "x", 1.0), ("2019-04", "A", "x", 2.0))
    with pytest.raises(
        SalesjaxError, match=r"the data ends in 2019-04, before split.test_start 2019-05"
    ) as info:
        build_panel(monthly, None, SPLIT, explicit_zeros=True, context=2)
    assert "\n" not in str(info.value)


def test_dense_view_round_trips_the_long_table():
    monthly = rows(
        ("2019-01", "B", "y", 1.0),
        ("2019-02", "A", "x", 2.0),
        ("2019-03", "A", "y", 4.0),
        ("2019-06", "C", "z", 1.0),
    )
    panel, _ = build_panel(monthly, None, SPLIT, explicit_zeros=True, context=2)
    dense = Panel.from_frame(panel)
    assert dense.worlds["observed"].shape == (3, 6)
    pairs = [(dense.stores[s], dense.categories[c]) for s, c in zip(dense.store, dense.category, strict=True)]
    assert pairs == [("A", "x"), ("A", "y"), ("B", "y")]
    assert dense.index(pd.Period("2019-05", "M")) == 4
    np.testing.assert_array_equal(dense.worlds["observed"][0], [0, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(dense.available[0], [False, True, True, True, True, True])
