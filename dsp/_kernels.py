"""Numba kernels of the DSP core: loops only, no validation, no Python objects.

Every function here is small, pure apart from the arrays it is told to write, and compiled
with ``cache=True`` so a warm process loads machine code from ``__pycache__`` instead of
compiling. Callers in :mod:`dsp.iir`, :mod:`dsp.resample`, :mod:`dsp.spectral` and
:mod:`dsp.quality` check shapes, dtypes and values first; a kernel trusts its inputs.

Arithmetic order
----------------
The biquad recurrence is written exactly as scipy's ``_sosfilt`` (direct form II transposed)::

    y     = b0 * x + z0
    z0    = b1 * x - a1 * y + z1
    z1    = b2 * x - a2 * y

numba does not contract ``a * b + c`` into fused multiply-adds unless ``fastmath`` is on (it is
not), so the results are bit-identical to scipy, and identical whatever the chunking.

Speed
-----
One section's recurrence is latency-bound (a chain of four dependent floating-point operations
per sample). The kernels therefore copy a block of samples into a small transposed buffer
``(block, channel)`` and update all channels of a section in the innermost loop: the channels
are independent chains, so the compiler vectorises them and the processor overlaps them. State
and coefficients are copied into freshly allocated local arrays so that the compiler knows they
do not alias the signal.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Samples per block of the transposed working buffer.
_BLOCK = 64
#: Channels processed together by the offline kernel (keeps the buffer in L1).
_TILE = 16

#: Layout of the packed state of :func:`sos_stream` (see :func:`stream_state_size`).
STREAM_HEADER = 4  # [n_sections, n_restarts, reserved, reserved]


@njit(cache=True)
def sosfilt_offline(sos, x, out, zi, reverse):  # pragma: no cover - compiled
    """Filter every row of ``x`` through the cascade ``sos`` into ``out``.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections, ``sos[:, 3] == 1``, in the dtype of ``out``.
    x : ndarray, shape (n_signals, n_samples), C-contiguous
        Input; may be the same array as ``out`` (in-place filtering).
    out : ndarray, shape (n_signals, n_samples), C-contiguous
        Output.
    zi : ndarray, shape (n_signals, n_sections, 2)
        Initial state, overwritten with the final state.
    reverse : bool
        Run from the last sample to the first (the backward pass of ``sosfiltfilt``).
    """
    m, n = x.shape
    if m == 0 or n == 0:
        return
    ns = sos.shape[0]
    # Flat local arrays, one per quantity: the compiler then knows that they do not alias
    # and vectorises the innermost loop over channels.
    cf = np.empty(5 * ns, dtype=out.dtype)
    for s in range(ns):
        cf[5 * s] = sos[s, 0]
        cf[5 * s + 1] = sos[s, 1]
        cf[5 * s + 2] = sos[s, 2]
        cf[5 * s + 3] = sos[s, 4]
        cf[5 * s + 4] = sos[s, 5]
    tile = min(_TILE, m)
    z0 = np.empty(ns * tile, dtype=out.dtype)
    z1 = np.empty(ns * tile, dtype=out.dtype)
    buf = np.empty(min(_BLOCK, n) * tile, dtype=out.dtype)
    for c0 in range(0, m, tile):
        nc = min(tile, m - c0)
        for s in range(ns):
            for c in range(nc):
                z0[s * nc + c] = zi[c0 + c, s, 0]
                z1[s * nc + c] = zi[c0 + c, s, 1]
        for i0 in range(0, n, _BLOCK):
            nb = min(_BLOCK, n - i0)
            if reverse:
                for c in range(nc):
                    for i in range(nb):
                        buf[i * nc + c] = x[c0 + c, n - 1 - i0 - i]
            else:
                for c in range(nc):
                    for i in range(nb):
                        buf[i * nc + c] = x[c0 + c, i0 + i]
            for i in range(nb):
                o = i * nc
                for s in range(ns):
                    b0 = cf[5 * s]
                    b1 = cf[5 * s + 1]
                    b2 = cf[5 * s + 2]
                    a1 = cf[5 * s + 3]
                    a2 = cf[5 * s + 4]
                    so = s * nc
                    for c in range(nc):
                        xc = buf[o + c]
                        y = b0 * xc + z0[so + c]
                        z0[so + c] = b1 * xc - a1 * y + z1[so + c]
                        z1[so + c] = b2 * xc - a2 * y
                        buf[o + c] = y
            if reverse:
                for c in range(nc):
                    for i in range(nb):
                        out[c0 + c, n - 1 - i0 - i] = buf[i * nc + c]
            else:
                for c in range(nc):
                    for i in range(nb):
                        out[c0 + c, i0 + i] = buf[i * nc + c]
        for s in range(ns):
            for c in range(nc):
                zi[c0 + c, s, 0] = z0[s * nc + c]
                zi[c0 + c, s, 1] = z1[s * nc + c]


def stream_state_size(n_sections: int, n_channels: int) -> int:
    """Return the length of the packed float64 state of :func:`sos_stream`.

    Layout (each block C-ordered, channels last)::

        header  4                          [n_sections, n_restarts, 0, 0]
        coef    (5, n_sections, n_ch)      b0, b1, b2, a1, a2 per section and channel
        zic     (2, n_sections, n_ch)      steady-state state for a unit step (sosfilt_zi)
        z       (2, n_sections, n_ch)      filter state
        hold    (n_ch,)                    last finite input sample
        started (n_ch,)                    1.0 once the channel saw a finite sample
        active  (n_ch,)                    sections actually used by the channel (the rest
                                           are identity sections; per-channel kernel only)
    """
    return STREAM_HEADER + n_channels * (9 * n_sections + 3)


@njit(cache=True)
def _fill_block(state, x, i0, nb, buf, start_at):  # pragma: no cover - compiled
    """Copy ``x[:, i0:i0 + nb]`` transposed into ``buf`` with the NaN policy; see sos_stream.

    Returns (held, pending): samples replaced, and whether a channel starts in this block
    (``start_at[c]`` is then its index in the block).
    """
    nch = x.shape[0]
    ns = int(state[0])
    k = ns * nch
    o_hold = STREAM_HEADER + 9 * k
    o_started = o_hold + nch
    held = 0
    pending = False
    for c in range(nch):
        h = state[o_hold + c]
        i = 0
        if state[o_started + c] == 0.0:
            # Not started: zeros until the first finite sample.
            while i < nb:
                v = x[c, i0 + i]
                if v - v == 0.0:
                    break
                buf[i * nch + c] = 0.0
                held += 1
                i += 1
            if i < nb:
                state[o_started + c] = 1.0
                start_at[c] = i
                pending = True
        while i < nb:
            v = x[c, i0 + i]
            if v - v == 0.0:
                h = v
            else:
                held += 1
            buf[i * nch + c] = h
            i += 1
        state[o_hold + c] = h
    return held, pending


@njit(cache=True)
def _finite_state(z0, z1, c, ns, stride):  # pragma: no cover - compiled
    """Return True if the state of channel ``c`` (entries ``s * stride + c``) is finite."""
    for s in range(ns):
        j = s * stride + c
        if not (z0[j] - z0[j] == 0.0 and z1[j] - z1[j] == 0.0):
            return False
    return True


@njit(cache=True)
def sos_stream(state, x, out):  # pragma: no cover - compiled
    """Filter one chunk through a cascade shared by all channels, carrying the state.

    Parameters
    ----------
    state : ndarray of float64, shape (stream_state_size(n_sections, n_channels),)
        Packed coefficients and state (see :func:`stream_state_size`; the coefficients of
        channel 0 are used for all); updated in place.
    x : ndarray of float64, shape (n_channels, n_samples)
        Chunk. Non-finite samples are replaced by the channel's last finite sample; before a
        channel's first finite sample the output is 0 and the filter is not started. At the
        first finite sample ``v`` the state is set to the steady state ``zic * v``.
    out : ndarray of float64, shape (n_channels, n_samples), C-contiguous
        Output; must not overlap ``x`` unless it is ``x`` itself.

    Returns
    -------
    int
        Number of samples that were replaced (non-finite inputs).
    """
    nch, n = x.shape
    ns = int(state[0])
    k = ns * nch
    o = STREAM_HEADER
    o_zic = o + 5 * k
    o_z = o_zic + 2 * k
    # Flat local copies, one array per quantity: no aliasing, the channel loop vectorises.
    cf = np.empty(5 * ns)
    for s in range(ns):
        for q in range(5):
            cf[5 * s + q] = state[o + q * k + s * nch]
    z0 = np.empty(k)
    z1 = np.empty(k)
    for j in range(k):
        z0[j] = state[o_z + j]
        z1[j] = state[o_z + k + j]
    buf = np.empty(min(_BLOCK, n) * nch)
    start_at = np.full(nch, -1, dtype=np.int64)
    held = 0
    for i0 in range(0, n, _BLOCK):
        nb = min(_BLOCK, n - i0)
        h, pending = _fill_block(state, x, i0, nb, buf, start_at)
        held += h
        for i in range(nb):
            oi = i * nch
            if pending:
                for c in range(nch):
                    if start_at[c] == i:
                        v = buf[oi + c]
                        for s in range(ns):
                            z0[s * nch + c] = state[o_zic + s * nch + c] * v
                            z1[s * nch + c] = state[o_zic + k + s * nch + c] * v
                        start_at[c] = -1
            for s in range(ns):
                b0 = cf[5 * s]
                b1 = cf[5 * s + 1]
                b2 = cf[5 * s + 2]
                a1 = cf[5 * s + 3]
                a2 = cf[5 * s + 4]
                so = s * nch
                for c in range(nch):
                    xc = buf[oi + c]
                    y = b0 * xc + z0[so + c]
                    z0[so + c] = b1 * xc - a1 * y + z1[so + c]
                    z1[so + c] = b2 * xc - a2 * y
                    buf[oi + c] = y
        for c in range(nch):
            for i in range(nb):
                out[c, i0 + i] = buf[i * nch + c]
    # An overflowing state (inputs near 1e308) would poison every later sample: restart it.
    o_started = o_z + 2 * k + nch
    for c in range(nch):
        if not _finite_state(z0, z1, c, ns, nch):
            for s in range(ns):
                z0[s * nch + c] = 0.0
                z1[s * nch + c] = 0.0
            state[o_started + c] = 0.0
            state[1] += 1.0
    for j in range(k):
        state[o_z + j] = z0[j]
        state[o_z + k + j] = z1[j]
    return held


@njit(cache=True)
def sos_stream_channels(state, x, out):  # pragma: no cover - compiled
    """Like :func:`sos_stream` with one cascade per channel (a filter bank).

    Each channel runs its own ``active`` sections (identity padding is skipped); the channels
    are processed one after the other, the sections of a channel overlapping in the
    processor. Same state layout, NaN policy and arithmetic as :func:`sos_stream`.

    Returns
    -------
    int
        Number of samples that were replaced (non-finite inputs).
    """
    nch, n = x.shape
    ns = int(state[0])
    k = ns * nch
    o = STREAM_HEADER
    o_zic = o + 5 * k
    o_z = o_zic + 2 * k
    o_hold = o_z + 2 * k
    o_started = o_hold + nch
    o_active = o_started + nch
    cf = np.empty(5 * ns)
    z0 = np.empty(ns)
    z1 = np.empty(ns)
    held = 0
    for c in range(nch):
        na = int(state[o_active + c])
        for s in range(na):
            j = s * nch + c
            for q in range(5):
                cf[5 * s + q] = state[o + q * k + j]
            z0[s] = state[o_z + j]
            z1[s] = state[o_z + k + j]
        h = state[o_hold + c]
        i = 0
        if state[o_started + c] == 0.0:
            while i < n:
                v = x[c, i]
                if v - v == 0.0:
                    break
                out[c, i] = 0.0
                held += 1
                i += 1
            if i < n:
                v = x[c, i]
                for s in range(na):
                    j = s * nch + c
                    z0[s] = state[o_zic + j] * v
                    z1[s] = state[o_zic + k + j] * v
                state[o_started + c] = 1.0
        while i < n:
            v = x[c, i]
            if v - v == 0.0:
                h = v
            else:
                held += 1
            v = h
            for s in range(na):
                y = cf[5 * s] * v + z0[s]
                z0[s] = cf[5 * s + 1] * v - cf[5 * s + 3] * y + z1[s]
                z1[s] = cf[5 * s + 2] * v - cf[5 * s + 4] * y
                v = y
            out[c, i] = v
            i += 1
        state[o_hold + c] = h
        if not _finite_state(z0, z1, 0, na, 1):  # overflow: restart the channel
            for s in range(na):
                z0[s] = 0.0
                z1[s] = 0.0
            state[o_started + c] = 0.0
            state[1] += 1.0
        for s in range(na):
            j = s * nch + c
            state[o_z + j] = z0[s]
            state[o_z + k + j] = z1[s]
    return held


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
