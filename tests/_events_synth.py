"""Small synthetic signals with known truth for the events tests (ECG, EEG bursts, hypnograms).

Owned by the "events" helper; used by tests/dsp/test_ecg.py, test_arousal.py, test_nightmare.py.
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


def pink(n, sfreq, seed, exponent=1.0, rms=10.0):
    """1/f^exponent noise (power), scaled to ``rms`` microvolts."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, 1.0 / sfreq)
    amp = np.zeros_like(f)
    amp[1:] = f[1:] ** (-exponent / 2.0)
    spec = amp * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    x = np.fft.irfft(spec, n)
    return x / np.std(x) * rms


def burst(n, sfreq, onset_s, dur_s, freq, amp, seed=0):
    """A tapered sinusoidal burst (alpha, beta, spindle) of ``amp`` microvolts peak."""
    t = np.arange(n) / sfreq
    env = np.zeros(n)
    m = (t >= onset_s) & (t < onset_s + dur_s)
    ramp = np.clip(np.minimum(t - onset_s, onset_s + dur_s - t) / 0.3, 0, 1)
    env[m] = ramp[m]
    ph = np.random.default_rng(seed).uniform(0, 2 * np.pi)
    return amp * env * np.sin(2 * np.pi * freq * t + ph)


def sleep_chunk(duration_s, sfreq=256.0, seed=0, eeg_events=(), emg_events=(), emg_rms=2.0,
                with_emg=True):  # fmt: skip
    """A Chunk of N2-like EEG (C4, O2) and chin EMG with added events.

    ``eeg_events``: (onset_s, dur_s, freq_hz, amp_uv); ``emg_events``: (onset_s, dur_s, factor).
    """
    from headset.chunk import Chunk

    n = int(duration_s * sfreq)
    c4 = pink(n, sfreq, seed, 1.6, 15.0)
    o2 = 0.6 * c4 + pink(n, sfreq, seed + 1, 1.6, 8.0)
    for k, (on, dur, f, a) in enumerate(eeg_events):
        b = burst(n, sfreq, on, dur, f, a, seed + 10 + k)
        c4 += b
        o2 += 1.3 * b
    names = ["EEG C4-M1", "EEG O2-M1"]
    types = ["eeg", "eeg"]
    rows = [c4, o2]
    if with_emg:
        rng = np.random.default_rng(seed + 2)
        emg = rng.standard_normal(n) * emg_rms
        t = np.arange(n) / sfreq
        for on, dur, fac in emg_events:
            m = (t >= on) & (t < on + dur)
            emg[m] *= fac
        names.append("EMG chin")
        types.append("emg")
        rows.append(emg)
    data = np.vstack(rows)
    return Chunk(data, 0, sfreq, tuple(names), tuple(types), np.zeros(data.shape, np.uint8))


def split(chunk, sizes_seed=0, max_len=2000):
    """Cut a Chunk into consecutive random-length pieces."""
    rng = np.random.default_rng(sizes_seed)
    out, i = [], 0
    n = chunk.n_samples
    while i < n:
        k = int(rng.integers(1, max_len))
        out.append(chunk.piece(i, min(n, i + k)))
        i += k
    return out
