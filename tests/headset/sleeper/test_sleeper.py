"""The simulated sleeper's public API: reading, determinism, chunk invariance, annotations."""

import numpy as np
import pytest
from _constants import FS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headset.chunk import Chunk
from headset.faults import FaultConfig
from headset.sleeper import CHANNELS, DEFAULT_MONTAGE, PROFILES, Sleeper, Subject
from headset.stages import EPOCH_S, parse_stage_annotation

FAULTS = FaultConfig(mains=3, movement=60, pops=60, leadoff=2, saturation=2, drift=30)


def read_all(s, sizes=(2560,)):
    data, flags, anns = [], [], []
    i = 0
    while not s.done:
        c = s.read(sizes[i % len(sizes)])
        i += 1
        data.append(c.data)
        flags.append(c.flags)
        anns.extend(c.annotations)
    return np.concatenate(data, axis=1), np.concatenate(flags, axis=1), anns


def test_default_montage_and_types():
    assert DEFAULT_MONTAGE == (
        "EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EOG E1-M2", "EOG E2-M2", "EMG chin", "ECG",
        "ACC X", "ACC Y", "ACC Z",
    )  # fmt: skip
    s = Sleeper(seed=1, duration_s=60)
    assert s.ch_names == DEFAULT_MONTAGE
    assert s.ch_types == ("eeg",) * 3 + ("eog",) * 2 + ("emg", "ecg") + ("misc",) * 3
    assert s.sfreq == FS and s.n_samples == 60 * 256 and s.position == 0 and not s.done
    assert set(PROFILES) == {"healthy", "child", "insomnia", "nightmare-prone"}
    assert isinstance(s.subject, Subject)


def test_read_semantics():
    s = Sleeper(seed=2, duration_s=31.0)
    c = s.read(0)
    assert isinstance(c, Chunk) and c.n_samples == 0 and c.data.shape == (10, 0)
    c = s.read(5000)
    assert c.first_sample == 0 and c.n_samples == 5000 and s.position == 5000
    assert c.data.dtype == np.float64 and c.flags.dtype == np.uint8
    assert np.all(np.isfinite(c.data))
    c = s.read(10**6)
    assert c.first_sample == 5000 and c.stop_sample == s.n_samples == 31 * 256
    assert s.done
    c = s.read(100)
    assert c.n_samples == 0 and c.first_sample == s.n_samples


def test_bad_arguments():
    with pytest.raises(ValueError, match="profile"):
        Sleeper(profile="sleepy")
    with pytest.raises(ValueError, match="duration_s"):
        Sleeper(duration_s=-5)
    with pytest.raises(ValueError, match="sfreq"):
        Sleeper(sfreq=10.0)
    with pytest.raises(ValueError, match="seed"):
        Sleeper(seed=-1)
    with pytest.raises(TypeError):
        Sleeper(seed=1.5)
    with pytest.raises(ValueError, match="Unknown montage channel"):
        Sleeper(montage=["EEG Cz"])
    with pytest.raises(ValueError, match="hypnogram"):
        Sleeper(hypnogram=["N2"], duration_s=90)
    with pytest.raises(ValueError, match="stage"):
        Sleeper(hypnogram=["N5"])
    s = Sleeper(duration_s=30)
    with pytest.raises(ValueError):
        s.read(-1)
    with pytest.raises(ValueError):
        s.stage_at(s.n_samples)


def test_same_seed_bit_identical_and_seeds_differ():
    a = read_all(Sleeper(seed=11, duration_s=120, faults=FAULTS))
    b = read_all(Sleeper(seed=11, duration_s=120, faults=FAULTS))
    c = read_all(Sleeper(seed=12, duration_s=120, faults=FAULTS))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.allclose(a[0][:7], c[0][:7])
    assert Sleeper(seed=11).subject != Sleeper(seed=12).subject


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=12))
def test_chunk_invariance(sizes):
    ref = _REF
    got = read_all(Sleeper(profile="nightmare-prone", seed=5, duration_s=100, faults=FAULTS), sizes)
    assert np.array_equal(ref[0], got[0])
    assert np.array_equal(ref[1], got[1])
    assert ref[2] == got[2]


_REF = read_all(Sleeper(profile="nightmare-prone", seed=5, duration_s=100, faults=FAULTS), (10**9,))


def test_montage_subset_gives_same_signals():
    full = read_all(Sleeper(seed=3, duration_s=60))[0]
    names = ["ECG", "EEG C4-M1", "ACC Z"]
    sub = read_all(Sleeper(seed=3, duration_s=60, montage=names))[0]
    rows = [DEFAULT_MONTAGE.index(n) for n in names]
    assert np.array_equal(full[rows], sub)
    s = Sleeper(seed=3, duration_s=60, montage=names)
    assert s.ch_types == tuple(CHANNELS[n] for n in names)


def test_stage_annotations_follow_the_hypnogram():
    stages = ["W", "W", "N1", "N2", "N2", "N3", "R"]
    s = Sleeper(seed=4, hypnogram=stages, duration_s=200)
    _, _, anns = read_all(s, (777,))
    assert s.events == anns
    st_anns = [a for a in anns if parse_stage_annotation(a.description) is not None]
    assert [parse_stage_annotation(a.description) for a in st_anns] == [0, 0, 1, 2, 2, 3, 4]
    assert [a.onset for a in st_anns] == [i * EPOCH_S for i in range(7)]
    assert [a.duration for a in st_anns] == [30.0] * 6 + [20.0]
    assert s.hypnogram.dtype == np.int8 and list(s.hypnogram) == [0, 0, 1, 2, 2, 3, 4]
    assert s.stage_at(0) == 0 and s.stage_at(int(95 * FS)) == 2 and s.stage_at(s.n_samples - 1) == 4


def test_annotations_released_within_their_chunk():
    s = Sleeper(profile="healthy", seed=6, duration_s=300, faults=FAULTS)
    while not s.done:
        c = s.read(1000)
        for a in c.annotations:
            if parse_stage_annotation(a.description) is not None or a.description in (
                "Arousal", "Movement",
            ) or a.description.startswith(("Lead off", "Saturation", "Electrode pop")):  # fmt: skip
                assert c.t0 - 1e-9 <= a.onset < c.t0 + c.n_samples / FS


def test_beat_samples_are_r_peaks():
    s = Sleeper(seed=8, duration_s=120)
    data, _, _ = read_all(s)
    beats = s.beat_samples
    assert beats.dtype == np.int64 and np.all(np.diff(beats) > 0) and beats[-1] < s.n_samples
    ecg = data[DEFAULT_MONTAGE.index("ECG")]
    hr = 60 * FS / np.diff(beats)
    assert 40 < np.median(hr) < 100
    for b in beats[1:-1]:
        win = ecg[b - 10 : b + 11]
        assert np.argmax(win) == 10
    s2 = Sleeper(seed=8, duration_s=120)
    s2.read(int(30 * FS))
    assert np.all(s2.beat_samples < s2.position) and s2.beat_samples.size > 20


def test_no_step_at_block_borders():
    s = Sleeper(seed=9, hypnogram=["N2"] * 4, duration_s=120)
    data, _, _ = read_all(s)
    d = np.abs(np.diff(data[:7], axis=1))
    borders = np.arange(2560, data.shape[1], 2560) - 1
    typical = np.percentile(d, 99.9, axis=1)
    assert np.all(d[:, borders].max(axis=1) <= 1.5 * typical)


def test_without_history_same_signals_and_no_growth():
    kw = dict(profile="nightmare-prone", seed=5, duration_s=900, faults=FAULTS)
    full, lean = Sleeper(**kw), Sleeper(keep_history=False, **kw)
    a, b = read_all(full, (1000,)), read_all(lean, (1000,))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert full.events == a[2] and full.beat_samples.size > 900 / 60 * 40
    assert lean._events == [] and lean._beats == []
    for name in ("events", "beat_samples"):
        with pytest.raises(RuntimeError, match=f"{name} needs keep_history=True"):
            getattr(lean, name)
    with pytest.raises(TypeError, match="keep_history"):
        Sleeper(keep_history=1)
