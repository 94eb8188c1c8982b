"""The sleeper's profile (staging/closedloop/profile.py)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from staging.closedloop.policy import DEFAULT_LADDER
from staging.closedloop.profile import (
    POPULATION,
    NightSummary,
    SleeperProfile,
    cue_key,
    outcome_class,
)
from staging.errors import StagingError


def test_first_night_uses_population_defaults_and_says_so(tmp_path):
    p = SleeperProfile.load_or_default(tmp_path / "mia.json")
    assert p.is_default
    assert "population defaults" in p.notice
    assert p.baseline["rem_hr_bpm"] == POPULATION["rem_hr_bpm"]
    assert p.detector_baseline() == {"rem_hr_bpm": None, "rem_rmssd_ms": None, "rem_emg_uv": None}
    assert p.first_step(DEFAULT_LADDER) == (0, "population default: softest step first")


def test_learns_saves_and_reloads(tmp_path):
    path = tmp_path / "sub" / "mia.json"
    p = SleeperProfile.load_or_default(path)
    p.name = "Mia"
    p.update(
        NightSummary(rem_hr_bpm=84.0, rem_rmssd_ms=60.0, rem_emg_uv=2.0, arousal_index=10.0,
                     cue_outcomes=[("audio", 0.15, "settled REM"), ("vibration", 0.4, "woke")]),
        when=datetime(2024, 3, 2, 7, 0),
    )  # fmt: skip
    p.save(path)
    q = SleeperProfile.load(path)
    assert not q.is_default and q.nights == 1 and q.name == "Mia"
    assert "1 night" in q.notice
    assert q.baseline["rem_hr_bpm"] == 84.0
    assert q.cues[cue_key("audio", 0.15)] == {"settled": 1, "woke": 0, "no effect": 0}
    assert q.cues["vibration 0.40"]["woke"] == 1
    # second night moves the baseline half way (weight 1/2), missing values leave it alone
    q.update(NightSummary(rem_hr_bpm=80.0, rem_emg_uv=None))
    assert q.baseline["rem_hr_bpm"] == pytest.approx(82.0)
    assert q.baseline["rem_emg_uv"] == 2.0
    # later nights weigh at least 0.3
    for _ in range(10):
        q.update(NightSummary(rem_hr_bpm=70.0))
    assert q.baseline["rem_hr_bpm"] == pytest.approx(70.0, abs=0.5)
    assert q.detector_baseline()["rem_rmssd_ms"] == 60.0
    q.save(path)
    assert json.loads(path.read_text())["nights"] == 12
    assert not list(path.parent.glob("*.tmp"))


def test_first_step_skips_a_cue_that_never_works():
    p = SleeperProfile(nights=3)
    p.cues[cue_key("audio", 0.15)] = {"settled": 0, "woke": 0, "no effect": 4}
    step, why = p.first_step(DEFAULT_LADDER)
    assert step == 1 and "not tried" in why
    p.cues[cue_key("audio", 0.35)] = {"settled": 2, "woke": 1, "no effect": 0}
    assert p.first_step(DEFAULT_LADDER)[0] == 1
    p.cues[cue_key("audio", 0.35)] = {"settled": 0, "woke": 0, "no effect": 5}
    p.cues[cue_key("vibration", 0.4)] = {"settled": 0, "woke": 0, "no effect": 5}
    # never starts at the last step (the wake)
    assert p.first_step(DEFAULT_LADDER)[0] == len(DEFAULT_LADDER) - 2
    # one that settled once is kept
    p.cues[cue_key("audio", 0.15)] = {"settled": 1, "woke": 0, "no effect": 6}
    assert p.first_step(DEFAULT_LADDER)[0] == 0


def test_outcome_classes():
    assert outcome_class("settled N2") == "settled"
    assert outcome_class("woke") == "woke"
    assert outcome_class("awakening") == "woke"
    assert outcome_class("confusion arousal") == "no effect"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "not a readable"),
        ('{"format": "x"}', "not a dreamnet sleeper profile"),
        ('{"format": "dreamnet-sleeper-profile", "version": 9}', "version"),
        ('{"format": "dreamnet-sleeper-profile", "version": 1, "nights": -1}', "nights"),
        (
            '{"format": "dreamnet-sleeper-profile", "version": 1, "baseline": {"rem_hr_bpm": "x"}}',
            "rem_hr_bpm",
        ),
        ('{"format": "dreamnet-sleeper-profile", "version": 1, "baseline": {"foo": 1}}', "foo"),
        ('{"format": "dreamnet-sleeper-profile", "version": 1, "cues": {"a": {"x": 1}}}', "cue"),
    ],
)
def test_bad_profile_files(tmp_path, content, match):
    f = tmp_path / "p.json"
    f.write_text(content)
    with pytest.raises(StagingError, match=match):
        SleeperProfile.load(f)
    with pytest.raises(StagingError, match="not found"):
        SleeperProfile.load(tmp_path / "missing.json")
