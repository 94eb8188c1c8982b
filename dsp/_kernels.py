"""Numba kernels of the DSP core: loops only, no validation, no Python objects.

Every function here is small, pure apart from the arrays it is told to write, and compiled
with ``cache=True`` so a warm process loads machine code from ``__pycache__`` instead of
compiling. Callers in :mod:`dsp.resample`, :mod:`dsp.spectral` and :mod:`dsp.quality` check
shapes, dtypes and values first; a kernel trusts its inputs. The biquad kernels, which need
hand-written vector code, are in :mod:`dsp._biquad`.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def polyphase(h, up, down, half_len, xs, base, n_valid, k0, out):  # pragma: no cover
    """Compute outputs ``k0 .. k0 + out.shape[1] - 1`` of an up/down polyphase resampler.

    Output ``k`` is ``sum_i h[i] * xu[k * down + half_len - i]`` where ``xu`` is the input
    up-sampled by ``up`` with zeros (the definition of ``scipy.signal.resample_poly`` with
    zero padding).

    Parameters
    ----------
    h : ndarray, shape (2 * half_len + 1,)
        Low-pass FIR filter, already multiplied by ``up``. Products are accumulated in
        float64.
    up, down : int
        Coprime rate factors.
    half_len : int
        Filter half length.
    xs : ndarray, shape (n_signals, n_kept)
        Input samples with global indices ``base .. base + n_kept - 1``.
    base : int
        Global index of ``xs[:, 0]``. Samples before index 0 are zero.
    n_valid : int
        Global index of the first sample that is zero because the input ended (or that
        does not exist yet).
    k0 : int
        Global index of the first output.
    out : ndarray, shape (n_signals, n_out)
        Output.
    """
    m = xs.shape[0]
    n_out = out.shape[1]
    ntap = h.shape[0]
    for c in range(m):
        for kk in range(n_out):
            t = (k0 + kk) * down + half_len
            p = t % up
            q = t // up
            acc = 0.0
            j = 0
            while p + up * j < ntap:
                idx = q - j
                if idx < 0:
                    break
                if idx < n_valid:
                    acc += h[p + up * j] * xs[c, idx - base]
                j += 1
            out[c, kk] = acc


@njit(cache=True)
def hjorth(x, out):  # pragma: no cover - compiled
    """Hjorth activity, mobility and complexity of every row of ``x``.

    Parameters
    ----------
    x : ndarray, shape (n_signals, n_samples)
        Signals, ``n_samples >= 3``.
    out : ndarray of float64, shape (n_signals, 3)
        Activity (variance, µV²), mobility (dimensionless, per sample) and complexity
        (dimensionless); NaN where undefined (a constant signal).
    """
    m, n = x.shape
    for c in range(m):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for i in range(n):
            s0 += x[c, i]
        for i in range(1, n):
            s1 += x[c, i] - x[c, i - 1]
        for i in range(2, n):
            s2 += x[c, i] - 2.0 * x[c, i - 1] + x[c, i - 2]
        m0 = s0 / n
        m1 = s1 / (n - 1)
        m2 = s2 / (n - 2)
        v0 = 0.0
        v1 = 0.0
        v2 = 0.0
        for i in range(n):
            d = x[c, i] - m0
            v0 += d * d
        for i in range(1, n):
            d = x[c, i] - x[c, i - 1] - m1
            v1 += d * d
        for i in range(2, n):
            d = x[c, i] - 2.0 * x[c, i - 1] + x[c, i - 2] - m2
            v2 += d * d
        v0 /= n
        v1 /= n - 1
        v2 /= n - 2
        out[c, 0] = v0
        if v0 > 0.0 and v1 > 0.0:
            mob = np.sqrt(v1 / v0)
            out[c, 1] = mob
            out[c, 2] = np.sqrt(v2 / v1) / mob
        else:
            out[c, 1] = np.nan
            out[c, 2] = np.nan


@njit(cache=True)
def amplitude_stats(x, rail, out):  # pragma: no cover - compiled
    """Amplitude statistics of every row of ``x`` for the signal-quality flags.

    Parameters
    ----------
    x : ndarray, shape (n_signals, n_samples)
        Signals in microvolts, ``n_samples >= 2``.
    rail : float
        Absolute value (µV) at or beyond which a sample counts as railed.
    out : ndarray of float64, shape (n_signals, 6)
        Per row: standard deviation (µV), peak-to-peak (µV), fraction of railed samples,
        longest run of identical consecutive values (fraction of the row), fraction of
        non-finite samples, RMS of the first difference (µV).
    """
    m, n = x.shape
    for c in range(m):
        cnt = 0
        s = 0.0
        lo = np.inf
        hi = -np.inf
        nonfin = 0
        for i in range(n):
            v = x[c, i]
            if v - v == 0.0:
                cnt += 1
                s += v
                lo = min(lo, v)
                hi = max(hi, v)
            else:
                nonfin += 1
        mean = s / cnt if cnt > 0 else 0.0
        var = 0.0
        railed = 0
        run = 1
        best = 1 if n > 0 else 0
        dd = 0.0
        nd = 0
        prev = np.nan
        for i in range(n):
            v = x[c, i]
            if v - v == 0.0:
                d = v - mean
                var += d * d
                if abs(v) >= rail:
                    railed += 1
            if i > 0:
                if v == prev:
                    run += 1
                    best = max(best, run)
                else:
                    run = 1
                dv = v - prev
                if dv - dv == 0.0:
                    dd += dv * dv
                    nd += 1
            prev = v
        out[c, 0] = np.sqrt(var / cnt) if cnt > 0 else np.nan
        out[c, 1] = hi - lo if cnt > 0 else np.nan
        out[c, 2] = railed / n
        out[c, 3] = best / n
        out[c, 4] = nonfin / n
        out[c, 5] = np.sqrt(dd / nd) if nd > 0 else np.nan
