"""Signal faults of the simulated sleeper: flags, annotations, and what they do to the signal."""

import numpy as np
import pytest
from _constants import FS
from scipy import signal

from headset.chunk import FLAG_LEAD_OFF, FLAG_SATURATED
from headset.faults import FaultConfig, parse_faults
from headset.sleeper import DEFAULT_MONTAGE, Sleeper
from headset.sleeper.artifacts import RAIL_UV

EXG = list(range(7))
ACC = [7, 8, 9]


def run(faults, seed=1, duration=600.0, **kw):
    s = Sleeper(seed=seed, duration_s=duration, faults=faults, hypnogram=["N2"] * 40, **kw)
    c = s.read(s.n_samples)
    return s, c


def by_prefix(anns, prefix):
    return [a for a in anns if a.description.startswith(prefix)]


def test_no_faults_no_flags_no_fault_annotations():
    s, c = run(FaultConfig())
    assert not c.flags.any()
    for prefix in ("Lead off", "Saturation", "Electrode pop", "Movement"):
        assert not by_prefix(c.annotations, prefix)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lead_off_is_flagged_flat_or_railed(seed):
    s, c = run(FaultConfig(leadoff=3), seed=seed, duration=1200.0)
    anns = by_prefix(c.annotations, "Lead off: ")
    assert len(anns) == 3
    expected = np.zeros_like(c.flags, dtype=bool)
    for a in anns:
        ch = a.description.removeprefix("Lead off: ")
        row = DEFAULT_MONTAGE.index(ch)
        assert row in EXG and 30 <= a.duration <= 300
        i0, i1 = round(a.onset * FS), round((a.onset + a.duration) * FS)
        expected[row, i0:i1] = True
        seg = c.data[row, i0:i1]
        assert np.all(seg == 0.0) or np.all(np.abs(seg) == RAIL_UV)
    assert np.array_equal((c.flags & FLAG_LEAD_OFF) > 0, expected)


def test_saturation_is_clipped_and_flagged():
    s, c = run(FaultConfig(saturation=3), seed=4)
    anns = by_prefix(c.annotations, "Saturation: ")
    assert len(anns) == 3
    for a in anns:
        row = DEFAULT_MONTAGE.index(a.description.removeprefix("Saturation: "))
        i0, i1 = round(a.onset * FS), round((a.onset + a.duration) * FS)
        assert np.all(c.flags[row, i0:i1] & FLAG_SATURATED)
        assert np.all(np.abs(c.data[row, i0:i1]) == RAIL_UV)
    assert np.abs(c.data[EXG]).max() <= RAIL_UV
    assert not (c.flags & FLAG_LEAD_OFF).any()


@pytest.mark.parametrize("freq", [50.0, 60.0])
def test_mains_adds_only_a_line(freq):
    _, clean = run(FaultConfig(), duration=60.0)
    _, noisy = run(FaultConfig(mains=20.0, mains_freq=freq), duration=60.0)
    diff = noisy.data - clean.data
    assert np.all(diff[ACC] == 0)  # the physiology underneath is the same
    f, p = signal.welch(diff[1], FS, nperseg=1024)
    assert abs(f[np.argmax(p)] - freq) < 0.5
    assert 5 < np.std(diff[1]) < 40


def test_pops_and_movements_are_annotated():
    s, c = run(parse_faults("pops=60,movement=60"), seed=5, duration=900.0)
    pops = by_prefix(c.annotations, "Electrode pop: ")
    moves = by_prefix(c.annotations, "Movement")
    assert 5 <= len(pops) <= 30 and 5 <= len(moves) <= 30
    _, clean = run(FaultConfig(), seed=5, duration=900.0)
    for a in pops:
        row = DEFAULT_MONTAGE.index(a.description.removeprefix("Electrode pop: "))
        i = round(a.onset * FS)
        jump = np.abs(c.data[row, i : i + 3] - clean.data[row, i : i + 3]).max()
        assert jump >= 150  # a step on that channel
    acc_moving = np.concatenate(
        [c.data[ACC, round(a.onset * FS) : round((a.onset + a.duration) * FS)] for a in moves],
        axis=1,
    )
    assert np.std(acc_moving[0]) > 20  # the accelerometer jolts


def test_drift_is_slow_and_bounded():
    _, clean = run(FaultConfig(), duration=300.0)
    _, drift = run(FaultConfig(drift=100.0), duration=300.0)
    diff = drift.data[1] - clean.data[1]
    assert np.abs(diff).max() <= 100.0 + 1e-9 and np.abs(diff).max() > 20
    assert np.abs(np.diff(diff)).max() < 0.5  # slow: no steps


def test_faults_hit_only_montage_channels():
    names = ("EEG C4-M1", "ACC X")
    s, c = run(FaultConfig(leadoff=4), seed=6, montage=names)
    for a in by_prefix(c.annotations, "Lead off: "):
        assert a.description == "Lead off: EEG C4-M1"
    assert not c.flags[1].any()
