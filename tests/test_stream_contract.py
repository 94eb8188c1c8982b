"""The stream contract: StreamInfo on every Chunk, one check for every consumer, shared helpers."""

from __future__ import annotations

import numpy as np
import pytest
from _events_synth import sleep_chunk, split
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, sosfilt, sosfilt_zi

from headset.chunk import Chunk, StreamInfo, default_unit
from staging.checks import MIN_SFREQ, check_rate, check_stream
from staging.closedloop.arousal import ArousalDetector
from staging.closedloop.nightmare import DetectorSettings, NightmareDetector, _EyeMovements
from staging.closedloop.stream import EmgRms, Framer
from staging.errors import StagingError
from staging.stager.online import OnlineStager

FS = 256.0


def _chunk(data, first=0, sfreq=FS, names=("EEG C4-M1", "ACC X"), types=("eeg", "misc")):
    data = np.atleast_2d(np.asarray(data, dtype=float))
    return Chunk(data, first, sfreq, names, types, np.zeros(data.shape, np.uint8))


def test_every_chunk_carries_its_stream():
    c = _chunk(np.zeros((2, 10)))
    assert c.info == StreamInfo(FS, ("EEG C4-M1", "ACC X"), ("eeg", "misc"), ("uV", "mg"))
    assert c.info.n_channels == 2
    assert c.piece(3).info == c.info and Chunk.concatenate([c, c.piece(5)]).info == c.info
    assert _chunk(np.zeros((2, 10)), sfreq=128.0).info != c.info
    assert [default_unit(n, t) for n, t in [("ECG", "ecg"), ("ACC Y", "misc"), ("Light", "misc")]]
    assert default_unit("Light", "misc") == ""
    with pytest.raises(ValueError, match="positive finite"):
        StreamInfo(float("nan"), (), (), ())
    with pytest.raises(ValueError, match="2 channel names but 1 types"):
        StreamInfo(FS, ("a", "b"), ("eeg",), ("uV",))
    with pytest.raises(ValueError, match="1 channel names but 2 channel types"):
        StreamInfo.create(FS, ["a"], ["eeg", "eeg"])


def test_one_check_names_the_consumer_and_both_rates():
    info = _chunk(np.zeros((2, 4))).info
    assert check_stream("arousal detection", info) is info
    assert check_rate("heart rate", 100.0) == 100.0
    for consumer, floor in MIN_SFREQ.items():
        slow = StreamInfo.create(floor / 2, info.ch_names, info.ch_types)
        with pytest.raises(StagingError, match=f"^{consumer}: the stream's {floor / 2:g} Hz is "):
            check_stream(consumer, slow)
    other = StreamInfo.create(128.0, info.ch_names, info.ch_types)
    with pytest.raises(StagingError, match="nightmare detection: .*expected 256 Hz, got 128 Hz"):
        check_stream("nightmare detection", other, info)
    moved = StreamInfo.create(FS, ("EEG C3-M2", "ACC X"), info.ch_types)
    with pytest.raises(StagingError, match="channels changed mid-stream"):
        check_stream("monitor", moved, info)
    with pytest.raises(ValueError, match="unknown stream consumer"):
        check_rate("spindles", FS)
    with pytest.raises(TypeError, match="StreamInfo"):
        check_stream("monitor", FS)


def test_every_consumer_refuses_a_slow_stream_with_the_same_error():
    ch = sleep_chunk(2, 60.0, seed=1)
    with pytest.raises(StagingError, match="arousal detection: the stream's 60 Hz"):
        ArousalDetector(60.0, ch.ch_names, ch.ch_types)
    with pytest.raises(StagingError, match="nightmare detection: the stream's 60 Hz"):
        NightmareDetector().push(ch)  # taken from the first chunk, checked the same way
    with pytest.raises(StagingError, match="online staging: the stream's 40 Hz"):
        OnlineStager(sfreq=40.0)


def test_detectors_take_the_stream_from_the_first_chunk():
    ch = sleep_chunk(120, FS, seed=4, eeg_events=[(40.0, 5.0, 10.0, 40.0), (80.0, 6.0, 20.0, 30.0)])
    hyp = [2] * 4
    runs = []
    for det in (ArousalDetector(), ArousalDetector.for_stream(ch.info)):
        det.set_hypnogram(hyp)
        for piece in split(ch, 3):
            det.push(piece)
        det.flush()
        runs.append([e.to_event() for e in det.events])
    assert runs[0] == runs[1] and len(runs[0]) == 2
    det = ArousalDetector()
    det.push(ch.piece(0, 100))
    assert det.info == ch.info
    slow = Chunk(ch.data[:, 100:150], 100, 128.0, ch.ch_names, ch.ch_types, ch.flags[:, 100:150])
    with pytest.raises(StagingError, match="arousal detection: .*expected 256 Hz, got 128 Hz"):
        det.push(slow)
    with pytest.raises(ValueError, match="together"):
        NightmareDetector(FS)
    assert ArousalDetector().flush() == [] and NightmareDetector().flush() == []


def test_online_stager_checks_the_first_chunk_against_the_given_stream():
    ch = sleep_chunk(2, FS, seed=2)
    st_ = OnlineStager(sfreq=128.0)
    with pytest.raises(StagingError, match="expected 128 Hz .* the first chunk has 256 Hz"):
        st_.push(ch)
    st_ = OnlineStager.for_stream(ch.info)
    st_.push(ch.piece(0, 10))
    assert st_.info == ch.info
    other = Chunk(ch.data[:2, 10:20], 10, FS, ch.ch_names[:2], ch.ch_types[:2], ch.flags[:2, 10:20])
    with pytest.raises(StagingError, match="online staging: the channels changed"):
        st_.push(other)


@settings(max_examples=25, deadline=None)
@given(
    first=st.integers(0, 10_000),
    cuts=st.lists(st.integers(1, 400), min_size=1, max_size=8),
    win=st.integers(1, 40),
    hop=st.integers(1, 40),
)
def test_framer_gives_the_frames_of_the_whole_signal_whatever_the_chunking(first, cuts, win, hop):
    rng = np.random.default_rng(first)
    x = rng.standard_normal((2, 600))
    fr = Framer(2, win, hop)
    got, starts = [], []
    i = j = 0
    while i < x.shape[1]:
        k = cuts[j % len(cuts)]
        j += 1
        part = x[:, i : i + k]
        frames, _, s = fr.push(part, np.zeros(part.shape, np.uint8), first + i)
        if frames is not None:
            got.extend(frames.transpose(1, 0, 2))
        starts.extend(s.tolist())
        i += k
    n = (x.shape[1] - win) // hop + 1 if x.shape[1] >= win else 0
    assert starts == [first + j * hop for j in range(n)]  # the first frame at the first sample
    for j, f in enumerate(got):
        np.testing.assert_array_equal(f, x[:, j * hop : j * hop + win])


def test_emg_rms_against_scipy_and_chunk_invariant():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(int(20 * FS)) * 5.0
    bad = np.zeros(x.size, bool)
    bad[1000:1010] = True
    sos = butter(4, [20.0, 100.0], btype="bandpass", fs=FS, output="sos")
    y, _ = sosfilt(sos, x, zi=sosfilt_zi(sos) * x[0])  # the streaming filter starts steady
    n_bin = 64
    k = y.size // n_bin
    want = np.sqrt(np.mean(y[: k * n_bin].reshape(k, n_bin) ** 2, axis=1))
    want[bad[: k * n_bin].reshape(k, n_bin).any(axis=1)] = np.nan
    for sizes in ((x.size,), (1, 63, 500, 7)):
        emg = EmgRms(FS, 0.25)
        rms, starts = [], []
        i, j = 0, 0
        while i < x.size:
            n = sizes[j % len(sizes)]
            r, s = emg.push(x[i : i + n], bad[i : i + n], 500 + i)
            rms.extend(r)
            starts.extend(s)
            i, j = i + n, j + 1
        # the streaming filter against scipy's sosfilt: 1e-9 of the signal's RMS (5 µV)
        np.testing.assert_allclose(rms, want, rtol=0, atol=5e-9)
        assert starts == [500 + b * n_bin for b in range(k)]
    assert np.isnan(want[1000 // n_bin]) and np.isnan(want[1009 // n_bin])


def test_eye_movements_are_counted_per_minute_from_the_settings():
    fs = 128.0
    n = int(60 * fs)
    t = np.arange(n) / fs
    onsets = np.arange(10.0, 60.0, 3.0)  # 17 saccades, the eyes going back and forth
    eog = np.zeros((2, n))
    for k, on in enumerate(onsets):
        eog[1] += (-1) ** k * np.clip((t - on) / 0.03, 0.0, 1.0) * 100.0  # 100 µV in 30 ms
    eog[1] += np.random.default_rng(0).standard_normal(n)
    for window in (30.0, 60.0):
        eyes = _EyeMovements(fs, DetectorSettings(eye_window_s=window))
        eyes.push(eog, np.zeros(n, bool), 0)
        expect = np.count_nonzero(onsets >= 60.0 - window)
        assert eyes.per_minute(n) == pytest.approx(expect * 60.0 / window)


def test_the_monitor_runs_what_the_stream_can_feed_and_refuses_a_foreign_chunk():
    from staging.monitor.pipeline import Pipeline

    names = ("EEG C4-M1", "EOG E1-M2", "EMG chin", "ECG")
    info = StreamInfo.create(80.0, names, ("eeg", "eog", "emg", "ecg"))
    pipe = Pipeline(info)  # the nightmare detector and the heart rate need 100 Hz
    assert pipe.stager is not None and pipe.arousal is not None
    assert pipe.nightmare is None and pipe.hr is None
    assert pipe.missing == [
        "nightmare detector (nightmare detection: the stream's 80 Hz is below the 100 Hz it needs)",
        "heart rate (heart rate: the stream's 80 Hz is below the 100 Hz it needs)",
    ]
    ch = Chunk(np.zeros((4, 80)), 0, 80.0, names, info.ch_types, np.zeros((4, 80), np.uint8))
    pipe.process(ch)
    wrong = Chunk(
        np.zeros((3, 80)), 80, 80.0, names[:3], info.ch_types[:3], np.zeros((3, 80), np.uint8)
    )
    with pytest.raises(StagingError, match="monitor: the channels changed"):
        pipe.process(wrong)
    with pytest.raises(StagingError, match="monitor: the stream's 40 Hz"):
        Pipeline(StreamInfo.create(40.0, names, info.ch_types))
