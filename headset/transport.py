"""Transports between the headset and the driver, behind one interface.

Byte transports (the protocol of :mod:`headset.protocol` travels over them; the driver reads
and writes bytes):

* :class:`InProcessTransport` - the simulated device in the same process, no sockets (default).
* :class:`TcpTransport` - a headset served over TCP, e.g. by ``dreamnet headset serve``
  (:class:`TcpServer`), bound to 127.0.0.1 unless told otherwise.
* :class:`BytesTransport` - a recorded byte stream (tests, benchmarks; see :func:`record`).

Pacing: ``speed`` 1 is real time, 60 is a minute per second, ``"max"`` (stored as 0) is as fast
as the reader takes the data. With ``"max"`` in-process, time is virtual: it is the device's
clock, and waiting (a reconnect back-off) moves it on instead of sleeping.

Sample transports (Lab Streaming Layer, via pylsl): :class:`LslOutlet` publishes Chunks (raw or
filtered) so other LSL tools see the stream; :class:`LslInlet` reads an LSL stream as a source
of Chunks.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from .chunk import FLAG_GAP, Annotation, Chunk
from .errors import HeadsetError
from .protocol import CMD_INFO, CMD_START, encode_command

#: Accepted speeds on the command line.
SPEED_CHOICES = ("1", "60", "max")


def parse_speed(value) -> float:
    """Turn a speed (``1``, ``60``, ``"max"``, any positive finite number) into a factor.

    The one speed parser of the project (transports, replay, the CLI); 0.0 stands for
    ``"max"`` (as fast as possible).

    Parameters
    ----------
    value : str or float
        Speed as given by a user.

    Returns
    -------
    float
        Factor of real time; 0.0 means as fast as possible.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "max":
            return 0.0
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"Invalid value for the 'speed' parameter: expected 1, 60, max or a positive "
                f"number, got {value!r}."
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"speed must be a number or 'max', got {type(value).__name__}.")
    if not 0 < value < float("inf"):
        raise ValueError(f"speed must be a positive finite number or 'max', got {value!r}.")
    return float(value)


class Transport(ABC):
    """A bidirectional byte link to one headset.

    Attributes
    ----------
    session_clock : bool
        True if :meth:`clock` is in session seconds (the device's time scale, real or
        virtual); False if it is wall seconds (the driver then scales by the speed the
        device announces in HELLO).
    """

    session_clock = True

    @abstractmethod
    def open(self) -> None:
        """Connect (raises ``ConnectionError`` if the headset cannot be reached)."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect; safe to call twice."""

    @abstractmethod
    def read(self, timeout: float) -> bytes:
        """Return bytes received within ``timeout`` seconds (``b""`` if none).

        Raises
        ------
        ConnectionError
            When the link is lost (after the bytes received before the loss were returned).
        EOFError
            When the stream has ended for good (a recording played to its end).
        """

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send bytes to the headset (``ConnectionError`` if the link is down)."""

    def clock(self) -> float | None:
        """Host time in seconds (None if there is no meaningful clock)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait (a reconnect back-off); virtual transports move their clock instead."""
        time.sleep(max(0.0, seconds))


class InProcessTransport(Transport):
    """The simulated :class:`headset.device.Device` in this process.

    Parameters
    ----------
    device : Device
        The simulated headset.
    speed : float or str
        1 (real time), 60, ``"max"`` (virtual time, as fast as the reader goes).
    """

    def __init__(self, device, speed="max"):
        self.device = device
        self.speed = parse_speed(speed)
        device.speed = self.speed
        self._t0: float | None = None
        self._open = False

    def open(self) -> None:  # noqa: D102
        if self.speed and self._t0 is None:
            self._t0 = time.monotonic()
        if self.speed:
            self.device.advance_to(self.clock())
        self.device.connect()
        self._open = True

    def close(self) -> None:  # noqa: D102
        if self._open:
            self.device.disconnect()
        self._open = False

    def clock(self) -> float:  # noqa: D102
        if not self.speed:
            return self.device.now
        if self._t0 is None:
            return 0.0
        return (time.monotonic() - self._t0) * self.speed

    def sleep(self, seconds: float) -> None:  # noqa: D102
        if self.speed:
            time.sleep(max(0.0, seconds) / self.speed)
        else:
            self.device.advance_to(self.device.now + max(0.0, seconds))

    def read(self, timeout: float) -> bytes:  # noqa: D102
        dev = self.device
        if not self._open:
            raise ConnectionError("transport is closed")
        if not self.speed:
            out = dev.take_output()
            if not out and dev.connected and not dev.end_sent:
                dev.advance_block()
                out = dev.take_output()
        else:
            deadline = time.monotonic() + max(0.0, timeout)
            period = dev.fw.samples_per_packet / dev.rate / self.speed
            while True:
                dev.advance_to(self.clock())
                out = dev.take_output()
                if out or not dev.connected or dev.end_sent or time.monotonic() >= deadline:
                    break
                time.sleep(min(period, max(0.0, deadline - time.monotonic())))
        if not out and not dev.connected:
            self._open = False
            raise ConnectionError("lost the connection to the headset")
        return out

    def write(self, data: bytes) -> None:  # noqa: D102
        if not self._open or not self.device.connected:
            raise ConnectionError("lost the connection to the headset")
        self.device.receive(data)


class BytesTransport(Transport):
    """A recorded byte stream played back in pieces (tests and benchmarks).

    Parameters
    ----------
    data : bytes
        The stream.
    read_size : int
        Bytes returned per :meth:`read`.

    Attributes
    ----------
    sent : list of bytes
        What the driver wrote.
    """

    def __init__(self, data: bytes, read_size: int = 8192):
        self.data = memoryview(data if isinstance(data, bytes) else bytes(data))  # no copy
        self.read_size = max(1, int(read_size))
        self.pos = 0
        self.sent: list[bytes] = []
        self._t = 0.0

    def open(self) -> None:  # noqa: D102
        self.pos = 0

    def close(self) -> None:  # noqa: D102
        pass

    def clock(self) -> None:  # noqa: D102
        return None

    def sleep(self, seconds: float) -> None:  # noqa: D102
        self._t += seconds

    def read(self, timeout: float) -> bytes:
        """Return the next piece; raise ``EOFError`` at the end of the recording."""
        if self.pos >= len(self.data):
            raise EOFError("end of the recorded stream")
        out = bytes(self.data[self.pos : self.pos + self.read_size])
        self.pos += len(out)
        return out

    def write(self, data: bytes) -> None:  # noqa: D102
        self.sent.append(bytes(data))


def record(device, *, max_blocks: int | None = None) -> bytes:
    """Run a device as fast as possible and return its whole byte stream.

    The stream starts with a HELLO that says the device is streaming, so a driver over
    :class:`BytesTransport` can read it without sending commands.

    Parameters
    ----------
    device : Device
        A fresh device (its pairing key signs the START it is given).
    max_blocks : int or None
        Stop after that many blocks (None: until the end of the session).

    Returns
    -------
    bytes
        HELLO, then everything the device sent.
    """
    device.connect()
    device.take_output()
    device.receive(encode_command(CMD_START, 1, key=device.key))
    device.receive(encode_command(CMD_INFO, 2, key=device.key))
    parts = [device.take_output()]
    blocks = 0
    while not device.end_sent and (max_blocks is None or blocks < max_blocks):
        if not device.connected:
            while device.in_outage:
                device.advance_block()
            device.connect()
        device.advance_block()
        parts.append(device.take_output())
        blocks += 1
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# TCP
# --------------------------------------------------------------------------------------------


class TcpTransport(Transport):
    """Client side of a TCP link to a headset.

    Parameters
    ----------
    host : str
        Address of the headset server.
    port : int
        TCP port.
    connect_timeout : float
        Seconds to wait for a connection.
    """

    session_clock = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0, connect_timeout: float = 2.0):
        self.host = host
        self.port = int(port)
        self.connect_timeout = float(connect_timeout)
        self._sock: socket.socket | None = None
        self._t0 = time.monotonic()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> TcpTransport:
        """Build from ``tcp://HOST:PORT``."""
        text = url[len("tcp://") :] if url.startswith("tcp://") else url
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"expected tcp://HOST:PORT, got {url!r}.")
        return cls(host.strip("[]"), int(port), **kwargs)

    def open(self) -> None:  # noqa: D102
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise ConnectionError(f"cannot reach {self.host}:{self.port}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def close(self) -> None:  # noqa: D102
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def clock(self) -> float:  # noqa: D102
        return time.monotonic() - self._t0

    def read(self, timeout: float) -> bytes:  # noqa: D102
        if self._sock is None:
            raise ConnectionError("not connected")
        try:
            self._sock.settimeout(max(timeout, 1e-4))
            data = self._sock.recv(1 << 18)
        except TimeoutError:
            return b""
        except OSError as exc:
            self.close()
            raise ConnectionError(f"connection to {self.host}:{self.port} lost: {exc}") from None
        if not data:
            self.close()
            raise ConnectionError(f"connection to {self.host}:{self.port} closed by the headset")
        return data

    def write(self, data: bytes) -> None:  # noqa: D102
        if self._sock is None:
            raise ConnectionError("not connected")
        try:
            self._sock.settimeout(self.connect_timeout)
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise ConnectionError(f"connection to {self.host}:{self.port} lost: {exc}") from None


class TcpServer:
    """Serve one simulated device over TCP, one client at a time; stops by itself.

    The server streams until the device's session ends (it sends END, closes the connection
    and returns), or until no client has connected for ``idle_timeout`` seconds, or
    :meth:`stop` is called. A simulated disconnect closes the client's connection and refuses
    new ones until the outage is over.

    Parameters
    ----------
    device : Device
        The simulated headset.
    host : str
        Address to bind; 127.0.0.1 by default (only this machine can connect).
    port : int
        Port (0 picks a free one; see ``port``).
    speed : float or str
        1, 60 or ``"max"``.
    idle_timeout : float
        Seconds without a client after which :meth:`serve` returns.
    """

    def __init__(self, device, host="127.0.0.1", port=0, speed="max", idle_timeout=60.0):
        self.device = device
        self.speed = parse_speed(speed)
        device.speed = self.speed
        self.idle_timeout = float(idle_timeout)
        try:
            self._sock = socket.create_server((host, int(port)))
        except OSError as exc:
            raise HeadsetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._t0: float | None = None
        self.connections = 0
        self.thread: threading.Thread | None = None

    def stop(self) -> None:
        """Ask :meth:`serve` to return soon."""
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        """Run :meth:`serve` in a daemon thread and return it."""
        self.thread = threading.Thread(target=self.serve, name="headset-tcp", daemon=True)
        self.thread.start()
        return self.thread

    def _clock(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def _tick(self) -> float:
        d = self.device
        return d.fw.samples_per_packet / d.rate / self.speed if self.speed else 0.0

    def serve(self) -> bool:
        """Serve until the session ends (True) or the server idles or is stopped (False)."""
        try:
            idle_since = time.monotonic()
            while not self._stop.is_set():
                self._sock.settimeout(0.05)
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    if self._t0 is not None and self.speed:
                        self.device.advance_to(self._clock())
                    if time.monotonic() - idle_since > self.idle_timeout:
                        return False
                    continue
                try:
                    self.device.connect()
                except ConnectionRefusedError:
                    conn.close()
                    self._ride_outage()
                    continue
                self.connections += 1
                if self._t0 is None:
                    self._t0 = time.monotonic()
                if self._stream(conn):
                    return True
                idle_since = time.monotonic()
            return False
        finally:
            self._sock.close()

    def _ride_outage(self) -> None:
        dev = self.device
        while dev.in_outage and not self._stop.is_set():
            if self.speed:
                time.sleep(self._tick())
                dev.advance_to(self._clock())
            else:
                dev.advance_block()
            self._refuse_pending()

    def _refuse_pending(self) -> None:
        self._sock.settimeout(0.0)
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.close()

    def _stream(self, conn: socket.socket) -> bool:
        dev = self.device
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while not self._stop.is_set():
                wait = self._tick() if self.speed else (0.0 if dev.streaming else 0.02)
                ready, _, _ = select.select([conn], [], [], wait)
                if ready:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        dev.disconnect()
                        return False
                    dev.receive(data)
                if self.speed:
                    dev.advance_to(self._clock())
                elif not dev.end_sent and dev.connected:
                    dev.advance_block()
                out = dev.take_output()
                if out:
                    try:
                        conn.settimeout(30.0)
                        conn.sendall(out)
                    except OSError:
                        dev.disconnect()
                        return False
                if dev.end_sent:
                    conn.shutdown(socket.SHUT_WR)
                    return True
                if not dev.connected:
                    conn.close()
                    self._ride_outage()
                    return False
            return False
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------
# Lab Streaming Layer
# --------------------------------------------------------------------------------------------


def _units(ch_types: Sequence[str]) -> list[str]:
    return ["mg" if t == "misc" else "microvolts" for t in ch_types]


class LslOutlet:
    """Publish Chunks as an LSL stream (float64, one LSL channel per channel).

    Parameters
    ----------
    name : str
        LSL stream name.
    ch_names, ch_types : sequence of str
        Channels (written to the stream's ``desc/channels`` as label, type, unit).
    sfreq : float
        Nominal sampling rate, Hz.
    source_id : str or None
        LSL source id (lets receivers reconnect to the same stream).
    stream_type : str
        LSL content type.

    Raises
    ------
    HeadsetError
        If pylsl is not installed or cannot create an outlet.
    """

    def __init__(self, name, ch_names, ch_types, sfreq, *, source_id=None, stream_type="EEG"):
        try:
            import pylsl
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise HeadsetError(f"LSL needs pylsl ({exc})") from None
        self._pylsl = pylsl
        self.sfreq = float(sfreq)
        info = pylsl.StreamInfo(
            name, stream_type, len(ch_names), self.sfreq, pylsl.cf_double64, source_id or name
        )
        chans = info.desc().append_child("channels")
        for ch, kind, unit in zip(ch_names, ch_types, _units(ch_types), strict=True):
            c = chans.append_child("channel")
            c.append_child_value("label", ch)
            c.append_child_value("type", kind)
            c.append_child_value("unit", unit)
        try:
            self.outlet = pylsl.StreamOutlet(info)
        except Exception as exc:  # liblsl reports its failures as RuntimeError and others
            raise HeadsetError(f"cannot create an LSL outlet: {exc}") from None

    def push(self, chunk: Chunk, timestamp: float | None = None) -> None:
        """Push a chunk; ``timestamp`` is the LSL time of its last sample (default: now)."""
        if chunk.n_samples:
            self.outlet.push_chunk(np.ascontiguousarray(chunk.data.T), timestamp or 0.0)

    def have_consumers(self) -> bool:
        """Return True if an inlet is connected."""
        return bool(self.outlet.have_consumers())

    def close(self) -> None:
        """Destroy the outlet."""
        self.outlet = None


class LslInlet:
    """Read an LSL stream as a source of Chunks.

    The sample index is counted from the first sample received; a jump of the LSL time stamps
    by two sample periods or more is a gap, filled with ``FLAG_GAP`` samples (last value held)
    and annotated ``"Gap"``.

    Parameters
    ----------
    name : str
        Stream name to resolve.
    timeout : float
        Seconds to wait for the stream.

    Raises
    ------
    HeadsetError
        If pylsl is missing or no stream of that name appears in time.
    """

    def __init__(self, name: str, timeout: float = 5.0):
        try:
            import pylsl
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise HeadsetError(f"LSL needs pylsl ({exc})") from None
        found = pylsl.resolve_byprop("name", name, 1, timeout)
        if not found:
            raise HeadsetError(f"no LSL stream named {name!r} found within {timeout:g} s")
        info = found[0]
        self.inlet = pylsl.StreamInlet(info, max_buflen=60, recover=True)
        full = self.inlet.info(timeout=timeout)
        self.sfreq = float(full.nominal_srate()) or 1.0
        n = full.channel_count()
        names, types = [], []
        ch = full.desc().child("channels").child("channel")
        for i in range(n):
            label = ch.child_value("label") if not ch.empty() else ""
            kind = ch.child_value("type") if not ch.empty() else ""
            names.append(label or f"ch{i}")
            types.append((kind or "misc").lower())
            ch = ch.next_sibling()
        self.ch_names = tuple(names)
        self.ch_types = tuple(types)
        self._buf = np.empty((int(self.sfreq * 10) + 1, n), dtype=np.float64)
        self._ts0: float | None = None
        self._next = 0
        self._last = np.zeros(n)

    def read(self, timeout: float = 1.0) -> Chunk:
        """Return the samples that arrived within ``timeout`` seconds (possibly none)."""
        data, stamps = self.inlet.pull_chunk(
            timeout=timeout, max_samples=self._buf.shape[0], dest_obj=self._buf
        )
        n = len(stamps)
        x = self._buf[:n].T.copy() if n else np.zeros((len(self.ch_names), 0))
        if not n:
            return self._chunk(x, np.zeros(x.shape, np.uint8), ())
        ts = np.asarray(stamps)
        if self._ts0 is None:
            self._ts0 = float(ts[0])
        k = np.rint((ts - self._ts0) * self.sfreq).astype(np.int64)
        pieces, flags, ann = [], [], []
        expected = self._next
        last = self._last
        for i in range(n):
            if k[i] - expected >= 2:
                gap = int(k[i] - expected)
                pieces.append(np.repeat(last[:, None], gap, axis=1))
                flags.append(np.full((x.shape[0], gap), FLAG_GAP, np.uint8))
                ann.append(Annotation(expected / self.sfreq, gap / self.sfreq, "Gap"))
                expected += gap
            pieces.append(x[:, i : i + 1])
            flags.append(np.zeros((x.shape[0], 1), np.uint8))
            last = x[:, i]
            expected += 1
        first = self._next
        self._next = expected
        self._last = last.copy()
        data = np.concatenate(pieces, axis=1)
        return Chunk(
            data,
            first,
            self.sfreq,
            self.ch_names,
            self.ch_types,
            np.concatenate(flags, axis=1),
            tuple(ann),
        )

    def _chunk(self, data, flags, ann) -> Chunk:
        return Chunk(data, self._next, self.sfreq, self.ch_names, self.ch_types, flags, ann)

    def __iter__(self) -> Iterator[Chunk]:
        """Yield non-empty chunks forever (until the stream is lost)."""
        while True:
            c = self.read()
            if c.n_samples:
                yield c

    def close(self) -> None:
        """Close the inlet."""
        self.inlet.close_stream()
