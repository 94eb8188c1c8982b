"""Tests of the incremental EDF+ recorder (headset/recorder.py)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import edfio
import mne
import numpy as np
import pytest
from _constants import FS, REPO

from headset.chunk import FLAG_GAP, FLAG_LEAD_OFF, Annotation, Chunk
from headset.errors import HeadsetError
from headset.recorder import (
    DEFAULT_START,
    PHYSICAL_RANGES,
    Recorder,
    quantisation_step,
    record_chunks,
)

NAMES = ("EEG C4-M1", "EOG E1-M2", "EMG chin", "ECG", "ACC X")
TYPES = ("eeg", "eog", "emg", "ecg", "misc")


def _signals(n, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 40, (len(NAMES), n))
    data[3] *= 10  # ECG: millivolts
    data[4] = 1000 + 50 * rng.standard_normal(n)  # accelerometer, milli-g
    return data


def _chunks(data, flags=None, size=100, annotations=None, first=0):
    n = data.shape[1]
    flags = np.zeros(data.shape, np.uint8) if flags is None else flags
    annotations = annotations or {}
    for s in range(0, n, size):
        anns = tuple(annotations.get(s, ()))
        yield Chunk(
            data[:, s : s + size], first + s, FS, NAMES, TYPES, flags[:, s : s + size], anns
        )


def _mne(path):
    return mne.io.read_raw_edf(path, preload=True, verbose="error")


def _mne_annotations(raw):
    a = raw.annotations
    return sorted(zip(a.onset.tolist(), a.duration.tolist(), list(a.description)))


def _uv(raw):
    """MNE data back in the recorder's units (µV for exG, milli-g for ACC)."""
    x = raw.get_data()
    scale = np.array([1e6 if t != "misc" else 1.0 for t in TYPES])
    return x * scale[:, None]


def _step(i):
    return quantisation_step(PHYSICAL_RANGES[TYPES[i]])


@pytest.mark.parametrize("size", [1, 77, 256, 1000, 20 * 256])
def test_round_trip_mne_and_edfio(tmp_path, size):
    n = 20 * 256
    data = _signals(n)
    anns = {
        0: [Annotation(0.0, 10.0, "Sleep stage W")],
        600: [Annotation(2.5, 0.0, "Arousal")],
        2048: [Annotation(7.75, 3.5, "Électrode pop: EEG C4-M1")],  # UTF-8 text
    }
    # Feed the annotations with the chunk that contains their sample.
    by_chunk = {}
    for s, a in anns.items():
        by_chunk.setdefault(s // size * size, []).extend(a)
    path = tmp_path / "rt.edf"
    with Recorder(path, NAMES, TYPES, FS) as rec:
        for chunk in _chunks(data, size=size, annotations=by_chunk):
            rec.write(chunk)
        rec.annotate(Annotation(1.0, 12.0, "Nightmare"))  # onset in the past
    raw = _mne(path)
    assert raw.ch_names == list(NAMES)
    assert raw.info["sfreq"] == FS
    assert raw.n_times == n
    back = _uv(raw)
    for i in range(len(NAMES)):
        err = np.abs(back[i] - data[i]).max()
        assert err <= _step(i) / 2 + 1e-9, (NAMES[i], err)
    expected = sorted(
        [(a.onset, a.duration, a.description) for v in anns.values() for a in v]
        + [(1.0, 12.0, "Nightmare")]
    )
    assert _mne_annotations(raw) == expected
    # edfio reads the same file (header built by edfio, records appended by the recorder)
    edf = edfio.read_edf(path)
    assert edf.num_data_records == 20
    assert edf.labels == NAMES
    ed = sorted((a.onset, a.duration or 0.0, a.text) for a in edf.annotations)
    assert ed == expected
    np.testing.assert_allclose(edf.signals[0].data, data[0], atol=_step(0) / 2 + 1e-9)
    assert edf.startdate == DEFAULT_START.date() and edf.starttime == DEFAULT_START.time()


def test_same_input_same_bytes_whatever_chunking(tmp_path):
    data = _signals(10 * 256, seed=3)
    record_chunks(tmp_path / "a.edf", _chunks(data, size=13))
    record_chunks(tmp_path / "b.edf", _chunks(data, size=1024), flush_interval=1e-3)
    assert (tmp_path / "a.edf").read_bytes() == (tmp_path / "b.edf").read_bytes()


def test_flags_become_annotations_across_chunks(tmp_path):
    n = 12 * 256
    data = _signals(n)
    flags = np.zeros(data.shape, np.uint8)
    flags[:, 300:700] |= FLAG_GAP  # spans chunk borders (size 128)
    flags[1, 1000:1300] |= FLAG_LEAD_OFF
    flags[0, 2000:] |= FLAG_LEAD_OFF  # still open at close
    path = tmp_path / "f.edf"
    with Recorder(path, NAMES, TYPES, FS) as rec:
        for c in _chunks(data, flags, size=128):
            rec.write(c)
    got = _mne_annotations(_mne(path))
    assert got == [
        (300 / FS, 400 / FS, "Gap"),
        (1000 / FS, 300 / FS, "Lead off: EOG E1-M2"),
        (2000 / FS, (n - 2000) / FS, "Lead off: EEG C4-M1"),
    ]


@pytest.mark.parametrize("annotate_flags", [True, False])
def test_flag_annotations_not_duplicated_when_passed_through(tmp_path, annotate_flags):
    # A driver notes a lead going off at once (no duration yet) and a simulator passes its
    # ground truth (its own timing): with annotate_flags the flag runs are the one source.
    data = _signals(4 * 256)
    flags = np.zeros(data.shape, np.uint8)
    flags[:, 256:512] |= FLAG_GAP
    flags[1, 600:900] |= FLAG_LEAD_OFF
    lead = "Lead off: " + NAMES[1]
    passed = {
        256: [Annotation(1.0, 1.0, "Gap"), Annotation(1.0, 0.0, "Note")],
        512: [Annotation(600 / FS, 0.0, lead), Annotation(2.35, 1.2, lead)],
    }
    path = tmp_path / "d.edf"
    with Recorder(path, NAMES, TYPES, FS, annotate_flags=annotate_flags) as rec:
        for c in _chunks(data, flags, size=256, annotations=passed):
            rec.write(c)
    got = _mne_annotations(_mne(path))
    if annotate_flags:
        assert got == [(1.0, 0.0, "Note"), (1.0, 1.0, "Gap"), (600 / FS, 300 / FS, lead)]
    else:
        assert sorted(got) == sorted(
            [(1.0, 1.0, "Gap"), (1.0, 0.0, "Note"), (600 / FS, 0.0, lead), (2.35, 1.2, lead)]
        )


@pytest.mark.parametrize("annotate_flags", [True, False])
def test_hole_is_filled_and_overlap_dropped(tmp_path, annotate_flags):
    data = _signals(8 * 256)
    path = tmp_path / "h.edf"
    with Recorder(path, NAMES, TYPES, FS, annotate_flags=annotate_flags) as rec:
        rec.write(next(_chunks(data[:, :256], size=256)))
        # samples 256..511 never arrive; the next chunk starts at 512
        rec.write(next(_chunks(data[:, 512:1024], size=512, first=512)))
        # a chunk overlapping what was written: only its new part counts
        rec.write(next(_chunks(data[:, 768:2048], size=1280, first=768)))
    assert rec.stats["filled"] == 256
    assert rec.stats["dropped"] == 256
    raw = _mne(path)
    back = _uv(raw)
    assert raw.n_times == 2048
    np.testing.assert_allclose(back[0, 512:], data[0, 512:2048], atol=_step(0))
    np.testing.assert_allclose(back[0, 256:512], back[0, 255], atol=1e-9)  # last value held
    assert _mne_annotations(raw) == [(1.0, 1.0, "Gap")]


def test_long_hole_is_one_gap(tmp_path):
    data = _signals(2 * 256)
    path = tmp_path / "long.edf"
    with Recorder(path, NAMES, TYPES, FS) as rec:
        rec.write(next(_chunks(data[:, :256], size=256)))
        rec.write(next(_chunks(data[:, 256:], size=256, first=200 * 256)))
    raw = _mne(path)
    assert raw.n_times == 201 * 256
    assert _mne_annotations(raw) == [(1.0, 199.0, "Gap")]


def test_clipping_and_nonfinite_are_counted(tmp_path):
    data = _signals(2 * 256)
    data[0, 10] = 187_500.0  # saturated ADC: beyond the EDF range
    data[0, 11] = -1e6
    data[1, 5] = np.nan
    path = tmp_path / "c.edf"
    record_chunks(path, _chunks(data, size=512))
    with Recorder(tmp_path / "c2.edf", NAMES, TYPES, FS) as rec:
        for c in _chunks(data, size=512):
            rec.write(c)
    assert rec.stats["clipped"]["EEG C4-M1"] == 2
    assert rec.stats["nonfinite"]["EOG E1-M2"] == 1
    back = _uv(_mne(path))
    assert back[0, 10] == pytest.approx(5000.0) and back[0, 11] == pytest.approx(-5000.0)
    assert back[1, 5] == 0.0


def test_annotation_after_last_sample_goes_into_last_record(tmp_path):
    data = _signals(3 * 256)
    path = tmp_path / "late.edf"
    with Recorder(path, NAMES, TYPES, FS) as rec:
        for c in _chunks(data, size=256):
            rec.write(c)
        rec.annotate(Annotation(0.5, 2.25, "Nightmare"))
    assert rec.stats["padded"] == 0 and rec.stats["records"] == 3
    raw = _mne(path)
    assert raw.n_times == 3 * 256
    assert _mne_annotations(raw) == [(0.5, 2.25, "Nightmare")]


def test_many_annotations_wait_for_room_and_long_text_is_truncated(tmp_path):
    data = _signals(10 * 256)
    many = [Annotation(0.125 * k, 0.0, f"Electrode pop: EEG C4-M1 #{k}") for k in range(12)]
    long = Annotation(2.0, 1.0, "x" * 300)
    path = tmp_path / "many.edf"
    with Recorder(path, NAMES, TYPES, FS, annotation_bytes=64) as rec:
        for a in many:
            rec.annotate(a)
        rec.annotate(long)
        for c in _chunks(data, size=256):
            rec.write(c)
    assert rec.stats["truncated_annotations"] == 1
    assert rec.stats["records"] >= 10
    got = _mne_annotations(_mne(path))
    assert [g for g in got if not g[2].startswith("x")] == [
        (a.onset, a.duration, a.description) for a in many
    ]
    (trunc,) = [g for g in got if g[2].startswith("x")]
    assert trunc[:2] == (2.0, 1.0) and 10 < len(trunc[2]) < 64


def test_partial_last_record_is_padded_with_last_value(tmp_path):
    data = _signals(256 + 100)
    path = tmp_path / "p.edf"
    with Recorder(path, NAMES, TYPES, FS) as rec:
        for c in _chunks(data, size=50):
            rec.write(c)
    assert rec.stats["padded"] == 156
    back = _uv(_mne(path))
    assert back.shape[1] == 512
    np.testing.assert_allclose(back[0, 356:], back[0, 355])


def test_header_count_follows_flushes(tmp_path):
    data = _signals(6 * 256)
    path = tmp_path / "live.edf"
    rec = Recorder(path, NAMES, TYPES, FS, flush_interval=3600)
    chunks = list(_chunks(data, size=256))
    for c in chunks[:4]:
        rec.write(c)
    assert int(path.read_bytes()[236:244]) == 0  # nothing flushed yet
    rec.flush()
    assert int(path.read_bytes()[236:244]) == 4
    assert _mne(path).n_times == 4 * 256  # a valid file while recording
    for c in chunks[4:]:
        rec.write(c)
    rec.close()
    rec.close()  # idempotent
    assert int(path.read_bytes()[236:244]) == 6
    with pytest.raises(HeadsetError, match="closed"):
        rec.write(chunks[0])


def test_bad_arguments(tmp_path):
    with pytest.raises(HeadsetError, match="cannot write"):
        Recorder(tmp_path / "no" / "such" / "dir.edf", NAMES, TYPES, FS)
    with pytest.raises(ValueError, match="whole number"):
        Recorder(tmp_path / "x.edf", NAMES, TYPES, 100.5)
    with pytest.raises(ValueError, match="16 characters"):
        Recorder(tmp_path / "x.edf", ("A very long channel label",), ("eeg",), FS)
    with pytest.raises(ValueError, match="printable ASCII"):
        Recorder(tmp_path / "x.edf", ("EEG Cé",), ("eeg",), FS)
    with pytest.raises(ValueError, match="channel type"):
        Recorder(tmp_path / "x.edf", ("A",), ("brain",), FS)
    with pytest.raises(ValueError, match="physical range"):
        Recorder(tmp_path / "x.edf", ("A",), ("eeg",), FS, physical_range=(5, 5))
    with Recorder(tmp_path / "x.edf", NAMES, TYPES, FS) as rec:
        wrong = Chunk(np.zeros((1, 4)), 0, FS, ("A",), ("eeg",), np.zeros((1, 4), np.uint8))
        with pytest.raises(ValueError, match="differ"):
            rec.write(wrong)
        with pytest.raises(ValueError, match="finite onset"):
            rec.annotate(Annotation(float("nan"), 0.0, "x"))


def test_custom_ranges_units_and_patient_fields(tmp_path):
    path = tmp_path / "u.edf"
    with Recorder(
        path,
        ("EEG Fpz-Cz", "Resp"),
        ("eeg", "misc"),
        100.0,
        physical_range={"eeg": (-500, 500), "Resp": (-10, 10)},
        units=("µV", "mV"),
        patient_code="P 07",
        sex="F",
        equipment="dreamnet test",
    ) as rec:
        x = np.vstack([np.linspace(-400, 400, 300), np.linspace(-9, 9, 300)])
        rec.write(Chunk(x, 0, 100.0, rec.ch_names, rec.ch_types, np.zeros((2, 300), np.uint8)))
    edf = edfio.read_edf(path)
    assert edf.signals[0].physical_range == (-500, 500)
    assert edf.signals[0].physical_dimension == "uV"  # µ written as u (ASCII header)
    assert edf.signals[1].physical_dimension == "mV"
    assert edf.patient.code == "P_07" and edf.patient.sex == "F"
    assert edf.recording.equipment_code == "dreamnet_test"
    np.testing.assert_allclose(edf.signals[1].data, x[1], atol=quantisation_step((-10, 10)))


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from headset.chunk import Chunk, Annotation
    from headset.recorder import Recorder
    path = sys.argv[1]
    names, types, sf = ("EEG C4-M1", "EMG chin"), ("eeg", "emg"), 256.0
    rec = Recorder(path, names, types, sf, flush_interval=0.1)
    k = 0
    flushes = 0
    while True:
        t = np.arange(k * 64, (k + 1) * 64)
        x = np.vstack([(t % 1000) * 0.5 - 250.0, np.sin(t / 10.0) * 20.0])
        anns = (Annotation(k * 0.25, 0.0, f"mark {k}"),) if k % 8 == 0 else ()
        rec.write(Chunk(x, k * 64, sf, names, types, np.zeros((2, 64), np.uint8), anns))
        k += 1
        if rec.stats["flushes"] != flushes:
            flushes = rec.stats["flushes"]
            print("flushed", rec.stats["records"], flush=True)
        time.sleep(0.005)
    """
)


def test_kill_9_leaves_a_readable_file(tmp_path):
    path = tmp_path / "killed.edf"
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        last_flushed = 0
        try:
            deadline = time.monotonic() + 60
            while last_flushed < 12 and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                last_flushed = int(line.split()[1])
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            err = proc.stderr.read()
            proc.wait()
    assert last_flushed >= 12, err
    # The header count matches the file unless the kill fell between writing a batch of
    # records and updating the count (a window of one fsync): then MNE counts the records
    # from the file size, with a warning, and still reads everything.
    count = int(path.read_bytes()[236:244])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Number of records from the header")
        raw = _mne(path)
    n = raw.n_times
    assert count * 256 <= n
    assert n >= last_flushed * 256
    assert n % 256 == 0
    t = np.arange(n)
    back = raw.get_data() * 1e6
    np.testing.assert_allclose(back[0], (t % 1000) * 0.5 - 250.0, atol=_step(0) / 2 + 1e-9)
    np.testing.assert_allclose(back[1], np.sin(t / 10.0) * 20.0, atol=_step(0) / 2 + 1e-9)
    marks = _mne_annotations(raw)
    assert marks[0] == (0.0, 0.0, "mark 0")
    assert [m[0] for m in marks] == [2.0 * k for k in range(len(marks))]
    assert len(marks) >= n // 512 - 1


def test_the_header_table_describes_what_the_recorder_writes(tmp_path):
    from headset.edf.header import (
        FIXED_BYTES,
        SIGNAL_BYTES,
        read_header,
        split_fixed,
        split_signals,
    )

    assert FIXED_BYTES == SIGNAL_BYTES == 256  # the EDF specification
    path = tmp_path / "t.edf"
    with Recorder(path, NAMES, TYPES, FS) as rec:
        for c in _chunks(_signals(3 * 256)):
            rec.write(c)
        rec.flush()
        raw = path.read_bytes()
        fixed = split_fixed(raw[:FIXED_BYTES].decode("latin-1"))
        assert fixed["version"].strip() == "0" and fixed["reserved"].startswith("EDF+C")
        assert int(fixed["n_records"]) == rec.stats["records"] > 0  # rewritten at the flush
    ns = int(fixed["n_signals"])
    cols = split_signals(raw[FIXED_BYTES : FIXED_BYTES * (ns + 1)].decode("latin-1"), ns)
    assert [s.strip() for s in cols["label"]] == [*NAMES, "EDF Annotations"]
    assert int(fixed["header_bytes"]) == read_header(path).header_bytes == 256 * (ns + 1)
