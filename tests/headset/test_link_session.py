"""The TCP link's sessions: key proofs, one state per connection, encryption, counter ranges."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from _constants import FS

from headset import protocol as P
from headset.device import Device, IndexSource
from headset.driver import Headset
from headset.errors import HeadsetError
from headset.transport import TcpServer, TcpTransport

KEY = bytes(range(32))
#: Bound of every socket wait below (never reached when things work).
WAIT_S = 30.0


def _serve(seconds=30.0, **kw):
    # in real time by default: at full speed a loaded machine let the device stream its whole
    # source and end the session before a test's client had done its part (flaky)
    kw.setdefault("speed", 1.0)
    dev = Device(IndexSource(int(seconds * FS), FS), key=KEY)
    server = TcpServer(dev, "127.0.0.1", 0, idle_timeout=20.0, **kw)
    server.start_thread()
    return dev, server


def _stop(server):
    server.stop()
    server.thread.join(timeout=WAIT_S)


def _raw(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _recv_until_closed(sock) -> bytes:
    out = b""
    while data := sock.recv(65536):
        out += data
    return out


def _recv_exactly(sock, n) -> bytes:
    out = b""
    while len(out) < n:
        data = sock.recv(n - len(out))
        assert data, "connection closed early"
        out += data
    return out


def _handshake(sock, key=KEY) -> P.LinkSession:
    """Play the host's side of the handshake by hand."""
    device_nonce = P.parse_challenge(_recv_exactly(sock, P.CHALLENGE_BYTES))
    host_nonce = P.new_nonce()
    sock.sendall(P.encode_auth(key, device_nonce, host_nonce))
    welcome = _recv_exactly(sock, P.WELCOME_BYTES)
    assert P.check_welcome(key, device_nonce, host_nonce, welcome) == "ok"
    return P.LinkSession(key, device_nonce, host_nonce, "host")


def test_a_client_without_the_key_gets_no_samples():
    dev, server = _serve()
    try:
        sock = _raw(server)
        sock.sendall(P.AUTH_MAGIC + bytes(P.AUTH_BYTES - 4))  # anything but a right proof
        got = _recv_until_closed(sock)
        sock.close()
        # the challenge, then a refusal: not one byte of the night
        assert len(got) == P.CHALLENGE_BYTES + P.WELCOME_BYTES
        assert got[P.CHALLENGE_BYTES :] == P.WELCOME_MAGIC + b"\x01" + bytes(P.PROOF_BYTES)
        assert server.counters["auth_failures"] == 1 and dev.counters["sessions"] == 0
    finally:
        _stop(server)


def test_an_idle_first_connection_does_not_stop_a_real_client():
    dev, server = _serve(seconds=20.0, auth_timeout=1.0, speed="max")  # reads it all
    idle = _raw(server)  # connects first, never answers
    try:
        with Headset.tcp(f"tcp://127.0.0.1:{server.port}", key=KEY) as hs:
            data = np.concatenate([c.data for c in hs], axis=1)
        assert data.shape[1] == 20 * FS
        got = _recv_until_closed(idle)  # dropped, having seen only the challenge
        assert len(got) == P.CHALLENGE_BYTES and got.startswith(P.CHALLENGE_MAGIC)
    finally:
        idle.close()
        _stop(server)


def test_a_tampered_frame_is_rejected_and_counted():
    dev, server = _serve()
    try:
        sock = _raw(server)
        session = _handshake(sock)
        frame = bytearray(session.seal(P.encode_command(P.CMD_START, 1, key=session.command_key)))
        frame[10] ^= 0x01
        sock.sendall(bytes(frame))
        got = _recv_until_closed(sock)  # the device hangs up
        sock.close()
        assert server.counters["frames_rejected"] == 1
        assert dev.counters["commands_ok"] == 0 and not dev.streaming
        # what came before the tampering was the HELLO, sealed: readable with the keys only.
        # (Not `DEVICE_SYNC not in got`: two sync bytes turn up in ciphertext by chance about
        # once in 400 runs; the HELLO's plain JSON cannot.)
        assert b'"ch_names"' not in got and not P.StreamParser().feed(got).messages
        hello = P.StreamParser().feed(session.open(got)).messages[0]
        assert isinstance(hello, P.Hello) and hello.info["ch_names"][0] == "IDX"
    finally:
        _stop(server)


def test_a_tampered_frame_from_the_device_is_rejected_and_counted_by_the_driver():
    import threading

    srv = socket.create_server(("127.0.0.1", 0))
    hello = P.encode_hello(Device(IndexSource(64, FS), key=KEY).hello_info())
    connected = threading.Event()

    def fake_device():  # one connection: a right handshake, a HELLO, then a flipped bit
        conn, _ = srv.accept()
        with conn:
            nonce = P.new_nonce()
            conn.sendall(P.encode_challenge(nonce))
            host_nonce = P.check_auth(KEY, nonce, _recv_exactly(conn, P.AUTH_BYTES))
            conn.sendall(P.encode_welcome(KEY, nonce, host_nonce, ok=True))
            session = P.LinkSession(KEY, nonce, host_nonce, "device")
            conn.sendall(session.seal(hello))
            connected.wait(WAIT_S)
            bad = bytearray(session.seal(P.encode_end(0)))
            bad[-1] ^= 0x80
            conn.sendall(bytes(bad))
            conn.recv(1)  # until the driver hangs up
        srv.close()

    thread = threading.Thread(target=fake_device, daemon=True)
    thread.start()
    hs = Headset(TcpTransport("127.0.0.1", srv.getsockname()[1], connect_timeout=1.0), key=KEY,
                 max_reconnects=1, backoff=0.01)  # fmt: skip
    hs.connect()
    connected.set()
    with pytest.raises(HeadsetError, match="lost the connection"):
        hs.read(1, timeout=WAIT_S)
    thread.join(WAIT_S)
    assert hs.counters["frames_rejected"] == 1 and not hs.ended


def test_sealed_frames_refuse_tampering_replay_and_the_other_direction():
    d, h = P.new_nonce(), P.new_nonce()
    device, host = P.LinkSession(KEY, d, h, "device"), P.LinkSession(KEY, d, h, "host")
    one, two = device.seal(b"x" * 5000), device.seal(b"y" * 10)
    assert host.open(one[:7]) == b"" and host.open(one[7:]) == b"x" * 5000  # any split
    for bad in (one, two[:-1] + bytes([two[-1] ^ 1]), host.seal(b"z")):  # replay, flip, echo
        fresh = P.LinkSession(KEY, d, h, "host")
        fresh.open(one)
        with pytest.raises(HeadsetError, match="authentication"):
            fresh.open(bad)
    other = P.LinkSession(KEY, d, P.new_nonce(), "host")  # another session's keys
    with pytest.raises(HeadsetError, match="authentication"):
        other.open(one)
    with pytest.raises(HeadsetError, match="length"):
        P.LinkSession(KEY, d, h, "host").open(b"\xff\xff\xff\xff")
    assert device.command_key == host.command_key != other.command_key


def test_the_newest_authenticated_client_takes_over():
    dev, server = _serve()
    url = f"tcp://127.0.0.1:{server.port}"
    try:
        first = Headset.tcp(url, key=KEY, max_reconnects=1, backoff=0.01)
        first.connect()
        first.start()
        first.read(256)
        with Headset.tcp(url, key=KEY) as second:
            assert second.read(256).n_samples == 256
            assert second.send_stimulus("audio", 0.2, 1.0).accepted
        assert server.counters["takeovers"] == 1 and server.counters["sessions"] == 2
        first.close()
    finally:
        _stop(server)


def test_counter_out_of_range_is_refused_and_the_next_session_works():
    dev, server = _serve()
    url = f"tcp://127.0.0.1:{server.port}"
    try:
        tr = TcpTransport("127.0.0.1", server.port)
        tr.open()
        command_key = tr.handshake(KEY)
        tr.write(P.encode_command(P.CMD_INFO, 2**64 - 1, key=command_key))
        parser, acks = P.StreamParser(), []
        for _ in range(200):  # bounded: the ACK comes right after the HELLO
            acks += [m for m in parser.feed(tr.read(0.1)).messages if isinstance(m, P.Ack)]
            if acks:
                break
        tr.close()
        assert acks[0].status == P.STATUS_BAD_COUNTER and acks[0].authentic(command_key)
        assert dev.counters["rejected_counter"] == 1
        with Headset.tcp(url, key=KEY) as hs:  # a fresh monitor still works
            assert hs.read(256).n_samples == 256
            assert hs.send_stimulus("audio", 0.2, 1.0).accepted
    finally:
        _stop(server)


def test_a_used_up_counter_space_renegotiates_and_old_commands_fail_in_new_sessions():
    dev, server = _serve()
    try:
        hs = Headset.tcp(f"tcp://127.0.0.1:{server.port}", key=KEY, backoff=0.01)
        with hs:
            hs.read(256)
            old_key = hs._command_key
            # a holder of the key takes the largest counter a session allows
            last = P.encode_command(P.CMD_CONFIGURE, P.MAX_COMMAND_COUNTER, P.configure_payload(),
                                    old_key)  # fmt: skip
            hs.transport.write(last)
            assert hs.send_stimulus("audio", 0.2, 1.0).accepted  # in a new session
            assert hs.counters["reconnects"] == 1 and dev.counters["sessions"] == 2
            assert hs._command_key != old_key
            hs.transport.write(last)  # replayed into the new session: another key
            assert hs.send_stimulus("vibration", 0.2, 1.0).accepted
        assert dev.counters["rejected_bad_tag"] == 1 and dev.counters["cues"] == 2
    finally:
        _stop(server)


def test_in_process_counters_are_bounded_too():
    # no sessions in process: the device refuses what is out of range, and a counter space
    # used up by a holder of the key is an error, never a command that cannot be signed
    hs = Headset.simulated(source=IndexSource(int(10 * FS), FS))
    hs.connect()
    hs.start()
    dev = hs.device
    dev.receive(P.encode_command(P.CMD_INFO, 2**64 - 1, key=dev.key))
    assert dev.counters["rejected_counter"] == 1
    assert hs.send_stimulus("audio", 0.2, 1.0).accepted
    dev.receive(P.encode_command(P.CMD_INFO, P.MAX_COMMAND_COUNTER, key=dev.key))
    with pytest.raises(HeadsetError, match="used up"):
        hs.send_stimulus("audio", 0.2, 1.0)
    hs.close()


def test_serve_needs_a_key_file_and_warns_off_loopback(capsys):
    from staging.cli import main
    from staging.cli.headset import _loopback

    assert main(["headset", "serve", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--key-file" in err[0]
    assert main(["headset", "serve", "--key-file", "k", "--auth-timeout", "0"]) == 2
    assert "--auth-timeout" in capsys.readouterr().err
    assert main(["headset", "serve", "--key-file", "k", "--idle-timeout", "1e9"]) == 2
    assert "--idle-timeout must be more than 0 and at most 86400 s" in capsys.readouterr().err
    assert all(map(_loopback, ("127.0.0.1", "127.5.0.1", "::1", "[::1]", "localhost")))
    assert not any(map(_loopback, ("0.0.0.0", "192.168.1.4", "::", "example.org")))
