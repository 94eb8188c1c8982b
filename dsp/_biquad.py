"""The biquad kernels: second-order-section cascades on many channels at once, in SIMD.

One section's recurrence is latency-bound, so the kernels run :data:`LANES` channels at once
in one vector: a tile of channels is copied, a block of samples at a time, into a small
transposed buffer ``(block, LANES)`` (8x8 register transposes), the cascade runs over it in
place, and the buffer is copied back. A tile with fewer channels repeats its last row in the
spare lanes (offline) or gives them zero coefficients (streaming); their results are never
written. Offline, a lone channel (a 1-D signal, or the ninth of nine) runs the scalar loop
(:func:`dsp._biquad_ref.filter_row`) instead, which is faster for one chain. The numba kernels
(``sosfilt_offline``, ``sos_stream``) trust their inputs: :mod:`dsp.iir` checks them.

Reference kernels
-----------------
The intrinsics use numba's internals (``numba.extending.intrinsic``, ``numba.core.cgutils``,
``llvmlite.ir``), which change between numba releases; ``pyproject.toml`` therefore pins numba
and llvmlite to the tested range. :mod:`dsp._biquad_ref` holds plain ``@njit`` kernels with the
same contracts and the same results, bit for bit: the tests' oracle for these, and the
fallback (``DREAMNET_DSP_KERNELS=reference`` or :func:`dsp.iir.set_kernels`) when a new numba
breaks this file. The layout constants (:data:`LANES`, the packed stream state) live there.

Vector code
-----------
numba's loop vectoriser does not vectorise the recurrence across channels (it cannot prove
that the state, the coefficients and the signal do not alias, and the channel loop is too
short for its run-time checks to pay). Three intrinsics (:func:`cascade`, :func:`gather`,
:func:`scatter`) therefore spell the vector code out in LLVM IR: every operation acts on all
lanes at once. LLVM lowers the ``<8 x double>`` operations to whatever the processor has (one
AVX-512 register, two AVX2 registers, four SSE2 registers), so the code is portable.

The intrinsics live in this file with the kernels that inline them on purpose: numba's
``cache=True`` invalidates a cached kernel when *its own* source file changes, not when a file
it depends on does, so keeping them together means an edit here always recompiles. The one
exception is :mod:`dsp._biquad_ref` (the layout constants and the scalar loop, shared with the
reference kernels): after editing it, touch this file too.

Arithmetic
----------
The recurrence is the one of scipy's ``_sosfilt`` (direct form II transposed), operation for
operation, with plain ``fmul``/``fadd``/``fsub`` (no fast-math flags, so no fused
multiply-add is formed)::

    y  = b0 * x + z0
    z0 = (b1 * x - a1 * y) + z1
    z1 = b2 * x - a2 * y

Each lane is therefore bit-identical to the scalar code and to scipy, whatever the chunking.

Layouts of the intrinsics' arrays (1-D, C-contiguous, one float dtype)
----------------------------------------------------------------------
* ``coef``: ``(n_sections, 5, LANES)`` flattened: b0, b1, b2, a1, a2 per section and lane.
* ``z``: ``(n_sections, 2, LANES)`` flattened: the two state variables per section and lane.
* ``buf``: ``(n_samples, LANES)`` flattened: one vector of channels per sample.

The intrinsics check layouts and dtypes when numba types them (anything but C-contiguous
float arrays fails to compile); sizes and indices are the callers' to check.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._biquad_ref import ALIGN, BLOCK, LANES, STREAM_HEADER, filter_row

_I32 = ir.IntType(32)
_ROWS = types.Array(types.int64, 1, "C")


def _vector_type(context, arrty):
    fty = context.get_value_type(arrty.dtype)
    return ir.VectorType(fty, LANES), arrty.dtype.bitwidth // 8


def _data(context, builder, arrty, value):
    return context.make_array(arrty)(context, builder, value=value).data


def _vptr(builder, base, offset, vty):
    return builder.bitcast(builder.gep(base, [offset]), vty.as_pointer())


def _c_arrays(*arrays) -> bool:
    """Return True if all are C-contiguous float arrays of one dtype.

    That is what the code generators assume; for anything else the intrinsic does not type
    and numba reports an error at compile time instead of reading with the wrong strides.
    """
    return all(
        isinstance(a, types.Array) and a.layout == "C" and a.dtype == arrays[0].dtype
        for a in arrays
    ) and isinstance(arrays[0].dtype, types.Float)


def _mask(values):
    return ir.Constant(ir.VectorType(_I32, LANES), list(values))


# Three butterfly stages transpose 8 vectors of 8 lanes (rows -> columns).
_STAGES = (
    # (pairs of inputs, mask of the first output, mask of the second output)
    (
        ((0, 1), (2, 3), (4, 5), (6, 7)),
        (0, 8, 2, 10, 4, 12, 6, 14),
        (1, 9, 3, 11, 5, 13, 7, 15),
    ),
    (
        ((0, 2), (1, 3), (4, 6), (5, 7)),
        (0, 1, 8, 9, 4, 5, 12, 13),
        (2, 3, 10, 11, 6, 7, 14, 15),
    ),
    (
        ((0, 4), (1, 5), (2, 6), (3, 7)),
        (0, 1, 2, 3, 8, 9, 10, 11),
        (4, 5, 6, 7, 12, 13, 14, 15),
    ),
)


def _transpose(builder, rows):
    """Transpose 8 vectors of 8 lanes: ``out[j][r] == rows[r][j]``."""
    v = list(rows)
    for pairs, lo, hi in _STAGES:
        w = [None] * LANES
        for a, b in pairs:
            w[a] = builder.shuffle_vector(v[a], v[b], _mask(lo))
            w[b] = builder.shuffle_vector(v[a], v[b], _mask(hi))
        v = w
    return v


#: Cascades of up to this many sections keep their state in registers (one unrolled loop
#: per length); longer ones keep it in memory.
MAX_UNROLLED = 8


def _biquad(builder, coefs, x, z0, z1):
    """One section on vectors, in scipy's order of operations: returns (y, z0', z1')."""
    b0, b1, b2, a1, a2 = coefs
    y = builder.fadd(builder.fmul(b0, x), z0)
    n0 = builder.fadd(builder.fsub(builder.fmul(b1, x), builder.fmul(a1, y)), z1)
    n1 = builder.fsub(builder.fmul(b2, x), builder.fmul(a2, y))
    return y, n0, n1


@intrinsic
def cascade(typingctx, coef, z, buf, n_samples, n_sections):
    """Run ``buf`` (n_samples, LANES) in place through the cascade; update ``z``."""
    if not _c_arrays(coef, z, buf):
        return None
    sig = types.void(coef, z, buf, n_samples, n_sections)

    def codegen(context, builder, signature, args):
        cty = signature.args[0]
        vty, align = _vector_type(context, cty)
        cp = _data(context, builder, cty, args[0])
        zp = _data(context, builder, signature.args[1], args[1])
        bp = _data(context, builder, signature.args[2], args[2])
        n_samples, n_sections = args[3], args[4]
        intp = context.get_value_type(types.intp)

        def const(v):
            return ir.Constant(intp, v)

        def load(base, offset):
            return builder.load(_vptr(builder, base, offset, vty), align=align)

        def store(value, base, offset):
            builder.store(value, _vptr(builder, base, offset, vty), align=align)

        def section_coefs(s):  # s: an LLVM integer
            co = builder.mul(s, const(5 * LANES))
            return [load(cp, builder.add(co, const(q * LANES))) for q in range(5)]

        def unrolled(ns):
            # State in allocas that LLVM promotes to registers: no store-to-load forwarding
            # on the recurrence, and no memory traffic but the signal.
            zs = [cgutils.alloca_once(builder, vty) for _ in range(2 * ns)]
            for j, slot in enumerate(zs):
                builder.store(load(zp, const(j * LANES)), slot)
            with cgutils.for_range(builder, n_samples) as sample:
                bo = builder.mul(sample.index, const(LANES))
                x = load(bp, bo)
                for s in range(ns):
                    x, z0, z1 = _biquad(
                        builder,
                        section_coefs(const(s)),
                        x,
                        builder.load(zs[2 * s]),
                        builder.load(zs[2 * s + 1]),
                    )
                    builder.store(z0, zs[2 * s])
                    builder.store(z1, zs[2 * s + 1])
                store(x, bp, bo)
            for j, slot in enumerate(zs):
                store(builder.load(slot), zp, const(j * LANES))

        def generic():
            xs = cgutils.alloca_once(builder, vty)
            with cgutils.for_range(builder, n_samples) as sample:
                bo = builder.mul(sample.index, const(LANES))
                builder.store(load(bp, bo), xs)
                with cgutils.for_range(builder, n_sections) as section:
                    zo = builder.mul(section.index, const(2 * LANES))
                    z1o = builder.add(zo, const(LANES))
                    y, z0, z1 = _biquad(
                        builder,
                        section_coefs(section.index),
                        builder.load(xs),
                        load(zp, zo),
                        load(zp, z1o),
                    )
                    store(z0, zp, zo)
                    store(z1, zp, z1o)
                    builder.store(y, xs)
                store(builder.load(xs), bp, bo)

        done = builder.append_basic_block("cascade.done")
        fallback = builder.append_basic_block("cascade.generic")
        switch = builder.switch(n_sections, fallback)
        for ns in range(1, MAX_UNROLLED + 1):
            block = builder.append_basic_block(f"cascade.ns{ns}")
            switch.add_case(ir.Constant(n_sections.type, ns), block)
            builder.position_at_end(block)
            unrolled(ns)
            builder.branch(done)
        builder.position_at_end(fallback)
        generic()
        builder.branch(done)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return sig, codegen


def _block_transfer(to_buf: bool):
    """Build the codegen moving 8-sample blocks between 8 rows of a 2-D array and ``buf``."""

    def codegen(context, builder, signature, args):
        aty, rty, _, _, _, bty = signature.args
        arr, rows, start, n_blocks, reverse, buf = args
        vty, align = _vector_type(context, aty)
        intp = context.get_value_type(types.intp)
        ap = _data(context, builder, aty, arr)
        rp = _data(context, builder, rty, rows)
        bp = _data(context, builder, bty, buf)
        ncols = cgutils.unpack_tuple(
            builder, context.make_array(aty)(context, builder, value=arr).shape, 2
        )[1]
        row_base = [
            builder.mul(builder.load(builder.gep(rp, [ir.Constant(intp, r)])), ncols)
            for r in range(LANES)
        ]
        eight = ir.Constant(intp, LANES)
        rev = builder.icmp_unsigned("!=", reverse, ir.Constant(reverse.type, 0))
        with cgutils.for_range(builder, n_blocks) as blk:
            # Columns start..start+7 of the array; reversed, they are the block that ends
            # at ``start`` counted from the end: buffer slot j holds column start+7-j.
            col = builder.add(start, builder.mul(blk.index, eight))
            col = builder.select(rev, builder.sub(start, builder.mul(blk.index, eight)), col)
            slot0 = builder.mul(builder.mul(blk.index, eight), eight)

            def slot(j):
                jj = builder.select(rev, ir.Constant(intp, LANES - 1 - j), ir.Constant(intp, j))
                return builder.add(slot0, builder.mul(jj, eight))

            if to_buf:
                vecs = [
                    builder.load(
                        _vptr(builder, ap, builder.add(row_base[r], col), vty), align=align
                    )
                    for r in range(LANES)
                ]
                for j, v in enumerate(_transpose(builder, vecs)):
                    builder.store(v, _vptr(builder, bp, slot(j), vty), align=align)
            else:
                vecs = [
                    builder.load(_vptr(builder, bp, slot(j), vty), align=align)
                    for j in range(LANES)
                ]
                # Last lane first, so that of lanes sharing a row the first one is kept.
                for r, v in reversed(list(enumerate(_transpose(builder, vecs)))):
                    ptr = _vptr(builder, ap, builder.add(row_base[r], col), vty)
                    builder.store(v, ptr, align=align)
        return context.get_dummy_value()

    return codegen


@intrinsic
def gather(typingctx, x, rows, start, n_blocks, reverse, buf):
    """Copy ``8 * n_blocks`` columns of the rows ``rows`` of ``x`` transposed into ``buf``.

    ``x`` is 2-D C-contiguous, ``rows`` holds LANES int64 row indices (repeats allowed).
    Forward, columns ``start, start + 1, ...`` fill ``buf`` in order. With ``reverse``,
    ``start`` is the first column of the block read first and the blocks go backwards:
    ``buf`` then holds columns ``start + 7, start + 6, ...``.
    """
    if not (_c_arrays(x, buf) and x.ndim == 2 and rows == _ROWS):
        return None
    return types.void(x, rows, start, n_blocks, reverse, buf), _block_transfer(True)


@intrinsic
def scatter(typingctx, out, rows, start, n_blocks, reverse, buf):
    """Inverse of :func:`gather`: write ``buf`` back into the rows ``rows`` of ``out``.

    With repeated row indices, the first lane holding a row is written (padding lanes that
    repeat the last row never overwrite it).
    """
    if not (_c_arrays(out, buf) and out.ndim == 2 and rows == _ROWS):
        return None
    return types.void(out, rows, start, n_blocks, reverse, buf), _block_transfer(False)


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
    buf = _aligned_empty(BLOCK * LANES, out)
    rows = np.empty(LANES, dtype=np.int64)
    for c0 in range(0, m, LANES):
        nc = min(LANES, m - c0)
        if nc == 1:
            filter_row(sos, x, out, zi, c0, reverse)  # a lone channel: the scalar loop
            continue
        for c in range(LANES):
            rows[c] = c0 + min(c, nc - 1)
        for s in range(ns):
            for c in range(LANES):
                z[2 * s * LANES + c] = zi[rows[c], s, 0]
                z[(2 * s + 1) * LANES + c] = zi[rows[c], s, 1]
        for i0 in range(0, n, BLOCK):
            nb = min(BLOCK, n - i0)
            _load_block(x, rows, i0, nb, n, reverse, buf)
            cascade(coef, z, buf, nb, ns)
            _store_block(buf, rows, nc, i0, nb, n, reverse, out)
        for s in range(ns):
            for c in range(nc):
                zi[c0 + c, s, 0] = z[2 * s * LANES + c]
                zi[c0 + c, s, 1] = z[(2 * s + 1) * LANES + c]


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
    buf = state[o_work : o_work + BLOCK * LANES]
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
        for i0 in range(0, n, BLOCK):
            nb = min(BLOCK, n - i0)
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
