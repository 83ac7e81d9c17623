"""Deterministic simulator of a Kontakt-Home-like chain: the project's default dataset.

Two worlds come from one set of random draws. 2018-2019 is a single history. For 2020 the
*counterfactual* world continues trends and seasonality as if neither COVID-19 nor the 2020 war
had happened. The *observed* world thins it: each counterfactual transaction survives with a
probability set by the 2020 closure timeline of its store (malls, all non-food shops, the
martial-law curfew, weekend and December closures; an online share is served while a store is
shut), drawn with one uniform per transaction. Observed 2020 rows are therefore an exact subset of
the counterfactual rows, with the same TransactionIDs.

No month table shapes the year. Daily demand per store x category multiplies store and category
levels, store- and category-specific trends, weekday effects, climate (air conditioners in summer,
radiators in autumn), retail events placed by the Azerbaijani calendar of the `holidays` package
(New Year gifts, 8 March, pre-Novruz, Ramadan, Ramazan and Gurban Bayrami, which move between
months across years), Black Friday, the school start on 15 September, and noise. Expected yearly
units and revenue of three groups (smartphones, accessories, the rest) are normalised to the
thesis figures, and the 2020 thinning strength per group is solved the same way, so the yearly
totals hold for every seed, not by luck.
"""

import dataclasses
import datetime
import statistics
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salesjax.data.schema import TRANSACTION_COLUMNS
from salesjax.errors import SalesjaxError

START, END, COVID_YEAR = "2018-01-01", "2020-12-31", 2020
# Expected (units, revenue AZN, smartphone revenue AZN) per year. 2018, 2019 and observed 2020 are
# the thesis figures; the counterfactual 2020 continues the 2018-2019 growth at a slower pace.
HISTORY_TARGETS = ((166_809, 103_070_769.13, 63.7e6), (191_207, 114_790_780.82, 73.8e6))
COUNTERFACTUAL_TARGET = (212_000, 125_800_000.0, 80.5e6)
OBSERVED_TARGET = (119_665, 67_186_624.21, 38.8e6)
BLACK_FRIDAYS = ("2018-11-23", "2019-11-29", "2020-11-27")
WEEKDAY = (0.9, 0.9, 0.93, 0.97, 1.05, 1.2, 1.05)  # Mon..Sun; non-working holidays count as Sunday
# Weekends made working days by cabinet transfers (not in `holidays`): they shop like a Thursday.
WORKING_WEEKENDS = ("2019-12-28", "2019-12-29", "2020-03-29", "2020-05-31")
# Oxford COVID-19 Government Response Tracker, Azerbaijan, monthly mean stringency 2020.
STRINGENCY = (0.2, 4.1, 49.8, 89.8, 81.7, 85.4, 95.9, 87.6, 77.2, 66.8, 66.0, 79.1)
DISCOUNTS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)  # equally likely when a sale is discounted
BULK_GEOMETRIC_P = 0.4  # extra units of a multi-unit sale ~ Geometric(p), capped so Quantity <= 20
AGE_GAMMA = (4.6, 5.4)  # buyer age = 20 + Gamma(shape, scale) + category offset
FLAGSHIP_WEIGHT = 0.005  # popularity of a flagship model; the others average 1
_NORMAL = statistics.NormalDist()
_ONE_DAY = datetime.timedelta(days=1)
CALIBRATION_STEPS = 15  # the fixed point converges to ~1e-8 relative error


@dataclasses.dataclass(frozen=True)
class Category:
    """A product category: demand weight, list-price distribution, buyers, calendar tags."""

    name: str
    weight: float  # share of transactions in %, before normalisation
    price: float  # median list price, AZN
    spread: float  # log-sd of list prices across the catalogue
    growth: float  # yearly log-growth of demand
    female: float  # probability that the buyer is a woman
    age: float  # offset of the buyer's age, years
    family: str  # brand pool of its products
    tags: str = ""  # calendar drivers, see LIFTS and _climate
    products: int = 8
    bulk: float = 0.0005  # probability that a sale has more than one unit
    flagship: float = 0.0  # list price of a rare top model, 0 for none
    skew: float = 0.0  # stretches the expensive end: log price += skew * max(z, 0) ** 2


CATEGORIES = (
    Category("Smartphones", 45.0, 570, 0.62, 0.1, 0.40, -1.5, "phone", "gift women", 16, skew=0.22),
    Category("TVs", 4.0, 1000, 0.55, 0.05, 0.33, 2, "tv", "gift", 10, 5e-4, 17_333.32, 0.15),
    Category("Air conditioners", 3.3, 1100, 0.35, 0.08, 0.36, 3, "appliance", "cool", 8),
    Category("Laptops", 2.2, 1150, 0.4, 0.06, 0.33, -2, "computer", "school gift", 10, skew=0.05),
    Category("Washing machines", 3.3, 850, 0.3, 0.04, 0.45, 2.5, "appliance", "", 8),
    Category("Refrigerators", 2.3, 1000, 0.35, 0.04, 0.44, 2.5, "appliance", "freezer", 8),
    Category("Dishwashers", 0.5, 900, 0.25, 0.08, 0.5, 2, "appliance", "", 6),
    Category("Tablets", 1.3, 450, 0.5, 0.0, 0.42, -1, "computer", "school gift", 8),
    Category("Smartwatches", 1.0, 320, 0.6, 0.30, 0.45, -2.5, "phone", "gift women", 8),
    Category("Video game players", 0.5, 780, 0.3, 0.08, 0.12, -5, "game", "gift", 5),
    Category("SLR cameras", 0.25, 1300, 0.35, -0.15, 0.3, 0, "camera", "gift", 6),
    Category("Coffee machines", 0.5, 450, 0.6, 0.10, 0.55, 1.5, "small", "gift women", 6),
    Category("Vacuum cleaners", 1.0, 300, 0.5, 0.05, 0.58, 2, "small", "women", 8),
    Category("Printer and MFP", 0.5, 330, 0.5, -0.02, 0.35, 1, "printer", "school", 6),
    Category("Sewing machines", 0.3, 400, 0.35, -0.05, 0.85, 5, "small", "women", 5),
    Category("Acoustic systems", 0.6, 250, 0.8, 0.05, 0.25, -3, "audio", "gift", 8),
    Category("Microwave ovens", 0.4, 220, 0.3, 0.02, 0.55, 2.5, "small", "kitchen", 6),
    Category("Cooking sets", 0.35, 190, 0.5, 0.02, 0.8, 3.5, "cookware", "kitchen women", 6),
    Category("Meat grinders", 0.4, 200, 0.4, 0.0, 0.55, 4, "small", "kitchen meat", 6),
    Category("TWS headphones", 2.2, 110, 0.35, 0.45, 0.42, -4, "audio", "gift attach", 8),
    Category("Over-ear headphones", 1.0, 115, 0.3, 0.02, 0.3, -4, "audio", "gift", 8),
    Category("Dumb phones", 1.7, 55, 0.5, -0.20, 0.4, 7, "phone", "", 8),
    Category("Hair dryers", 0.9, 90, 0.3, 0.03, 0.85, -1, "small", "women gift", 8),
    Category("Alectric shavers", 0.5, 100, 0.3, 0.03, 0.15, 1, "small", "gift", 6),
    Category("Irons", 0.8, 95, 0.3, 0.0, 0.7, 3, "small", "women", 6),
    Category("Blenders", 0.8, 110, 0.3, 0.04, 0.72, 2, "small", "kitchen women", 6),
    Category("Electric kettles", 0.8, 55, 0.45, 0.02, 0.6, 2, "small", "kitchen", 6),
    Category("Frying pans, stewpans", 0.9, 55, 0.5, 0.03, 0.78, 3.5, "cookware", "kitchen", 8),
    Category("Pans", 0.6, 60, 0.5, 0.02, 0.78, 3.5, "cookware", "kitchen", 6),
    Category("Aluminum radiators (sections)", 0.6, 14, 0.25, 0.0, 0.2, 4, "heating", "heat", 4),
    Category("Antivirus", 0.6, 35, 0.4, -0.05, 0.3, 0, "software", "", 4),
    Category("Memory", 1.5, 30, 0.6, 0.05, 0.3, -3, "accessory", "school attach", 8),
    Category("Mices", 1.2, 25, 0.6, 0.02, 0.35, -3, "accessory", "school", 8),
    Category("Modems", 0.6, 70, 0.4, 0.05, 0.3, 1, "network", "", 5),
    Category("Notebook bags", 0.5, 40, 0.4, 0.0, 0.4, -4, "accessory", "school", 6),
    Category("Phone adapters", 1.7, 18, 0.5, 0.05, 0.4, -2.5, "accessory", "attach", 8),
    Category("Phone covers", 4.5, 15, 0.5, 0.08, 0.45, -3, "accessory", "attach", 12, 0.002),
    Category("Films (screen protectors)", 5.0, 12, 0.4, 0.08, 0.42, -2.5, "accessory", "attach", 8),
    Category("Powerbanks", 1.5, 45, 0.5, 0.10, 0.38, -3, "accessory", "gift attach", 8),
    Category("Wired headphones", 1.5, 20, 0.6, -0.15, 0.4, -3.5, "accessory", "attach", 8),
)
ACCESSORY_PRICE = 150.0  # categories with a lower median list price form the accessories group
# (store id, share of units 2018-2020 in %, kind); kinds decide the 2020 closures.
STORES = (
    (36, 8.8, "baku_mall"),
    (84, 4.8, "baku_street"),
    (108, 6.8, "baku_mall"),
    (120, 8.3, "baku_mall"),
    (132, 7.1, "baku_mall"),
    (180, 5.4, "baku_mall"),
    (252, 3.0, "region_street"),
    (264, 9.6, "baku_mall"),
    (276, 4.3, "region_mall"),
    (312, 4.8, "baku_street"),
    (336, 4.6, "baku_street"),
    (348, 4.6, "baku_street"),
    (360, 5.0, "baku_mall"),
    (384, 2.6, "region_street"),
    (396, 1.9, "region_street"),
    (408, 4.0, "region_mall"),
    (420, 4.4, "region_mall"),
    (432, 4.0, "region_street"),
    (444, 3.3, "region_street"),
    (456, 2.8, "region_street"),
)
# Additive demand lift of each calendar event by category tag ("*": every other category).
LIFTS = {
    "new_year": {"*": 0.5, "gift": 1.3, "attach": 0.8},
    "january": {"*": -0.3},
    "women": {"women": 1.2, "gift": 0.3},
    "novruz": {"*": 0.3, "kitchen": 0.8, "gift": 0.4},
    "novruz_days": {"*": -0.15},
    "ramadan": {"kitchen": 0.35},
    "fitr": {"gift": 0.8, "attach": 0.4, "kitchen": 0.3},
    "adha": {"meat": 3.0, "kitchen": 1.0, "freezer": 0.5, "gift": 0.2},
    "black_friday": {"*": 2.0, "gift": 3.0},
    "bf_week": {"*": 0.35, "gift": 0.5},
    "school": {"school": 1.2},
}
BRANDS = {
    "phone": ("Samsung", "Apple", "Xiaomi", "Huawei", "Honor", "Nokia", "Oppo"),
    "tv": ("Samsung", "LG", "Sony", "Philips", "Hisense", "TCL"),
    "computer": ("HP", "Lenovo", "Asus", "Acer", "Apple", "Dell"),
    "appliance": ("Bosch", "Beko", "Indesit", "LG", "Samsung", "Arcelik", "Gree", "Midea"),
    "small": ("Philips", "Tefal", "Braun", "Bosch", "Moulinex", "Redmond", "Rowenta"),
    "cookware": ("Tefal", "Berghoff", "Zepter", "Korkmaz", "Hascevher"),
    "accessory": ("Baseus", "Hoco", "Borofone", "Xiaomi", "Samsung", "Kingston", "Logitech"),
    "audio": ("JBL", "Sony", "Apple", "Samsung", "Xiaomi", "Marshall"),
    "software": ("Kaspersky", "ESET", "Norton"),
    "camera": ("Canon", "Nikon", "Sony"),
    "game": ("Sony", "Microsoft", "Nintendo"),
    "network": ("TP-Link", "Huawei", "ZTE", "D-Link"),
    "printer": ("HP", "Canon", "Epson"),
    "heating": ("Sira", "Royal Thermo", "Fondital"),
}


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """Products per category, padded to K slots (padding has weight 0)."""

    price: np.ndarray  # f64[C,K] list price, AZN
    weight: np.ndarray  # f64[C,K] popularity at 2019-01
    slope: np.ndarray  # f64[C,K] yearly log-trend of popularity
    ids: np.ndarray  # i64[C,K] ProductID
    names: np.ndarray  # object[C,K] ProductName


@dataclasses.dataclass(frozen=True)
class RateDraws:
    """The random parts of the demand rate of S stores x C categories."""

    store_growth: np.ndarray  # f64[S] yearly log-growth of each store
    cat_growth: np.ndarray  # f64[C] yearly log-growth of each category
    affinity: np.ndarray  # f64[S,C] mean-one level of each pair
    monthly: np.ndarray  # f64[36,S,C] mean-one noise of each pair and month


@dataclasses.dataclass(frozen=True)
class Demand:
    """Uncalibrated expected transactions, the expected worth of one, and the rate's parts."""

    rate: np.ndarray  # f64[D,S,C] transactions per day, counterfactual world
    units: np.ndarray  # f64[C] expected units per transaction
    price: np.ndarray  # f64[D,C] expected price per unit, AZN
    discount: np.ndarray  # f64[D] probability that a sale is discounted
    seasonal: np.ndarray  # f64[D,C] calendar, climate and weekday multipliers
    draws: RateDraws


@dataclasses.dataclass(frozen=True)
class Chain:
    """The simulated stores and categories, each a copy of one of STORES or CATEGORIES (its template)."""

    store: np.ndarray  # i64[S] index of each store's template in STORES
    category: np.ndarray  # i64[C] index of each category's template in CATEGORIES
    store_ids: np.ndarray  # i64[S] StoreId
    category_names: np.ndarray  # object[C] ProductCategory


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Multipliers that make expected totals match the targets."""

    store: np.ndarray  # f64[S] level of each store
    group: np.ndarray  # f64[D,G] level of each group (smartphones, accessories, rest)
    kappa: np.ndarray  # f64[G] 2020 thinning exponent: keep = closure_keep ** kappa


def make_chain(n_stores: int = len(STORES), n_categories: int = len(CATEGORIES)) -> Chain:
    """The first n of STORES and CATEGORIES, cycled past their ends; copies get new ids and names.

    Store copies continue the thesis's StoreId step of 12 (468, 480, ...); the k-th copy of a
    category is named with k + 1 ("Smartphones 2").
    """
    if n_stores < 1 or n_categories < 1:
        raise SalesjaxError(f"a chain needs at least 1 store and 1 category, got {n_stores} x {n_categories}")
    ids = np.array([s[0] for s in STORES], dtype=np.int64)
    extra = ids[-1] + 12 * np.arange(1, n_stores - len(ids) + 1, dtype=np.int64)
    category = np.arange(n_categories) % len(CATEGORIES)
    copy = np.arange(n_categories) // len(CATEGORIES)
    names = [CATEGORIES[j].name + (f" {k + 1}" if k else "") for j, k in zip(category, copy, strict=True)]
    return Chain(
        np.arange(n_stores) % len(ids),
        category,
        np.concatenate([ids[:n_stores], extra]),
        np.array(names, dtype=object),
    )


def _days() -> pd.DatetimeIndex:
    """Every day of the simulated period."""
    return pd.date_range(START, END, freq="D")


def _years_since_2018(days: pd.DatetimeIndex) -> np.ndarray:
    """f64[D] time in years from 2018-01-01."""
    return np.asarray((days - pd.Timestamp(START)).days) / 365.25


def _month_index(days: pd.DatetimeIndex) -> np.ndarray:
    """i64[D] month number from 2018-01 (0..35)."""
    return np.asarray((days.year - 2018) * 12 + days.month - 1)


def _groups() -> np.ndarray:
    """i64[C] group of each category: 0 smartphones, 1 accessories (cheap), 2 the rest."""
    cheap = np.array([c.price < ACCESSORY_PRICE for c in CATEGORIES])
    return np.where([c.name == "Smartphones" for c in CATEGORIES], 0, np.where(cheap, 1, 2))


def _column(field: str) -> np.ndarray:
    """f64[C] one numeric field of every category."""
    return np.array([getattr(c, field) for c in CATEGORIES], dtype=float)


def _calendar(days: pd.DatetimeIndex) -> holidays.HolidayBase:
    """Azerbaijani public holidays (en_US names) covering the period and the next New Year."""
    years = range(days.year.min(), days.year.max() + 2)
    return holidays.country_holidays("AZ", years=years, language="en_US")


def _starts(cal: holidays.HolidayBase, key: str) -> list[pd.Timestamp]:
    """First day of each run of consecutive holidays named `key` (substitute days ignored)."""
    dates = {d for d, name in cal.items() if key in name and "(observed)" not in name}
    return sorted(pd.Timestamp(d) for d in dates if d - _ONE_DAY not in dates)


def _on(days: pd.DatetimeIndex, dates: list[pd.Timestamp]) -> np.ndarray:
    """f64[D] 1 on the given dates, else 0."""
    return np.asarray(days.isin(dates), dtype=float)


def _before(days: pd.DatetimeIndex, anchors: list[pd.Timestamp], n: int) -> np.ndarray:
    """f64[D] 1 on the n days before any anchor date, else 0."""
    return _on(days, [a - pd.Timedelta(days=i) for a in anchors for i in range(1, n + 1)])


def _event_windows(days: pd.DatetimeIndex, cal: holidays.HolidayBase) -> dict[str, np.ndarray]:
    """f64[D] intensity of each retail event, dated by the holiday calendar."""
    new_year, eid = _starts(cal, "New Year's Day"), _starts(cal, "Eid al-Fitr")
    fridays = [pd.Timestamp(d) for d in BLACK_FRIDAYS]
    novruz = [pd.Timestamp(d) for d, name in cal.items() if "Spring Festival" in name]
    lull_ends = [d + pd.Timedelta(days=12) for d in new_year]
    gifts = _before(days, new_year, 14) * (0.5 + 0.5 * (np.asarray(days.day) - 18) / 13)
    return {
        "new_year": gifts,  # ramps up from Dec 18 to Dec 31
        "january": _before(days, lull_ends, 12),  # the post-holiday lull, Jan 1-12
        "women": _before(days, _starts(cal, "Women's Day"), 7),
        "novruz": _before(days, _starts(cal, "Spring Festival"), 10),
        "novruz_days": _on(days, novruz),
        "ramadan": _before(days, eid, 29),
        "fitr": _before(days, eid, 7),
        "adha": _before(days, _starts(cal, "Eid al-Adha"), 7),
        "black_friday": _on(days, fridays),
        "bf_week": _before(days, [d + pd.Timedelta(days=4) for d in fridays], 7),
        "school": _before(days, [pd.Timestamp(f"{y}-09-15") for y in set(days.year)], 21),
    }


def _lift_amplitude(lift: dict[str, float], tags: str) -> float:
    """Largest lift among a category's tags, else the event's default."""
    amps = [lift[t] for t in tags.split() if t in lift]
    return max(amps) if amps else lift.get("*", 0.0)


def _event_lift(windows: dict[str, np.ndarray]) -> np.ndarray:
    """f64[D,C] multiplicative demand lift of the retail calendar."""
    amp = np.array([[_lift_amplitude(LIFTS[e], c.tags) for c in CATEGORIES] for e in windows])
    return np.maximum(1.0 + np.stack(list(windows.values()), axis=1) @ amp, 0.1)


def _bump(doy: np.ndarray, peak: float, width: float) -> np.ndarray:
    """f64[D] Gaussian bump on the circular day of year."""
    dist = np.abs(doy - peak)
    return np.exp(-0.5 * (np.minimum(dist, 365.25 - dist) / width) ** 2)


def _climate(days: pd.DatetimeIndex) -> np.ndarray:
    """f64[D,C] weather-driven demand (mean 1 over a year): cooling in summer, heating in autumn."""
    doy = np.asarray(days.day_of_year, dtype=float)
    curves = {"cool": 0.1 + _bump(doy, 205, 30), "heat": 0.3 + _bump(doy, 320, 40)}
    out = np.ones((len(days), len(CATEGORIES)))
    for j, cat in enumerate(CATEGORIES):
        for tag, curve in curves.items():
            if tag in cat.tags.split():
                out[:, j] = curve / curve.mean()
    return out


def _weekday(days: pd.DatetimeIndex, cal: holidays.HolidayBase) -> np.ndarray:
    """f64[D] weekday effect; shops stay open on holidays, which shop like a Sunday."""
    dow = np.where([d in cal for d in days.date], 6, np.asarray(days.day_of_week))
    dow = np.where(days.isin(pd.to_datetime(WORKING_WEEKENDS)), 3, dow)
    return np.asarray(WEEKDAY)[dow]


def _lognormal(rng: np.random.Generator, sigma: float, shape) -> np.ndarray:
    """Mean-one lognormal noise."""
    return np.exp(sigma * rng.standard_normal(shape) - sigma**2 / 2)


def _level(chain: Chain) -> np.ndarray:
    """f64[S,C] design level of each pair: its store's unit share x its category's weight."""
    return np.array([s[1] for s in STORES])[chain.store][:, None] * _column("weight")[chain.category]


def _draws(level: np.ndarray, rng: np.random.Generator) -> RateDraws:
    """Growth rates and noise of the default chain, f64[S,C] `level` its design levels."""
    store_growth = rng.normal(0.07, 0.06, len(STORES))
    cat_growth = _column("growth") + rng.normal(0, 0.03, len(CATEGORIES))
    affinity = _lognormal(rng, 0.25, level.shape)
    affinity /= (level * affinity).sum(axis=0) / level.sum(axis=0)  # category totals stay put
    return RateDraws(store_growth, cat_growth, affinity, _lognormal(rng, 0.12, (36, *level.shape)))


def _rate(days: pd.DatetimeIndex, seasonal: np.ndarray, level: np.ndarray, draws: RateDraws) -> np.ndarray:
    """f64[D,S,C] uncalibrated expected transactions per day from f64[D,C] seasonal multipliers.

    Trends are log-linear, a growth rate for each store and each category.
    """
    t = _years_since_2018(days)[:, None] - 1
    store_trend, cat_trend = np.exp(t * draws.store_growth), np.exp(t * draws.cat_growth)
    monthly = draws.monthly[_month_index(days)]
    by_day = store_trend[:, :, None] * (cat_trend * seasonal)[:, None]
    return level * draws.affinity * monthly * by_day


def _grown(head: np.ndarray, n: int, loc: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """f64[n]: the first n of `head`, then fresh Normal(loc, scale) draws."""
    return np.concatenate([head[:n], loc + rng.normal(0.0, scale, n - min(n, len(head)))])


def _widened(
    corner: np.ndarray, shape: tuple[int, ...], sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """f64[...,S,C] mean-one noise: `corner`'s values where it has them, fresh lognormal elsewhere."""
    s0, c0 = min(shape[-2], corner.shape[-2]), min(shape[-1], corner.shape[-1])
    out = np.empty(shape)
    out[..., :s0, :c0] = corner[..., :s0, :c0]
    out[..., s0:, :] = _lognormal(rng, sigma, (*shape[:-2], shape[-2] - s0, shape[-1]))
    out[..., :s0, c0:] = _lognormal(rng, sigma, (*shape[:-2], s0, shape[-1] - c0))
    return out


def _chain_draws(draws: RateDraws, chain: Chain, rng: np.random.Generator) -> RateDraws:
    """The default chain's draws for its own stores and categories, fresh draws for the copies.

    Copies' affinities are not renormalised: they add pairs, they do not share the template's totals.
    """
    n_s, n_c = len(chain.store), len(chain.category)
    extra = chain.category[len(draws.cat_growth) :]
    cat_growth = _grown(draws.cat_growth, n_c, 0.0, 0.03, rng)
    cat_growth[len(draws.cat_growth) :] += _column("growth")[extra]
    return RateDraws(
        _grown(draws.store_growth, n_s, 0.07, 0.06, rng),
        cat_growth,
        _widened(draws.affinity, (n_s, n_c), 0.25, rng),
        _widened(draws.monthly, (36, n_s, n_c), 0.12, rng),
    )


def _chain_demand(days: pd.DatetimeIndex, demand: Demand, chain: Chain, rng: np.random.Generator) -> Demand:
    """The chain's demand: the default chain's where they overlap, fresh noise for the copies."""
    draws = _chain_draws(demand.draws, chain, rng)
    seasonal = demand.seasonal[:, chain.category]
    rate = _rate(days, seasonal, _level(chain), draws)
    price = demand.price[:, chain.category]
    return Demand(rate, demand.units[chain.category], price, demand.discount, seasonal, draws)


def _chain_catalogue(cat: Catalogue, chain: Chain) -> Catalogue:
    """Each category's template products; the k-th copy's ProductIDs are 1,000,000 x k higher."""
    rows, copy = chain.category, np.arange(len(chain.category)) // len(CATEGORIES)
    ids = cat.ids[rows] + 1_000_000 * copy[:, None]
    return Catalogue(cat.price[rows], cat.weight[rows], cat.slope[rows], ids, cat.names[rows])


def _list_prices(cat: Category, weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """f64[n] list prices ending in .99: log-normal quantiles, stretched at the expensive end.

    Rescaled so the popularity-weighted mean equals the unweighted design mean, which keeps a
    category's price level independent of the seed.
    """
    z = np.array([_NORMAL.inv_cdf((i + 0.5) / cat.products) for i in range(cat.products)])
    log_rel = cat.spread * z + cat.skew * np.maximum(z, 0) ** 2 + rng.normal(0, 0.05, len(z))
    raw = cat.price * np.exp(log_rel)
    raw *= raw.mean() / (raw @ weight / weight.sum())
    price = np.maximum(np.round(raw), 2.0) - 0.01
    if cat.flagship:
        price[-1] = cat.flagship
    return price


def _names(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """object[C,K] product names: a brand of the category's family and a model code."""
    letters = rng.integers(0, 26, size=(*shape, 2))
    numbers = rng.integers(100, 1000, size=shape)
    brand_pick = rng.integers(0, 1000, size=shape)
    names = np.empty(shape, dtype=object)
    for j, cat in enumerate(CATEGORIES):
        pool = BRANDS[cat.family]
        for i in range(shape[1]):
            code = "".join(chr(65 + x) for x in letters[j, i])
            names[j, i] = f"{pool[brand_pick[j, i] % len(pool)]} {code}{numbers[j, i]}"
    return names


def _catalogue(rng: np.random.Generator) -> Catalogue:
    """Per category a few products with fixed list prices and random popularity."""
    shape = (len(CATEGORIES), max(c.products for c in CATEGORIES))
    price, weight = np.zeros(shape), np.zeros(shape)
    for j, cat in enumerate(CATEGORIES):
        weight[j, : cat.products] = _lognormal(rng, 0.4, cat.products)
        price[j, : cat.products] = _list_prices(cat, weight[j, : cat.products], rng)
        if cat.flagship:
            weight[j, cat.products - 1] = FLAGSHIP_WEIGHT
    ids = rng.choice(np.arange(100_000, 1_000_000), size=shape, replace=False)
    return Catalogue(price, weight, rng.normal(0, 0.2, shape), ids, _names(rng, shape))


def _product_probs(cat: Catalogue, months: int = 36) -> np.ndarray:
    """f64[M,C,K] probability of each product within its category, per month."""
    t = (np.arange(months) - 12)[:, None, None] / 12.0
    w = cat.weight * np.exp(cat.slope * t)
    return w / w.sum(axis=2, keepdims=True)


def _discount_prob(windows: dict[str, np.ndarray]) -> np.ndarray:
    """f64[D] probability that a sale is discounted (higher around Black Friday)."""
    return np.clip(0.3 + 0.3 * windows["bf_week"] + 0.3 * windows["black_friday"], 0, 0.9)


def _expected_units() -> np.ndarray:
    """f64[C] expected Quantity of one transaction."""
    k = np.arange(1, 20)
    extra = np.sum((1 - BULK_GEOMETRIC_P) ** (k - 1))  # E[min(G, 19)] for G ~ Geometric(p)
    return 1.0 + _column("bulk") * extra


def _demand(days: pd.DatetimeIndex, cat: Catalogue, rng: np.random.Generator) -> Demand:
    """Uncalibrated rates from the calendar, climate and trends, and the worth of a transaction."""
    cal = _calendar(days)
    windows = _event_windows(days, cal)
    seasonal = _event_lift(windows) * _climate(days) * _weekday(days, cal)[:, None]
    discount = _discount_prob(windows)
    list_price = (_product_probs(cat)[_month_index(days)] * cat.price).sum(axis=2)
    price = list_price * (1 - discount * np.mean(DISCOUNTS))[:, None]
    level = _level(make_chain())
    draws = _draws(level, rng)
    rate = _rate(days, seasonal, level, draws)
    return Demand(rate, _expected_units(), price, discount, seasonal, draws)


def _between(days: pd.DatetimeIndex, a: str, b: str) -> np.ndarray:
    """bool[D] days from a to b, inclusive."""
    return np.asarray((days >= a) & (days <= b))


def _closed(days: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Store kind -> bool[D] days its stores are closed by the 2020 closure timeline."""
    shut_all = _between(days, "2020-03-29", "2020-04-26") | _between(days, "2020-12-14", "2020-12-31")
    shut_all |= np.asarray(days.day_of_week >= 5) & _between(days, "2020-11-21", "2020-12-28")
    malls = _between(days, "2020-03-23", "2020-05-30")
    return {
        "baku_mall": shut_all | malls | _between(days, "2020-06-21", "2020-12-31"),
        "region_mall": shut_all | malls | _between(days, "2020-06-21", "2020-08-30"),
        "baku_street": shut_all,
        "region_street": shut_all,
    }


def closure_days(n_stores: int = len(STORES)) -> pd.DataFrame:
    """Tidy rows (month YYYY-MM, store, closed_days) of every simulated month: each store's closed days.

    The same timeline thins the observed world (`_closure_keep`); a store copies its template's closures.
    """
    chain = make_chain(n_stores, 1)
    days = _days()
    closed = _closed(days)
    per_day = np.stack([closed[STORES[t][2]] for t in chain.store], axis=1)
    per_month = (
        pd.DataFrame(per_day, index=days.to_period("M"), columns=chain.store_ids).groupby(level=0).sum()
    )
    rows = per_month.rename_axis(index="month", columns="store").stack().rename("closed_days").reset_index()
    return rows.assign(month=rows["month"].astype(str), store=rows["store"].astype(str))


def by_category(rows: pd.DataFrame, categories) -> pd.DataFrame:
    """Per-store `rows` repeated for each of `categories` (a covariate file is keyed by store x category)."""
    crossed = rows.merge(pd.DataFrame({"category": list(categories)}), how="cross")
    return crossed[["month", "store", "category", *rows.columns.drop(["month", "store"])]]


def _closure_keep(days: pd.DatetimeIndex) -> np.ndarray:
    """f64[D,S] share of counterfactual demand served in the observed world, before kappa."""
    closed = _closed(days)
    stringency = np.asarray(STRINGENCY)[days.month - 1] * (days.year == COVID_YEAR)
    curfew = np.where(_between(days, "2020-09-28", "2020-11-10"), 0.85, 1.0)
    served = (1 - 0.3 * stringency / 100) * curfew
    # Online orders: a quarter of demand at the first closure, half by December (e-commerce x2).
    since_first_closure = np.asarray((days - pd.Timestamp("2020-03-23")).days)
    online = np.clip(0.25 + 0.25 * since_first_closure / 283, 0.25, 0.5)
    return np.stack([np.where(closed[s[2]], online, served) for s in STORES], axis=1)


def _by_group(x: np.ndarray) -> np.ndarray:
    """f64[D,S,C] -> f64[D,S,G] summed over the categories of each group."""
    return x @ np.eye(3)[_groups()]


def _year_correction(units: np.ndarray, revenue: np.ndarray, target) -> np.ndarray:
    """f64[G] factors that bring expected (units, revenue, smartphone revenue) to target."""
    smart = target[2] / revenue[0]
    lhs = np.array([units[1:], revenue[1:]])
    rhs = np.array([target[0] - smart * units[0], target[1] - target[2]])
    return np.concatenate([[smart], np.maximum(np.linalg.solve(lhs, rhs), 1e-3)])


def _bisect(f, lo: float = 0.0, hi: float = 8.0, steps: int = 50) -> float:
    """Root of a decreasing function on [lo, hi] (clamped to the ends)."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _solve_kappa(units: np.ndarray, revenue: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """f64[G] thinning exponents so that kept f64[D,S,G] units and revenue hit OBSERVED_TARGET."""
    n_units, total, smart = OBSERVED_TARGET

    def kept(x: np.ndarray, g: int, kappa: float) -> float:
        return float((x[:, :, g] * keep**kappa).sum())

    k0 = _bisect(lambda k: kept(revenue, 0, k) - smart)

    def k2(k1: float) -> float:
        revenue1 = kept(revenue, 1, k1)  # the same in every step of the inner bisection
        return _bisect(lambda k: revenue1 + kept(revenue, 2, k) - (total - smart))

    units0 = kept(units, 0, k0)

    def unit_gap(k1: float) -> float:
        return units0 + kept(units, 1, k1) + kept(units, 2, k2(k1)) - n_units

    k1 = _bisect(unit_gap)
    return np.array([k0, k1, k2(k1)])


def _group_factor(log_knots: np.ndarray, t: np.ndarray) -> np.ndarray:
    """f64[D,G] level of each group, log-linear between mid-year knots f64[Y,G]."""
    mids = np.arange(len(log_knots)) + 0.5
    return np.exp(np.stack([np.interp(t, mids, k) for k in log_knots.T], axis=1))


def _knot_step(units: np.ndarray, revenue: np.ndarray, year: np.ndarray) -> np.ndarray:
    """f64[Y,G] log-corrections of the yearly group levels (2020: the counterfactual target)."""
    targets = (*HISTORY_TARGETS, COUNTERFACTUAL_TARGET)
    steps = []
    for y, target in enumerate(targets):
        sums = units[year == y].sum(axis=(0, 1)), revenue[year == y].sum(axis=(0, 1))
        steps.append(np.log(_year_correction(*sums, target)))
    return np.array(steps)


def _store_step(
    units: np.ndarray,
    keep: np.ndarray,
    kappa: np.ndarray,
    covid: np.ndarray,
) -> np.ndarray:
    """f64[S] factors that move each store's observed 2018-2020 unit share to its target."""
    thinned = np.where(covid[:, None, None], keep[:, :, None] ** kappa, 1.0)
    per_store = (units * thinned).sum(axis=(0, 2))
    target = np.array([s[1] for s in STORES])
    return (target / target.sum()) / (per_store / per_store.sum())


def _calibrate(days: pd.DatetimeIndex, demand: Demand, keep: np.ndarray) -> Calibration:
    """Fixed-point fit of store levels, yearly group levels and 2020 thinning exponents."""
    units = _by_group(demand.rate * demand.units)
    revenue = _by_group(demand.rate * (demand.units * demand.price)[:, None])
    t, year = _years_since_2018(days), np.asarray(days.year) - 2018
    covid = year == COVID_YEAR - 2018
    store, log_knots = np.ones(len(STORES)), np.zeros((3, 3))
    for _ in range(CALIBRATION_STEPS):
        scale = store[:, None] * _group_factor(log_knots, t)[:, None]
        log_knots += _knot_step(units * scale, revenue * scale, year)
        kappa = _solve_kappa((units * scale)[covid], (revenue * scale)[covid], keep[covid])
        store *= _store_step(units * scale, keep, kappa, covid)
    return Calibration(store, _group_factor(log_knots, t), kappa)


def _pair_units(days: pd.DatetimeIndex, demand: Demand, cal: Calibration, chain: Chain) -> np.ndarray:
    """f64[S,C] expected observed units 2018-2020 of each pair; `cal.store` holds the chain's levels."""
    group = _groups()[chain.category]
    keep = _closure_keep(days)[:, chain.store, None] ** cal.kappa[group]
    kept = np.where(np.asarray(days.year == COVID_YEAR)[:, None, None], keep, 1.0)
    scale = cal.store[:, None] * cal.group[:, None, group] * kept
    return (demand.rate * demand.units * scale).sum(axis=0)


def _chain_calibration(
    days: pd.DatetimeIndex, demand: Demand, cal: Calibration, chain: Chain, own: Demand
) -> Calibration:
    """The default calibration for the chain (demand `own`): templates' levels, group levels, thinning.

    Each store's level is then rescaled so that its expected observed units over the chain's
    categories equal its template's over theirs in the default chain: a store drawn afresh sells
    like its template. A store that shares all its pairs with the default chain keeps its level.
    """
    default = _pair_units(days, demand, cal, make_chain())
    target = default[chain.store][:, chain.category].sum(axis=1)
    levels = Calibration(cal.store[chain.store], cal.group, cal.kappa)
    units = _pair_units(days, own, levels, chain).sum(axis=1)
    return Calibration(levels.store * (target / units), cal.group, cal.kappa)


def _guids(rng: np.random.Generator, n: int) -> np.ndarray:
    """S36[N] random version-4 GUIDs, lower-case hex."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = np.stack([hexdigits[raw >> 4], hexdigits[raw & 0x0F]], axis=2).reshape(n, 32)
    chars = np.insert(digits, [8, 12, 16, 20], ord("-"), axis=1)
    return np.ascontiguousarray(chars).view("S36").ravel()


def _quantity(rng: np.random.Generator, cat: np.ndarray) -> np.ndarray:
    """i64[N] units per transaction: almost always 1, at most 20."""
    bulk = rng.random(len(cat)) < _column("bulk")[cat]
    extra = np.minimum(rng.geometric(BULK_GEOMETRIC_P, len(cat)), 19)
    return 1 + bulk * extra


def _age(rng: np.random.Generator, cat: np.ndarray) -> np.ndarray:
    """i64[N] buyer age: 20 + a right-skewed gamma, shifted by category, rare entries up to 106."""
    base = 20 + rng.gamma(*AGE_GAMMA, len(cat)) + _column("age")[cat]
    odd = rng.random(len(cat)) < 2e-4
    age = np.where(odd, rng.integers(80, 107, len(cat)), np.floor(base))
    return np.clip(age, 20, 106).astype(np.int64)


def _sell(
    rng: np.random.Generator,
    cat: np.ndarray,
    month: np.ndarray,
    discount: np.ndarray,
    catalogue: Catalogue,
) -> tuple[np.ndarray, np.ndarray]:
    """(i64[N] product slot, f64[N] price): popularity by month, list price less a step discount."""
    cum = np.cumsum(_product_probs(catalogue), axis=2)[month, cat]
    slot = np.minimum((cum < rng.random(len(cat))[:, None]).sum(axis=1), cum.shape[1] - 1)
    off = np.where(rng.random(len(cat)) < discount, rng.choice(DISCOUNTS, len(cat)), 0.0)
    price = np.round(catalogue.price[cat, slot] * (1 - off), 2)
    return slot, np.maximum(price, 1.01)


def _transactions(
    days: pd.DatetimeIndex,
    demand: Demand,
    cal: Calibration,
    catalogue: Catalogue,
    chain: Chain,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per-transaction arrays [N] of the counterfactual world and each row's survival in 2020.

    `demand`, `cal` and `catalogue` are the chain's; each category takes its template's attributes.
    """
    group = _groups()[chain.category]
    counts = rng.poisson(demand.rate * cal.store[:, None] * cal.group[:, None, group])
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    day, store, cat = np.unravel_index(flat, counts.shape)
    slot, price = _sell(rng, cat, _month_index(days)[day], demand.discount[day], catalogue)
    cols = {"day": day, "store": store, "cat": cat, "slot": slot, "price": price}
    template = chain.category[cat]
    cols["quantity"] = _quantity(rng, template)
    cols["female"] = rng.random(len(cat)) < _column("female")[template]
    cols["age"] = _age(rng, template)
    cols["guid"] = _guids(rng, len(cat))
    keep = _closure_keep(days)[day, chain.store[store]] ** cal.kappa[group[cat]]
    cols["observed"] = rng.random(len(cat)) < keep  # one uniform per transaction
    return cols


def _row_order(cols: dict[str, np.ndarray], catalogue: Catalogue, chain: Chain) -> np.ndarray:
    """i64[N] order by SalesDate, ProductCategory, ProductID, TransactionID (compresses well)."""
    rank = np.argsort(np.argsort(chain.category_names))
    pid = catalogue.ids[cols["cat"], cols["slot"]]
    return np.lexsort((cols["guid"], pid, rank[cols["cat"]], cols["day"]))


def _frame(days: pd.DatetimeIndex, cols: dict[str, np.ndarray], cat: Catalogue, chain: Chain) -> pd.DataFrame:
    """The transaction table in the thesis's column order and types."""
    j, slot, quantity, price = cols["cat"], cols["slot"], cols["quantity"], cols["price"]
    frame = {
        "TransactionID": cols["guid"].astype(str),
        "SalesDate": np.asarray(days.strftime("%Y-%m-%d"), dtype=object)[cols["day"]],
        "ProductCategory": chain.category_names[j],
        "ProductID": cat.ids[j, slot].astype(np.int64),
        "ProductName": cat.names[j, slot],
        "Age": cols["age"],
        "Gender": np.where(cols["female"], "Female", "Male").astype(object),
        "StoreId": chain.store_ids[cols["store"]],
        "Quantity": quantity.astype(np.int64),
        "Price": price,
        "Revenue": np.round(quantity * price, 2),
    }
    text = ("TransactionID", "SalesDate", "ProductCategory", "ProductName", "Gender")
    return pd.DataFrame(frame, columns=list(TRANSACTION_COLUMNS)).astype(dict.fromkeys(text, "str"))


def _take(cols: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The given rows of every per-transaction array."""
    return {k: v[rows] for k, v in cols.items()}


def simulate(
    seed: int, n_stores: int = len(STORES), n_categories: int = len(CATEGORIES)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(observed 2018-01-01..2020-12-31, counterfactual 2020 only) transactions of a chain.

    The default chain (20 stores x 40 categories) is drawn and calibrated first, always. A chain of
    another size (`make_chain`) keeps the default's demand for the stores and categories it shares
    with it, draws fresh noise and growth for copies, and takes every store's and category's
    calibration from its template: each store sells like its template store, so totals grow with the
    chain rather than being squeezed to the thesis figures.
    """
    chain = make_chain(n_stores, n_categories)
    rng = np.random.default_rng(seed)
    days = _days()
    template = _catalogue(rng)
    demand = _demand(days, template, rng)
    cal = _calibrate(days, demand, _closure_keep(days))
    own = _chain_demand(days, demand, chain, rng)
    catalogue = _chain_catalogue(template, chain)
    cols = _transactions(days, own, _chain_calibration(days, demand, cal, chain, own), catalogue, chain, rng)
    order = _row_order(cols, catalogue, chain)
    covid = np.asarray(days.year == COVID_YEAR)[cols["day"][order]]
    observed = _frame(days, _take(cols, order[~covid | cols["observed"][order]]), catalogue, chain)
    return observed, _frame(days, _take(cols, order[covid]), catalogue, chain)


def write_dataset(observed: pd.DataFrame, counterfactual: pd.DataFrame, out: Path) -> None:
    """Write out/transactions.parquet and out/counterfactual.parquet (same frames, same bytes).

    Random GUIDs dominate the size: they are stored without a dictionary and with their lengths
    apart (DELTA_LENGTH_BYTE_ARRAY), so zstd sees only hex digits.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for frame, name in ((observed, "transactions"), (counterfactual, "counterfactual")):
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False),
            out / f"{name}.parquet",
            compression="zstd",
            use_dictionary=[c for c in TRANSACTION_COLUMNS if c != "TransactionID"],
            column_encoding={"TransactionID": "DELTA_LENGTH_BYTE_ARRAY"},
        )
