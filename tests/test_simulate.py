"""The default-dataset simulator: schema, calibration to FACTS.md, calendar drivers, determinism, resizing."""

import re

import holidays
import numpy as np
import pandas as pd
import pytest

from salesjax.cli import main
from salesjax.data.schema import TRANSACTION_COLUMNS as COLUMNS
from salesjax.data.simulate import simulate, write_dataset
from salesjax.errors import SalesjaxError

STORE_SHARES = {
    36: 8.8, 84: 4.8, 108: 6.8, 120: 8.3, 132: 7.1, 180: 5.4, 252: 3.0, 264: 9.6, 276: 4.3,
    312: 4.8, 336: 4.6, 348: 4.6, 360: 5.0, 384: 2.6, 396: 1.9, 408: 4.0, 420: 4.4, 432: 4.0,
    444: 3.3, 456: 2.8,
}  # fmt: skip
FACTS_CATEGORIES = (
    "Acoustic systems", "Air conditioners", "Alectric shavers", "Aluminum radiators (sections)",
    "Antivirus", "Blenders", "Coffee machines", "Cooking sets", "Dumb phones",
    "Films (screen protectors)", "Frying pans, stewpans", "Hair dryers", "Irons", "Laptops",
    "Meat grinders", "Memory", "Mices", "Modems", "Notebook bags", "Over-ear headphones", "Pans",
    "Phone adapters", "Phone covers", "Powerbanks", "Printer and MFP", "Refrigerators",
    "SLR cameras", "Sewing machines", "Smartphones", "Smartwatches", "TVs", "TWS headphones",
    "Tablets", "Vacuum cleaners", "Video game players", "Washing machines", "Wired headphones",
)  # fmt: skip
YEAR_REVENUE = {2018: 103_070_769.13, 2019: 114_790_780.82, 2020: 67_186_624.21}
YEAR_UNITS = {2018: 166_809, 2019: 191_207, 2020: 119_665}
SMARTPHONE_REVENUE = {2018: 63.7e6, 2019: 73.8e6, 2020: 38.8e6}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
GIFTS = ("Smartphones", "Smartwatches", "TVs", "TWS headphones")
SACRIFICE = ("Meat grinders", "Cooking sets", "Pans", "Frying pans, stewpans")


def _with_time(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame plus integer year, month and a datetime date."""
    date = pd.to_datetime(frame["SalesDate"], format="%Y-%m-%d")
    return frame.assign(date=date, year=date.dt.year, month=date.dt.month)


@pytest.fixture(scope="module")
def worlds() -> tuple[pd.DataFrame, pd.DataFrame]:
    """simulate(0), computed once for the module."""
    return simulate(0)


@pytest.fixture(scope="module")
def obs(worlds) -> pd.DataFrame:
    """Observed transactions with time columns."""
    return _with_time(worlds[0])


@pytest.fixture(scope="module")
def cf(worlds) -> pd.DataFrame:
    """Counterfactual 2020 transactions with time columns."""
    return _with_time(worlds[1])


@pytest.fixture(scope="module")
def other_seed() -> tuple[pd.DataFrame, pd.DataFrame]:
    """simulate(1), computed once for the module."""
    return simulate(1)


def _close(actual: float, target: float, rel: float) -> bool:
    """|actual / target - 1| <= rel."""
    return abs(actual / target - 1) <= rel


def _month_share(frame: pd.DataFrame, year: int, categories: tuple[str, ...]) -> pd.Series:
    """Share of the year's revenue of `categories` falling in each month (index 1..12)."""
    sub = frame[(frame["year"] == year) & frame["ProductCategory"].isin(categories)]
    monthly = sub.groupby("month")["Revenue"].sum()
    return monthly / monthly.sum()


def _holiday_month(year: int, name: str) -> int:
    """Month of the first day of a holiday, from the `holidays` calendar."""
    cal = holidays.country_holidays("AZ", years=year, language="en_US")
    return min(d for d, n in cal.items() if name in n).month


def test_schema(worlds):
    """Thesis columns, dtypes, GUIDs, cents, Revenue = round(Quantity x Price), row order."""
    for frame in worlds:
        assert tuple(frame.columns) == COLUMNS
        for col in ("TransactionID", "SalesDate", "ProductCategory", "ProductName", "Gender"):
            assert pd.api.types.is_string_dtype(frame[col]), col
        for col in ("ProductID", "Age", "StoreId", "Quantity"):
            assert frame[col].dtype == np.int64, col
        assert frame["Price"].dtype == np.float64 and frame["Revenue"].dtype == np.float64
        assert not frame.isna().any().any()
        assert frame["TransactionID"].str.match(GUID).all()
        assert frame["TransactionID"].is_unique
        assert set(frame["Gender"]) == {"Male", "Female"}
        assert np.allclose(frame["Price"], frame["Price"].round(2), rtol=0, atol=1e-9)
        assert np.array_equal(frame["Revenue"], (frame["Quantity"] * frame["Price"]).round(2))
        order = ["SalesDate", "ProductCategory", "ProductID", "TransactionID"]
        assert frame.equals(frame.sort_values(order).reset_index(drop=True))


def test_date_ranges(obs, cf):
    """Observed spans 2018-2020 with ISO dates; the counterfactual holds 2020 only."""
    assert obs["SalesDate"].min() == "2018-01-01" and obs["SalesDate"].max() == "2020-12-31"
    assert pd.to_datetime(obs["SalesDate"], format="%Y-%m-%d").notna().all()
    assert set(cf["year"]) == {2020} and cf["SalesDate"].min() == "2020-01-01"


def test_rows_and_yearly_totals(obs):
    """Row count and yearly revenue/units match the thesis."""
    assert _close(len(obs), 476_980, 0.02)
    by_year = obs.groupby("year").agg(revenue=("Revenue", "sum"), units=("Quantity", "sum"))
    for year, target in YEAR_REVENUE.items():
        assert _close(by_year.loc[year, "revenue"], target, 0.02), year
        assert _close(by_year.loc[year, "units"], YEAR_UNITS[year], 0.03), year


def test_yearly_revenue_holds_for_another_seed(other_seed):
    """Yearly totals come from normalisation, not from seed 0's luck."""
    frame = _with_time(other_seed[0])
    revenue = frame.groupby("year")["Revenue"].sum()
    for year, target in YEAR_REVENUE.items():
        assert _close(revenue.loc[year], target, 0.02), year


def test_counterfactual_continues_the_trend(obs, cf):
    """Without COVID and war, 2020 grows on 2019."""
    growth = cf["Revenue"].sum() / obs.loc[obs["year"] == 2019, "Revenue"].sum()
    assert 1.05 <= growth <= 1.15


def test_observed_2020_is_a_subset_of_the_counterfactual(obs, cf):
    """Thinning only removes rows, and never adds revenue to any cell."""
    o2020 = obs[obs["year"] == 2020].set_index("TransactionID")[list(COLUMNS[1:])]
    same = cf.set_index("TransactionID").loc[o2020.index, list(COLUMNS[1:])]
    pd.testing.assert_frame_equal(o2020, same)
    assert len(o2020) < 0.7 * len(cf)
    keys = ["StoreId", "ProductCategory", "month"]
    kept = obs[obs["year"] == 2020].groupby(keys)["Revenue"].sum()
    full = cf.groupby(keys)["Revenue"].sum()
    assert (kept.reindex(full.index, fill_value=0.0) <= full + 1e-6).all()
    assert kept.index.isin(full.index).all()


def test_stores(obs):
    """The 20 thesis store IDs with their unit shares."""
    assert set(obs["StoreId"]) == set(STORE_SHARES)
    share = obs.groupby("StoreId")["Quantity"].sum() / obs["Quantity"].sum() * 100
    for store, target in STORE_SHARES.items():
        assert abs(share[store] - target) <= 1.0, store


def test_categories_and_ranking(obs):
    """Category spellings, smartphone share, the top five and smartphone revenue."""
    assert obs["ProductCategory"].nunique() >= 38
    assert set(FACTS_CATEGORIES) <= set(obs["ProductCategory"])
    revenue = obs.groupby("ProductCategory")["Revenue"].sum().sort_values(ascending=False)
    assert abs(revenue["Smartphones"] / revenue.sum() - 0.62) <= 0.03
    top = ["Smartphones", "TVs", "Air conditioners", "Laptops", "Washing machines"]
    assert list(revenue.index[:5]) == top
    phones = obs[obs["ProductCategory"] == "Smartphones"].groupby("year")["Revenue"].sum()
    for year, target in SMARTPHONE_REVENUE.items():
        assert _close(phones[year], target, 0.05), year


def test_prices(obs):
    """Transaction price quartiles, mean, bounds and a few very expensive TVs."""
    price = obs["Price"]
    for q, target in ((0.25, 106.65), (0.5, 439.99), (0.75, 773.32)):
        assert _close(price.quantile(q), target, 0.10), q
    assert _close(price.mean(), 597.51, 0.05)
    assert price.min() >= 1.01 and price.max() <= 17_333.32
    tv_over_10k = ((obs["ProductCategory"] == "TVs") & (price > 10_000)).sum()
    assert 1 <= tv_over_10k <= 100
    assert (price[obs["ProductCategory"] != "TVs"] <= 10_000).all()


def test_quantity_age_gender(obs):
    """Quantity, buyer age and gender match the thesis's summaries."""
    assert abs(obs["Quantity"].mean() - 1.0015) <= 0.002
    assert obs["Quantity"].min() == 1 and obs["Quantity"].max() <= 20
    age = obs["Age"]
    for q, target in ((0.25, 34), (0.5, 42), (0.75, 51)):
        assert abs(age.quantile(q) - target) <= 2, q
    assert age.min() == 20 and abs(age.mean() - 43.4) <= 1
    female = obs.loc[obs["Gender"] == "Female", "Revenue"].sum() / obs["Revenue"].sum()
    assert abs(female - 0.40) <= 0.03


def test_air_conditioners_peak_in_summer(obs):
    """Climate drives air conditioners."""
    ac = obs[(obs["ProductCategory"] == "Air conditioners") & (obs["year"] < 2020)]
    summer = ac.loc[ac["month"].isin([6, 7, 8]), "Revenue"].sum()
    winter = ac.loc[ac["month"].isin([12, 1, 2]), "Revenue"].sum()
    assert summer > 4 * winter


def test_december_beats_november(obs):
    """New Year gifts outweigh Black Friday."""
    monthly = obs[obs["year"] == 2019].groupby("month")["Revenue"].sum()
    assert monthly[12] > monthly[11]


def test_ramazan_bayrami_gifts_follow_the_calendar(obs, cf):
    """Pre-Bayram gift buying moves with Eid al-Fitr from June to May."""
    early, late = _holiday_month(2020, "Eid al-Fitr"), _holiday_month(2018, "Eid al-Fitr")
    assert (early, late) == (5, 6)  # the holiday moved from June (2018) to May (2020)
    s2018, s2020 = _month_share(obs, 2018, GIFTS), _month_share(cf, 2020, GIFTS)
    assert s2018[late] > 1.1 * s2020[late]
    assert s2020[early] > 1.1 * s2018[early]


def test_gurban_bayrami_kitchen_demand_follows_the_calendar(obs, cf):
    """Kitchen demand before Eid al-Adha moves from August to July."""
    early, late = _holiday_month(2020, "Eid al-Adha"), _holiday_month(2019, "Eid al-Adha")
    assert (early, late) == (7, 8)
    s2019, s2020 = _month_share(obs, 2019, SACRIFICE), _month_share(cf, 2020, SACRIFICE)
    assert s2019[late] > 1.05 * s2020[late]
    assert s2020[early] > 1.05 * s2019[early]


def test_school_start_and_black_friday(obs):
    """School start and Black Friday lift demand on their days."""
    daily = obs[obs["year"] == 2019].groupby(["date", "ProductCategory"])["Revenue"].sum()
    school = daily.unstack(fill_value=0.0)[["Laptops", "Tablets", "Notebook bags"]].sum(axis=1)
    before = school["2019-08-25":"2019-09-14"].mean()
    assert before > 1.4 * school.drop(school["2019-08-25":"2019-09-14"].index).mean()
    total = daily.groupby(level="date").sum()
    assert total[pd.Timestamp("2019-11-29")] > 2 * total["2019-11-01":"2019-11-20"].mean()


def test_closures_shape_2020(obs, cf):
    """Closures empty April 2020 in the observed world only."""
    april = obs[obs["month"] == 4].groupby("year")["Revenue"].sum()
    assert april[2020] < 0.4 * april[2019]
    assert cf.loc[cf["month"] == 4, "Revenue"].sum() > 0.95 * april[2019]
    jan = obs[obs["month"] == 1].groupby("year")["Revenue"].sum()
    assert jan[2020] > jan[2019]  # no closures yet


def test_determinism_and_files(worlds, other_seed, tmp_path):
    """Same seed, same frames and bytes; another seed differs; files are small and round-trip."""
    again = simulate(0)
    for a, b in zip(worlds, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not set(worlds[0]["TransactionID"]) & set(other_seed[0]["TransactionID"])
    assert not np.array_equal(worlds[0]["Revenue"].head(1000), other_seed[0]["Revenue"].head(1000))
    write_dataset(*worlds, tmp_path / "a")
    write_dataset(*again, tmp_path / "b")
    names = ("transactions.parquet", "counterfactual.parquet")
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sum((tmp_path / "a" / n).stat().st_size for n in names) < 18e6
    back = pd.read_parquet(tmp_path / "a" / "transactions.parquet")
    pd.testing.assert_frame_equal(back, worlds[0], check_dtype=False)


def _cells(frame: pd.DataFrame, column: str) -> pd.Series:
    """Sum of `column` per (StoreId, ProductCategory, year)."""
    return _with_time(frame).groupby(["StoreId", "ProductCategory", "year"])[column].sum()


@pytest.fixture(scope="module")
def small_chain() -> tuple[pd.DataFrame, pd.DataFrame]:
    """simulate(0) resized to 3 stores x 2 categories."""
    return simulate(0, n_stores=3, n_categories=2)


def test_a_small_chain_sells_what_its_stores_sell_in_the_default(small_chain, worlds):
    """3 x 2: those six series, schema intact, each year within noise of the default chain's cells.

    The expected demand of each cell is the default's; only the draws of transactions differ (a few
    hundred TVs a year per store: units within 20%, revenue of the whole within 5%).
    """
    for frame, default in zip(small_chain, worlds, strict=True):
        assert tuple(frame.columns) == COLUMNS and not frame.isna().any().any()
        assert set(frame["StoreId"]) == {36, 84, 108}
        assert set(frame["ProductCategory"]) == {"Smartphones", "TVs"}
        units = _cells(frame, "Quantity")
        assert len(units) == 6 * (3 if frame is small_chain[0] else 1)
        np.testing.assert_allclose(units, _cells(default, "Quantity").loc[units.index], rtol=0.2)
        revenue = _cells(default, "Revenue").loc[units.index].sum()
        assert _close(frame["Revenue"].sum(), revenue, 0.05)
        assert (frame["Price"] > 0).all() and (frame["Revenue"] > 0).all()


def test_a_small_chain_is_deterministic_for_a_seed(small_chain):
    """Same seed, same frames; another seed, other transactions."""
    again, other = simulate(0, 3, 2), simulate(1, 3, 2)
    for a, b in zip(small_chain, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not set(small_chain[0]["TransactionID"]) & set(other[0]["TransactionID"])


def test_copies_sell_like_their_templates():
    """22 x 41: stores 468 and 480 copy 36 and 84, 'Smartphones 2' copies Smartphones."""
    observed = simulate(0, n_stores=22, n_categories=41)[0]
    assert set(observed["StoreId"]) == set(STORE_SHARES) | {468, 480}
    assert observed["ProductCategory"].nunique() == 41 and "Smartphones 2" in set(observed["ProductCategory"])
    assert observed["ProductID"].nunique() == observed.groupby("ProductCategory")["ProductID"].nunique().sum()
    units = observed.groupby("StoreId")["Quantity"].sum()
    assert _close(units[468], units[36], 0.05) and _close(units[480], units[84], 0.05)
    revenue = observed.groupby("ProductCategory")["Revenue"].sum()
    assert _close(revenue["Smartphones 2"], revenue["Smartphones"], 0.15)


def test_a_chain_needs_a_store_and_a_category(capsys):
    """An empty chain is one error line, exit code 2."""
    with pytest.raises(SalesjaxError, match="at least 1 store"):
        simulate(0, n_stores=0)
    assert main(["simulate", "--categories", "0", "--out", "unused"]) == 2
    assert capsys.readouterr().err.startswith("error: a chain needs at least 1 store and 1 category")
