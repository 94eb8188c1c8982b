"""Transports: in-process pacing, TCP on loopback (thread and process), LSL."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from _constants import FS

from headset.chunk import FLAG_GAP
from headset.device import Device, IndexSource
from headset.driver import Headset
from headset.errors import HeadsetError
from headset.faults import FaultConfig
from headset.protocol import load_key
from headset.transport import InProcessTransport, TcpServer, TcpTransport, parse_speed


def _read_all(hs):
    chunks = list(hs)
    for a, b in zip(chunks[:-1], chunks[1:]):
        assert b.first_sample == a.stop_sample
    data = np.concatenate([c.data for c in chunks], axis=1)
    flags = np.concatenate([c.flags for c in chunks], axis=1)
    return data, flags, [a for c in chunks for a in c.annotations]


def _check_index(data, flags, lsb):
    ok = ~(flags[0] & FLAG_GAP).astype(bool)
    idx = np.rint(data[0] / lsb).astype(np.int64)
    np.testing.assert_array_equal(idx[ok], np.arange(data.shape[1])[ok])
    return ok


def test_parse_speed():
    assert parse_speed("max") == 0.0 and parse_speed("1") == 1.0 and parse_speed(60) == 60.0
    with pytest.raises(ValueError, match="speed"):
        parse_speed("fast")
    with pytest.raises(ValueError, match="positive"):
        parse_speed(-1.0)


class _VirtualTime:
    """Stands in for the ``time`` module: ``sleep`` moves the clock instead of waiting."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(0.0, seconds)


def test_in_process_real_time_pacing(monkeypatch):
    import headset.transport

    clock = _VirtualTime()
    monkeypatch.setattr(headset.transport, "time", clock)
    src = IndexSource(int(6 * FS), FS)
    hs = Headset.simulated(source=src, speed=60)  # 6 s of signal take 0.1 s of host time
    chunks = []
    with hs:
        for c in hs:
            # paced: no sample is delivered before the host clock reaches its session time
            assert c.stop_sample / FS <= clock.now * 60 + 0.25
            chunks.append(c)
    assert clock.now >= 6 / 60 - 0.25 / 60
    data = np.concatenate([c.data for c in chunks], axis=1)
    flags = np.concatenate([c.flags for c in chunks], axis=1)
    assert data.shape[1] == 6 * FS and not flags.any()
    _check_index(data, flags, src.lsb_uv)


def _serve(device, **kw):
    server = TcpServer(device, "127.0.0.1", 0, idle_timeout=10.0, **kw)
    server.start_thread()
    return server


def test_tcp_loopback_with_disconnects_and_commands():
    src = IndexSource(int(300 * FS), FS)
    dev = Device(src, seed=3, faults=FaultConfig(loss=0.01, disconnect=2))
    # paced (300 s in 5 s): at full speed a loaded machine let the device stream the whole
    # night and end its session before the stimulus below was sent (flaky)
    server = _serve(dev, speed=60)
    assert server.host == "127.0.0.1"
    hs = Headset.tcp(f"tcp://127.0.0.1:{server.port}", key=dev.key, backoff=0.02)
    with hs:
        hs.read(1000)
        ack = hs.send_stimulus("vibration", 0.5, 1.0)
        assert ack.accepted
        data, flags, ann = _read_all(hs)
    server.thread.join(timeout=20)
    assert not server.thread.is_alive()  # the server stopped by itself at the end of the night
    full = np.concatenate([np.zeros((2, 1000)), data], axis=1)  # first 1000 read above
    assert full.shape[1] == 300 * FS
    assert hs.counters["reconnects"] == 2 and dev.counters["disconnects"] == 2
    assert sum(a.description == "Connection lost" for a in ann) == 2
    ok = ~(flags[0] & FLAG_GAP).astype(bool)
    idx = np.rint(data[0] / src.lsb_uv).astype(np.int64)
    np.testing.assert_array_equal(idx[ok], np.arange(1000, 1000 + data.shape[1])[ok])
    np.testing.assert_array_equal(ok, dev.delivered_mask()[1000:])
    assert len(src.cues) == 1 and src.cues[0][1] == "vibration"


def test_tcp_refuses_a_host_without_the_key():
    dev = Device(IndexSource(int(30 * FS), FS))
    server = _serve(dev)
    hs = Headset(TcpTransport("127.0.0.1", server.port), key=b"x" * 32)
    with pytest.raises(HeadsetError, match="refused the pairing key"):
        hs.connect()
    with pytest.raises(HeadsetError, match="needs the pairing key"):
        Headset(TcpTransport("127.0.0.1", server.port)).connect()
    server.stop()
    server.thread.join(timeout=5)
    assert server.counters["auth_failures"] == 1 and server.counters["sessions"] == 0
    assert dev.counters["sessions"] == 0 and not dev.streaming and dev.position == 0


def test_tcp_paced():
    src = IndexSource(int(3 * FS), FS)
    dev = Device(src, faults=FaultConfig(clockdrift=100))
    server = _serve(dev, speed=60)
    with Headset.tcp(f"tcp://127.0.0.1:{server.port}", key=dev.key) as hs:
        data, flags, _ = _read_all(hs)
    server.thread.join(timeout=10)
    assert data.shape[1] == 3 * FS and not flags.any()
    _check_index(data, flags, src.lsb_uv)


def test_tcp_connection_refused_is_a_headset_error():
    server = TcpServer(Device(IndexSource(10, FS)), port=0)
    port = server.port
    server._sock.close()
    hs = Headset(TcpTransport("127.0.0.1", port, connect_timeout=0.5), backoff=0.01)
    with pytest.raises(HeadsetError, match="cannot connect"):
        hs.connect()
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        TcpTransport.from_url("tcp://nowhere")


def test_headset_serve_command_as_a_separate_process(tmp_path):
    key_file = tmp_path / "pair.key"
    cmd = [sys.executable, "-m", "staging.cli", "headset", "serve", "--port", "0"]
    cmd += ["--duration", "40s", "--speed", "max", "--seed", "2", "--key-file", str(key_file)]
    cmd += ["--faults", "loss=0.02", "--idle-timeout", "20"]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith("listening on 127.0.0.1:"), line
            port = int(line.rsplit(":", 1)[1])
            key = load_key(key_file)
            with Headset.tcp(f"tcp://127.0.0.1:{port}", key=key) as hs:
                data, flags, ann = _read_all(hs)
                assert hs.ch_names[0] == "EEG F4-M1"
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert data.shape[1] == 40 * 256
    assert 0 < (flags[0] & FLAG_GAP).sum() < 0.1 * data.shape[1]
    assert any(a.description.startswith("Sleep stage") for a in ann)


def test_headset_serve_bad_faults_exit_code_2():
    from staging.cli import main

    assert main(["headset", "serve", "--faults", "bogus=1"]) == 2
    assert main(["headset", "serve", "--speed", "fast"]) == 2


def test_lsl_outlet_and_inlet():
    # pylsl is a test dependency and liblsl works on loopback: a failure here is a failure
    import pylsl

    from headset.transport import LslInlet, LslOutlet

    name = f"dreamnet-test-{os.getpid()}"
    src = IndexSource(512, FS, n_channels=2)
    chunk = src.read(512)
    outlet = LslOutlet(name, chunk.ch_names, chunk.ch_types, FS)
    inlet = LslInlet(name, timeout=3.0)
    assert inlet.ch_names == chunk.ch_names and inlet.sfreq == FS
    inlet.inlet.open_stream(timeout=3.0)
    t_last = pylsl.local_clock()
    outlet.push(chunk, timestamp=t_last)
    got = []
    deadline = time.monotonic() + 5.0
    while sum(c.n_samples for c in got) < 512 and time.monotonic() < deadline:
        got.append(inlet.read(timeout=0.5))
    data = np.concatenate([c.data for c in got], axis=1)
    assert data.shape[1] == 512
    np.testing.assert_array_equal(data, chunk.data)
    assert got[0].first_sample == 0 and not any(c.flags.any() for c in got)
    inlet.close()
    outlet.close()


def test_in_process_transport_refuses_during_an_outage():
    dev = Device(IndexSource(int(600 * FS), FS), faults=FaultConfig(disconnect=1))
    tr = InProcessTransport(dev)
    hs = Headset(tr, key=dev.key, backoff=0.5, max_backoff=0.5, max_reconnects=2)
    with hs:
        with pytest.raises(HeadsetError, match="no answer after 2 attempts"):
            list(hs)  # outages last 2-20 s: 2 attempts 0.5 s apart are not enough
