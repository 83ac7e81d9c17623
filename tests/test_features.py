"""Calendar covariates, per-series scaling and windows."""

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from salesjax import features
from salesjax.errors import SalesjaxError

N_CALENDAR = 3  # calendar columns of the synthetic calendars of the window tests (any width works)


def calendar(start="2018-01", end="2021-12", country="AZ", events="auto"):
    """Monthly calendar features indexed by 'YYYY-MM' (params.yaml's AZ default unless told)."""
    cal = features.monthly_calendar(pd.Period(start, "M"), pd.Period(end, "M"), country, events)
    return cal.set_axis(cal.index.astype(str))


def test_moving_holidays_land_in_their_real_months():
    cal = calendar()
    # Ramazan Bayrami: 2018-06-15, 2019-06-05 (its lead days start in May), 2020-05-24.
    assert cal.loc["2018-06", "ramazan"] == 1.0 and cal.loc["2018-05", "ramazan"] == 0.0
    assert 0 < cal.loc["2019-05", "ramazan"] < 1 and 0 < cal.loc["2019-06", "ramazan"] < 1
    assert cal.loc["2020-05", "ramazan"] == 1.0 and cal.loc["2020-06", "ramazan"] == 0.0
    # Gurban Bayrami: 2019-08-12, 2020-07-31.
    assert cal.loc["2019-08", "gurban"] == 1.0 and cal.loc["2020-07", "gurban"] == 1.0
    assert cal.loc["2020-08", "gurban"] == 0.0
    assert (cal.loc[["2018-03", "2019-03", "2020-03"], "novruz"] == 1.0).all()


def test_the_az_default_is_the_azerbaijani_retail_calendar():
    events = ["novruz", "ramazan", "gurban", "new_year", "womens_day", "black_friday", "school_start"]
    assert calendar().columns.tolist() == [*features.BASE_FEATURES, *events]
    assert calendar(events=events).equals(calendar())  # the defaults by name: the same columns and values


def test_another_country_gets_its_holidays_and_not_the_azerbaijani_ones():
    au = calendar(country="AU")
    assert au.columns.tolist() == [
        *features.BASE_FEATURES,
        "new_year",
        "christmas",
        "black_friday",
        "school_start",
    ]
    # January 2019: New Year's Day, Australia Day (Saturday 26th); April: Good Friday, Easter Monday, Anzac
    # Day (Thursday 25th), three weekdays off. AZ has none of these, and Novruz (20-24 March) only AZ has.
    assert au.loc["2019-01", "holidays"] == pytest.approx(2 / 5)
    assert au.loc["2019-04", "holidays"] == pytest.approx(3 / 5)
    assert au.loc["2019-04", "working_days"] == pytest.approx((22 - 3 - 21) / 3)
    assert au.loc["2019-03", "holidays"] == 0 and calendar().loc["2019-03", "holidays"] > 0
    assert calendar().loc["2019-04", "holidays"] == 0


def test_transferred_working_days_are_azerbaijans_only():
    march = pd.Period("2020-03", "M")
    assert not features.daily_calendar(march, march, "AU", "auto").loc["2020-03-29", "working_days"]


def test_events_are_rules_default_columns_or_holiday_names():
    au = calendar(country="AU", events=["Anzac Day", "australia_day", "Black Friday", "christmas"])
    assert au.columns[len(features.BASE_FEATURES) :].tolist() == [
        "anzac_day",
        "australia_day",
        "black_friday",
        "christmas",
    ]
    assert au.loc["2019-04", "anzac_day"] == 1.0 and au.loc["2019-01", "australia_day"] == 1.0
    assert au.loc["2019-11", "black_friday"] == 1.0 and au.loc["2019-12", "christmas"] == 1.0
    assert au.loc["2019-03"].iloc[len(features.BASE_FEATURES) :].sum() == 0


@pytest.mark.parametrize(
    ("country", "events", "message"),
    [
        (
            "AU",
            ["novruz"],
            "'novruz' is neither a built-in rule (black_friday, school_start) nor a holiday of AU",
        ),
        ("AZ", ["Christmas Day"], "'Christmas Day' is neither"),
        ("AZ", ["Black Friday", "black_friday"], "names the event 'black_friday' twice"),
    ],
)
def test_an_unknown_or_repeated_event_is_one_line(country, events, message):
    with pytest.raises(SalesjaxError, match=re.escape(message)) as info:
        calendar(country=country, events=events)
    assert "\n" not in str(info.value)


def test_black_friday_follows_the_fourth_thursday():
    assert [features.black_friday(y) for y in (2018, 2019, 2020)] == [
        dt.date(2018, 11, 23),
        dt.date(2019, 11, 29),
        dt.date(2020, 11, 27),
    ]


def test_working_days_count_holidays_and_transfers():
    daily = features.daily_calendar(pd.Period("2020-03", "M"), pd.Period("2020-03", "M"), "AZ", "auto")
    # March 2020: 22 weekdays; holidays on weekdays: 9 (8 March observed), 20, 23-27 (Novruz + observed
    # + the day off moved from Sunday 29 March) = 7; Sunday 29 March was a working day.
    assert daily["working_days"].sum() == 22 - 7 + 1
    assert daily.loc["2020-03-29", "working_days"]


def test_scaler_uses_available_months_only_and_keeps_zero_series_finite():
    history = np.array([[10.0, 30.0, 999.0], [0.0, 0.0, 0.0]])
    available = np.array([[True, True, False], [True, True, True]])
    scaler = features.Scaler.fit(history, available)
    np.testing.assert_allclose(scaler.scale, [20.0, 1.0])
    assert np.isfinite(scaler.static()).all()


@pytest.fixture
def windows():
    """Windows of 2 series x 8 months, the second starting in month 3, context 3, horizon 2."""
    history = np.arange(16, dtype=float).reshape(2, 8) + 1
    available = np.ones_like(history, bool)
    available[1, :3] = False
    cal = np.tile(np.arange(3 + 8 + 2, dtype=np.float32)[:, None], (1, N_CALENDAR))
    scaler = features.Scaler.fit(history, available)
    out = features.make_windows(
        history,
        available,
        cal,
        scaler,
        np.array([0, 1]),
        np.array([1, 0]),
        np.arange(1, 9),
        context=3,
        horizon=2,
        require_target=False,
    )
    return history, scaler, out


def test_windows_have_the_right_shapes_values_and_masks(windows):
    history, scaler, w = windows
    assert w.x.shape == (16, 5, features.num_features(N_CALENDAR))
    assert w.y.shape == w.mask.shape == (16, 2)
    first = w.x[0]  # series 0, origin 1: context months -2..0, horizon months 1..2
    np.testing.assert_allclose(first[:, 0], [0, 0, history[0, 0] / scaler.scale[0], 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(first[:, 1], [0, 0, 1, 0, 0])  # observed flag
    np.testing.assert_array_equal(first[:, 2], [0, 0, 0, 1, 1])  # horizon flag
    np.testing.assert_array_equal(first[:, 7], [1, 2, 3, 4, 5])  # calendar row = context + month
    np.testing.assert_allclose(w.y[0], history[0, 1:3] / scaler.scale[0], rtol=1e-6)


def test_targets_after_the_history_are_masked_and_zero(windows):
    _, _, w = windows
    last = 7  # series 0, origin 8: both horizon months lie after the history
    assert w.mask[last].sum() == 0 and w.y[last].sum() == 0
    assert w.mask[6].tolist() == [1, 0]  # origin 7: one month inside, one after


def test_late_series_context_is_padded_and_flagged(windows):
    _, _, w = windows
    late = w.x[8 + 3]  # series 1, origin 4: context months 1..3, only month 3 available
    np.testing.assert_array_equal(late[:3, 1], [0, 0, 1])
    assert w.store[8] == 1 and w.category[8] == 0 and w.series[8] == 1


def test_training_windows_need_a_target_and_an_observed_context():
    history = np.ones((1, 6))
    available = np.array([[False, False, True, True, True, True]])
    cal = np.zeros((2 + 6 + 2, N_CALENDAR), np.float32)
    w = features.make_windows(
        history,
        available,
        cal,
        features.Scaler.fit(history, available),
        np.zeros(1, int),
        np.zeros(1, int),
        np.arange(1, 6),
        context=2,
        horizon=2,
        require_target=True,
    )
    assert w.series.tolist() == [0, 0, 0]  # origins 3, 4, 5 only
    assert (w.mask.sum(axis=1) > 0).all() and (w.x[:, :2, 1].sum(axis=1) > 0).all()


def _seasonal_windows(
    history: np.ndarray, available: np.ndarray, store: np.ndarray, reference: str = "seasonal", origin=None
) -> features.Windows:
    """Windows at `origin` (default: right after `history` f[S,T]), context 12, horizon 2."""
    cal = np.zeros((12 + history.shape[1] + 2, N_CALENDAR), np.float32)
    scaler = features.Scaler.fit(history, available, reference)
    ids = np.zeros(len(history), int)
    origin = np.array([history.shape[1] if origin is None else origin])
    return features.make_windows(
        history, available, cal, scaler, store, ids, origin, context=12, horizon=2, require_target=False
    )


def test_seasonal_windows_forecast_the_change_from_last_year_in_units_of_the_context_level():
    history = 10.0 + np.arange(14.0)[None]  # months 0..13; the window's context is months 2..13
    w = _seasonal_windows(history, np.ones_like(history, bool), np.zeros(1, int))
    level = history[0, 2:].mean()
    np.testing.assert_allclose(w.level, [level], rtol=1e-6)
    np.testing.assert_allclose(w.reference[0], history[0, 2:4] / level, rtol=1e-6)  # months 14, 15 - 12
    np.testing.assert_array_equal(w.x[0, 12:, 4], [1, 1])  # the reference is a real month
    np.testing.assert_allclose(w.x[0, :12, 0], history[0, 2:] / level, rtol=1e-6)


def test_without_a_year_of_pairs_in_training_the_reference_is_the_level():
    history = 10.0 + np.arange(12.0)[None]  # no month has its month a year before observed
    w = _seasonal_windows(history, np.ones_like(history, bool), np.zeros(1, int))
    np.testing.assert_array_equal(w.reference[0], [1, 1])
    np.testing.assert_array_equal(w.x[0, 12:, 4], [0, 0])


def test_the_profile_averages_the_month_over_every_complete_year_before_the_origin():
    season = 1 + 0.3 * np.sin(np.arange(12))
    season /= season.mean()
    history = 100 * np.tile(season, 3)[None] * np.repeat([1.0, 1.1, 1.2], 12)  # three years of growth
    w = _seasonal_windows(history, np.ones_like(history, bool), np.zeros(1, int), "profile")
    np.testing.assert_allclose(w.reference[0], season[:2], rtol=1e-6)  # the years agree: no shrinkage
    np.testing.assert_allclose(w.level, [history[0, 24:].mean()], rtol=1e-6)
    # a year with a missing month is left out: the first year's odd months no longer count
    odd = history.copy()
    odd[0, :2] *= [1.5, 0.5]
    available = np.ones_like(history, bool)
    available[0, 5] = False
    w = _seasonal_windows(odd, available, np.zeros(1, int), "profile")
    np.testing.assert_allclose(w.reference[0], season[:2], rtol=1e-6)


def test_a_profile_the_years_disagree_on_is_shrunk_towards_the_level():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.2, (1, 96))
    flat = 100 * np.exp(noise)  # no season at all: eight years of noise
    seasonal = flat * np.tile(1 + 0.5 * np.sin(np.arange(12)), 8)
    for history, at_most in ((flat, 0.02), (seasonal, 0.6)):
        w = _seasonal_windows(history, np.ones_like(history, bool), np.zeros(1, int), "profile")
        years = history[0].reshape(8, 12)
        raw = (years / years.mean(axis=1, keepdims=True)).mean(axis=0)[:2]
        assert np.abs(w.reference[0] - 1).max() <= np.abs(raw - 1).max()  # never further from the level
        assert np.abs(w.reference[0] - 1).max() < at_most
    np.testing.assert_allclose(w.reference[0], raw, atol=0.02)  # a strong season is kept


PROFILE_WINDOW = {"context": 12, "horizon": 2, "require_target": False, "smoothing": 0.3}


def test_the_profile_never_reads_the_origin_or_later_months():
    rng = np.random.default_rng(1)
    history = rng.uniform(50, 150, (2, 40))
    poisoned = history.copy()
    poisoned[:, 30:] *= 1000
    available = np.ones_like(history, bool)
    scaler = features.Scaler.fit(history[:, :30], available[:, :30], "profile")
    cal = np.zeros((12 + 40 + 2, N_CALENDAR), np.float32)
    ids = np.zeros(2, int)
    windows = [
        features.make_windows(h, available, cal, scaler, ids, ids, np.array([30]), **PROFILE_WINDOW)
        for h in (history, poisoned)
    ]
    np.testing.assert_array_equal(windows[0].reference, windows[1].reference)
    np.testing.assert_array_equal(windows[0].x[:, :12], windows[1].x[:, :12])


def test_the_recent_level_weighs_the_deseasonalised_context_months_by_their_age():
    index = np.tile([0.5, 1.5], 6)[None, None]  # f[S=1,O=1,C=12]
    path = np.r_[np.ones(9), 1.6, 1.6, 1.6]  # the level rose by 60% in the last three months
    observed = np.ones_like(index, bool)
    observed[..., 4] = False  # an unobserved month does not count, whatever it holds
    scaled = index * path / path.mean()
    scaled[..., 4] = 100.0
    for smoothing in (0.0, 0.3):
        weight = np.where(observed[0, 0], (1 - smoothing) ** np.arange(12)[::-1], 0.0)
        expected = (weight * path).sum() / weight.sum() / path.mean()
        got = features.recent_level(scaled, observed, index, smoothing)
        np.testing.assert_allclose(got, [[expected]], rtol=1e-12)
    assert features.recent_level(scaled, observed, index, 0.3) > features.recent_level(
        scaled, observed, index, 0.0
    )
    assert features.recent_level(10 * scaled, observed, index, 0.3) == features.RECENT_BOUNDS[1]
    nothing = features.recent_level(scaled, observed, np.full_like(index, features.INDEX_FLOOR / 2), 0.3)
    np.testing.assert_array_equal(nothing, [[1.0]])  # no month with a usable index: the mean level


def test_a_profile_window_follows_a_recent_jump_in_level_by_its_smoothing():
    season = 1 + 0.3 * np.sin(np.arange(12))
    history = 100 * np.tile(season, 3)[None]
    history[0, -3:] *= 1.6  # the last three months before the origin jumped
    available = np.ones_like(history, bool)
    cal = np.zeros((12 + 36 + 2, N_CALENDAR), np.float32)
    scaler = features.Scaler.fit(history, available, "profile")
    ids, origin = np.zeros(1, int), np.array([36])
    refs = {
        a: features.make_windows(
            history, available, cal, scaler, ids, ids, origin, **PROFILE_WINDOW | {"smoothing": a}
        ).reference[0]
        for a in (0.0, 0.3, 0.6)
    }
    assert refs[0.0][0] < refs[0.3][0] < refs[0.6][0]  # more weight on the latest months: a higher level
    np.testing.assert_allclose(refs[0.3] / refs[0.0], refs[0.3][0] / refs[0.0][0])  # one factor per window


def test_without_a_complete_year_the_profile_is_last_year_s_month():
    history = 10.0 + np.arange(14.0)[None]
    available = np.ones_like(history, bool)
    available[0, 7] = False  # the only year before the origin is incomplete
    seasonal, profile = (
        _seasonal_windows(history, available, np.zeros(1, int), ref) for ref in ("seasonal", "profile")
    )
    np.testing.assert_array_equal(profile.reference, seasonal.reference)


def test_group_profiles_give_each_series_its_store_total_in_the_store_s_units():
    rng = np.random.default_rng(0)
    history = rng.uniform(1, 10, (3, 14))
    w = _seasonal_windows(history, np.ones_like(history, bool), np.array([0, 0, 1]))
    store0 = history[:2].sum(axis=0)
    expected = store0[2:] / store0[2:].mean()
    for s in (0, 1):
        np.testing.assert_allclose(w.x[s, :12, 5], expected, rtol=1e-5)
        np.testing.assert_allclose(w.x[s, 12:, 5], store0[2:4] / store0[2:].mean(), rtol=1e-5)
    np.testing.assert_allclose(w.x[2, :12, 5], history[2, 2:] / history[2, 2:].mean(), rtol=1e-5)
