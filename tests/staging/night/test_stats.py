"""AASM sleep statistics (staging/night/stats.py) against hand-computed hypnograms and YASA."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from staging.night.stats import (
    SleepStats,
    alert_outcomes,
    as_hypnogram,
    sleep_statistics,
    stage_shifts,
)

W, N1, N2, N3, R, U = 0, 1, 2, 3, 4, -1


def test_hand_computed_night():
    # 20 epochs of 30 s = 10 min in bed
    #        0  1  2   3   4   5   6   7  8  9  10  11 12 13 14 15 16 17 18 19
    h = [W, W, N1, N2, N2, N3, N3, W, W, N2, R, R, W, N2, U, R, N2, W, W, W]
    s = sleep_statistics(h)
    assert s.tib_min == 10.0
    # sleep onset epoch 2 (1 min), last sleep epoch 16: SPT = 15 epochs = 7.5 min
    assert s.sol_min == 1.0
    assert s.sleep_onset_epoch == 2
    assert s.spt_min == 7.5
    # sleep epochs: 2,3,4,5,6,9,10,11,13,15,16 = 11 -> 5.5 min
    assert s.tst_min == 5.5
    # W inside SPT: epochs 7, 8, 12 = 1.5 min; two bouts (7-8 and 12); W in all: 8 epochs
    assert s.waso_min == 1.5
    assert s.n_awakenings == 2
    # first R at epoch 10: 8 epochs after onset = 4 min
    assert s.rem_latency_min == 4.0
    assert s.se_pct == pytest.approx(55.0)
    assert s.sme_pct == pytest.approx(5.5 / 7.5 * 100)
    assert s.stage_min == {"W": 4.0, "N1": 0.5, "N2": 2.5, "N3": 1.0, "R": 1.5, "?": 0.5}
    assert s.stage_pct_tst["N2"] == pytest.approx(2.5 / 5.5 * 100)
    assert sum(s.stage_pct_tst.values()) == pytest.approx(100.0)
    # shifts between scored epochs (the ? at 14 skipped: N2 ? R is one shift), W included
    assert s.stage_shifts == 11 == stage_shifts(h)
    assert s.stage_latency_min == {"N1": 1.0, "N2": 1.5, "N3": 2.5, "R": 5.0}
    assert not s.ended_asleep and sleep_statistics(h[:-3]).ended_asleep


def test_arousal_index_and_alert_outcomes():
    h = [W] * 4 + [N2] * 112 + [R] * 4  # 2 h in bed, 58 min of sleep
    # arousals at 10 s (W: ignored), 3000 s, 3001 s (N2), 3590 s (R)
    s = sleep_statistics(h, arousal_onsets_s=[10.0, 3000.0, 3001.0, 3590.0])
    assert s.n_arousals == 3
    assert s.arousal_index == pytest.approx(3 / (s.tst_min / 60))
    outs = alert_outcomes([3400.0, 3590.0], h + [W] * 10)
    assert outs == ["settled", "awakening"]
    s = sleep_statistics(h, nightmare_alert_outcomes=outs)
    assert s.n_nightmare_alerts == 2
    assert s.nightmare_outcomes == {"settled": 1, "awakening": 1}
    assert s.n_arousals is None and math.isnan(s.arousal_index)


def test_no_sleep_and_no_rem():
    s = sleep_statistics([W, W, W, U])
    assert s.tst_min == 0 and s.spt_min == 0 and s.se_pct == 0
    assert math.isnan(s.sol_min) and math.isnan(s.waso_min) and math.isnan(s.rem_latency_min)
    d = s.to_dict()
    assert d["sol_min"] is None
    json.dumps(d)  # JSON-ready
    s = sleep_statistics([W, N2, N2, W])
    assert math.isnan(s.rem_latency_min) and s.n_awakenings == 0


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        sleep_statistics([])
    with pytest.raises(ValueError, match="-1..4"):
        sleep_statistics([0, 5])
    with pytest.raises(ValueError, match="1-D"):
        as_hypnogram(np.zeros((2, 2), int))
    with pytest.raises(TypeError, match="integer"):
        as_hypnogram(["W", "N1"])
    with pytest.raises(ValueError, match="outcome"):
        sleep_statistics([0, 1], nightmare_alert_outcomes=["maybe"])


hypnos = st.lists(st.sampled_from([W, N1, N2, N3, R, U]), min_size=2, max_size=400)


@settings(max_examples=60, deadline=None)
@given(h=hypnos)
def test_agrees_with_yasa_where_definitions_agree(h):
    import yasa

    ours = sleep_statistics(h)
    hyp = yasa.Hypnogram.from_integers(
        np.asarray(h), mapping={0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R", -1: "Uns"}
    )
    ref = hyp.sleep_statistics()
    pairs = {
        "TIB": ours.tib_min,
        "SPT": ours.spt_min,
        "TST": ours.tst_min,
        "WASO": ours.waso_min,
        "SOL": ours.sol_min,
        "N1": ours.stage_min["N1"],
        "N2": ours.stage_min["N2"],
        "N3": ours.stage_min["N3"],
        "REM": ours.stage_min["R"],
        "SE": ours.se_pct,
        "SME": ours.sme_pct,
        "%N1": ours.stage_pct_tst["N1"],
        "%REM": ours.stage_pct_tst["R"],
        # YASA counts REM latency from lights off, AASM from sleep onset
        "Lat_REM": ours.sol_min + ours.rem_latency_min,
    }
    if not math.isnan(ours.stage_latency_min["R"]):
        assert ours.stage_latency_min["R"] == pytest.approx(float(ref["Lat_REM"]))
    for key, val in pairs.items():
        r = float(ref[key])
        if math.isnan(r) or (key in ("WASO", "SOL") and ours.tst_min == 0):
            assert math.isnan(val) or ours.tst_min == 0, key
            continue
        if ours.tst_min == 0 and key in ("SME", "%N1", "%REM"):
            continue
        assert val == pytest.approx(r, abs=1e-3), key


@settings(max_examples=40, deadline=None)
@given(h=hypnos)
def test_summary_round_trip(h):
    s = sleep_statistics(h, arousal_onsets_s=[45.0], nightmare_alert_outcomes=["settled"])
    d = s.to_dict()
    assert SleepStats.from_dict(json.loads(json.dumps(d))).to_dict() == d
    assert stage_shifts(h) == np.count_nonzero(np.diff([x for x in h if x >= 0]))


def test_summary_of_an_older_report_lacks_the_new_keys():
    d = sleep_statistics([W, N2, N2, R, W]).to_dict()
    del d["stage_shifts"], d["stage_latency_min"]
    s = SleepStats.from_dict(d)
    assert s.stage_shifts == 0 and s.stage_latency_min == {}
    with pytest.raises(KeyError):
        SleepStats.from_dict({"tib_min": 1.0})
