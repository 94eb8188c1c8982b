"""Explicit SIMD building blocks for the biquad kernels, written in LLVM IR through numba.

numba's loop vectoriser does not vectorise the biquad recurrence across channels (it cannot
prove that the state, the coefficients and the signal do not alias, and the channel loop is
too short for its run-time checks to pay). These three intrinsics therefore spell the vector
code out: a vector holds :data:`LANES` channels of one sample, and every operation acts on all
lanes at once. LLVM lowers the ``<8 x double>`` operations to whatever the processor has (one
AVX-512 register, two AVX2 registers, four SSE2 registers), so the code is portable; numba's
``cache=True`` stores the machine code of the caller like any other.

Arithmetic
----------
The recurrence is the one of scipy's ``_sosfilt`` (direct form II transposed), operation for
operation, with plain ``fmul``/``fadd``/``fsub`` (no fast-math flags, so no fused
multiply-add is formed)::

    y  = b0 * x + z0
    z0 = (b1 * x - a1 * y) + z1
    z1 = b2 * x - a2 * y

Each lane is therefore bit-identical to the scalar code and to scipy.

Layouts (all arrays 1-D, C-contiguous, one float dtype)
-------------------------------------------------------
* ``coef``: ``(n_sections, 5, LANES)`` flattened: b0, b1, b2, a1, a2 per section and lane.
* ``z``: ``(n_sections, 2, LANES)`` flattened: the two state variables per section and lane.
* ``buf``: ``(n_samples, LANES)`` flattened: one vector of channels per sample.

The intrinsics check layouts and dtypes when numba types them (anything but C-contiguous
float arrays fails to compile); sizes and indices are the callers' to check.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Channels per vector. Eight float64 fill one AVX-512 register; the 8x8 transposes of
#: :func:`gather` and :func:`scatter` are written for eight.
LANES = 8

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
