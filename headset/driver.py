"""The driver: a BrainFlow-like ``Headset`` that turns the device's byte stream into Chunks.

Lifecycle: :meth:`Headset.connect` (open the transport, read the device's HELLO),
:meth:`Headset.start`, :meth:`Headset.read` (or iterate), :meth:`Headset.send_stimulus` and
:meth:`Headset.configure`, :meth:`Headset.stop`, :meth:`Headset.close`; ``with Headset(...) as
hs:`` connects and starts, and stops and closes on the way out.

What the driver guarantees (DESIGN section 6):

* Samples are placed by the device's sample counter, never by arrival: the Chunk's
  ``first_sample`` is the device sample index, chunks follow each other without overlap or
  hole, and every sample received intact is delivered exactly once.
* A missing packet (lost, corrupt, truncated, during a disconnect) becomes ``FLAG_GAP`` samples
  holding the last value, with a ``"Gap"`` annotation (onset, duration). Packets arriving out
  of order are put back in order: a hole is declared a gap only once ``reorder_window`` packets
  beyond it have arrived (or the session ended).
* Lead-off status bits become ``FLAG_LEAD_OFF`` on that channel's samples and a
  ``"Lead off: <channel>"`` annotation when a channel goes off; ADC codes at the rails become
  ``FLAG_SATURATED``.
* A lost connection is re-opened with exponential back-off; the outage is annotated
  (``"Connection lost"``) and its samples are a gap.
* Clock drift: the device's sample counter is the time base; the driver fits host time
  against it (least squares) and reports the device's clock error (``clock_drift_ppm``) and
  the host time of any sample (``host_time``).
* Commands are signed with the pairing key and retried a bounded number of times if not
  acknowledged (a retry repeats the same bytes, which the device does not execute twice).
  On a link with sessions (TCP) every connection first proves the key to the device
  (:meth:`headset.transport.Transport.handshake`); commands and ACKs are then signed with the
  session's key and counted from 1 again. A counter never goes past
  ``headset.protocol.MAX_COMMAND_COUNTER``: a session that would need one is renegotiated
  (reconnect: new nonces, new keys, fresh counters).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

import numpy as np

from dsp.validate import check_option, check_positive, validate_type

from ._crc import data_values
from .chunk import FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED, Annotation, Chunk
from .errors import HeadsetError
from .faults import FaultConfig
from .protocol import (
    AUX_MAX,
    AUX_MIN,
    CMD_CONFIGURE,
    CMD_START,
    CMD_STOP,
    CODE_MAX,
    CODE_MIN,
    COMMAND_NAMES,
    COUNTER_MODULUS,
    MAX_COMMAND_COUNTER,
    SEQ_MODULUS,
    STATUS_REPLAY,
    STIM_BITS,
    STIM_COMMANDS,
    Ack,
    DataBatch,
    End,
    Event,
    Hello,
    StreamParser,
    configure_payload,
    encode_command,
    stim_payload,
)
from .transport import InProcessTransport, TcpTransport, Transport

#: Saturation limits and flag bits of :func:`~headset._crc.data_values`.
_LIMITS = np.array([CODE_MIN, CODE_MAX, AUX_MIN, AUX_MAX], dtype=np.int64)
_FLAG_BITS = np.array([FLAG_SATURATED, FLAG_LEAD_OFF], dtype=np.uint8)

_COUNTERS = (
    "packets_ok",
    "corrupt",
    "lost",
    "lost_samples",
    "duplicates",
    "late",
    "reordered",
    "resyncs",
    "truncated",
    "reconnects",
    "commands_sent",
    "commands_acked",
    "commands_failed",
    "commands_refused",
    "acks_unauthenticated",
    "frames_rejected",
    "bytes",
)


class _ClockFit:
    """Least-squares fit of host time against the device sample counter.

    Arrival delays are never negative, so a point that arrives much later than the previous
    accepted one predicts (a stall, a reconnect) is an outlier and is left out of the fit.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.x0 = self.y0 = 0.0
        self.sx = self.sy = self.sxx = self.sxy = 0.0
        self.last: tuple[float, float] | None = None

    def add(self, sample: int, t: float, sfreq: float, late: float) -> None:
        if self.last is not None:
            dx, dt = sample - self.last[0], t - self.last[1]
            if dx <= 0 or dt - dx / sfreq > late:
                return
        self.last = (float(sample), float(t))
        if self.n == 0:
            self.x0, self.y0 = float(sample), float(t)
        x, y = sample - self.x0, t - self.y0
        self.n += 1
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.sxy += x * y

    def slope_intercept(self) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        den = self.n * self.sxx - self.sx * self.sx
        if den <= 0:
            return None
        b = (self.n * self.sxy - self.sx * self.sy) / den
        a = (self.sy - b * self.sx) / self.n
        return b, a


class Headset:
    """A headset seen through its byte stream (BrainFlow-like lifecycle).

    Parameters
    ----------
    transport : Transport
        The link (:class:`~headset.transport.InProcessTransport`, ``TcpTransport``, ...).
    key : bytes or None
        Pairing key shared with the device; without it every command is refused.
    reorder_window : int
        Packets that must arrive beyond a hole before it is declared a gap.
    ack_timeout : float
        Seconds (transport time) to wait for a command's acknowledgement.
    max_retries : int
        Times an unacknowledged command is sent again.
    backoff : float
        First reconnect delay in seconds; doubles each attempt up to ``max_backoff``.
    max_backoff : float
        Largest reconnect delay.
    max_reconnects : int
        Attempts before giving up on a lost connection (raises ``HeadsetError``).
    ground_truth : bool
        Pass the simulator's ground-truth events on as annotations.

    Attributes
    ----------
    counters : dict
        ``packets_ok``, ``corrupt``, ``lost`` (packets), ``lost_samples``, ``duplicates``,
        ``late`` (arrived after their slot was declared a gap), ``reordered``, ``resyncs``,
        ``truncated``, ``reconnects``, ``commands_sent``, ``commands_acked``,
        ``commands_failed``, ``commands_refused``, ``acks_unauthenticated`` (answers whose
        tag does not match the pairing key: an "accepted" among them is ignored, a refusal
        still explains a failure but changes no state), ``frames_rejected`` (encrypted frames
        that failed authentication; each ends the connection), ``bytes``.
    info : dict
        The device's HELLO (stream description).
    device : Device or None
        The simulated device, for headsets made by :meth:`simulated`.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        key: bytes | None = None,
        reorder_window: int = 4,
        ack_timeout: float = 0.5,
        max_retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_reconnects: int = 12,
        ground_truth: bool = True,
    ):
        validate_type("transport", transport, Transport)
        self.transport = transport
        self.key = None if key is None else bytes(key)
        self._command_key = self.key  # the session's on a link with sessions
        self.reorder_window = max(1, int(reorder_window))
        self.ack_timeout = check_positive("ack_timeout", ack_timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = check_positive("backoff", backoff)
        self.max_backoff = check_positive("max_backoff", max_backoff)
        self.max_reconnects = max(1, int(max_reconnects))
        self.ground_truth = bool(ground_truth)
        self.device = None
        self.info: dict = {}
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self._parser = StreamParser("device")
        self._state = "created"
        self._clock = _ClockFit()
        self._reset_stream()

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def simulated(
        cls,
        profile: str = "healthy",
        seed: int = 0,
        duration_s: float = 8 * 3600.0,
        *,
        faults: FaultConfig | str | None = None,
        speed="max",
        source=None,
        samples_per_packet: int = 8,
        device_kw: dict | None = None,
        **kwargs,
    ) -> Headset:
        """Make a headset on the simulated device, in this process (paired automatically).

        Parameters
        ----------
        profile : str
            Sleeper profile.
        seed : int
            Seed of the sleeper and of the packet faults.
        duration_s : float
            Length of the night, seconds.
        faults : FaultConfig or str or None
            Faults, or a ``--faults`` spec.
        speed : float or str
            1, 60 or ``"max"``.
        source : Sleeper-like or None
            Use this source instead of a new sleeper (e.g. ``IndexSource``).
        samples_per_packet : int
            Samples per packet.
        device_kw : dict or None
            Further arguments of :class:`headset.device.Device`.
        **kwargs
            Further arguments of :class:`Headset`.
        """
        from .device import Device
        from .faults import parse_faults

        if isinstance(faults, str):
            faults = parse_faults(faults)
        dkw = dict(device_kw or {})
        dkw.setdefault("samples_per_packet", samples_per_packet)
        if source is not None:
            device = Device(source, seed=seed, faults=faults, **dkw)
        else:
            device = Device.from_profile(profile, seed, duration_s, faults=faults, **dkw)
        hs = cls(InProcessTransport(device, speed), key=device.key, **kwargs)
        hs.device = device
        return hs

    @classmethod
    def tcp(cls, url: str, *, key: bytes | None = None, **kwargs) -> Headset:
        """Make a headset served over TCP at ``tcp://HOST:PORT`` (``dreamnet headset serve``)."""
        return cls(TcpTransport.from_url(url), key=key, **kwargs)

    # -- stream description ---------------------------------------------------------------

    @property
    def ch_names(self) -> tuple[str, ...]:
        """Channel names (after :meth:`connect`)."""
        return self._ch_names

    @property
    def ch_types(self) -> tuple[str, ...]:
        """Channel types (after :meth:`connect`)."""
        return self._ch_types

    @property
    def sfreq(self) -> float:
        """Sampling rate in Hz (after :meth:`connect`)."""
        return self._sfreq

    @property
    def state(self) -> str:
        """``created``, ``connected``, ``streaming``, ``ended``, ``lost`` or ``closed``."""
        return self._state

    @property
    def position(self) -> int:
        """Device sample index of the next sample :meth:`read` will return."""
        return self._delivered

    @property
    def ended(self) -> bool:
        """True once the device ended the session and every sample has been read."""
        return self._finished and not self._ready

    @property
    def status(self) -> dict:
        """Latest device status: battery percent, stimulator kinds playing, channels off."""
        return {
            "battery": self._battery,
            "stimulating": [k for k, b in STIM_BITS.items() if self._stim & b],
            "lead_off": [self._ch_names[i] for i in self._off_channels()],
        }

    @property
    def clock_drift_ppm(self) -> float | None:
        """Device clock error against the host in parts per million (None: not enough data)."""
        fit = self._clock.slope_intercept()
        if fit is None or not self._sfreq:
            return None
        b, _ = fit
        return (1.0 / (b * self._sfreq) - 1.0) * 1e6 if b > 0 else None

    def host_time(self, sample: int | np.ndarray) -> float | np.ndarray | None:
        """Host time (seconds of the transport clock) at which a device sample was taken.

        Derived from the device's sample counter with the fitted clock (drift corrected);
        None until two clock points are known.
        """
        fit = self._clock.slope_intercept()
        if fit is None:
            return None
        b, a = fit
        return self._clock.y0 + a + b * (np.asarray(sample, dtype=np.float64) - self._clock.x0)

    # -- lifecycle ------------------------------------------------------------------------

    def connect(self, timeout: float = 5.0) -> Headset:
        """Open the transport and read the device's description (HELLO).

        Parameters
        ----------
        timeout : float
            Seconds (transport time) to wait for the HELLO.

        Raises
        ------
        HeadsetError
            If the headset cannot be reached or does not describe itself.
        """
        if self._state not in ("created", "closed", "lost"):
            return self
        for attempt in range(3):
            try:
                self._open_session()
                break
            except ConnectionError as exc:
                if attempt == 2:
                    raise HeadsetError(f"cannot connect to the headset: {exc}") from None
                self.transport.sleep(self.backoff * 2**attempt)
        if not self._read_hello(timeout):
            self.transport.close()
            raise HeadsetError("the headset did not describe itself (no HELLO) after connecting")
        self._state = "connected"
        if self._hello.get("streaming"):
            self._state = "streaming"
        return self

    def _open_session(self) -> None:
        """Open the link and its session (if it has sessions: fresh keys, fresh counters).

        Raises
        ------
        ConnectionError
            If the link cannot be opened (worth another attempt).
        HeadsetError
            If the headset refuses the key or does not prove that it holds it.
        """
        self.transport.open()
        session_key = self.transport.handshake(self.key)
        if session_key is not None:
            self._command_key = session_key
            self._counter = 0
            self._acks.clear()

    def start(self) -> None:
        """Start streaming (sends an authenticated START and waits for its ACK)."""
        self._need_connected()
        if self._state != "streaming":
            self._command(CMD_START)
            self._state = "streaming"
        self._clock.reset()

    def stop(self) -> None:
        """Stop streaming (the device pauses; samples already sent are still delivered)."""
        if self._state == "streaming":
            self._command(CMD_STOP)
            self._state = "connected"

    def close(self) -> None:
        """Close the transport (safe to call more than once)."""
        if self._state != "closed":
            self.transport.close()
            self._state = "closed"

    def __enter__(self) -> Headset:
        self.connect()
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._state == "streaming" and not self._finished:
                self.stop()
        finally:
            self.close()

    def __iter__(self) -> Iterator[Chunk]:
        """Yield chunks until the session ends."""
        while True:
            chunk = self.read()
            if chunk is None:
                return
            if chunk.n_samples or chunk.annotations:
                yield chunk

    # -- commands -------------------------------------------------------------------------

    def send_stimulus(self, kind: str, level: float = 0.3, duration_s: float = 3.0) -> Ack:
        """Play a stimulus on the headset (authenticated, retried if not acknowledged).

        Parameters
        ----------
        kind : {"audio", "vibration", "wake"}
            Audio cue, vibration, or gentle wake.
        level : float
            Intensity from 0 to 1.
        duration_s : float
            Duration in seconds (0 < duration <= 600).

        Returns
        -------
        Ack
            The device's acknowledgement (``sample`` is the device sample when it played).

        Raises
        ------
        HeadsetError
            If the device refused the command (bad or missing key, replay) or did not
            acknowledge it after ``max_retries`` retries.
        """
        check_option("kind", kind, tuple(STIM_COMMANDS))
        payload = stim_payload(level, duration_s)
        self._need_connected()
        return self._command(STIM_COMMANDS[kind], payload)

    def configure(self, samples_per_packet: int | None = None, leadoff: bool | None = None):
        """Change the device's samples per packet and/or lead-off detection."""
        self._need_connected()
        return self._command(CMD_CONFIGURE, configure_payload(samples_per_packet, leadoff))

    def _need_connected(self) -> None:
        if self._state == "lost":
            raise HeadsetError("the connection to the headset was lost; connect() again")
        if self._state in ("created", "closed"):
            raise HeadsetError("the headset is not connected; call connect() first")

    def _now(self) -> float:
        if self.transport.session_clock:
            t = self.transport.clock()
            if t is not None:
                return t
        return time.monotonic()

    def _command(self, opcode: int, payload: bytes = b"") -> Ack:
        name = COMMAND_NAMES.get(opcode, hex(opcode))
        counter = self._next_counter(int(self.info.get("last_counter", 0)))
        packet = encode_command(opcode, counter, payload, self._command_key)
        resynced = False
        for _ in range(1 + self.max_retries):
            try:
                self.transport.write(packet)
            except ConnectionError:
                self._reconnect()
                continue
            self.counters["commands_sent"] += 1
            self._wait(lambda c=counter: c in self._acks, self.ack_timeout)
            ack = self._acks.pop(counter, None)
            if ack is None:
                continue
            if ack.accepted:
                self.counters["commands_acked"] += 1
                return ack
            if ack.status == STATUS_REPLAY and not resynced and ack.last_counter >= counter:
                # another host moved the device's counter on: catch up once, sign anew
                resynced = True
                counter = self._next_counter(ack.last_counter)
                packet = encode_command(opcode, counter, payload, self._command_key)
                continue
            self.counters["commands_refused"] += 1
            raise HeadsetError(f"the headset refused {name}: {ack.status_name}")
        self.counters["commands_failed"] += 1
        raise HeadsetError(
            f"the headset did not acknowledge {name} after {1 + self.max_retries} attempts"
        )

    def _next_counter(self, device_last: int) -> int:
        """Return the counter of the next command, after ours and the device's last.

        A counter past ``MAX_COMMAND_COUNTER`` would be refused: on a link with sessions the
        session is renegotiated (fresh counters); without, it is an error.
        """
        counter = max(self._counter, device_last) + 1
        if counter > MAX_COMMAND_COUNTER:
            if self._command_key is self.key:
                raise HeadsetError("the headset's command counters are used up (no sessions)")
            self.transport.close()
            self._reconnect()  # a new session: the handshake reset self._counter
            counter = self._counter + 1
        self._counter = counter
        return counter

    # -- reading --------------------------------------------------------------------------

    def read(self, n_samples: int | None = None, timeout: float = 1.0) -> Chunk | None:
        """Return the next samples as a Chunk.

        Parameters
        ----------
        n_samples : int or None
            Exactly this many samples (fewer only at the end of the session); None returns
            whatever has arrived (at least one sample unless the timeout passes).
        timeout : float
            Seconds (transport time) to wait for data.

        Returns
        -------
        Chunk or None
            The samples (possibly none, after a timeout); None once the session has ended and
            everything was read.
        """
        self._need_connected()
        if n_samples is not None and int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1 or None, got {n_samples!r}.")
        want = 1 if n_samples is None else int(n_samples)
        self._wait(lambda: self._n_ready >= want or self._finished, timeout)
        if self._finished and not self._n_ready and not self._ready_ann:
            self._state = "ended"
            return None
        return self._take(n_samples)

    def _wait(self, predicate, timeout: float) -> None:
        deadline = self._now() + timeout
        while not predicate():
            if self._finished and self._hello is not None:
                return
            self._pump(min(0.05, max(timeout, 0.0)))
            if self._now() >= deadline:
                return

    def _read_hello(self, timeout: float) -> bool:
        """Read until a HELLO arrives; False on timeout or a lost connection."""
        self._hello = None
        deadline = self._now() + timeout
        while self._hello is None:
            try:
                data = self.transport.read(min(0.05, timeout))
            except (ConnectionError, EOFError):
                return False
            if data:
                self.counters["bytes"] += len(data)
                self._process(self._parser.feed(data))
            elif self._now() >= deadline:
                return False
        return True

    def _pump(self, timeout: float) -> None:
        try:
            data = self.transport.read(timeout)
        except EOFError:
            self._end_of_stream()
            return
        except ConnectionError:
            if not self._finished:
                self._reconnect()
            return
        if data:
            self.counters["bytes"] += len(data)
            self._process(self._parser.feed(data))

    def _end_of_stream(self) -> None:
        """Deliver what arrived and finish: the transport has no more bytes (a recording)."""
        self._process(self._parser.flush())
        if not self._finished:
            self._emit(force=True)
            self._finish(max(self._next, self._received_end))

    def _reconnect(self) -> None:
        self._parser.reset()
        self._sync_parser_counters()
        lost_at = self._received_end
        t_lost = self._now()
        delay = self.backoff
        for _ in range(self.max_reconnects):
            self.transport.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
            try:
                self._open_session()
            except ConnectionError:
                continue
            if not self._read_hello(max(1.0, self.ack_timeout)):
                self.transport.close()
                continue
            self.counters["reconnects"] += 1
            self._ready_ann.append(
                Annotation(lost_at / self._sfreq, max(0.0, self._now() - t_lost), "Connection lost")
            )
            if self._state == "streaming" and not self._hello.get("streaming"):
                self._command(CMD_START)
            return
        self._state = "lost"
        self.transport.close()
        raise HeadsetError(
            f"lost the connection to the headset; no answer after {self.max_reconnects} attempts"
        )

    # -- decoding -------------------------------------------------------------------------

    def _reset_stream(self) -> None:
        self._hello = None
        self._ch_names: tuple[str, ...] = ()
        self._ch_types: tuple[str, ...] = ()
        self._sfreq = 0.0
        self._counter = 0
        self._acks: dict[int, Ack] = {}
        self._finished = False
        self._end_total: int | None = None
        self._delivered = 0  # next sample read() returns
        self._next = 0  # next sample to assemble
        self._received_end = 0  # end of the furthest packet received
        self._last_seq: int | None = None
        self._seq_u = self._max_seq = 0
        self._last_values: np.ndarray | None = None
        self._last_mask = 0
        self._battery = 100
        self._stim = 0
        self._recent_gaps: deque[tuple[int, int]] = deque(maxlen=256)
        self._ready: list[tuple[np.ndarray, np.ndarray]] = []
        self._ready_ann: list[Annotation] = []
        self._n_ready = 0
        self._pend: list[dict] = []
        self._spp = 8

    def _off_channels(self) -> list[int]:
        return [int(self._exg[i]) for i in range(len(self._exg)) if self._last_mask >> i & 1]

    def _set_layout(self, info: dict) -> None:
        try:
            names = tuple(str(x) for x in info["ch_names"])
            types = tuple(str(x) for x in info["ch_types"])
            sfreq = float(info["sfreq"])
            exg = np.asarray(info["exg"], dtype=np.int64)
            aux = np.asarray(info.get("aux", []), dtype=np.int64)
            lsb = float(info["lsb_uv"])
            aux_lsb = float(info.get("aux_lsb", 1.0))
            spp = int(info.get("samples_per_packet", 8))
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadsetError(f"the headset sent an unusable description: {exc}") from None
        n = len(names)
        if (
            len(types) != n
            or not sfreq > 0
            or sorted(exg.tolist() + aux.tolist()) != list(range(n))
            or not lsb > 0
        ):
            raise HeadsetError("the headset sent an inconsistent stream description")
        old = (self._ch_names, self._ch_types, self._sfreq)
        if self._ch_names and (names, types, sfreq) != old:
            raise HeadsetError("the headset changed its channels or rate after a reconnect")
        self._ch_names, self._ch_types, self._sfreq = names, types, sfreq
        self._exg, self._aux, self._lsb, self._aux_lsb, self._spp = exg, aux, lsb, aux_lsb, spp
        self.info = dict(info)

    def _sync_parser_counters(self) -> None:
        for k in ("corrupt", "resyncs", "truncated"):
            self.counters[k] = self._parser.counters[k]
        self.counters["frames_rejected"] = self.transport.frames_rejected

    def _process(self, result) -> None:
        self._sync_parser_counters()
        for msg in result.messages:
            if isinstance(msg, Hello):
                self._set_layout(msg.info)
                self._hello = msg.info
        if self._hello is None:
            return  # nothing can be decoded before the description
        for batch in result.batches:
            self._ingest(batch)
        end = None
        for msg in result.messages:
            if isinstance(msg, Ack):
                if self.key is not None and not msg.authentic(self._command_key):
                    # Not from the paired device (or not for this key): never believe that
                    # a command was carried out, nor the stimulator state it claims.
                    self.counters["acks_unauthenticated"] += 1
                    if not msg.accepted:
                        self._acks.setdefault(msg.counter, msg)
                    continue
                self._acks[msg.counter] = msg
                self._stim = msg.stim_state
            elif isinstance(msg, Event) and self.ground_truth:
                self._ready_ann.append(Annotation(msg.onset, msg.duration, msg.description))
            elif isinstance(msg, End):
                end = msg
        if result.batches:
            t = self._now() if self.transport.session_clock else self._wall_session_time()
            if t is not None:
                late = 0.25 * max(1.0, float(self.info.get("speed", 0.0) or 0.0))
                self._clock.add(self._received_end, t, self._sfreq, late)
        self._emit(force=end is not None)
        if end is not None:
            self._finish(end.total)

    def _wall_session_time(self) -> float | None:
        speed = float(self.info.get("speed", 0.0) or 0.0)
        t = self.transport.clock()
        return None if not speed or t is None else t * speed

    def _ingest(self, batch: DataBatch) -> None:
        n = len(batch)
        s = batch.n_samples
        self.counters["packets_ok"] += n
        n_exg, n_aux = batch.codes.shape[1], batch.aux.shape[1]
        if n_exg != self._exg.size or n_aux != self._aux.size:
            self.counters["corrupt"] += n  # layout disagrees with HELLO: unusable
            return
        # unwrap the 32-bit sample counter around the next expected sample
        ref = self._next
        diff = (batch.counter - ref + (COUNTER_MODULUS >> 1)) % COUNTER_MODULUS
        starts = ref + diff - (COUNTER_MODULUS >> 1)
        # sequence numbers: count packets arriving behind the newest one (reordered)
        seq = batch.seq
        if self._last_seq is None:
            first = int(seq[0]) - 1
            self._last_seq, self._seq_u, self._max_seq = first % SEQ_MODULUS, first, first
        half = SEQ_MODULUS >> 1
        steps = np.empty(n, dtype=np.int64)
        steps[0] = seq[0] - self._last_seq
        np.subtract(seq[1:], seq[:-1], out=steps[1:])
        steps = (steps + half) % SEQ_MODULUS - half
        if self._seq_u == self._max_seq and (steps == 1).all():  # the usual case: in order
            behind = np.zeros(n, dtype=bool)
            self._seq_u = self._max_seq = self._seq_u + n
        else:
            useq = self._seq_u + np.cumsum(steps)
            running = np.maximum.accumulate(np.concatenate(([self._max_seq], useq)))
            behind = useq < running[:-1]
            self._seq_u, self._max_seq = int(useq[-1]), int(running[-1])
        self._last_seq = int(seq[-1])
        # values in channel order, flags
        n_ch = len(self._ch_names)
        vals = np.empty((n_ch, n * s))
        flags = np.zeros((n_ch, n * s), dtype=np.uint8)
        masks = batch.leadoff
        data_values(
            batch.codes, batch.aux, batch.aux_div, self._exg, self._aux, self._lsb,
            self._aux_lsb, masks, _LIMITS, _FLAG_BITS, vals, flags,
        )  # fmt: skip
        self._spp = s
        self._battery = int(batch.battery[-1])
        self._stim = int(batch.stim[-1])
        self._received_end = max(self._received_end, int(starts.max()) + s)
        self._pend.append(
            {
                "start": starts,
                "len": np.full(n, s, dtype=np.int64),
                "behind": behind,
                "mask": masks,
                "vals": vals,
                "flags": flags,
            }
        )

    def _take_pending(self):
        """Empty the pending packets: (start, len, behind, mask, vals, flags) of them all."""
        if len(self._pend) == 1:
            p = self._pend[0]
            out = p["start"], p["len"], p["behind"], p["mask"], p["vals"], p["flags"]
        else:
            out = tuple(
                np.concatenate([p[k] for p in self._pend], axis=-1)
                for k in ("start", "len", "behind", "mask", "vals", "flags")
            )
        self._pend = []
        return out

    def _new_in_order(self, start, behind, base):
        """Return the undelivered packets in start order; count duplicates and late ones."""
        old = start < base  # already delivered: duplicates, or late if their slot became a gap
        if old.any():
            for a in start[old].tolist():
                if any(g0 <= a < g1 for g0, g1 in self._recent_gaps):
                    self.counters["late"] += 1
                else:
                    self.counters["duplicates"] += 1
        order = np.flatnonzero(~old)
        if order.size > 1 and (np.diff(start[order]) <= 0).any():
            order = order[np.argsort(start[order], kind="stable")]
            s_sorted = start[order]
            dup = np.concatenate(([False], s_sorted[1:] == s_sorted[:-1]))
            self.counters["duplicates"] += int(dup.sum())
            order = order[~dup]
        self.counters["reordered"] += int(behind[order].sum())
        behind[order] = False
        return order

    def _hold_back(self, rest, start, lens, behind, mask, vals, flags, off) -> None:
        """Keep the packets ``rest`` (after an unconfirmed hole) pending for the next call."""
        self._pend.append(
            {
                "start": start[rest],
                "len": lens[rest],
                "behind": behind[rest],
                "mask": mask[rest],
                "vals": np.concatenate(
                    [vals[:, off[i] : off[i] + lens[i]] for i in rest.tolist()], axis=1
                ),
                "flags": np.concatenate(
                    [flags[:, off[i] : off[i] + lens[i]] for i in rest.tolist()], axis=1
                ),
            }
        )

    def _emit(self, force: bool = False) -> None:
        if not self._pend:
            return
        start, lens, behind, mask, vals, flags = self._take_pending()
        base = self._next
        n = start.shape[0]
        if (
            start[0] == base
            and (n == 1 or (start[1:] - start[:-1] == lens[:-1]).all())
            and not behind.any()
        ):  # the usual case: in order, contiguous, nothing missing or repeated
            self._next = int(start[-1] + lens[-1])
            self._last_values = vals[:, -1].copy()
            self._push(vals, flags)
            if mask.any() or self._last_mask:
                self._lead_off_changes(start, mask)
            return
        off = np.concatenate(([0], np.cumsum(lens)[:-1]))
        order = self._new_in_order(start, behind, base)
        st, ln = start[order], lens[order]
        n = order.size
        if n == 0:
            return
        prev_end = np.concatenate(([base], st[:-1] + ln[:-1]))
        overlap = st < prev_end
        if overlap.any():  # inconsistent packets (a layout change mid-flight): drop them
            self.counters["duplicates"] += int(overlap.sum())
            order, st, ln = order[~overlap], st[~overlap], ln[~overlap]
            n = order.size
            prev_end = np.concatenate(([base], st[:-1] + ln[:-1]))
        holes = np.flatnonzero(st > prev_end)
        n_emit = n
        if not force:
            unconfirmed = holes[n - holes < self.reorder_window]
            if unconfirmed.size:
                n_emit = int(unconfirmed[0])
        if n_emit < n:
            self._hold_back(order[n_emit:], start, lens, behind, mask, vals, flags, off)
        if n_emit == 0:
            return
        sel = order[:n_emit]
        st, ln = st[:n_emit], ln[:n_emit]
        self._place(base, st, ln, off[sel], vals, flags)
        self._lead_off_changes(st, mask[sel])

    def _place(self, base, st, ln, off, vals, flags) -> None:
        stop = int(st[-1] + ln[-1])
        total = stop - base
        contiguous = st[0] == base and (st[1:] == st[:-1] + ln[:-1]).all()
        in_order = (off[1:] == off[:-1] + ln[:-1]).all() if off.size > 1 else True
        if contiguous and in_order:
            a = int(off[0])
            out = vals[:, a : a + total]
            fl = flags[:, a : a + total]
        else:
            rel = np.repeat(st - base - np.concatenate(([0], np.cumsum(ln)[:-1])), ln)
            cols = np.repeat(off - np.concatenate(([0], np.cumsum(ln)[:-1])), ln)
            k = np.arange(int(ln.sum()))
            tgt, src = rel + k, cols + k
            out = np.empty((vals.shape[0], total))
            fl = np.zeros((vals.shape[0], total), dtype=np.uint8)
            out[:, tgt] = vals[:, src]
            fl[:, tgt] = flags[:, src]
            filled = np.zeros(total, dtype=bool)
            filled[tgt] = True
            idx = np.where(filled, np.arange(total), -1)
            np.maximum.accumulate(idx, out=idx)
            gap = ~filled
            last = self._last_values
            if last is None:
                last = out[:, tgt[0]]
            held = np.where(idx >= 0, idx, 0)
            fill = out[:, held]
            fill[:, idx < 0] = last[:, None]
            out[:, gap] = fill[:, gap]
            fl[:, gap] = FLAG_GAP
            self._note_gaps(base, gap)
        self._last_values = out[:, -1].copy()
        self._next = stop
        self._push(out, fl)

    def _note_gaps(self, base: int, gap: np.ndarray) -> None:
        edges = np.flatnonzero(np.diff(np.concatenate(([0], gap.view(np.int8), [0]))))
        for a, b in edges.reshape(-1, 2).tolist():
            self._gap(base + a, base + b)

    def _gap(self, a: int, b: int) -> None:
        n = b - a
        self.counters["lost_samples"] += n
        self.counters["lost"] += -(-n // max(self._spp, 1))
        self._recent_gaps.append((a, b))
        self._ready_ann.append(Annotation(a / self._sfreq, n / self._sfreq, "Gap"))

    def _push(self, data: np.ndarray, flags: np.ndarray) -> None:
        self._ready.append((data, flags))
        self._n_ready += data.shape[1]

    def _lead_off_changes(self, st: np.ndarray, masks: np.ndarray) -> None:
        prev = np.concatenate(([self._last_mask], masks[:-1]))
        new_on = masks & ~prev
        for i in np.flatnonzero(new_on).tolist():
            bits = int(new_on[i])
            for c in range(len(self._exg)):
                if bits >> c & 1:
                    name = self._ch_names[int(self._exg[c])]
                    self._ready_ann.append(
                        Annotation(int(st[i]) / self._sfreq, 0.0, f"Lead off: {name}")
                    )
        self._last_mask = int(masks[-1])

    def _finish(self, total: int) -> None:
        self._end_total = int(total)
        if self._next < total:
            n_ch = len(self._ch_names)
            last = self._last_values if self._last_values is not None else np.zeros(n_ch)
            n = total - self._next
            self._gap(self._next, total)
            self._push(
                np.repeat(last[:, None], n, axis=1), np.full((n_ch, n), FLAG_GAP, dtype=np.uint8)
            )
            self._next = total
        self._finished = True

    def _take(self, n: int | None) -> Chunk:
        n_ch = len(self._ch_names)
        if not self._ready:
            data = np.zeros((n_ch, 0))
            flags = np.zeros((n_ch, 0), dtype=np.uint8)
        elif len(self._ready) == 1:
            data, flags = self._ready[0]
        else:
            data = np.concatenate([d for d, _ in self._ready], axis=1)
            flags = np.concatenate([f for _, f in self._ready], axis=1)
        self._ready = []
        if n is not None and data.shape[1] > n:
            self._ready = [(data[:, n:], flags[:, n:])]
            data, flags = data[:, :n], flags[:, :n]
        self._n_ready -= data.shape[1]
        first = self._delivered
        self._delivered += data.shape[1]
        stop_t = self._delivered / self._sfreq
        ann = [a for a in self._ready_ann if a.onset < stop_t or self._finished]
        self._ready_ann = [a for a in self._ready_ann if not (a.onset < stop_t or self._finished)]
        return Chunk(
            np.ascontiguousarray(data),
            first,
            self._sfreq,
            self._ch_names,
            self._ch_types,
            np.ascontiguousarray(flags),
            tuple(ann),
        )
