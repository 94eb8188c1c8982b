"""Streaming AASM arousal detector (staging/closedloop/arousal.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _constants import FS
from _events_synth import sleep_chunk, split

from headset.chunk import Chunk
from staging.channels import pick_channels
from staging.closedloop.arousal import ArousalDetector, detect_arousals, match_events
from staging.errors import StagingError

W, N1, N2, N3, R = 0, 1, 2, 3, 4


def _run(chunk, hyp, pieces=None, **kw):
    det = ArousalDetector(chunk.sfreq, chunk.ch_names, chunk.ch_types, **kw)
    det.set_hypnogram(hyp)
    for c in pieces or [chunk]:
        det.push(c)
    det.flush()
    return det


def test_constructed_events_in_n2():
    events = [
        (40.0, 5.0, 10.0, 40.0),  # alpha arousal, 5 s: detected
        (80.0, 6.0, 22.0, 25.0),  # beta arousal: detected
        (120.0, 1.5, 10.0, 40.0),  # too short (< 3 s): not an arousal
        (160.0, 1.5, 13.0, 60.0),  # spindle: not an arousal
        (200.0, 4.0, 10.0, 40.0),  # detected ...
        (206.0, 4.0, 10.0, 40.0),  # ... but this one follows it without 10 s of stable sleep
    ]
    ch = sleep_chunk(240, FS, seed=1, eeg_events=events)
    det = _run(ch, [N2] * 8)
    onsets = [e.onset_s for e in det.events]
    tp, fp, fn = match_events(onsets, [40.0, 80.0, 200.0], tol_s=3.0)
    assert (tp, fp, fn) == (3, 0, 0), [(e.onset_s, e.offset_s, e.band) for e in det.events]
    bands = {round(e.onset_s / 40) * 40: e.band for e in det.events}
    assert bands[40] == "alpha" and bands[80] == "beta"
    for e in det.events:
        assert e.stage == N2 and e.duration_s >= 3.0 and e.shift_db > 6
        assert e.to_annotation().description == "Detected arousal"
        assert e.to_event()["type"] == "arousal"


def test_rem_needs_a_chin_emg_rise():
    events = [(40.0, 5.0, 10.0, 40.0), (100.0, 5.0, 10.0, 40.0)]
    emg = [(100.5, 3.0, 6.0)]  # EMG rises only with the second one
    ch = sleep_chunk(150, FS, seed=2, eeg_events=events, emg_events=emg)
    det = _run(ch, [R] * 5)
    assert [round(e.onset_s) for e in det.events] == pytest.approx([100], abs=3)
    assert det.events[0].stage == R and det.events[0].emg_rise_s >= 1.0
    # the same in N2 needs no EMG
    det = _run(ch, [N2] * 5)
    assert len(det.events) == 2


def test_no_emg_degrades_and_says_so():
    events = [(40.0, 5.0, 10.0, 40.0)]
    ch = sleep_chunk(90, FS, seed=3, eeg_events=events, with_emg=False)
    det = _run(ch, [R] * 3)
    assert det.events == []  # REM arousals cannot be confirmed without EMG: none invented
    assert any("chin EMG" in m for m in det.missing)
    assert len(_run(ch, [N2] * 3).events) == 1


def test_not_from_wake_and_needs_stable_sleep_before():
    events = [(35.0, 5.0, 10.0, 40.0), (95.0, 5.0, 10.0, 40.0)]
    ch = sleep_chunk(150, FS, seed=4, eeg_events=events)
    # epoch 1 (30-60 s) is W: no arousal; epoch 3 (90-120 s) N2 but epoch 2 ... the 10 s before
    # 95 s lie in epoch 2 (W) and 3: not stable sleep
    det = _run(ch, [N2, W, W, N2, N2])
    assert det.events == []


def test_streaming_same_whatever_chunking_and_stage_delay():
    events = [(40.0, 5.0, 10.0, 40.0), (80.0, 6.0, 22.0, 25.0), (130.0, 4.0, 10.0, 40.0)]
    ch = sleep_chunk(180, FS, seed=5, eeg_events=events)
    ref = _run(ch, [N2] * 6).events
    pieces = split(ch, 7, 900)
    assert _run(ch, [N2] * 6, pieces=pieces).events == ref
    # an online stager scores each epoch after it ended: events wait, then come out the same
    det = ArousalDetector(FS, ch.ch_names, ch.ch_types)
    got = []
    for c in pieces:
        got += det.push(c)
        done = int(c.stop_sample / FS // 30)
        for e in range(done):
            det.set_stage(e, N2)
    det.set_stage(5, N2)
    got += det.flush()
    assert got == ref


def test_flagged_samples_do_not_make_arousals():
    ch = sleep_chunk(120, FS, seed=6)
    data = ch.data.copy()
    flags = ch.flags.copy()
    lo, hi = int(50 * FS), int(60 * FS)
    data[:, lo:hi] = 5000.0 * np.sin(np.arange(hi - lo) / 3.0)
    flags[:, lo:hi] = 2  # lead-off
    bad = Chunk(data, 0, FS, ch.ch_names, ch.ch_types, flags)
    assert _run(bad, [N2] * 4).events == []


@pytest.mark.slow
def test_against_simulated_arousals(make_sleeper):
    s = make_sleeper(2024, profile="nightmare-prone", duration_s=2 * 3600.0)
    det = ArousalDetector(s.sfreq, s.ch_names, s.ch_types)
    det.set_hypnogram(s.hypnogram)
    while not s.done:
        det.push(s.read(2560))
    det.flush()
    true = [a.onset for a in s.events if a.description == "Arousal"]
    tp, fp, fn = match_events([e.onset_s for e in det.events], true, tol_s=3.0)
    assert len(true) >= 5
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.85, (tp, fp, fn)


def test_bad_input():
    ch = sleep_chunk(10, FS, seed=7)
    with pytest.raises(StagingError, match="EEG"):
        ArousalDetector(FS, ["EMG chin"], ["emg"])
    with pytest.raises(StagingError, match="64 Hz"):
        ArousalDetector(32.0, ch.ch_names, ch.ch_types)
    det = ArousalDetector(FS, ch.ch_names, ch.ch_types)
    det.push(split(ch, 1, 500)[0])
    with pytest.raises(ValueError, match="expected"):
        det.push(ch)
    with pytest.raises(TypeError, match="Chunk"):
        det.push(ch.data)
    with pytest.raises(ValueError, match="stage"):
        det.set_stage(0, 9)
    with pytest.raises(ValueError, match="2-D"):
        detect_arousals(np.zeros(10), FS, ["EEG C4"], ["eeg"], [N2])
    # the chin-EMG background (from stable_s to emg_gap_s before a bin) must hold a bin
    with pytest.raises(ValueError, match="emg_gap_s must be below stable_s"):
        ArousalDetector(FS, ch.ch_names, ch.ch_types, stable_s=2.0, emg_gap_s=2.0)
    with pytest.raises(ValueError, match="no chin-EMG background bin"):
        ArousalDetector(FS, ch.ch_names, ch.ch_types, stable_s=2.0, emg_gap_s=1.9)
    assert pick_channels(
        ["EEG F4-M1", "EEG O2-M1", "EEG C4-M1", "EOG E1-M2"], ["eeg", "eeg", "eeg", "eog"], "eeg"
    ) == [2, 1]
    # no occipital electrode: the central one, then the stager's next best (F4 before Fz)
    assert pick_channels(["EEG Fz", "EEG F4-M1", "EEG C3-M2"], ["eeg"] * 3, "eeg") == [2, 1]
    # an EEG-typed channel with an unknown name is still a candidate, after the known ones
    assert pick_channels(["Ch 7", "EEG O1-M2"], ["eeg", "eeg"], "eeg") == [1, 0]
    assert pick_channels(["EMG chin", "EEG C4", "ECG"], ["emg", "eeg", "ecg"], "ecg") == [2]
