"""Numba kernels of the packet layer: CRC-32, the framing scanner, the data-packet codec.

Loops only; the layout they walk is documented in :mod:`headset.protocol`. The CRC is the
IEEE 802.3 CRC-32 (reflected polynomial ``0xEDB88320``, initial value and final xor
``0xFFFFFFFF``), the one ``zlib.crc32`` computes, so tests compare the kernel with zlib.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _make_table() -> np.ndarray:
    table = np.zeros((8, 256), dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[0, i] = c
    for k in range(1, 8):  # row k: the CRC of a byte followed by k zero bytes
        table[k] = (table[k - 1] >> 8) ^ table[0, table[k - 1] & 0xFF]
    return table


#: Lookup tables of the reflected CRC-32 polynomial, shape (8, 256): row 0 is the byte-wise
#: table, row k advances a byte's CRC over k more zero bytes (slicing-by-8: 8 bytes a step).
CRC_TABLE = _make_table()

#: Kinds of a packet type in the scanner's type table.
KIND_INVALID, KIND_FIXED, KIND_VARIABLE, KIND_DATA = 0, 1, 2, 3

#: Bytes before the body: sync (2), type (1), body length (2).
HEADER_BYTES = 5
#: Bytes after the body: CRC-32.
TRAILER_BYTES = 4
#: Bytes of the DATA body header (see :mod:`headset.protocol`).
DATA_HEADER_BYTES = 16
#: :func:`candidate_length` results other than a length: not a packet; needs more bytes.
REJECT, MORE = -1, -2


@njit(cache=True, inline="always")
def _crc8(c, buf, i, table):
    """Advance the running CRC ``c`` over the eight bytes ``buf[i:i + 8]``.

    Slicing-by-8: one lookup per byte, all eight independent, instead of a chain of eight
    dependent lookups.
    """
    m = np.uint32(0xFF)
    one = c ^ (
        np.uint32(buf[i])
        | (np.uint32(buf[i + 1]) << np.uint32(8))
        | (np.uint32(buf[i + 2]) << np.uint32(16))
        | (np.uint32(buf[i + 3]) << np.uint32(24))
    )
    return (
        table[7, one & m]
        ^ table[6, (one >> np.uint32(8)) & m]
        ^ table[5, (one >> np.uint32(16)) & m]
        ^ table[4, one >> np.uint32(24)]
        ^ table[3, buf[i + 4]]
        ^ table[2, buf[i + 5]]
        ^ table[1, buf[i + 6]]
        ^ table[0, buf[i + 7]]
    )


@njit(cache=True, inline="always")
def _crc1(c, byte, table):
    """Advance the running CRC ``c`` over one byte."""
    return table[0, (c ^ byte) & np.uint32(0xFF)] ^ (c >> np.uint32(8))


@njit(cache=True)
def crc32(buf, start, stop, table):
    """CRC-32 of ``buf[start:stop]`` (same value as ``zlib.crc32``); ``table``: CRC_TABLE.

    Eight bytes a step (:func:`_crc8`), the rest byte by byte.
    """
    c = np.uint32(0xFFFFFFFF)
    i = start
    while i + 8 <= stop:
        c = _crc8(c, buf, i, table)
        i += 8
    while i < stop:
        c = _crc1(c, buf[i], table)
        i += 1
    return c ^ np.uint32(0xFFFFFFFF)


@njit(cache=True)
def crc32_4(b0, b1, b2, b3, i0, i1, i2, i3, count, table):
    """CRC-32 of four stretches of ``count`` bytes: ``b0[i0:i0 + count]``, ... ``b3[i3:...]``.

    Their CRC chains are independent, so the processor overlaps them (one chain waits for its
    lookups). Returns the four CRCs.
    """
    c0 = c1 = c2 = c3 = np.uint32(0xFFFFFFFF)
    j = 0
    while j + 8 <= count:
        c0 = _crc8(c0, b0, i0 + j, table)
        c1 = _crc8(c1, b1, i1 + j, table)
        c2 = _crc8(c2, b2, i2 + j, table)
        c3 = _crc8(c3, b3, i3 + j, table)
        j += 8
    while j < count:
        c0 = _crc1(c0, b0[i0 + j], table)
        c1 = _crc1(c1, b1[i1 + j], table)
        c2 = _crc1(c2, b2[i2 + j], table)
        c3 = _crc1(c3, b3[i3 + j], table)
        j += 1
    x = np.uint32(0xFFFFFFFF)
    return c0 ^ x, c1 ^ x, c2 ^ x, c3 ^ x


@njit(cache=True)
def crc32_rows(rows, start, stop, table, out):
    """CRC-32 of ``rows[i, start:stop]`` for every row ``i`` into ``out[i]`` (four at a time)."""
    n = rows.shape[0]
    i = 0
    while i + 4 <= n:
        out[i], out[i + 1], out[i + 2], out[i + 3] = crc32_4(
            rows[i], rows[i + 1], rows[i + 2], rows[i + 3], start, start, start, start,
            stop - start, table,
        )  # fmt: skip
        i += 4
    for k in range(i, n):
        out[k] = crc32(rows[k], start, stop, table)


@njit(cache=True)
def data_body_length(n_exg, n_aux, n_samp, aux_div):
    """Body length of a DATA packet with the given layout (bytes)."""
    n_aux_values = (n_samp + aux_div - 1) // aux_div
    return DATA_HEADER_BYTES + 2 * n_aux * n_aux_values + 3 * n_exg * n_samp


@njit(cache=True)
def scan(
    buf, pos, end, final, s0, s1, kinds, fixed_len, max_var, table, out_off, out_len, out_junk
):
    """Find valid packets in ``buf[pos:end]``.

    Parameters
    ----------
    buf : ndarray of uint8
        Bytes received.
    pos, end : int
        Range to scan.
    final : bool
        True at the end of the stream: a candidate that would need more bytes is junk.
    s0, s1 : int
        The two sync bytes.
    kinds : ndarray of int8, shape (256,)
        Kind of every type byte (``KIND_*``).
    fixed_len : ndarray of int64, shape (256,)
        Body length of the fixed-length types.
    max_var : int
        Largest body of a variable-length type.
    table : ndarray of uint32
        CRC table.
    out_off, out_len, out_junk : ndarray of int64
        Receive, per valid packet, its offset, body length and the junk bytes skipped before it.

    Returns
    -------
    n : int
        Valid packets found.
    pos : int
        First byte not consumed (the start of an incomplete candidate, or ``end``).
    junk : int
        Junk bytes skipped after the last valid packet.
    crc_errors : int
        Candidates with a plausible header whose CRC failed.
    """
    n = 0
    junk = 0
    crc_errors = 0
    p = pos
    cap = out_off.shape[0]
    while p < end and n < cap:
        length = REJECT
        if buf[p] == s0:
            length = candidate_length(buf, p, end, s1, kinds, fixed_len, max_var)
        if length >= 0:
            stop = p + HEADER_BYTES + length
            if stop + TRAILER_BYTES > end:
                length = MORE
            elif n + 4 <= cap and _four_valid(buf, p, end, length, s1, kinds, fixed_len, max_var,
                                              table):  # fmt: skip
                # the usual stream: this packet and the next three, back to back, all valid
                size = HEADER_BYTES + length + TRAILER_BYTES
                for k in range(4):
                    out_off[n] = p + k * size
                    out_len[n] = length
                    out_junk[n] = junk
                    junk = 0
                    n += 1
                p += 4 * size
                continue
            elif crc32(buf, p + 2, stop, table) != u32_le(buf, stop):
                crc_errors += 1
                length = REJECT
        if length == MORE and not final:
            break  # wait for more bytes
        if length < 0:  # not a packet here (or cut off by the end of the stream): skip a byte
            p += 1
            junk += 1
            continue
        out_off[n] = p
        out_len[n] = length
        out_junk[n] = junk
        junk = 0
        n += 1
        p = stop + TRAILER_BYTES
    if final and n < cap:
        junk += end - p
        p = end
    return n, p, junk, crc_errors


@njit(cache=True)
def _four_valid(buf, p, end, length, s1, kinds, fixed_len, max_var, table):
    """Return True when the candidate at ``p`` and the next three packets are all valid.

    The three must follow back to back with the same body ``length``, and all four be whole
    within ``end``; the CRCs are checked four at a time (:func:`crc32_4`).
    """
    size = HEADER_BYTES + length + TRAILER_BYTES
    if p + 4 * size > end:
        return False
    for k in range(1, 4):
        q = p + k * size
        if (
            buf[q] != buf[p]
            or candidate_length(buf, q, end, s1, kinds, fixed_len, max_var) != length
        ):
            return False
    n = HEADER_BYTES - 2 + length
    c = crc32_4(buf, buf, buf, buf, p + 2, p + size + 2, p + 2 * size + 2, p + 3 * size + 2, n,
                table)  # fmt: skip
    for k in range(4):
        if c[k] != u32_le(buf, p + k * size + HEADER_BYTES + length):
            return False
    return True


@njit(cache=True)
def candidate_length(buf, p, end, s1, kinds, fixed_len, max_var):
    """Body length of the packet whose first sync byte is at ``buf[p]``, from its header.

    Parameters are those of :func:`scan`. Returns the body length when the header is a
    plausible packet's (type known, length fitting the type; for DATA, the layout in the body
    header), :data:`REJECT` when it is not, :data:`MORE` when deciding needs bytes past
    ``end``. The CRC is not checked here.
    """
    if p + HEADER_BYTES > end:
        return MORE
    if buf[p + 1] != s1:
        return REJECT
    t = buf[p + 2]
    length = np.int64(buf[p + 3]) | (np.int64(buf[p + 4]) << 8)
    kind = kinds[t]
    if kind == KIND_FIXED:
        return length if length == fixed_len[t] else REJECT
    if kind == KIND_VARIABLE:
        return length if length <= max_var else REJECT
    if kind != KIND_DATA or length < DATA_HEADER_BYTES:
        return REJECT
    b = p + HEADER_BYTES
    if b + DATA_HEADER_BYTES > end:
        return MORE
    n_exg = np.int64(buf[b + 12])
    n_aux = np.int64(buf[b + 13])
    n_samp = np.int64(buf[b + 14])
    aux_div = np.int64(buf[b + 15])
    if n_exg <= 32 and n_samp >= 1 and aux_div >= 1:
        if length == data_body_length(n_exg, n_aux, n_samp, aux_div):
            return length
    return REJECT


@njit(cache=True)
def u32_le(buf, i):
    """Return the little-endian unsigned 32-bit integer at ``buf[i:i + 4]``."""
    return (
        np.uint32(buf[i])
        | (np.uint32(buf[i + 1]) << np.uint32(8))
        | (np.uint32(buf[i + 2]) << np.uint32(16))
        | (np.uint32(buf[i + 3]) << np.uint32(24))
    )


@njit(cache=True)
def decode_data(buf, offs, n_exg, n_aux, n_samp, aux_div, hdr, aux, codes):
    """Decode DATA packets of one layout.

    Parameters
    ----------
    buf : ndarray of uint8
        Bytes.
    offs : ndarray of int64
        Offsets of the packets (their sync byte).
    n_exg, n_aux, n_samp, aux_div : int
        Layout shared by these packets.
    hdr : ndarray of int64, shape (n, 5)
        Receives seq, sample counter, lead-off mask, battery, stimulator state.
    aux : ndarray of int16, shape (n, n_aux, n_aux_values)
        Receives the auxiliary (accelerometer) values.
    codes : ndarray of int32, shape (n, n_exg, n_samp)
        Receives the signed 24-bit ADC codes.
    """
    n_aux_values = aux.shape[2]
    for i in range(offs.shape[0]):
        b = offs[i] + HEADER_BYTES
        hdr[i, 0] = np.int64(buf[b]) | (np.int64(buf[b + 1]) << 8)
        hdr[i, 1] = np.int64(u32_le(buf, b + 2))
        hdr[i, 2] = np.int64(u32_le(buf, b + 6))
        hdr[i, 3] = buf[b + 10]
        hdr[i, 4] = buf[b + 11]
        q = b + DATA_HEADER_BYTES
        for a in range(n_aux):
            for k in range(n_aux_values):
                v = np.int32(buf[q]) | (np.int32(buf[q + 1]) << 8)
                if v >= 32768:
                    v -= 65536
                aux[i, a, k] = v
                q += 2
        for s in range(n_samp):
            for c in range(n_exg):
                v = (np.int32(buf[q]) << 16) | (np.int32(buf[q + 1]) << 8) | np.int32(buf[q + 2])
                if v >= 0x800000:
                    v -= 0x1000000
                codes[i, c, s] = v
                q += 3


@njit(cache=True)
def encode_data_rows(rows, hdr, aux, codes, aux_min, aux_max, sync0, sync1, ptype, aux_div, table):
    """Write whole DATA packets of one layout into ``rows`` (the inverse of decode_data).

    Parameters
    ----------
    rows : ndarray of uint8, shape (n, packet_size)
        Receives, per packet, the framing (the two sync bytes, the type, the body length), the
        body header, then the auxiliary values (int16, little-endian), then the ADC codes
        (24-bit big-endian two's complement, sample-major), then the CRC-32 of everything
        after the sync bytes (little-endian).
    hdr : ndarray of int64, shape (n, 5)
        Sequence number, sample counter (both already reduced to their modulus), lead-off
        mask, battery percent and stimulator state of each packet.
    aux : ndarray of int, shape (n, n_aux, n_aux_values)
        Auxiliary values (clipped to ``aux_min``-``aux_max`` here).
    codes : ndarray of int, shape (n, n_exg, n_samp)
        ADC codes (their low 24 bits are sent).
    aux_min, aux_max : int
        Clipping range of the auxiliary values.
    sync0, sync1, ptype : int
        Sync bytes and packet type.
    aux_div : int
        Samples per auxiliary value (a byte of the body header).
    table : ndarray of uint32
        CRC table (``CRC_TABLE``).
    """
    n_exg = codes.shape[1]
    n_samp = codes.shape[2]
    size = rows.shape[1]
    body_len = size - HEADER_BYTES - TRAILER_BYTES
    for i in range(rows.shape[0]):
        rows[i, 0] = sync0
        rows[i, 1] = sync1
        rows[i, 2] = ptype
        rows[i, 3] = body_len & 0xFF
        rows[i, 4] = body_len >> 8
        b = HEADER_BYTES
        for k in range(2):
            rows[i, b + k] = (hdr[i, 0] >> (8 * k)) & 0xFF
        for k in range(4):
            rows[i, b + 2 + k] = (hdr[i, 1] >> (8 * k)) & 0xFF
            rows[i, b + 6 + k] = (hdr[i, 2] >> (8 * k)) & 0xFF
        rows[i, b + 10] = hdr[i, 3] & 0xFF
        rows[i, b + 11] = hdr[i, 4] & 0xFF
        rows[i, b + 12] = n_exg
        rows[i, b + 13] = aux.shape[1]
        rows[i, b + 14] = n_samp
        rows[i, b + 15] = aux_div
        q = b + DATA_HEADER_BYTES
        for a in range(aux.shape[1]):
            for k in range(aux.shape[2]):
                v = min(max(np.int64(aux[i, a, k]), aux_min), aux_max)
                rows[i, q] = v & 0xFF
                rows[i, q + 1] = (v >> 8) & 0xFF
                q += 2
        for s in range(n_samp):
            for c in range(n_exg):
                v = np.int64(codes[i, c, s]) & 0xFFFFFF
                rows[i, q] = v >> 16
                rows[i, q + 1] = (v >> 8) & 0xFF
                rows[i, q + 2] = v & 0xFF
                q += 3
    crc = np.empty(rows.shape[0], dtype=np.uint32)
    crc32_rows(rows, 2, size - TRAILER_BYTES, table, crc)
    for i in range(rows.shape[0]):
        for k in range(4):
            rows[i, size - TRAILER_BYTES + k] = (crc[i] >> np.uint32(8 * k)) & np.uint32(0xFF)


@njit(cache=True)
def data_values(codes, aux, aux_div, exg, aux_rows, lsb, aux_lsb, masks, limits, bits, vals, flags):
    """Values and flags of decoded DATA packets of one layout, in channel order.

    Parameters
    ----------
    codes : ndarray of int32, shape (n, n_exg, s)
        ADC codes.
    aux : ndarray of int16, shape (n, n_aux, ceil(s / aux_div))
        Auxiliary values, each held for ``aux_div`` samples.
    aux_div : int
        Samples per auxiliary value.
    exg, aux_rows : ndarray of int64, shape (n_exg,) and (n_aux,)
        Channel (row of ``vals``) of each ExG and auxiliary channel.
    lsb, aux_lsb : float
        Units per code and per auxiliary step.
    masks : ndarray of int64, shape (n,)
        Lead-off mask of each packet (bit c: ExG channel c).
    limits : ndarray of int64, shape (4,)
        ``CODE_MIN``, ``CODE_MAX``, ``AUX_MIN``, ``AUX_MAX``: codes at the first two, and
        auxiliary values at or beyond the last two, are saturated.
    bits : ndarray of uint8, shape (2,)
        Flags of a saturated sample and of a lead-off sample.
    vals : ndarray of float64, shape (n_channels, n * s)
        Receives ``code * lsb`` and ``aux * aux_lsb``.
    flags : ndarray of uint8, shape (n_channels, n * s)
        Receives the flags of the ExG and auxiliary rows.
    """
    n, n_exg, s = codes.shape
    for k in range(n):
        m = masks[k]
        for c in range(n_exg):
            r = exg[c]
            off = bits[1] if (m >> c) & 1 else np.uint8(0)
            for j in range(s):
                v = codes[k, c, j]
                vals[r, k * s + j] = v * lsb
                sat = v == limits[0] or v == limits[1]
                flags[r, k * s + j] = (bits[0] if sat else np.uint8(0)) | off
        for a in range(aux.shape[1]):
            r = aux_rows[a]
            for j in range(s):
                v = aux[k, a, j // aux_div]
                vals[r, k * s + j] = v * aux_lsb
                sat = v <= limits[2] or v >= limits[3]
                flags[r, k * s + j] = bits[0] if sat else np.uint8(0)
