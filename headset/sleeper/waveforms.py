"""Transient waveforms of sleep and wake (templates added at event times).

Every template starts and ends at zero (tapered), so adding one never leaves a step. Amplitudes
are in microvolts; ``sfreq`` in Hz; durations in seconds. Sign convention: the value of the
derivation (a negative K-complex trough is negative).
"""

from __future__ import annotations

import numpy as np


def _t(duration: float, sfreq: float) -> np.ndarray:
    return np.arange(max(int(round(duration * sfreq)), 2)) / sfreq


def _taper(x: np.ndarray, sfreq: float, ramp: float = 0.05) -> np.ndarray:
    """Fade the first and last ``ramp`` seconds to zero (in place)."""
    k = min(max(int(ramp * sfreq), 1), x.size // 2)
    w = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
    x[:k] *= w
    x[-k:] *= w[::-1]
    return x


def spindle(sfreq: float, freq: float, duration: float, amp: float, phase: float) -> np.ndarray:
    """Sleep spindle: a waxing-waning sinusoid.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    freq : float
        Oscillation frequency, Hz (11-16).
    duration : float
        Length, s (0.5-2).
    amp : float
        Peak amplitude, µV.
    phase : float
        Starting phase, radians.

    Returns
    -------
    ndarray, shape (round(duration * sfreq),)
        The waveform, µV.
    """
    t = _t(duration, sfreq)
    env = np.sin(np.pi * t / duration) ** 2
    # slight frequency chirp down, as in real spindles
    inst = freq * (1.0 + 0.03 * (0.5 - t / duration))
    return amp * env * np.sin(2 * np.pi * np.cumsum(inst) / sfreq + phase)


def k_complex(sfreq: float, amp_pp: float, width: float = 1.0) -> np.ndarray:
    """K-complex: a sharp negative wave followed by a slower positive one.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    amp_pp : float
        Peak-to-peak amplitude, µV (75-200).
    width : float
        Time scale factor (1 gives a ~1.3-s complex whose biphasic part lasts >= 0.5 s).

    Returns
    -------
    ndarray, shape (n,)
        The waveform, µV.
    """
    t = _t(1.6 * width, sfreq)
    neg = -np.exp(-0.5 * ((t - 0.38 * width) / (0.09 * width)) ** 2)
    pos = 0.55 * np.exp(-0.5 * ((t - 0.85 * width) / (0.2 * width)) ** 2)
    pre = 0.15 * np.exp(-0.5 * ((t - 0.18 * width) / (0.06 * width)) ** 2)
    x = neg + pos + pre
    x *= amp_pp / (x.max() - x.min())
    return _taper(x, sfreq)


def vertex_wave(sfreq: float, amp: float) -> np.ndarray:
    """Vertex sharp wave: a sharp negative transient shorter than 0.5 s.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    amp : float
        Peak (negative) amplitude magnitude, µV.

    Returns
    -------
    ndarray, shape (n,)
        The waveform, µV.
    """
    t = _t(0.45, sfreq)
    x = -np.exp(-0.5 * ((t - 0.15) / 0.04) ** 2) + 0.3 * np.exp(-0.5 * ((t - 0.27) / 0.06) ** 2)
    return _taper(amp * x, sfreq, 0.03)


def sawtooth_burst(sfreq: float, freq: float, duration: float, amp: float) -> np.ndarray:
    """Burst of REM sawtooth waves (2-6 Hz, notched, triangular).

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    freq : float
        Wave frequency, Hz (2-6).
    duration : float
        Burst length, s.
    amp : float
        Peak amplitude, µV.

    Returns
    -------
    ndarray, shape (n,)
        The waveform, µV.
    """
    t = _t(duration, sfreq)
    ph = (freq * t) % 1.0
    # slow rise, fast fall: the "teeth of a saw"
    saw = np.where(ph < 0.75, ph / 0.75, (1.0 - ph) / 0.25) * 2.0 - 1.0
    env = np.sin(np.pi * t / duration) ** 0.6
    return amp * env * saw


def eye_movement(sfreq: float, amp: float, rise: float, decay: float, hold: float) -> np.ndarray:
    """Conjugate eye movement as seen through an AC-coupled EOG amplifier.

    A smooth step of ``amp`` reached in ``rise`` seconds, held ``hold`` s, then relaxing back to
    zero with time constant ``decay`` (the high-pass of the amplifier and the return of gaze).

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    amp : float
        Signed deflection, µV.
    rise : float
        10-90 % rise time, s (<0.5 for rapid eye movements, >0.5 for slow rolling ones).
    decay : float
        Relaxation time constant, s.
    hold : float
        Plateau before relaxing, s.

    Returns
    -------
    ndarray, shape (n,)
        The deflection, µV.
    """
    total = rise * 1.5 + hold + 4.0 * decay
    t = _t(total, sfreq)
    # the rise (a raised cosine) and the relaxation (an exponential) are evaluated where they
    # act; elsewhere they are 1 (0.5 - 0.5 cos(pi) is exactly 1)
    x = t / (1.25 * rise)
    up = np.ones(t.size)
    k = int(np.searchsorted(x, 1.0))
    up[:k] = 0.5 - 0.5 * np.cos(np.pi * np.clip(x[:k], 0.0, 1.0))
    t_off = 1.25 * rise + hold
    down = np.ones(t.size)
    k = int(np.searchsorted(t, t_off, side="right"))
    down[k:] = np.exp(-(t[k:] - t_off) / decay)
    return _taper(amp * up * down, sfreq, 0.2)


def rolling_eye_movement(sfreq: float, amp: float, duration: float) -> np.ndarray:
    """Slow rolling eye movement of drowsiness: a smooth excursion and return.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    amp : float
        Signed peak deflection, µV.
    duration : float
        Length, s (1-4).

    Returns
    -------
    ndarray, shape (n,)
        The deflection, µV.
    """
    t = _t(duration, sfreq)
    return amp * np.sin(np.pi * t / duration) ** 2


def blink(sfreq: float, amp: float) -> np.ndarray:
    """Eye blink (vertical EOG), ~0.3 s.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    amp : float
        Peak deflection, µV.

    Returns
    -------
    ndarray, shape (n,)
        The deflection, µV.
    """
    t = _t(0.5, sfreq)
    x = np.exp(-0.5 * ((t - 0.17) / 0.055) ** 2) - 0.12 * np.exp(-0.5 * ((t - 0.33) / 0.07) ** 2)
    return _taper(amp * x, sfreq, 0.03)


def ecg_beat(sfreq: float, amp: float, rr: float) -> np.ndarray:
    """One ECG beat (P, QRS, T as Gaussians), starting 0.25 s before the R peak.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    amp : float
        R-wave amplitude, µV.
    rr : float
        Current RR interval, s (the T wave moves with it).

    Returns
    -------
    ndarray, shape (n,)
        The beat, µV; the R peak is at sample ``round(0.25 * sfreq)``.
    """
    qt = 0.2 + 0.12 * np.sqrt(max(rr, 0.3))
    t = _t(0.25 + qt + 0.2, sfreq) - 0.25
    waves = (
        (0.12, -0.17, 0.025),  # P
        (-0.12, -0.028, 0.01),  # Q
        (1.0, 0.0, 0.011),  # R
        (-0.22, 0.03, 0.012),  # S
        (0.3, qt, 0.05),  # T
    )
    x = np.zeros_like(t)
    for a, mu, sd in waves:
        x += a * np.exp(-0.5 * ((t - mu) / sd) ** 2)
    return _taper(amp * x, sfreq, 0.03)


def add_at(buf: np.ndarray, start: int, wave: np.ndarray) -> None:
    """Add ``wave`` into the 1-D ``buf`` from index ``start``, clipped to the buffer.

    Parameters
    ----------
    buf : ndarray, shape (n,)
        Target (modified in place).
    start : int
        Index of the first sample of ``wave`` in ``buf`` (may be negative).
    wave : ndarray, shape (m,)
        Waveform.
    """
    a = max(start, 0)
    b = min(start + wave.size, buf.size)
    if b > a:
        buf[a:b] += wave[a - start : b - start]
