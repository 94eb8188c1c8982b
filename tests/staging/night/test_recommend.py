"""Natural-sleep recommendations (staging/night/recommend.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from staging.night.recommend import NightRecord, duration_range_for_age, recommend
from staging.night.stats import sleep_statistics

W, N1, N2, N3, R = 0, 1, 2, 3, 4


def _night(sol_ep=20, sleep_ep=900, waso_ep=20, tail_ep=4, alerts=()):
    """A night: sol_ep W epochs, sleep with one WASO bout in the middle, tail W epochs."""
    half = sleep_ep // 2
    h = [W] * sol_ep + [N2] * (half - 60) + [R] * 60 + [W] * waso_ep + [N2] * (sleep_ep - half)
    h += [W] * tail_ep
    return sleep_statistics(h, nightmare_alert_outcomes=list(alerts))


def test_good_night_recommends_nothing():
    res = recommend([_night()], age_years=35)
    assert res.recommendations == []
    assert "sleep_duration" in res.passed and "sleep_efficiency" in res.passed
    # rules without the measurements they need are listed, not guessed
    assert "regularity" in res.not_evaluated
    assert "late_immersive" in res.not_evaluated


def test_each_rule_cites_its_number_and_guideline():
    # 40 min SOL (80 epochs), 45 min WASO, 6 h of sleep, SE < 85 %
    s = _night(sol_ep=80, sleep_ep=720, waso_ep=90, tail_ep=40, alerts=["awakening"])
    start = datetime(2024, 3, 1, 23, 0)
    nights = [
        NightRecord(s, lights_off=start, immersive_end=[start - timedelta(minutes=15)]),
        NightRecord(s, lights_off=start + timedelta(days=1, hours=2)),
        NightRecord(s, lights_off=start + timedelta(days=2, minutes=-100)),
    ]
    res = recommend(nights, age_years=9)
    rules = {r.rule: r for r in res.recommendations}
    assert set(rules) == {
        "sleep_duration",
        "sleep_efficiency",
        "sleep_latency",
        "waso",
        "regularity",
        "nightmares",
        "late_immersive",
    }
    assert rules["sleep_duration"].value == pytest.approx(6.0)
    assert "6.0 h" in rules["sleep_duration"].measured
    assert "Paruthi" in rules["sleep_duration"].guideline
    assert rules["sleep_latency"].value == pytest.approx(40.0)
    assert "40 min" in rules["sleep_latency"].measured
    assert rules["waso"].value == pytest.approx(45.0)
    assert rules["sleep_efficiency"].value < 85
    assert rules["regularity"].value > 60
    assert "15 min" in rules["late_immersive"].measured
    assert "3 nights" in rules["nightmares"].measured
    for r in res.recommendations:
        assert r.measured and r.guideline and r.threshold
    json.dumps(res.to_dict())


def test_nightmare_rate_threshold():
    quiet, bad = _night(), _night(alerts=["settled"])
    res = recommend([quiet] * 7 + [bad])  # 1 night in 8 = 0.9 per week: below
    assert not res.recommendations and "nightmares" in res.passed
    res = recommend([quiet] * 6 + [bad])  # 1 in 7 = 1 per week
    assert [r.rule for r in res.recommendations] == ["nightmares"]


def test_duration_table_and_bad_input():
    assert duration_range_for_age(35)[:2] == (7.0, float("inf"))
    assert duration_range_for_age(4)[:2] == (10.0, 13.0)
    assert duration_range_for_age(70)[:2] == (7.0, 8.0)
    with pytest.raises(ValueError, match="age_years"):
        duration_range_for_age(0.1)
    with pytest.raises(ValueError, match="at least one night"):
        recommend([])
    with pytest.raises(TypeError, match="SleepStats"):
        recommend([NightRecord(stats={"tst_min": 400})])


def test_short_recordings_are_not_nights():
    short = sleep_statistics([W] * 2 + [R] * 6 + [W] * 2)  # 5 min
    res = recommend([short], age_years=30)
    assert res.recommendations == []
    assert "short_recordings" in res.not_evaluated
    assert "sleep_efficiency" in res.not_evaluated
    res = recommend([short, _night(alerts=["settled"])], age_years=30)
    assert "1 night" in [r for r in res.recommendations if r.rule == "nightmares"][0].measured
