"""Small synthetic signals with known truth for the events tests (ECG, EEG bursts, hypnograms).

Owned by the "events" helper; used by tests/test_ecg.py, test_arousal.py, test_nightmare.py.
"""

from __future__ import annotations

import numpy as np

# (offset s, width s, amplitude uV) of the P, Q, R, S, T waves around the R peak
_WAVES = (
    (-0.20, 0.025, 120.0),
    (-0.035, 0.010, -120.0),
    (0.0, 0.011, 1200.0),
    (0.035, 0.011, -250.0),
    (0.26, 0.050, 300.0),
)


def beat_times(duration_s, hr_bpm=60.0, seed=0, rsa=0.04, jitter=0.02, hr_trace=None):
    """Return R-peak times (s) of a sinus rhythm with respiratory arrhythmia and jitter.

    ``hr_trace`` is an optional callable ``t -> bpm`` overriding ``hr_bpm``.
    """
    rng = np.random.default_rng(seed)
    t = 0.5
    out = []
    while t < duration_s - 0.5:
        out.append(t)
        hr = hr_trace(t) if hr_trace is not None else hr_bpm
        rr = 60.0 / hr
        rr *= 1.0 + rsa * np.sin(2 * np.pi * 0.25 * t) + jitter * rng.standard_normal()
        t += rr
    return np.asarray(out)


def ecg(duration_s, sfreq=256.0, hr_bpm=60.0, seed=0, noise_uv=5.0, wander_uv=80.0,
        amplitude=1.0, hr_trace=None, polarity=1.0):  # fmt: skip
    """Synthetic ECG (microvolts) and its true R-peak sample indices."""
    n = int(round(duration_s * sfreq))
    t = np.arange(n) / sfreq
    times = beat_times(duration_s, hr_bpm, seed, hr_trace=hr_trace)
    x = np.zeros(n)
    for tb in times:
        lo = max(0, int((tb - 0.4) * sfreq))
        hi = min(n, int((tb + 0.6) * sfreq))
        tt = t[lo:hi] - tb
        for off, w, a in _WAVES:
            x[lo:hi] += a * np.exp(-0.5 * ((tt - off) / w) ** 2)
    x *= amplitude * polarity
    rng = np.random.default_rng(seed + 1000)
    x += noise_uv * rng.standard_normal(n)
    x += wander_uv * np.sin(2 * np.pi * 0.15 * t + 0.3)
    # the true R peak is the sample nearest the R-wave centre
    truth = np.round(times * sfreq).astype(np.int64)
    return x, truth


def match_beats(detected, truth, tol):
    """Greedy one-to-one matching within ``tol`` samples: (n_matched, n_missed, n_extra)."""
    detected = np.asarray(detected)
    truth = np.asarray(truth)
    used = np.zeros(detected.size, bool)
    matched = 0
    j = 0
    for tr in truth:
        while j < detected.size and detected[j] < tr - tol:
            j += 1
        k = j
        while k < detected.size and detected[k] <= tr + tol:
            if not used[k]:
                used[k] = True
                matched += 1
                break
            k += 1
    return matched, truth.size - matched, detected.size - matched
