"""Driver: every sample once, gaps flagged, lead-off, saturation, reconnects, commands."""

from __future__ import annotations

import numpy as np
import pytest
from _constants import FS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headset import protocol as P
from headset.chunk import FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED, Annotation
from headset.device import Device, IndexSource
from headset.driver import Headset
from headset.errors import HeadsetError
from headset.faults import FaultConfig
from headset.transport import BytesTransport, InProcessTransport, record


def _collect(hs):
    chunks = list(hs)
    for a, b in zip(chunks[:-1], chunks[1:]):
        assert b.first_sample == a.stop_sample  # contiguous, no overlap, no hole
    data = np.concatenate([c.data for c in chunks], axis=1)
    flags = np.concatenate([c.flags for c in chunks], axis=1)
    ann = [a for c in chunks for a in c.annotations]
    return chunks, data, flags, ann


def _index(data, lsb):
    return np.rint(data[0] / lsb).astype(np.int64)


def _runs(mask):
    e = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return e.reshape(-1, 2)


def test_sample_index_survives_a_faulty_night_exactly_once():
    """30 min, 1% loss, 0.1% corruption, 3 disconnects (plus duplicates, reordering, drift)."""
    n = int(30 * 60 * FS)
    src = IndexSource(n, FS, n_channels=2)
    faults = FaultConfig(
        loss=0.01, corrupt=0.001, disconnect=3, duplicate=0.002, reorder=0.002, clockdrift=30
    )
    hs = Headset.simulated(source=src, seed=11, faults=faults, device_kw={"block_packets": 64})
    with hs:
        chunks, data, flags, ann = _collect(hs)
    dev = hs.device
    assert chunks[0].first_sample == 0 and data.shape == (2, n)
    gap = (flags[0] & FLAG_GAP).astype(bool)
    # every sample the device sent intact and the driver received is there once, exactly
    idx = _index(data, src.lsb_uv)
    expected = np.arange(n) % IndexSource.INDEX_MODULUS
    np.testing.assert_array_equal(idx[~gap], expected[~gap])
    # ... and every sample that did not arrive intact is flagged as a gap
    np.testing.assert_array_equal(~gap, dev.delivered_mask(n))
    assert (flags[:, gap] & FLAG_GAP).all()
    # gap annotations cover exactly the flagged runs
    gaps = [
        (round(a.onset * FS), round((a.onset + a.duration) * FS))
        for a in ann
        if a.description == "Gap"
    ]
    assert gaps == [tuple(r) for r in _runs(gap).tolist()]
    # counters agree with what the device did
    c, d = hs.counters, dev.counters
    assert d["disconnects"] == 3 and c["reconnects"] == 3 and c["truncated"] == 3
    assert sum(a.description == "Connection lost" for a in ann) == 3
    assert c["corrupt"] == d["packets_corrupted"] + d["acks_corrupted"] > 0
    undelivered = ~dev.delivered_mask(n)
    assert c["lost"] == int(undelivered.sum()) // 8  # whole packets of 8 samples
    assert c["lost_samples"] == int(gap.sum())
    assert c["duplicates"] >= d["packets_duplicated"] - d["packets_corrupted"]
    assert c["late"] == 0
    assert hs.clock_drift_ppm == pytest.approx(30, abs=2)


def test_no_faults_is_bit_exact_and_deterministic():
    src = IndexSource(int(120 * FS), FS, n_channels=3, acc=True)
    with Headset.simulated(source=src, seed=1) as hs:
        _, data, flags, ann = _collect(hs)
    ref = IndexSource(int(120 * FS), FS, n_channels=3, acc=True).signal(0, int(120 * FS))
    lsb = hs.info["lsb_uv"]
    assert np.abs(data[:3] - ref[:3]).max() <= 0.5 * lsb * (1 + 1e-9)
    assert np.abs(data[3:] - ref[3:]).max() <= 0.5  # accelerometer: 1 mg steps
    assert not flags.any() and ann == []
    assert hs.counters["lost"] == hs.counters["corrupt"] == 0
    assert hs.ch_names == src.ch_names and hs.sfreq == FS
    # same seed (and pairing key, which signs the ACKs), same stream, bit for bit; chunking
    # of the byte stream does not matter
    key = bytes(range(32))
    streams = [
        record(Device(IndexSource(4096, FS), seed=5, key=key, faults=FaultConfig(loss=0.05)))
        for _ in "ab"
    ]
    assert streams[0] == streams[1]
    out = []
    for size in (1, 7, 100_000):
        hs = Headset(BytesTransport(streams[0], size))
        hs.connect()
        out.append(_collect(hs)[1:3])
    for d, f in out[1:]:
        np.testing.assert_array_equal(d, out[0][0])
        np.testing.assert_array_equal(f, out[0][1])


def test_sequence_wrap_and_reordering():
    src = IndexSource(int(600 * FS), FS)
    hs = Headset.simulated(
        source=src,
        seed=2,
        faults=FaultConfig(reorder=0.05, duplicate=0.02),
        device_kw={"firmware_kw": {"seq_start": 65000}},
    )
    with hs:
        _, data, flags, _ = _collect(hs)
    assert not (flags & FLAG_GAP).any()  # all back in order, across the 65535 -> 0 wrap
    np.testing.assert_array_equal(_index(data, src.lsb_uv), np.arange(data.shape[1]))
    assert hs.counters["reordered"] == hs.device.counters["packets_reordered"] > 0
    assert hs.counters["duplicates"] == hs.device.counters["packets_duplicated"] > 0


def test_lead_off_and_saturation_flags():
    n = int(20 * FS)
    src = IndexSource(
        n,
        FS,
        n_channels=3,
        events=[Annotation(4.0, 2.0, "Lead off: EEG 1")],
        overrides=[(2, 2560, 2600, 2.5e5), (2, 3000, 3100, 7.0)],  # rail, then flat
    )
    with Headset.simulated(source=src, seed=0) as hs:
        _, data, flags, ann = _collect(hs)
    off1 = (flags[1] & FLAG_LEAD_OFF).astype(bool)
    r = _runs(off1)
    assert r.tolist() == [[1024, 1536]]  # packets overlapping 4.0-6.0 s
    sat = (flags[2] & FLAG_SATURATED).astype(bool)
    assert _runs(sat).tolist() == [[2560, 2600]]
    off2 = _runs((flags[2] & FLAG_LEAD_OFF).astype(bool)).tolist()
    assert off2 == [[3000, 3096]]  # whole packets of a flat input
    leads = sorted((a.onset, a.description) for a in ann if a.description.startswith("Lead"))
    assert leads == [
        (4.0, "Lead off: EEG 1"),  # ground truth passed through
        (4.0, "Lead off: EEG 1"),  # reported by the device
        (3000 / FS, "Lead off: EEG 2"),  # reported by the device (flat input)
    ]
    assert hs.status["battery"] == 99


def test_stimulation_is_authenticated_and_replays_are_refused():
    src = IndexSource(int(60 * FS), FS)
    hs = Headset.simulated(source=src, seed=0)
    dev = hs.device
    with hs:
        hs.read(512)
        ack = hs.send_stimulus("audio", 0.4, 2.0)
        assert ack.status == P.STATUS_OK and src.cues == [(ack.sample, "audio", 0.4)]
        assert hs.status["stimulating"] == ["audio"]
        # a command captured on the air (validly signed by the paired host)
        vib = P.stim_payload(0.2, 1.0)
        captured = P.encode_command(P.CMD_VIBRATION, ack.counter + 1, vib, dev.key)
        dev.receive(captured)
        assert len(src.cues) == 2
        # the driver's next counter was taken: it catches up with the device and signs anew
        wake = hs.send_stimulus("wake", 0.1, 1.0)
        assert wake.counter > ack.counter + 1 and len(src.cues) == 3
        # replaying the captured command later: refused, counted, not executed
        dev.receive(captured)
        assert dev.counters["rejected_replay"] >= 1 and len(src.cues) == 3
        # a retry of the last command (same bytes) is acknowledged but not executed again
        dev.receive(P.encode_command(P.CMD_WAKE, wake.counter, P.stim_payload(0.1, 1.0), dev.key))
        assert dev.counters["repeats"] == 1 and len(src.cues) == 3
        # wrong key, no key: refused and counted
        bad = P.stim_payload(1.0, 5.0)
        dev.receive(P.encode_command(P.CMD_WAKE, 2**40, bad, b"w" * 32))
        dev.receive(P.encode_command(P.CMD_WAKE, 2**41, bad, None))
        assert dev.counters["rejected_bad_tag"] == dev.counters["rejected_no_tag"] == 1
        assert len(src.cues) == 3
        with pytest.raises(ValueError, match="kind"):
            hs.send_stimulus("shock", 1.0, 1.0)
        _collect(hs)
    assert dev.counters["cues"] == 3
    assert dev.counters["commands_rejected"] == dev.counters["rejected_replay"] + 2


@pytest.mark.parametrize("key", [b"w" * 32, None])
def test_a_host_without_the_pairing_key_is_refused(key):
    dev = Device(IndexSource(int(10 * FS), FS))
    hs = Headset(InProcessTransport(dev), key=key)
    hs.connect()  # the description is public
    with pytest.raises(HeadsetError, match="refused start: (bad|no) tag"):
        hs.start()
    assert hs.counters["commands_refused"] == 1 and dev.counters["commands_rejected"] == 1
    assert not dev.streaming


class _ManInTheMiddle(InProcessTransport):
    """Swallows the host's stimulation commands and answers "accepted" itself."""

    def __init__(self, device, forger_key):
        super().__init__(device)
        self.forger_key = forger_key
        self.forged = b""

    def write(self, data):
        (cmd,) = P.StreamParser("host").feed(data).messages
        if cmd.opcode not in (P.CMD_AUDIO, P.CMD_VIBRATION, P.CMD_WAKE):
            return super().write(data)
        lie = P.Ack(cmd.opcode, P.STATUS_OK, cmd.counter, 0, 0, 0x07, cmd.counter)
        self.forged += P.encode_ack(lie, self.forger_key)

    def read(self, timeout):
        out, self.forged = self.forged + super().read(timeout), b""
        return out


@pytest.mark.parametrize("forger_key", [None, b"m" * 32])
def test_a_forged_acknowledgement_is_not_believed(forger_key):
    # Nobody on the link may make the technician believe that a cue was delivered: the
    # device signs its answers with the pairing key, the host trusts no other "accepted".
    src = IndexSource(int(60 * FS), FS)
    dev = Device(src, seed=0)
    hs = Headset(_ManInTheMiddle(dev, forger_key), key=dev.key, max_retries=1, ack_timeout=0.05)
    with hs:
        hs.read(256)
        with pytest.raises(HeadsetError, match="did not acknowledge audio after 2 attempts"):
            hs.send_stimulus("audio", 0.4, 2.0)
        assert hs.counters["acks_unauthenticated"] == 2
        assert hs.status["stimulating"] == [] and src.cues == []
    # the same exchange without the man in the middle: signed, believed
    ok = P.Ack(P.CMD_AUDIO, P.STATUS_OK, 9, 0, 0, 1, 9)
    parsed = P.StreamParser().feed(P.encode_ack(ok, dev.key)).messages[0]
    assert parsed.authentic(dev.key) and not parsed.authentic(b"m" * 32)
    assert not P.StreamParser().feed(P.encode_ack(ok)).messages[0].authentic(dev.key)


def test_unacknowledged_commands_are_retried_then_fail():
    src = IndexSource(int(600 * FS), FS)
    hs = Headset.simulated(source=src, seed=4, faults=FaultConfig(loss=0.5), max_retries=6)
    with hs:
        for _ in range(4):
            hs.send_stimulus("audio", 0.2, 1.0)  # acks lost half of the time: retries succeed
        assert len(src.cues) == 4  # each executed once despite retries
        assert hs.counters["commands_sent"] > hs.counters["commands_acked"] == 5
    dead = Headset.simulated(
        source=IndexSource(4096, FS), faults=FaultConfig(loss=1.0), max_retries=2
    )
    dead.connect()
    with pytest.raises(HeadsetError, match="did not acknowledge start after 3 attempts"):
        dead.start()
    assert dead.counters["commands_failed"] == 1 and dead.counters["commands_sent"] == 3


def test_lifecycle():
    hs = Headset.simulated(source=IndexSource(int(10 * FS), FS))
    with pytest.raises(HeadsetError, match="not connected"):
        hs.read()
    hs.connect()
    assert hs.state == "connected"
    c = hs.read(timeout=0.5)  # not started: nothing yet
    assert c.n_samples == 0
    hs.start()
    c = hs.read(100)
    assert c.n_samples == 100 and c.first_sample == 0
    c = hs.read(100)
    assert c.first_sample == 100
    hs.configure(samples_per_packet=16)
    rest = list(hs)
    assert rest[-1].stop_sample == int(10 * FS) and hs.read() is None and hs.ended
    hs.stop()
    hs.close()
    assert hs.state == "closed"
    with pytest.raises(ValueError, match="n_samples"):
        Headset.simulated(source=IndexSource(10, FS)).connect().read(0)
    with pytest.raises(TypeError, match="Transport"):
        Headset("tcp://x")


def test_real_sleeper_only_quantised(make_sleeper):
    dur = 90.0
    with Headset.simulated("healthy", seed=3, duration_s=dur) as hs:
        _, data, flags, ann = _collect(hs)
    ref = make_sleeper(3, profile="healthy", duration_s=dur).read(10**6)
    assert data.shape == ref.data.shape and hs.ch_names == ref.ch_names
    lsb = hs.info["lsb_uv"]
    exg = [i for i, t in enumerate(ref.ch_types) if t != "misc"]
    aux = [i for i, t in enumerate(ref.ch_types) if t == "misc"]
    assert np.abs(data[exg] - ref.data[exg]).max() <= 0.5 * lsb * (1 + 1e-9)
    assert np.abs(data[aux] - ref.data[aux]).max() <= 0.5 + 1e-9
    assert not flags.any()
    truth = {a.description for a in ann}
    assert "Sleep stage W" in truth  # ground truth travels with the data


@st.composite
def _mutations(draw):
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "cut", "garbage", "dup"]),
                st.floats(0, 1),
                st.integers(1, 300),
            ),
            max_size=12,
        )
    )


_STREAM = {}


def _recorded():
    if "s" not in _STREAM:
        _STREAM["s"] = record(Device(IndexSource(int(10 * FS), FS), seed=9))
    return _STREAM["s"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations(), st.integers(64, 5000))
def test_driver_never_raises_on_mutated_streams(mutations, read_size):
    stream = bytearray(_recorded())
    hello_end = stream.index(P.DEVICE_SYNC + bytes([P.TYPE_DATA]))  # keep the HELLO intact
    for kind, where, size in mutations:
        pos = hello_end + int(where * (len(stream) - hello_end - 1))
        if kind == "flip":
            stream[pos] ^= 1 << (size % 8)
        elif kind == "cut":
            del stream[pos : pos + size]
        elif kind == "garbage":
            stream[pos:pos] = (
                np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
            )
        else:
            stream[pos:pos] = stream[pos : pos + size]
    hs = Headset(BytesTransport(bytes(stream), read_size))
    hs.connect()
    _, data, flags, _ = _collect(hs)
    ok = ~(flags[0] & FLAG_GAP).astype(bool)
    idx = _index(data, hs.info["lsb_uv"])
    np.testing.assert_array_equal(idx[ok], np.arange(data.shape[1])[ok])
