"""Numba kernels of the simulated sleeper's block generation.

Loops that replace chains of whole-array numpy operations (each of which allocates a temporary
and walks the block again). Each kernel performs exactly the floating-point operations of the
numpy expression it replaces, in the same order and precision (no fused multiply-add, no
reassociation), so the sleeper's output is the same bit for bit; the tests compare every kernel
with its numpy expression for exact equality.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def scatter_scaled(draw, amp, active, out):
    """Scale complex draws and scatter them into a zeroed flat spectrum array.

    Parameters
    ----------
    draw : ndarray of float32, shape (2 * n_active,)
        Interleaved (re, im) standard normal draws.
    amp : ndarray of float32, shape (n_active,)
        Amplitude of each drawn bin.
    active : ndarray of int64, shape (n_active,)
        Flat index of each drawn bin in the complex spectrum array.
    out : ndarray of float32, shape (2 * n_bins,)
        The spectrum array viewed as interleaved (re, im) float32 (bins not in ``active`` are
        left alone). Equals ``spec.ravel()[active] = draw.view(complex64) * amp``.
    """
    for i in range(active.size):
        k = 2 * active[i]
        out[k] = draw[2 * i] * amp[i]
        out[k + 1] = draw[2 * i + 1] * amp[i]


@njit(cache=True)
def add_leak(buf, n, to, frm, gain, out):
    """Add the linear leakage between sources: ``out[to[i]] += gain[i] * buf[frm[i], :n]``.

    Parameters
    ----------
    buf : ndarray, shape (n_rows, >= n)
        Source signals.
    n : int
        Samples to mix.
    to, frm : ndarray of int64, shape (n_ops,)
        Target row of ``out`` and source row of ``buf`` of each operation, applied in order.
    gain : ndarray of float64, shape (n_ops,)
        Gain of each operation.
    out : ndarray, shape (n_out_rows, >= n)
        Target (modified in place).
    """
    for i in range(to.size):
        t, f, g = to[i], frm[i], gain[i]
        for j in range(n):
            out[t, j] += g * buf[f, j]


@njit(cache=True)
def mix_eeg(
    x,
    ex,
    g_alpha,
    g_beta,
    g_muscle,
    a,
    nm,
    eo,
    mv,
    day,
    talk,
    w_alpha,
    w_beta,
    w_muscle,
    hm,
    rows,
    buf,
):
    """Apply the EEG groups' per-sample gains and add the derivations into ``buf``.

    With ``k = rows.size`` derivations, ``x`` holds the background of each (rows ``0..k-1``),
    then its alpha (``k..2k-1``), then its high-frequency group (``2k..3k-1``). Per sample::

        alpha = max(g_alpha * ex * (1 - 0.85 eo), w_alpha * (0.8 a + 0.45 nm))
        beta = g_beta * (1 + eo) + w_beta * (1.2 a + 1.3 nm)
        muscle = g_muscle * (1 + 1.5 eo) + w_muscle * (a + 0.5 nm + 2 mv)
                 + w_muscle * (0.8 day + talk)
        buf[rows[r]] += x[r] * (1 - 0.3 a) + x[k + r] * alpha + x[2k + r] * (beta + muscle) / hm

    Parameters
    ----------
    x : ndarray, shape (>= 3 * k, >= n)
        Rendered groups.
    ex : ndarray, shape (n,)
        Alpha's waxing and waning envelope (already exponentiated).
    g_alpha, g_beta, g_muscle : ndarray, shape (n,)
        Stage gains of alpha, beta and scalp muscle, µV.
    a, nm, eo, mv, day, talk : ndarray, shape (n,)
        Arousal, nightmare, eyes-open, movement, daytime and talking intensities.
    w_alpha, w_beta, w_muscle : float
        The subject's wake gains of alpha, beta and muscle, µV.
    hm : float
        Block-mean gain the high-frequency group was rendered with.
    rows : ndarray of int64, shape (k,)
        Row of ``buf`` of each derivation.
    buf : ndarray, shape (n_rows, >= n)
        Target (modified in place).
    """
    n, k = ex.size, rows.size
    for j in range(n):
        alpha = g_alpha[j] * ex[j] * (1.0 - 0.85 * eo[j])
        floor = w_alpha * (0.8 * a[j] + 0.45 * nm[j])
        if floor > alpha:
            alpha = floor
        beta = g_beta[j] * (1.0 + eo[j]) + w_beta * (1.2 * a[j] + 1.3 * nm[j])
        muscle = g_muscle[j] * (1.0 + 1.5 * eo[j])
        muscle += w_muscle * (a[j] + 0.5 * nm[j] + 2.0 * mv[j])
        muscle += w_muscle * (0.8 * day[j] + talk[j])
        high = (beta + muscle) / hm
        calm = 1.0 - 0.3 * a[j]
        for r in range(k):
            buf[rows[r], j] += x[r, j] * calm + x[k + r, j] * alpha + x[2 * k + r, j] * high


@njit(cache=True)
def cumulative_rate(rate, scale):
    """Return the running sum of the positive part of ``rate``, divided by ``scale``.

    Equals ``np.cumsum(np.maximum(rate, 0.0)) / scale``.

    Parameters
    ----------
    rate : ndarray, shape (n,)
        Event rate per sample (negative values count as zero).
    scale : float
        Divisor (samples per rate unit).

    Returns
    -------
    ndarray, shape (n,)
        Expected number of events up to each sample.
    """
    out = np.empty(rate.size)
    total = 0.0
    for i in range(rate.size):
        r = rate[i]
        if r < 0.0:
            r = 0.0
        total += r
        out[i] = total / scale
    return out


@njit(cache=True)
def ramp_phase(phase, base, factor, lf0, lf1, add1, w1, add2, w2, sfreq):
    """Phase of an oscillator whose rate (per minute) ramps and follows two intensities.

    With ``lf`` ramping linearly from ``lf0`` (first sample) towards ``lf1`` (``i / n`` of the
    way at sample ``i``), the rate is ``base * factor * (1 + lf) + w1 * add1 + w2 * add2`` per
    minute and the phase (cycles) ``phase + cumsum(rate / 60 / sfreq)``.

    Parameters
    ----------
    phase : float
        Phase before the first sample, cycles.
    base : float
        Rate, per minute.
    factor : ndarray, shape (n,)
        Per-sample factor of the rate.
    lf0, lf1 : float
        Slow relative fluctuation at the block's start and at its end.
    add1, add2 : ndarray, shape (n,)
        Intensities adding ``w1`` and ``w2`` per minute.
    w1, w2 : float
        Their weights, per minute.
    sfreq : float
        Sampling rate, Hz.

    Returns
    -------
    ndarray, shape (n,)
        Phase after each sample, cycles.
    """
    n = factor.size
    out = np.empty(n)
    total = 0.0
    for i in range(n):
        lf = lf0 + (lf1 - lf0) * (i / n)
        rate = base * factor[i] * (1.0 + lf) + w1 * add1[i] + w2 * add2[i]
        total += rate / 60.0 / sfreq
        out[i] = phase + total
    return out


@njit(cache=True)
def heart_rate(hr_wake, offset, lf0, lf1, hrv, resp, arousal, movement, nm_gain, nightmare):
    """Instantaneous heart rate of a block, bpm, clipped to 35-190.

    ``hr_wake + offset + lf + hrv * resp + 9 arousal + 10 movement + nm_gain * nightmare``,
    with ``lf`` ramping from ``lf0`` towards ``lf1`` as in :func:`ramp_phase`.

    Parameters
    ----------
    hr_wake : float
        Relaxed-wake heart rate, bpm.
    offset : ndarray, shape (n,)
        Stage offset, bpm.
    lf0, lf1 : float
        Slow fluctuation at the block's start and end, bpm.
    hrv : float
        Respiratory sinus arrhythmia, bpm per unit of ``resp``.
    resp : ndarray, shape (n,)
        Breathing signal, -1..1.
    arousal, movement, nightmare : ndarray, shape (n,)
        Intensities, 0-1.
    nm_gain : float
        Heart-rate rise at the nightmare's peak, bpm.

    Returns
    -------
    ndarray, shape (n,)
        Heart rate, bpm.
    """
    n = offset.size
    out = np.empty(n)
    for i in range(n):
        lf = lf0 + (lf1 - lf0) * (i / n)
        hr = hr_wake + offset[i] + lf + hrv * resp[i]
        hr = hr + 9.0 * arousal[i] + 10.0 * movement[i] + nm_gain * nightmare[i]
        out[i] = min(max(hr, 35.0), 190.0)
    return out


@njit(cache=True)
def beat_onsets(phase, hr, sfreq):
    """Advance the beat phase over a block and find the samples where a beat starts.

    Parameters
    ----------
    phase : float
        Beat phase before the first sample, cycles.
    hr : ndarray, shape (n,)
        Heart rate, bpm.
    sfreq : float
        Sampling rate, Hz.

    Returns
    -------
    starts : ndarray of int64, shape (n_beats,)
        Samples where ``floor(phase + cumsum(hr / 60 / sfreq))`` steps up (from ``floor(0)``
        before the first sample).
    last : float
        Phase after the last sample, cycles.
    """
    starts = np.empty(hr.size, dtype=np.int64)
    k = 0
    total = 0.0
    prev = 0.0
    p = phase
    for i in range(hr.size):
        total += hr[i] / 60.0 / sfreq
        p = phase + total
        f = np.floor(p)
        if f - prev > 0:
            starts[k] = i
            k += 1
        prev = f
    return starts[:k], p


@njit(cache=True)
def column_means(x):
    """Return the mean of each column of a 2-D array with at least two columns.

    Equals ``x.mean(axis=0)``: numpy reduces a C-ordered array of two or more columns along its
    first axis by adding the rows in order, as this loop does (a single column would be summed
    pairwise instead).

    Parameters
    ----------
    x : ndarray, shape (n, m)
        Values, ``m >= 2``.

    Returns
    -------
    ndarray, shape (m,)
        Column means.
    """
    n, m = x.shape
    out = np.zeros(m)
    for i in range(n):
        for j in range(m):
            out[j] += x[i, j]
    for j in range(m):
        out[j] /= n
    return out


@njit(cache=True)
def clip_at_rail(out, flags, rows, rail, flag):
    """Clip the given rows at +-``rail`` and flag the clipped samples.

    Equals, for each row ``r``: ``over = np.abs(out[r]) >= rail``, then
    ``np.clip(out[r], -rail, rail, out=out[r])`` and ``flags[r, over] |= flag``.

    Parameters
    ----------
    out : ndarray, shape (n_rows, n)
        Signals (modified in place).
    flags : ndarray of uint8, shape (n_rows, n)
        Per-sample flags (modified in place).
    rows : ndarray of int64, shape (k,)
        Rows to clip.
    rail : float
        Rail, same unit as ``out`` (positive).
    flag : int
        Flag bit to set on clipped samples.
    """
    bit = np.uint8(flag)
    for r in rows:
        for j in range(out.shape[1]):
            v = out[r, j]
            if abs(v) >= rail:
                out[r, j] = rail if v > 0 else -rail
                flags[r, j] |= bit


@njit(cache=True)
def add_held(buf, rows, values, hold):
    """Add readings held for ``hold`` samples each: ``buf[rows[k], j] += values[j // hold, k]``.

    Equals adding ``np.repeat(values, hold, axis=0)[:, k]`` into ``buf[rows[k]]``.

    Parameters
    ----------
    buf : ndarray, shape (n_rows, >= n_readings * hold)
        Target (modified in place).
    rows : ndarray of int64, shape (k,)
        Row of ``buf`` of each column of ``values``.
    values : ndarray, shape (n_readings, k)
        Readings.
    hold : int
        Samples per reading.
    """
    for k in range(rows.size):
        r = rows[k]
        for i in range(values.shape[0]):
            v = values[i, k]
            for j in range(i * hold, (i + 1) * hold):
                buf[r, j] += v
