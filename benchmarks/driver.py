"""Benchmark of the device layer: decode throughput of the driver, in-process and over TCP.

Run ``python benchmarks/driver.py`` (``--quick`` for a short run). It records the byte stream of
an 8-channel 256-Hz headset (the simulated device with its sample-index source), then measures:

* the parser alone (framing, CRC, vectorised decoding) on reads of one headset-second and on
  large reads;
* the driver (``Headset``: decode, ordering, gap logic, Chunks) over the recorded bytes in
  process, single stream and as N headsets read round robin, one second each;
* the driver over TCP on 127.0.0.1: an authenticated, encrypted session (a thread plays the
  device's side of the handshake, then seals and sends the recorded bytes as fast as possible);
* the whole in-process simulation (device + firmware + driver) for context.

Each figure is printed in samples/s (one sample = all 8 channels at one instant), per packet
and against the wire-time budget: at 256 Hz a headset's sample spends 3.9 ms on the wire, so
1,000 real-time headsets on one core leave 3.9 us of CPU per sample. Figures are CPU time of
this process (``time.process_time``: what one core spends, whatever else runs on the machine);
the wall-clock rate is printed alongside.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headset.device import Device, IndexSource  # noqa: E402
from headset.driver import Headset  # noqa: E402
from headset.protocol import (  # noqa: E402
    AUTH_BYTES,
    LinkSession,
    StreamParser,
    check_auth,
    encode_challenge,
    encode_welcome,
    new_nonce,
)
from headset.transport import BytesTransport, TcpTransport, record  # noqa: E402

SFREQ = 256.0
N_CH = 8
SPP = 8
TARGET_HEADSETS = 1000


def make_stream(seconds: float) -> tuple[bytes, int]:
    """Record the byte stream of ``seconds`` of an 8-channel headset."""
    dev = Device(IndexSource(int(seconds * SFREQ), SFREQ, n_channels=N_CH), seed=0)
    return record(dev), dev.counters["packets_sent"]


class Timer:
    """CPU and wall time of a block."""

    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu = time.process_time() - self.cpu
        self.wall = time.perf_counter() - self.wall


def report(name: str, samples: int, packets: int, timer: Timer) -> float:
    """Print one line; return samples/s of CPU time."""
    elapsed = timer.cpu
    rate = samples / elapsed
    per_sample = elapsed / samples
    budget = 1.0 / (SFREQ * TARGET_HEADSETS)
    headsets = rate / SFREQ
    print(
        f"{name:<44} {rate / 1e6:7.2f} M samples/s  {elapsed / packets * 1e6:7.2f} us/packet  "
        f"{per_sample * 1e9:7.0f} ns/sample = {per_sample / budget * 100:5.1f}% of the "
        f"{budget * 1e6:.1f} us budget  -> {headsets:,.0f} real-time headsets per core "
        f"(wall: {samples / timer.wall / 1e6:.2f} M/s)"
    )
    return rate


def bench_parser(stream: bytes, read_size: int, packets: int, samples: int, label="") -> float:
    p = StreamParser()
    view = memoryview(stream)
    with Timer() as t:
        for i in range(0, len(stream), read_size):
            p.feed(view[i : i + read_size])
    assert p.counters["corrupt"] == 0
    return report(label or f"parser, reads of {read_size:,} bytes", samples, packets, t)


def drain(hs: Headset) -> int:
    n = 0
    while (c := hs.read()) is not None:
        n += c.n_samples
    return n


def bench_driver(stream: bytes, read_size: int, packets: int) -> float:
    hs = Headset(BytesTransport(stream, read_size))
    hs.connect()
    with Timer() as t:
        n = drain(hs)
    return report(f"driver in-process, reads of {read_size:,} bytes", n, packets, t)


def bench_many(stream: bytes, n_headsets: int, seconds: int, per_second: int) -> float:
    heads = []
    for _ in range(n_headsets):
        hs = Headset(BytesTransport(stream, per_second))
        hs.connect()
        heads.append(hs)
    n = 0
    with Timer() as t:
        for _ in range(seconds):
            for hs in heads:
                n += hs.read().n_samples
    return report(f"driver in-process, {n_headsets} headsets round robin", n, n // SPP, t)


def bench_tcp(stream: bytes, packets: int) -> float:
    key = bytes(range(32))
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        with conn:
            nonce = new_nonce()
            conn.sendall(encode_challenge(nonce))
            auth = b""
            while len(auth) < AUTH_BYTES:
                auth += conn.recv(AUTH_BYTES - len(auth))
            host_nonce = check_auth(key, nonce, auth)
            conn.sendall(encode_welcome(key, nonce, host_nonce, ok=True))
            conn.sendall(LinkSession(key, nonce, host_nonce, "device").seal(stream))
        srv.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    hs = Headset(TcpTransport("127.0.0.1", port), key=key)
    hs.connect()
    with Timer() as t:
        n = drain(hs)
    th.join()
    return report("driver over TCP 127.0.0.1, encrypted (+ sender thread)", n, packets, t)


def bench_simulation(seconds: float) -> float:
    src = IndexSource(int(seconds * SFREQ), SFREQ, n_channels=N_CH)
    hs = Headset.simulated(source=src)
    with Timer() as t, hs:
        n = drain(hs)
    return report("device + firmware + driver in-process", n, n // SPP, t)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (a few seconds)")
    args = parser.parse_args(argv)
    seconds = 600 if args.quick else 3600
    stream, packets = make_stream(seconds)
    samples = int(seconds * SFREQ)
    per_second = len(stream) // seconds  # bytes one headset sends in a second
    print(
        f"stream: {seconds} s of an {N_CH}-channel {SFREQ:g}-Hz headset, {SPP} samples per "
        f"packet: {packets:,} packets, {len(stream) / 1e6:.1f} MB ({per_second:,} B/s)"
    )
    # warm the numba kernels (compiled once, cached on disk)
    warm = stream[: per_second * 4]
    bench_parser(warm, per_second, packets // seconds * 4, int(4 * SFREQ), "warm-up (kernel load)")
    print("-" * 80)
    bench_parser(stream, per_second, packets, samples)
    bench_parser(stream, 1 << 20, packets, samples)
    bench_driver(stream, per_second, packets)
    bench_driver(stream, 1 << 20, packets)
    n_heads = 100 if args.quick else TARGET_HEADSETS
    rate = bench_many(stream, n_heads, 20 if args.quick else 60, per_second)
    bench_tcp(stream, packets)
    bench_simulation(seconds / 10)
    need = TARGET_HEADSETS * SFREQ
    verdict = "meets" if rate >= need else "MISSES"  # CPU time of one core
    print("-" * 80)
    print(
        f"target: {TARGET_HEADSETS:,} real-time headsets per core = {need:,.0f} samples/s; "
        f"round-robin driver: {rate:,.0f} samples/s -> {verdict} the target "
        f"({rate / need:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
