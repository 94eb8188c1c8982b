"""Numba kernels of the DSP core: loops only, no validation, no Python objects.

Every function here is small, pure apart from the arrays it is told to write, and compiled
with ``cache=True`` so a warm process loads machine code from ``__pycache__`` instead of
compiling. Callers in :mod:`dsp.iir`, :mod:`dsp.resample`, :mod:`dsp.spectral` and
:mod:`dsp.quality` check shapes, dtypes and values first; a kernel trusts its inputs.

Biquads
-------
The recurrence is scipy's ``_sosfilt`` (direct form II transposed), evaluated in its order
without fused multiply-adds, so the results are bit-identical to scipy and identical whatever
the chunking (see :mod:`dsp._simd`). One section's recurrence is latency-bound, so the kernels
run :data:`~dsp._simd.LANES` channels at once in one vector: a tile of channels is copied,
a block of samples at a time, into a small transposed buffer ``(block, LANES)`` (8x8 register
transposes), the cascade runs over it in place, and the buffer is copied back. A tile with
fewer channels repeats its last row in the spare lanes (offline) or gives them zero
coefficients (streaming); their results are never written. Offline, a lone channel (a 1-D
signal, or the ninth of nine) runs the scalar loop instead, which is faster for one chain.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._simd import LANES, cascade, gather, scatter

#: Samples per block of the transposed working buffer (a multiple of 8; fits in L1).
_BLOCK = 64

#: Layout of the packed state of :func:`sos_stream` (see :func:`stream_state_size`).
STREAM_HEADER = 8  # [n_sections, n_restarts, n_tiles, n_channels, 0, 0, 0, 0]: 64 bytes

#: Alignment (bytes) of the vector buffers: a 64-byte vector that straddles two cache lines
#: costs two loads.
ALIGN = 64


@njit(cache=True)
def _aligned_empty(k, like):  # pragma: no cover - compiled
    """Return an uninitialised 1-D array of ``k`` items of ``like``'s dtype aligned to ALIGN."""
    item = like.itemsize
    raw = np.empty(k + ALIGN // item, dtype=like.dtype)
    off = ((-raw.ctypes.data) % ALIGN) // item
    return raw[off : off + k]


@njit(cache=True)
def _load_block(x, rows, i0, nb, n, reverse, buf):  # pragma: no cover - compiled
    """Copy samples ``i0 .. i0 + nb - 1`` of ``x[rows]`` transposed into ``buf``.

    With ``reverse`` the samples are counted from the end. Whole 8-sample blocks go through
    the SIMD transposes, the rest one sample at a time.
    """
    nfull = nb // 8
    gather(x, rows, n - i0 - 8 if reverse else i0, nfull, reverse, buf)
    for i in range(8 * nfull, nb):
        col = n - 1 - i0 - i if reverse else i0 + i
        for c in range(LANES):
            buf[i * LANES + c] = x[rows[c], col]


@njit(cache=True)
def _store_block(buf, rows, n_real, i0, nb, n, reverse, out):  # pragma: no cover - compiled
    """Inverse of :func:`_load_block`; only the first ``n_real`` lanes are written."""
    nfull = nb // 8
    scatter(out, rows, n - i0 - 8 if reverse else i0, nfull, reverse, buf)
    for i in range(8 * nfull, nb):
        col = n - 1 - i0 - i if reverse else i0 + i
        for c in range(n_real):
            out[rows[c], col] = buf[i * LANES + c]


@njit(cache=True)
def _filter_row(sos, x, out, zi, r, reverse):  # pragma: no cover - compiled
    """Filter the single row ``r`` with scalar arithmetic (the scipy loop).

    A lone channel would fill one lane of eight: the scalar recurrence, whose sections the
    processor overlaps, is faster for it.
    """
    n = x.shape[1]
    ns = sos.shape[0]
    cf = np.empty(5 * ns, dtype=out.dtype)
    z = np.empty(2 * ns, dtype=out.dtype)
    for s in range(ns):
        cf[5 * s] = sos[s, 0]
        cf[5 * s + 1] = sos[s, 1]
        cf[5 * s + 2] = sos[s, 2]
        cf[5 * s + 3] = sos[s, 4]
        cf[5 * s + 4] = sos[s, 5]
        z[2 * s] = zi[r, s, 0]
        z[2 * s + 1] = zi[r, s, 1]
    for i in range(n):
        j = n - 1 - i if reverse else i
        v = x[r, j]
        for s in range(ns):
            y = cf[5 * s] * v + z[2 * s]
            z[2 * s] = cf[5 * s + 1] * v - cf[5 * s + 3] * y + z[2 * s + 1]
            z[2 * s + 1] = cf[5 * s + 2] * v - cf[5 * s + 4] * y
            v = y
        out[r, j] = v
    for s in range(ns):
        zi[r, s, 0] = z[2 * s]
        zi[r, s, 1] = z[2 * s + 1]


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
    coef = _aligned_empty(ns * 5 * LANES, out)
    for s in range(ns):
        for c in range(LANES):
            o = s * 5 * LANES + c
            coef[o] = sos[s, 0]
            coef[o + LANES] = sos[s, 1]
            coef[o + 2 * LANES] = sos[s, 2]
            coef[o + 3 * LANES] = sos[s, 4]
            coef[o + 4 * LANES] = sos[s, 5]
    z = _aligned_empty(ns * 2 * LANES, out)
    buf = _aligned_empty(_BLOCK * LANES, out)
    rows = np.empty(LANES, dtype=np.int64)
    for c0 in range(0, m, LANES):
        nc = min(LANES, m - c0)
        if nc == 1:
            _filter_row(sos, x, out, zi, c0, reverse)
            continue
        for c in range(LANES):
            rows[c] = c0 + min(c, nc - 1)
        for s in range(ns):
            for c in range(LANES):
                z[2 * s * LANES + c] = zi[rows[c], s, 0]
                z[(2 * s + 1) * LANES + c] = zi[rows[c], s, 1]
        for i0 in range(0, n, _BLOCK):
            nb = min(_BLOCK, n - i0)
            _load_block(x, rows, i0, nb, n, reverse, buf)
            cascade(coef, z, buf, nb, ns)
            _store_block(buf, rows, nc, i0, nb, n, reverse, out)
        for s in range(ns):
            for c in range(nc):
                zi[c0 + c, s, 0] = z[2 * s * LANES + c]
                zi[c0 + c, s, 1] = z[(2 * s + 1) * LANES + c]


def stream_state_size(n_sections: int, n_channels: int) -> int:
    """Return the length of the packed float64 state of :func:`sos_stream`.

    Channels are grouped in ``n_tiles = ceil(n_channels / LANES)`` tiles of LANES lanes;
    lanes past the last channel have zero coefficients. Every block is a multiple of 64
    bytes long, so an array aligned to :data:`ALIGN` keeps them all aligned. Layout, each
    block C-ordered::

        header  8                              [n_sections, n_restarts, n_tiles, n_channels,
                                                0, 0, 0, 0]
        coef    (n_tiles, n_sections, 5, L)    b0, b1, b2, a1, a2 per section and lane
        zic     (n_tiles, n_sections, 2, L)    steady-state state for a unit step
        z       (n_tiles, n_sections, 2, L)    filter state
        hold    (n_tiles * L,)                 last finite input sample
        started (n_tiles * L,)                 1.0 once the channel saw a finite sample
        work    (_BLOCK * L,)                  scratch buffer of the kernel
    """
    n_lanes = -(-n_channels // LANES) * LANES
    return STREAM_HEADER + n_lanes * (9 * n_sections + 2) + _BLOCK * LANES


@njit(cache=True)
def _fill_block(x, rows, n_real, i0, nb, buf, hold, started, start_at):  # pragma: no cover
    """Copy ``x[rows, i0:i0 + nb]`` transposed into ``buf`` with the NaN policy of sos_stream.

    Returns the number of samples replaced; a channel that starts in this block gets its
    index in the block in ``start_at[lane]``.
    """
    held = 0
    for c in range(n_real):
        r = rows[c]
        h = hold[c]
        i = 0
        if started[c] == 0.0:
            # Not started: zeros until the first finite sample.
            while i < nb:
                v = x[r, i0 + i]
                if v - v == 0.0:
                    break
                buf[i * LANES + c] = 0.0
                held += 1
                i += 1
            if i < nb:
                started[c] = 1.0
                start_at[c] = i
        while i < nb:
            v = x[r, i0 + i]
            if v - v == 0.0:
                h = v
            else:
                held += 1
            buf[i * LANES + c] = h
            i += 1
        hold[c] = h
    return held


@njit(cache=True)
def _all_started(started, k):  # pragma: no cover - compiled
    """Return True if the first ``k`` lanes have started."""
    for c in range(k):
        if started[c] == 0.0:
            return False
    return True


@njit(cache=True)
def _all_finite(buf, k):  # pragma: no cover - compiled
    """Return True if ``buf[:k]`` holds no NaN or infinity."""
    ok = True
    for i in range(k):
        v = buf[i]
        ok &= v - v == 0.0
    return ok


@njit(cache=True)
def _run_with_starts(coef, zic, z, buf, nb, ns, start_at):  # pragma: no cover - compiled
    """Run the cascade over ``buf``, starting lanes on the way.

    A lane whose ``start_at`` is ``i`` (-1: none) gets the state ``zic * v`` just before
    sample ``i``, ``v`` being that (first finite) sample. Without starts this is one call of
    the cascade (the kernel's only call site, which keeps its compile time down).
    """
    i = 0
    while i < nb:
        nxt = nb
        for c in range(LANES):
            a = start_at[c]
            if a == i:
                v = buf[i * LANES + c]
                for j in range(2 * ns):
                    z[j * LANES + c] = zic[j * LANES + c] * v
                start_at[c] = -1
            elif i < a < nxt:
                nxt = a
        cascade(coef, z, buf[i * LANES :], nxt - i, ns)
        i = nxt


#: The one signature of :func:`sos_stream`: other dtypes and layouts are refused by the
#: dispatcher (a TypeError, without compiling) instead of reaching the intrinsics, which
#: assume C-contiguous rows.
_STREAM_SIGNATURE = "int64(float64[::1], int64[::1], float64[:, ::1], float64[:, ::1])"


@njit(_STREAM_SIGNATURE, cache=True)
def sos_stream(state, lanes, x, out):  # pragma: no cover - compiled
    """Filter one chunk through each channel's cascade, carrying the state.

    Parameters
    ----------
    state : ndarray of float64, shape (stream_state_size(n_sections, n_channels),)
        Packed coefficients and state (see :func:`stream_state_size`); updated in place.
    lanes : ndarray of int64, shape (2 * LANES,)
        Scratch space (row index and start sample of each lane).
    x : ndarray of float64, shape (n_channels, n_samples), C-contiguous
        Chunk. Non-finite samples are replaced by the channel's last finite sample; before a
        channel's first finite sample the output is 0 and the filter is not started. At the
        first finite sample ``v`` the state is set to the steady state ``zic * v``.
    out : ndarray of float64, shape (n_channels, n_samples), C-contiguous
        Output; must not overlap ``x`` unless it is ``x`` itself.

    Returns
    -------
    int
        Number of samples that were replaced (non-finite inputs), or -1 (nothing done) if
        ``x`` does not have the filter's number of rows or ``out`` not the shape of ``x``.
    """
    nch, n = x.shape
    if nch != int(state[3]) or out.shape[0] != nch or out.shape[1] != n:
        return -1
    ns = int(state[0])
    n_tiles = int(state[2])
    kc = ns * 5 * LANES
    kz = ns * 2 * LANES
    o_zic = STREAM_HEADER + n_tiles * kc
    o_z = o_zic + n_tiles * kz
    o_hold = o_z + n_tiles * kz
    o_started = o_hold + n_tiles * LANES
    o_work = o_started + n_tiles * LANES
    buf = state[o_work : o_work + _BLOCK * LANES]
    rows = lanes[:LANES]
    start_at = lanes[LANES:]
    start_at[:] = -1
    held = 0
    for t in range(n_tiles):
        c0 = t * LANES
        nc = min(LANES, nch - c0)
        for c in range(LANES):
            rows[c] = c0 + min(c, nc - 1)
        coef = state[STREAM_HEADER + t * kc : STREAM_HEADER + (t + 1) * kc]
        zic = state[o_zic + t * kz : o_zic + (t + 1) * kz]
        z = state[o_z + t * kz : o_z + (t + 1) * kz]
        hold = state[o_hold + c0 : o_hold + c0 + LANES]
        started = state[o_started + c0 : o_started + c0 + LANES]
        all_started = _all_started(started, nc)
        for i0 in range(0, n, _BLOCK):
            nb = min(_BLOCK, n - i0)
            # Fast path: every channel started and every sample finite.
            _load_block(x, rows, i0, nb, n, False, buf)
            if all_started and _all_finite(buf, nb * LANES):
                for c in range(nc):
                    hold[c] = buf[(nb - 1) * LANES + c]
            else:
                held += _fill_block(x, rows, nc, i0, nb, buf, hold, started, start_at)
                all_started = _all_started(started, nc)
            _run_with_starts(coef, zic, z, buf, nb, ns, start_at)
            _store_block(buf, rows, nc, i0, nb, n, False, out)
        # An overflowing state (inputs near 1e308) would poison every later sample: restart.
        for c in range(nc):
            finite = True
            for j in range(2 * ns):
                v = z[j * LANES + c]
                finite = finite and v - v == 0.0
            if not finite:
                for j in range(2 * ns):
                    z[j * LANES + c] = 0.0
                started[c] = 0.0
                state[1] += 1.0
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
