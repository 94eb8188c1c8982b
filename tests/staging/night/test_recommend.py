"""Natural-sleep recommendations (staging/night/recommend.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from staging.night.recommend import (
    RULES,
    NightRecord,
    RuleInput,
    duration_range_for_age,
    late_immersive,
    nightmares,
    recommend,
    regularity,
    sleep_duration,
    sleep_efficiency,
    sleep_latency,
    waso,
)
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
        NightRecord(s, lights_off=start + timedelta(days=d, minutes=m),
                    immersive_end=[start - timedelta(minutes=15)] if d == 0 else [])
        for d, m in enumerate([0, 120, -100, 0, 120, -100, 0])
    ]  # fmt: skip
    res = recommend(nights, age_years=9)
    rules = {r.rule: r for r in res.recommendations}
    assert set(rules) == {rule.__name__ for rule in RULES}
    assert [r.rule for r in res.recommendations] == [rule.__name__ for rule in RULES]
    assert rules["sleep_duration"].value == pytest.approx(6.0)
    assert "6.0 h over 7 nights" in rules["sleep_duration"].measured
    assert "Paruthi" in rules["sleep_duration"].guideline
    assert rules["sleep_latency"].value == pytest.approx(40.0)
    assert "40 min" in rules["sleep_latency"].measured
    assert rules["waso"].value == pytest.approx(45.0)
    assert rules["sleep_efficiency"].value < 85
    assert rules["regularity"].value > 60
    assert "15 min" in rules["late_immersive"].measured
    assert "7 nights" in rules["nightmares"].measured
    assert rules["nightmares"].value == pytest.approx(7.0)  # every night: 7 per 7 nights
    for r in res.recommendations:
        assert r.measured and r.guideline and r.threshold and r.nights == 7
    json.dumps(res.to_dict())


def test_one_night_of_alerts_is_never_a_weekly_rate():
    """Issue 14: '2 nightmare alerts on 1 of 1 night (= 7.0 nights per week)' must not recur."""
    res = recommend([_night(alerts=["awakening", "settled"])])
    assert res.recommendations == []
    why = res.not_evaluated["nightmares"]
    assert "2 alert(s) of the nightmare detector over 1 night" in why
    assert "1 followed by waking within 3 min, 1 settled" in why
    assert ">= 7 recorded nights, have 1" in why
    assert "per week" not in why and "7.0" not in why


def test_nightmare_rule_counts_waking_not_alerts():
    quiet, woke, settled = _night(), _night(alerts=["awakening"]), _night(alerts=["settled"] * 3)
    inp = RuleInput([NightRecord(n) for n in [quiet] * 6 + [settled] * 2])
    assert nightmares(inp) is None  # 6 alerts, none followed by waking
    assert "6 alert(s)" in inp.passed["nightmares"] and "0 of 8" in inp.passed["nightmares"]
    inp = RuleInput([NightRecord(n) for n in [quiet] * 7 + [woke]])
    assert nightmares(inp) is None  # 1 night in 8 = 0.9 per 7 nights: below
    inp = RuleInput([NightRecord(n) for n in [quiet] * 6 + [woke]])
    rec = nightmares(inp)  # 1 in 7 = 1 per 7 nights
    assert rec is not None and rec.nights == 7 and rec.value == pytest.approx(1.0)
    assert "alert" in rec.title.lower() and "not a diagnosis" in rec.advice


def test_rules_one_by_one():
    good, bad = _night(), _night(sol_ep=80, sleep_ep=720, waso_ep=90, tail_ep=40)
    for rule, attr in (
        (sleep_efficiency, "se_pct"),
        (sleep_latency, "sol_min"),
        (waso, "waso_min"),
    ):
        inp = RuleInput([NightRecord(good)])
        assert rule(inp) is None and "over 1 night" in inp.passed[rule.__name__]
        rec = rule(RuleInput([NightRecord(bad)] * 3 + [NightRecord(good)]))
        assert rec is not None and rec.nights == 4
        assert rec.value == pytest.approx((3 * getattr(bad, attr) + getattr(good, attr)) / 4)
        assert "(3 of 4 nights beyond the threshold)" in rec.measured
    inp = RuleInput([NightRecord(good)])
    assert sleep_duration(inp) is None and inp.not_evaluated["sleep_duration"] == "age not given"
    inp = RuleInput([NightRecord(bad)], age_years=30)  # 6 h < 7 h
    assert sleep_duration(inp).value == pytest.approx(6.0)
    inp = RuleInput([NightRecord(good)] * 2)
    assert regularity(inp) is None and "have 0" in inp.not_evaluated["regularity"]
    inp = RuleInput([NightRecord(good)])
    assert late_immersive(inp) is None
    assert inp.not_evaluated["late_immersive"] == "no lights-off time"


def test_sleep_duration_not_judged_on_a_recording_that_ends_asleep():
    asleep = sleep_statistics([W] * 20 + [N2] * 700)  # recording stopped during sleep: 5.8 h
    assert asleep.ended_asleep and not _night().ended_asleep
    inp = RuleInput([NightRecord(asleep)], age_years=30)
    assert sleep_duration(inp) is None
    assert "ended during sleep" in inp.not_evaluated["sleep_duration"]
    inp = RuleInput([NightRecord(asleep), NightRecord(_night(sleep_ep=700))], age_years=30)
    rec = sleep_duration(inp)
    assert rec.nights == 1 and "1 recording(s) that ended during sleep left out" in rec.measured


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
    assert "over 1 night" in res.not_evaluated["nightmares"]
    assert "1 recording(s) shorter than 3 h" in res.not_evaluated["short_recordings"]
