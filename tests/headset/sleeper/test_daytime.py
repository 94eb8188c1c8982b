"""The sleeper's daytime wake: up and about before going to bed and after getting up."""

import numpy as np
import pytest
from scipy import signal

from headset.sleeper import Sleeper

FS = 128.0
EP = int(30 * FS)
MONTAGE = ("EEG Fpz-Cz", "EEG O2-M1", "EOG E1-M2", "EOG E2-M2", "EMG chin")
FPZ, O2, E1, E2, EMG = range(5)


def record(daytime, seed=3, n=12):
    s = Sleeper(seed=seed, sfreq=FS, montage=MONTAGE, hypnogram=["W"] * n, daytime=daytime)
    return s, s.read(s.n_samples).data.astype(np.float64)


@pytest.fixture(scope="module", params=[3, 4])
def up_and_in_bed(request):
    """The same subject's wake: 12 epochs up and about, and 12 in bed (first epoch dropped)."""
    _, up = record((12, 0), seed=request.param)
    _, bed = record((0, 0), seed=request.param)
    return up[:, EP:], bed[:, EP:]


def band(x, lo, hi):
    f, p = signal.welch(x, FS, nperseg=int(4 * FS))
    return p[(f >= lo) & (f < hi)].sum()


def test_up_and_about_has_no_alpha_more_muscle_and_eye_movements(up_and_in_bed):
    up, bed = up_and_in_bed
    # eyes open throughout: the occipital alpha is blocked
    assert band(up[O2], 8, 12) / band(up[O2], 0.5, 30) < 0.5 * (
        band(bed[O2], 8, 12) / band(bed[O2], 0.5, 30)
    )
    # posture, facial expression, talking and chewing: scalp and chin muscle
    assert band(up[FPZ], 30, 45) > 1.5 * band(bed[FPZ], 30, 45)
    assert np.std(up[EMG]) > 1.3 * np.std(bed[EMG])
    # looking around: the eyes move most of the time (median 0.5-s slope of the horizontal EOG)
    sos = signal.butter(2, [0.3, 5], "bandpass", fs=FS, output="sos")
    heog = [signal.sosfiltfilt(sos, x[E1] - x[E2]) for x in (up, bed)]
    slope = [
        np.median(np.abs(np.diff(h, append=h[-1:])).reshape(-1, int(FS / 2)).max(-1)) for h in heog
    ]
    assert slope[0] > 1.5 * slope[1]


def test_daytime_changes_only_the_day():
    """The epochs up and about change; the night in bed after them keeps its signals."""
    hyp = ["W"] * 4 + ["N2"] * 8
    plain = Sleeper(seed=5, sfreq=FS, montage=MONTAGE, hypnogram=hyp)
    a = plain.read(plain.n_samples).data.astype(np.float64)
    up = Sleeper(seed=5, sfreq=FS, montage=MONTAGE, hypnogram=hyp, daytime=(2, 0))
    b = up.read(up.n_samples).data.astype(np.float64)
    assert band(b[FPZ, : 2 * EP], 30, 45) > 1.5 * band(a[FPZ, : 2 * EP], 30, 45)
    for ch in (FPZ, O2, E1, EMG):
        for lo, hi in ((0.5, 4), (11, 16), (30, 45)):
            ratio = band(b[ch, 5 * EP :], lo, hi) / band(a[ch, 5 * EP :], lo, hi)
            assert 0.8 < ratio < 1.25, (ch, lo, ratio)


def test_daytime_is_seeded():
    _, a = record((6, 6), seed=7)
    _, b = record((6, 6), seed=7)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "daytime, match",
    [
        ((1,), "two epoch counts"),
        ((-1, 0), "non-negative ints"),
        ((1.5, 0), "non-negative ints"),
        ((7, 7), "more than the recording"),
        ((3, 0), "must be wake"),
    ],
)
def test_daytime_errors(daytime, match):
    with pytest.raises(ValueError, match=match):
        Sleeper(
            seed=1, sfreq=FS, hypnogram=["W", "W", "N2", "N2", "N2", "W", "W"][:], daytime=daytime
        )
