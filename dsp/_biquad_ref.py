"""The plain biquad kernels: the test oracle of :mod:`dsp._biquad` and its fallback.

:mod:`dsp._biquad` writes its vector code in LLVM IR through numba's internals
(``numba.extending.intrinsic``, ``numba.core.cgutils``, ``llvmlite.ir``), which a new numba
release may change. The kernels here do the same work with ``numba.njit`` alone, one channel
and one sample at a time: the same recurrence in the same order of operations, the same
packed state of :class:`dsp.SOSFilter`, the same NaN policy. Their output is therefore
identical to the vector kernels' and to scipy's, bit for bit (``tests/test_dsp_iir.py``
checks both paths against each other and against scipy), only slower on many channels.

Which kernels :mod:`dsp.iir` runs is chosen by :func:`dsp.iir.set_kernels` or, at import,
by the environment variable ``DREAMNET_DSP_KERNELS`` (``simd``, the default, or
``reference``). With ``reference``, :mod:`dsp._biquad` is never imported.

This module also holds the layout shared by both implementations and by
:class:`dsp.SOSFilter` (:data:`LANES`, :data:`STREAM_HEADER`, :data:`BLOCK`, :data:`ALIGN`,
:func:`stream_state_size`). numba caches a kernel per source file: after editing this file,
touch ``dsp/_biquad.py`` too (or clear ``__pycache__``) so that the vector kernels, which
inline :func:`filter_row` and these constants, are compiled again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Channels per vector tile. Eight float64 fill one AVX-512 register; the 8x8 transposes of
#: :mod:`dsp._biquad` are written for eight.
LANES = 8

#: Samples per block of the transposed working buffer (a multiple of 8; fits in L1).
BLOCK = 64

#: Layout of the packed state of ``sos_stream`` (see :func:`stream_state_size`).
STREAM_HEADER = 8  # [n_sections, n_restarts, n_tiles, n_channels, 0, 0, 0, 0]: 64 bytes

#: Alignment (bytes) of the vector buffers: a 64-byte vector that straddles two cache lines
#: costs two loads.
ALIGN = 64


def stream_state_size(n_sections: int, n_channels: int) -> int:
    """Return the length of the packed float64 state of ``sos_stream``.

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
        work    (BLOCK * L,)                   scratch buffer of the vector kernel
    """
    n_lanes = -(-n_channels // LANES) * LANES
    return STREAM_HEADER + n_lanes * (9 * n_sections + 2) + BLOCK * LANES


@njit(cache=True)
def filter_row(sos, x, out, zi, r, reverse):  # pragma: no cover - compiled
    """Filter the single row ``r`` of ``x`` into ``out`` with scalar arithmetic (scipy's loop).

    ``zi`` (n_signals, n_sections, 2) holds the initial state of every row; row ``r``'s is
    overwritten with its final state. Direct form II transposed, operation for operation as
    scipy's ``_sosfilt``: ``y = b0 x + z0; z0 = (b1 x - a1 y) + z1; z1 = b2 x - a2 y``.
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
    """Filter every row of ``x`` through the cascade ``sos`` into ``out``, row by row.

    Same contract as :func:`dsp._biquad.sosfilt_offline`: ``sos`` (n_sections, 6) in the
    dtype of ``out``; ``x`` and ``out`` (n_signals, n_samples), C-contiguous, possibly the
    same array; ``zi`` (n_signals, n_sections, 2) overwritten with the final state;
    ``reverse`` runs from the last sample to the first.
    """
    for r in range(x.shape[0]):
        filter_row(sos, x, out, zi, r, reverse)


@njit("int64(float64[::1], int64[::1], float64[:, ::1], float64[:, ::1])", cache=True)
def sos_stream(state, lanes, x, out):  # pragma: no cover - compiled
    """Filter one chunk through each channel's cascade, carrying the packed state.

    Same contract as :func:`dsp._biquad.sos_stream` (``lanes`` is unused here): a
    non-finite sample is replaced by the channel's last finite one; before a channel's first
    finite sample ``v`` the output is 0, at it the state becomes ``zic * v``; a state that
    overflows is zeroed and the channel restarted (counted in ``state[1]``). Returns the
    number of replaced samples, or -1 if the shapes do not match the state.
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
    held = 0
    for ch in range(nch):
        t, lane = ch // LANES, ch % LANES
        cf = STREAM_HEADER + t * kc + lane  # coefficient q of section s: cf + (5 s + q) L
        zc = o_zic + t * kz + lane  # state j of section s: zc + (2 s + j) L
        zz = o_z + t * kz + lane
        h = state[o_hold + ch]
        started = state[o_started + ch] != 0.0
        for i in range(n):
            v = x[ch, i]
            finite = v - v == 0.0
            if not started:
                if not finite:  # not started: output 0, state untouched (zero)
                    out[ch, i] = 0.0
                    held += 1
                    continue
                started = True
                for j in range(2 * ns):
                    state[zz + j * LANES] = state[zc + j * LANES] * v
            if finite:
                h = v
            else:
                held += 1
                v = h
            for s in range(ns):
                b0 = state[cf + 5 * s * LANES]
                b1 = state[cf + (5 * s + 1) * LANES]
                b2 = state[cf + (5 * s + 2) * LANES]
                a1 = state[cf + (5 * s + 3) * LANES]
                a2 = state[cf + (5 * s + 4) * LANES]
                z0 = zz + 2 * s * LANES
                y = b0 * v + state[z0]
                state[z0] = (b1 * v - a1 * y) + state[z0 + LANES]
                state[z0 + LANES] = b2 * v - a2 * y
                v = y
            out[ch, i] = v
        state[o_hold + ch] = h
        state[o_started + ch] = 1.0 if started else 0.0
        finite = True
        for j in range(2 * ns):
            w = state[zz + j * LANES]
            finite = finite and w - w == 0.0
        if not finite:  # an overflowing state would poison every later sample: restart
            for j in range(2 * ns):
                state[zz + j * LANES] = 0.0
            state[o_started + ch] = 0.0
            state[1] += 1.0
    return held
