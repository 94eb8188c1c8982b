"""Wire protocol: CRC kernel, packet layouts, and a parser that never raises."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headset import protocol as P
from headset._crc import CRC_TABLE, crc32, crc32_rows, data_values
from headset.chunk import FLAG_LEAD_OFF, FLAG_SATURATED

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _packets(n, n_exg=3, n_aux=2, n_samp=4, aux_div=2, seq0=0, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(P.CODE_MIN, P.CODE_MAX + 1, (n, n_exg, n_samp)).astype(np.int32)
    aux = rng.integers(P.AUX_MIN, P.AUX_MAX + 1, (n, n_aux, -(-n_samp // aux_div)))
    seq = seq0 + np.arange(n)
    counter = n_samp * np.arange(n)
    leadoff = rng.integers(0, 1 << n_exg, n)
    rows = P.encode_data(
        seq, counter, leadoff, np.full(n, 90), np.zeros(n, int), aux, codes, aux_div
    )
    return rows, codes, aux, seq % P.SEQ_MODULUS, counter, leadoff


def _decoded(result):
    out = []
    for b in result.batches:
        out += [(int(c), b.codes[i].tobytes()) for i, c in enumerate(b.counter)]
    return out


# ---------------------------------------------------------------------------------------------
# CRC and layouts
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=600))
def test_crc32_kernel_matches_zlib(data):
    arr = np.frombuffer(data, dtype=np.uint8)
    assert int(crc32(arr, 0, arr.size, CRC_TABLE)) == zlib.crc32(data)


@SETTINGS
@given(st.binary(max_size=600), st.integers(0, 20), st.integers(0, 20))
def test_crc32_kernel_matches_zlib_at_any_offset(data, cut_start, cut_end):
    """Slicing-by-8 with any alignment and any remainder of 0-7 bytes."""
    arr = np.frombuffer(data, dtype=np.uint8)
    start = min(cut_start, arr.size)
    stop = max(start, arr.size - cut_end)
    assert int(crc32(arr, start, stop, CRC_TABLE)) == zlib.crc32(data[start:stop])


def test_crc32_rows_matches_zlib():
    rows = np.random.default_rng(1).integers(0, 256, (7, 33), dtype=np.uint8)
    out = np.empty(7, np.uint32)
    crc32_rows(rows, 3, 30, CRC_TABLE, out)
    assert out.tolist() == [zlib.crc32(r[3:30].tobytes()) for r in rows]


def _encode_numpy(seq, counter, leadoff, battery, stim, aux, codes, aux_div):
    """The DATA encoder in plain numpy (what the numba kernel replaced): the reference."""
    n, n_exg, n_samp = codes.shape
    n_aux = aux.shape[1]
    body_len = int(P.data_body_length(n_exg, n_aux, n_samp, aux_div))
    size = 5 + body_len + 4
    rows = np.empty((n, size), dtype=np.uint8)
    rows[:, :3] = [*P.DEVICE_SYNC, P.TYPE_DATA]
    rows[:, 3], rows[:, 4] = body_len & 0xFF, body_len >> 8
    for col, values, nbytes in ((5, np.asarray(seq) % P.SEQ_MODULUS, 2),
                                (7, np.asarray(counter) % P.COUNTER_MODULUS, 4),
                                (11, leadoff, 4), (15, battery, 1), (16, stim, 1)):  # fmt: skip
        v = np.asarray(values, dtype=np.int64)
        for k in range(nbytes):
            rows[:, col + k] = (v >> (8 * k)) & 0xFF
    rows[:, 17:21] = [n_exg, n_aux, n_samp, aux_div]
    na = n_aux * aux.shape[2]
    a16 = np.clip(aux, P.AUX_MIN, P.AUX_MAX).astype("<i2").reshape(n, na)
    rows[:, 21 : 21 + 2 * na] = a16.view(np.uint8)
    q = 21 + 2 * na
    u = (codes.transpose(0, 2, 1).astype(np.int64) & 0xFFFFFF).astype(np.uint32)
    trip = np.stack([u >> 16, (u >> 8) & 0xFF, u & 0xFF], axis=-1).astype(np.uint8)
    rows[:, q : q + 3 * n_exg * n_samp] = trip.reshape(n, -1)
    for i in range(n):
        rows[i, -4:] = np.frombuffer(struct.pack("<I", zlib.crc32(rows[i, 2:-4])), np.uint8)
    return rows


@SETTINGS
@given(st.integers(1, 12), st.integers(0, 8), st.integers(0, 3), st.integers(1, 9),
       st.integers(1, 4), st.integers(0, 2**20), st.integers(0, 2**32))  # fmt: skip
def test_data_encoder_kernel_matches_numpy(n, n_exg, n_aux, n_samp, aux_div, seq0, c0):
    """Byte for byte, codes and aux beyond their ranges included (wrapped, clipped)."""
    rng = np.random.default_rng(n * 7 + n_exg)
    k = -(-n_samp // aux_div)
    codes = rng.integers(-(1 << 25), 1 << 25, (n, n_exg, n_samp))
    aux = rng.integers(-40000, 40000, (n, n_aux, k)).astype(np.int32)
    args = (seq0 + np.arange(n), c0 + n_samp * np.arange(n), rng.integers(0, 1 << 32, n),
            rng.integers(0, 101, n), rng.integers(0, 256, n), aux, codes, aux_div)  # fmt: skip
    assert P.encode_data(*args).tobytes() == _encode_numpy(*args).tobytes()


def test_data_packet_layout_is_as_documented():
    rows, codes, aux, seq, counter, leadoff = _packets(2, n_exg=2, n_aux=1, n_samp=3, aux_div=3)
    pkt = rows[1].tobytes()
    assert pkt[:2] == P.DEVICE_SYNC and pkt[2] == P.TYPE_DATA
    (length,) = struct.unpack("<H", pkt[3:5])
    assert len(pkt) == 5 + length + 4 == P.data_packet_size(2, 1, 3, 3)
    body = pkt[5 : 5 + length]
    s, c, lo, batt, stim, ne, na, ns, d = struct.unpack("<HIIBBBBBB", body[:16])
    assert (s, c, lo, batt, stim, ne, na, ns, d) == (1, 3, leadoff[1], 90, 0, 2, 1, 3, 3)
    (a0,) = struct.unpack("<h", body[16:18])
    assert a0 == aux[1, 0, 0]
    first = body[18:21]  # channel 0, sample 0: 24-bit big-endian two's complement
    v = int.from_bytes(first, "big", signed=True)
    assert v == codes[1, 0, 0]
    assert struct.unpack("<I", pkt[-4:])[0] == zlib.crc32(pkt[2:-4])


def test_round_trip_and_sequence_wrap():
    rows, codes, aux, seq, counter, leadoff = _packets(20, seq0=65530)
    p = P.StreamParser()
    res = p.feed(rows.tobytes())
    (b,) = res.batches
    assert b.seq.tolist() == seq.tolist() and b.seq[6] == 0  # wrapped 65535 -> 0
    np.testing.assert_array_equal(b.codes, codes)
    np.testing.assert_array_equal(b.aux, aux)
    np.testing.assert_array_equal(b.counter, counter)
    np.testing.assert_array_equal(b.leadoff, leadoff)
    assert p.counters["packets"] == 20 and p.counters["corrupt"] == 0


def test_control_packets_round_trip():
    ack = P.Ack(P.CMD_AUDIO, P.STATUS_OK, 2**40 + 5, 1234, 7, 1)
    stream = (
        P.encode_hello({"a": 1})
        + P.encode_ack(ack)
        + P.encode_event(12.5, 3.0, "Nightmare")
        + P.encode_end(999)
    )
    res = P.StreamParser().feed(stream)
    assert res.messages == [P.Hello({"a": 1}), ack, P.Event(12.5, 3.0, "Nightmare"), P.End(999)]


def test_command_signing_and_parsing():
    key = b"k" * 32
    payload = P.stim_payload(0.25, 2.5)
    pkt = P.encode_command(P.CMD_AUDIO, 42, payload, key)
    assert pkt[:2] == P.HOST_SYNC
    (cmd,) = P.StreamParser("host").feed(pkt).messages
    assert (cmd.opcode, cmd.counter, cmd.payload, cmd.name) == (P.CMD_AUDIO, 42, payload, "audio")
    assert cmd.tag == P.command_tag(key, cmd.signed_bytes())
    assert cmd.tag != P.command_tag(b"x" * 32, cmd.signed_bytes())
    assert P.parse_stim_payload(cmd.payload) == (0.25, 2.5)
    # the directions do not mix
    assert P.StreamParser("device").feed(pkt).messages == []
    assert P.StreamParser("host").feed(P.encode_end(3)).messages == []


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="level"):
        P.stim_payload(1.5, 1.0)
    with pytest.raises(ValueError, match="duration"):
        P.stim_payload(0.5, 0.0)
    with pytest.raises(ValueError, match="direction"):
        P.StreamParser("sideways")


# ---------------------------------------------------------------------------------------------
# parser robustness
# ---------------------------------------------------------------------------------------------


def _feed_split(parser, data, cuts):
    res = P.ParseResult()
    pos = 0
    for c in sorted(set(cuts)) + [len(data)]:
        r = parser.feed(data[pos:c])
        res.batches += r.batches
        res.messages += r.messages
        pos = max(pos, c)
    r = parser.flush()
    res.batches += r.batches
    res.messages += r.messages
    return res


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=8))
def test_parser_never_raises_on_arbitrary_bytes(data, cuts):
    for direction in ("device", "host"):
        p = P.StreamParser(direction)
        _feed_split(p, data, [c for c in cuts if c <= len(data)])
        p.reset()
        assert p.counters["bytes"] == len(data)
        assert p.pending == 0


@SETTINGS
@given(st.binary(min_size=1, max_size=400))
def test_parser_never_raises_on_bytes_after_a_valid_sync(tail):
    # a plausible start followed by anything
    rows, *_ = _packets(1)
    data = rows.tobytes()[:5] + tail
    p = P.StreamParser()
    _feed_split(p, data, [3, 7])


@st.composite
def mutated_streams(draw):
    n = draw(st.integers(3, 25))
    seq0 = draw(st.sampled_from([0, 65530]))
    rows, codes, *_ = _packets(n, seq0=seq0, seed=draw(st.integers(0, 5)))
    size = rows.shape[1]
    parts = []  # (bytes, kind) kind: "ok", "junk"
    expected = []
    flipped = 0
    for i in range(n):
        pkt = bytearray(rows[i].tobytes())
        action = draw(st.sampled_from(["ok", "ok", "ok", "flip", "dup", "garbage", "swap"]))
        if i == n - 1 and not expected:
            # the parser learns the packet size from a valid DATA packet; a stream without
            # one is test_junk_without_any_valid_packet's case
            action = "ok"
        if action == "flip":
            bits = draw(st.sets(st.integers(0, size * 8 - 1), min_size=1, max_size=3))
            for bit in bits:  # distinct bits, so the flips never cancel
                pkt[bit // 8] ^= 1 << (bit % 8)
            parts.append((bytes(pkt), "junk"))
            flipped += 1
            continue
        if action == "garbage":
            junk = draw(st.binary(min_size=1, max_size=3 * size))
            parts.append((junk, "junk"))
        if action == "swap" and parts and parts[-1][1] == "ok":
            prev, last = parts.pop(), expected.pop()
            parts += [(bytes(pkt), "ok"), prev]
            expected += [(i, codes[i].tobytes()), last]
            continue
        parts.append((bytes(pkt), "ok"))
        expected.append((i, codes[i].tobytes()))
        if action == "dup":
            parts.append((bytes(pkt), "ok"))
            expected.append((i, codes[i].tobytes()))
    truncate = draw(st.booleans())
    if truncate:  # the stream ends in the middle of a packet
        cut = draw(st.integers(1, size - 1))
        parts.append((rows[0].tobytes()[:cut], "junk"))
    # expected junk accounting: adjacent junk parts form one run
    runs, run = [], 0
    for data, kind in parts:
        if kind == "junk":
            run += len(data)
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    corrupt = sum(max(1, -(-r // size)) for r in runs)
    stream = b"".join(d for d, _ in parts)
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=6))
    return stream, cuts, expected, corrupt, flipped, size


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams())
def test_parser_on_mutated_streams(case):
    stream, cuts, expected, corrupt, flipped, size = case
    p = P.StreamParser()
    res = _feed_split(p, stream, cuts)
    got = _decoded(res)
    want = [(4 * i, c) for i, c in expected]
    assert got == want  # every intact packet, in stream order, nothing else
    assert p.counters["corrupt"] == corrupt  # every corrupt packet (and junk run) counted
    assert p.counters["corrupt"] >= flipped


def test_junk_without_any_valid_packet():
    # No valid packet ever gives the packet size: each run of junk counts as one corrupt
    # packet (at least), and every plausible header with a bad CRC is counted.
    rows, *_ = _packets(3)
    stream = bytearray(rows.tobytes())
    size = rows.shape[1]
    for k in range(3):
        stream[k * size + size - 1] ^= 0x10  # last CRC byte of each packet
    p = P.StreamParser()
    assert _decoded(_feed_split(p, bytes(stream), [5, 100])) == []
    assert p.counters["corrupt"] == 1 and p.counters["resyncs"] == 1
    assert p.counters["crc_errors"] == 3
    assert p.counters["junk_bytes"] == 3 * size


def test_split_invariance_byte_by_byte():
    rows, *_ = _packets(6)
    data = bytearray(rows.tobytes())
    data[rows.shape[1] + 10] ^= 0x10  # corrupt the second packet
    whole = P.StreamParser()
    a = _decoded(whole.feed(bytes(data)))
    single = P.StreamParser()
    b = []
    for i in range(len(data)):
        b += _decoded(single.feed(bytes(data[i : i + 1])))
    assert a == b and len(a) == 5
    assert whole.counters == single.counters
    assert whole.counters["corrupt"] == 1 and whole.counters["resyncs"] == 1


def test_reset_counts_a_truncated_packet():
    rows, *_ = _packets(2)
    p = P.StreamParser()
    p.feed(rows.tobytes()[:-7])
    assert p.pending > 0
    p.reset()
    assert p.counters["truncated"] == 1 and p.pending == 0


def test_pairing_key_file(tmp_path):
    key = P.new_key()
    path = tmp_path / "pair.key"
    P.save_key(path, key)
    assert P.load_key(path) == key
    assert (path.stat().st_mode & 0o777) == 0o600
    (tmp_path / "bad.key").write_text("zz")
    from headset.errors import HeadsetError

    with pytest.raises(HeadsetError, match="hexadecimal"):
        P.load_key(tmp_path / "bad.key")
    with pytest.raises(HeadsetError, match="cannot read"):
        P.load_key(tmp_path / "missing.key")


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 4), st.integers(0, 3), st.integers(1, 9),
       st.integers(1, 4), st.integers(0, 2**31))  # fmt: skip
def test_data_values_kernel_matches_numpy(n, n_exg, n_aux, s, aux_div, seed):
    """The driver's values and flags bit for bit as the numpy code the kernel replaced gives
    them: codes and auxiliary values at the rails, held auxiliary values, lead-off bits."""
    rng = np.random.default_rng(seed)
    aux_div = min(aux_div, s)
    codes = rng.integers(P.CODE_MIN, P.CODE_MAX + 1, (n, n_exg, s)).astype(np.int32)
    codes[rng.random(codes.shape) < 0.2] = P.CODE_MAX
    codes[rng.random(codes.shape) < 0.2] = P.CODE_MIN
    aux = rng.integers(P.AUX_MIN - 1, P.AUX_MAX + 2, (n, n_aux, -(-s // aux_div)))
    aux = aux.astype(np.int16)
    masks = rng.integers(0, 1 << max(n_exg, 1), n)
    order = rng.permutation(n_exg + n_aux)
    exg, aux_rows = order[:n_exg], order[n_exg:]
    lsb, aux_lsb = 0.0223517, 1.0
    vals = np.empty((n_exg + n_aux, n * s))
    flags = np.zeros((n_exg + n_aux, n * s), np.uint8)
    limits = np.array([P.CODE_MIN, P.CODE_MAX, P.AUX_MIN, P.AUX_MAX])
    bits = np.array([FLAG_SATURATED, FLAG_LEAD_OFF], np.uint8)
    data_values(codes, aux, aux_div, exg, aux_rows, lsb, aux_lsb, masks, limits, bits, vals, flags)
    want = np.empty_like(vals)
    want_flags = np.zeros_like(flags)
    c2 = codes.transpose(1, 0, 2).reshape(n_exg, n * s)
    want[exg] = c2 * lsb
    want_flags[exg] |= ((c2 == P.CODE_MIN) | (c2 == P.CODE_MAX)) * FLAG_SATURATED
    a2 = np.repeat(aux, aux_div, axis=2)[:, :, :s].transpose(1, 0, 2).reshape(n_aux, n * s)
    want[aux_rows] = a2 * aux_lsb
    want_flags[aux_rows] |= ((a2 <= P.AUX_MIN) | (a2 >= P.AUX_MAX)) * FLAG_SATURATED
    lead = (masks[None, :] >> np.arange(n_exg)[:, None]) & 1
    want_flags[exg] |= np.repeat(lead.astype(np.uint8), s, axis=1) * FLAG_LEAD_OFF
    assert np.array_equal(vals.view(np.uint64), want.view(np.uint64))
    assert np.array_equal(flags, want_flags)
