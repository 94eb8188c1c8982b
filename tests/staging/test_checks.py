"""The one stream check of every streaming consumer (staging/checks.py)."""

import numpy as np
import pytest
from _constants import FS
from _events_synth import sleep_chunk, split

from headset.chunk import Chunk, StreamInfo
from staging.checks import MIN_SFREQ, check_rate, check_stream
from staging.closedloop.arousal import ArousalDetector
from staging.closedloop.nightmare import NightmareDetector
from staging.errors import StagingError
from staging.stager.online import OnlineStager


def _chunk(data, first=0, sfreq=FS, names=("EEG C4-M1", "ACC X"), types=("eeg", "misc")):
    data = np.atleast_2d(np.asarray(data, dtype=float))
    return Chunk(data, first, sfreq, names, types, np.zeros(data.shape, np.uint8))


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
