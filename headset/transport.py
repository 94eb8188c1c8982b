"""Transports between the headset and the driver, behind one interface.

Byte transports (the protocol of :mod:`headset.protocol` travels over them; the driver reads
and writes bytes):

* :class:`InProcessTransport` - the simulated device in the same process, no sockets (default).
* :class:`TcpTransport` - a headset served over TCP, e.g. by ``dreamnet headset serve``
  (:class:`TcpServer`), bound to 127.0.0.1 unless told otherwise. Sessions are authenticated
  and encrypted (see below).
* :class:`BytesTransport` - a recorded byte stream (tests, benchmarks; see :func:`record`).

Pacing: ``speed`` 1 is real time, 60 is a minute per second, ``"max"`` (stored as 0) is as fast
as the reader takes the data. With ``"max"`` in-process, time is virtual: it is the device's
clock, and waiting (a reconnect back-off) moves it on instead of sleeping.

Sessions on TCP (layout in :mod:`headset.protocol`, "Sessions on a network link"). The server
sends every new connection a challenge; nothing of the night flows until the client has proved
that it holds the pairing key (HMAC-SHA256 over both sides' fresh nonces) and the server has
proved the same to it. Then both directions are encrypted and authenticated (ChaCha20-Poly1305,
keys of this session only), and commands are signed with the session's command key, with a fresh
counter space. A wrong key is refused (WELCOME status 1) and counted (``auth_failures``); a frame
that fails authentication ends the connection and is counted (``frames_rejected``) on the side
that received it. The server keeps a state per connection and waits for none of them: a client
that connects and sends nothing (or garbage) is dropped after ``auth_timeout`` seconds
(``auth_timeouts``) while others are served. The device has one host at a time: when a second
client authenticates while one is being served, **the newest takes over** (the older connection
is closed, ``takeovers``; it is the one that holds the key too, typically the same monitor
reconnecting after a network fault that the server has not noticed yet).

Sample transports (Lab Streaming Layer, via pylsl): :class:`LslOutlet` publishes Chunks (raw or
filtered) so other LSL tools see the stream; :class:`LslInlet` reads an LSL stream as a source
of Chunks. LSL has neither authentication nor encryption: anyone on the network can read it.
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
from .protocol import (
    AUTH_BYTES,
    CHALLENGE_BYTES,
    CMD_INFO,
    CMD_START,
    WELCOME_BYTES,
    LinkSession,
    check_auth,
    check_welcome,
    encode_auth,
    encode_challenge,
    encode_command,
    encode_welcome,
    new_nonce,
    parse_challenge,
)

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
    frames_rejected : int
        Received frames that failed authentication (links with sessions).
    """

    session_clock = True
    frames_rejected = 0

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

    def handshake(self, key: bytes | None) -> bytes | None:
        """Open a session on the link just opened; return its command key.

        The base link has no sessions: it returns None and commands are signed with the
        pairing key itself.

        Parameters
        ----------
        key : bytes or None
            Pairing key.

        Returns
        -------
        bytes or None
            The session's command key, or None.

        Raises
        ------
        ConnectionError
            If the link is lost during the handshake.
        HeadsetError
            If the headset refuses the key or does not prove that it holds it.
        """
        return None

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
        Seconds to wait for a connection, and for each step of the handshake.
    """

    session_clock = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0, connect_timeout: float = 2.0):
        self.host = host
        self.port = int(port)
        self.connect_timeout = float(connect_timeout)
        self._sock: socket.socket | None = None
        self._session: LinkSession | None = None
        self._t0 = time.monotonic()
        self.frames_rejected = 0

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
        self._session = None

    def handshake(self, key: bytes | None) -> bytes:
        """Prove the pairing key to the headset and check its proof; encrypt from now on.

        See :meth:`Transport.handshake`; a headset served over TCP always needs the key.
        """
        where = f"{self.host}:{self.port}"
        if key is None:
            self.close()
            raise HeadsetError(f"the headset at {where} needs the pairing key to open a session")
        device_nonce = parse_challenge(self._recv_exactly(CHALLENGE_BYTES))
        if device_nonce is None:
            self.close()
            raise HeadsetError(f"{where} is not a dreamnet headset (no session challenge)")
        host_nonce = new_nonce()
        self._send_raw(encode_auth(key, device_nonce, host_nonce))
        verdict = check_welcome(key, device_nonce, host_nonce, self._recv_exactly(WELCOME_BYTES))
        if verdict != "ok":
            self.close()
            if verdict == "refused":
                raise HeadsetError("the headset refused the pairing key")
            raise HeadsetError(
                f"the headset at {where} did not prove that it holds the pairing key"
            )
        self._session = LinkSession(key, device_nonce, host_nonce, "host")
        return self._session.command_key

    def _recv_exactly(self, n: int) -> bytes:
        if self._sock is None:
            raise ConnectionError("not connected")
        out = b""
        deadline = time.monotonic() + self.connect_timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                self._sock.settimeout(left)
                data = self._sock.recv(n - len(out))
            except OSError as exc:  # TimeoutError included
                self.close()
                raise ConnectionError(f"no session with {self.host}:{self.port}: {exc}") from None
            if not data:
                self.close()
                raise ConnectionError(f"{self.host}:{self.port} closed the connection")
            out += data
        return out

    def _send_raw(self, data: bytes) -> None:
        if self._sock is None:
            raise ConnectionError("not connected")
        try:
            self._sock.settimeout(self.connect_timeout)
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise ConnectionError(f"connection to {self.host}:{self.port} lost: {exc}") from None

    def close(self) -> None:  # noqa: D102
        self._session = None
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def clock(self) -> float:  # noqa: D102
        return time.monotonic() - self._t0

    def read(self, timeout: float) -> bytes:  # noqa: D102
        if self._sock is None or self._session is None:
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
        try:
            return self._session.open(data)
        except HeadsetError as exc:
            self.frames_rejected += 1
            self.close()
            raise ConnectionError(f"connection to {self.host}:{self.port} dropped: {exc}") from None

    def write(self, data: bytes) -> None:  # noqa: D102
        if self._session is None:
            raise ConnectionError("not connected")
        self._send_raw(self._session.seal(data))


class _Link:
    """One client connection of :class:`TcpServer`: its handshake, then its session."""

    def __init__(self, conn: socket.socket, deadline: float):
        self.conn = conn
        self.deadline = deadline
        self.nonce = new_nonce()
        self.buf = b""
        self.session: LinkSession | None = None

    def send_small(self, data: bytes) -> bool:
        """Send a handshake message without waiting (it fits any socket buffer)."""
        try:
            self.conn.setblocking(False)
            return self.conn.send(data) == len(data)
        except OSError:
            return False

    def close(self) -> None:
        self.conn.close()


class TcpServer:
    """Serve one simulated device over TCP to authenticated clients; stops by itself.

    Every connection gets its own handshake state (module docstring); the device streams to
    the one authenticated client, the newest if several are (the older is closed). The server
    streams until the device's session ends (it sends END, closes the connection and returns),
    or until no authenticated client has been served for ``idle_timeout`` seconds, or
    :meth:`stop` is called. A simulated disconnect closes the client's connection and refuses
    new sessions until the outage is over.

    Parameters
    ----------
    device : Device
        The simulated headset (its pairing key authenticates the clients).
    host : str
        Address to bind; 127.0.0.1 by default (only this machine can connect).
    port : int
        Port (0 picks a free one; see ``port``).
    speed : float or str
        1, 60 or ``"max"``.
    idle_timeout : float
        Seconds without an authenticated client after which :meth:`serve` returns.
    auth_timeout : float
        Seconds a new connection has to authenticate before it is dropped.

    Attributes
    ----------
    counters : dict
        ``connections`` (accepted), ``sessions`` (authenticated), ``auth_failures`` (wrong
        key or not a handshake), ``auth_timeouts``, ``frames_rejected`` (client frames that
        failed authentication), ``takeovers`` (a newer client replaced the one served),
        ``refused_outage`` (authenticated during a simulated disconnect).
    """

    #: Connections waiting to authenticate at most at once (the oldest is dropped).
    MAX_PENDING = 16

    def __init__(
        self, device, host="127.0.0.1", port=0, speed="max", idle_timeout=60.0, auth_timeout=5.0
    ):
        self.device = device
        self.speed = parse_speed(speed)
        device.speed = self.speed
        self.idle_timeout = float(idle_timeout)
        self.auth_timeout = float(auth_timeout)
        try:
            self._sock = socket.create_server((host, int(port)))
        except OSError as exc:
            raise HeadsetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._t0: float | None = None
        self._pending: list[_Link] = []
        self._active: _Link | None = None
        self.counters = dict.fromkeys(
            (
                "connections",
                "sessions",
                "auth_failures",
                "auth_timeouts",
                "frames_rejected",
                "takeovers",
                "refused_outage",
            ),
            0,
        )
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
        dev = self.device
        try:
            idle_since = time.monotonic()
            while not self._stop.is_set():
                active = self._active
                if self.speed:
                    wait = self._tick()
                else:
                    busy = (active is not None and dev.streaming) or dev.in_outage
                    wait = 0.0 if busy else 0.02
                socks = [self._sock] + [link.conn for link in self._pending]
                if active is not None:
                    socks.append(active.conn)
                ready, _, _ = select.select(socks, [], [], wait)
                for sock in ready:
                    if sock is self._sock:
                        self._accept()
                    elif active is not None and sock is active.conn:
                        self._from_client(active)
                    else:
                        self._handshake(next(x for x in self._pending if x.conn is sock))
                self._expire()
                if self._t0 is not None and self.speed:
                    dev.advance_to(self._clock())
                elif self._active is not None and dev.connected and not dev.end_sent:
                    dev.advance_block()
                elif dev.in_outage and not self.speed:
                    dev.advance_block()
                if self._active is not None:
                    if self._to_client(self._active):
                        return True
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_timeout:
                    return False
            return False
        finally:
            for link in self._pending:
                link.close()
            if self._active is not None:
                self._active.close()
            self._sock.close()

    def _accept(self) -> None:
        self._sock.settimeout(0.0)
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        self.counters["connections"] += 1
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(conn, time.monotonic() + self.auth_timeout)
        if not link.send_small(encode_challenge(link.nonce)):
            link.close()
            return
        if len(self._pending) >= self.MAX_PENDING:
            self._pending.pop(0).close()
            self.counters["auth_timeouts"] += 1
        self._pending.append(link)

    def _expire(self) -> None:
        now = time.monotonic()
        for link in [x for x in self._pending if x.deadline < now]:
            self._pending.remove(link)
            link.close()
            self.counters["auth_timeouts"] += 1

    def _handshake(self, link: _Link) -> None:
        """Read a pending client's AUTH; refuse it, or make it the client served."""
        try:
            data = link.conn.recv(AUTH_BYTES - len(link.buf))
        except OSError:
            data = b""
        if not data:
            self._pending.remove(link)
            link.close()
            return
        link.buf += data
        if len(link.buf) < AUTH_BYTES:
            return
        self._pending.remove(link)
        key = self.device.key
        host_nonce = check_auth(key, link.nonce, link.buf)
        if host_nonce is None:
            self.counters["auth_failures"] += 1
            link.send_small(encode_welcome(key, link.nonce, b"", ok=False))
            link.close()
            return
        if self.device.in_outage:
            self.counters["refused_outage"] += 1
            link.close()
            return
        if not link.send_small(encode_welcome(key, link.nonce, host_nonce, ok=True)):
            link.close()
            return
        link.session = LinkSession(key, link.nonce, host_nonce, "device")
        if self._active is not None:
            self.counters["takeovers"] += 1
            self._drop_active()
        self.device.connect(session_key=link.session.command_key)
        self.counters["sessions"] += 1
        self._active = link
        if self._t0 is None:
            self._t0 = time.monotonic()

    def _drop_active(self) -> None:
        if self._active is not None:
            self._active.close()
            self._active = None
        if self.device.connected:
            self.device.disconnect()

    def _from_client(self, link: _Link) -> None:
        """Commands from the client served: decrypt, hand them to the device."""
        try:
            data = link.conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop_active()
            return
        try:
            plain = link.session.open(data)
        except HeadsetError:
            self.counters["frames_rejected"] += 1
            self._drop_active()
            return
        if plain:
            self.device.receive(plain)

    def _to_client(self, link: _Link) -> bool:
        """Send what the device queued; True once END has gone out."""
        dev = self.device
        out = dev.take_output()
        if out:
            try:
                link.conn.settimeout(30.0)
                link.conn.sendall(link.session.seal(out))
            except OSError:
                self._drop_active()
                return False
        if dev.end_sent:
            link.conn.shutdown(socket.SHUT_WR)
            return True
        if not dev.connected:  # a simulated disconnect: the device hung up
            self._active = None
            link.close()
        return False


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
