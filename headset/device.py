"""The simulated headset device: a sleeper, the firmware, the radio link's faults, the stimulator.

A :class:`Device` holds a signal source (the :class:`headset.sleeper.Sleeper`, or any object
with the same ``read``/``apply_cue`` interface such as :class:`IndexSource`), runs the
:class:`headset.firmware.Firmware` on it and queues the bytes a transport carries to the host.
It also parses the host's commands, checks their authentication and executes them.

Sessions. Each :meth:`Device.connect` starts a session. On a network link the transport has
authenticated the host first (:class:`headset.transport.TcpServer`) and hands over the
session's command key: commands and ACKs are signed with it, and the command counter starts
afresh, so a command of an earlier session is never accepted again. In process (no handshake)
the pairing key signs and the counter runs over the device's life. In both, a counter above
``MAX_COMMAND_COUNTER`` is refused: no command can leave a session without counters after it.

Time. The device's crystal runs ``clockdrift`` ppm fast: sample ``k`` leaves the device at host
time ``t_start + k / (sfreq * (1 + ppm * 1e-6))``. Transports move the device along host time with
:meth:`Device.advance_to` (real-time pacing) or :meth:`Device.advance_block` (as fast as
possible). The sleeper only advances while the device is streaming (between START and STOP).

Packet faults (``FaultConfig``; all draws from the device seed, the same whatever the block
sizes): ``loss`` drops a DATA packet, ``corrupt`` flips 1-3 bits of it, ``duplicate`` sends it
twice, ``reorder`` sends it after the next one; ACK packets are lost or corrupted with the same
probabilities (their own random stream). ``disconnect`` drops the connection that many times in
the session (uniformly placed, 2-20 s each, a packet cut short at the moment of the drop); the
device keeps sampling during the outage and refuses connections until it ends. HELLO, END and
EVENT packets (the simulator's ground truth) are exempt from faults and queued across outages.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence

import numpy as np

from .chunk import Annotation, Chunk
from .faults import FaultConfig
from .firmware import Firmware
from .protocol import (
    CMD_AUDIO,
    CMD_CONFIGURE,
    CMD_INFO,
    CMD_START,
    CMD_STOP,
    CMD_VIBRATION,
    CMD_WAKE,
    MAX_COMMAND_COUNTER,
    PROTOCOL_VERSION,
    STATUS_BAD_ARGS,
    STATUS_BAD_COUNTER,
    STATUS_BAD_TAG,
    STATUS_NO_TAG,
    STATUS_OK,
    STATUS_REPEAT,
    STATUS_REPLAY,
    STATUS_UNKNOWN,
    STIM_BITS,
    TAG_BYTES,
    Ack,
    Command,
    StreamParser,
    command_tag,
    encode_ack,
    encode_end,
    encode_event,
    encode_hello,
    parse_configure_payload,
    parse_stim_payload,
)

_STIM_KIND = {CMD_AUDIO: "audio", CMD_VIBRATION: "vibration", CMD_WAKE: "wake"}
#: The ``device`` field of this device's HELLO: a host that reads it knows the stream is
#: simulated and carries the simulator's ground truth (EVENT packets).
SIMULATED_DEVICE = "dreamnet simulated headset"
#: Battery drain, percent per hour of streaming.
BATTERY_DRAIN_PER_HOUR = 3.0
#: Disconnect durations are drawn uniformly within these bounds (seconds).
DISCONNECT_SECONDS = (2.0, 20.0)
_U = 10  # uniforms drawn per packet


class IndexSource:
    """A deterministic stand-in for the sleeper whose first channel is the sample index.

    Channel ``"IDX"`` carries ``(index mod 2**20) * lsb_uv`` microvolts, i.e. exactly the
    sample index in ADC codes, so a test can prove end to end that no sample was lost,
    duplicated or moved (as mne-lsl's test fixtures do). Other ExG channels carry a 10 Hz
    sine plus a hash of the index (deterministic whatever the chunking); with ``acc=True`` three
    accelerometer channels (type ``misc``, milli-g) hold a posture for 8 samples at a time.

    Parameters
    ----------
    n_samples : int
        Length of the session in samples.
    sfreq : float
        Sampling rate, Hz.
    n_channels : int
        ExG channels including ``"IDX"``.
    lsb_uv : float
        Size of one ADC code (the firmware's ``lsb_uv``).
    acc : bool
        Add ``"ACC X"``, ``"ACC Y"``, ``"ACC Z"``.
    events : sequence of Annotation
        Ground-truth events to announce (each with the chunk that reaches its onset), e.g.
        ``Annotation(60.0, 30.0, "Lead off: EEG 1")``.
    overrides : sequence of (channel, start, stop, value)
        Samples ``start .. stop`` of a channel replaced by a constant microvolt value (a flat
        or railed electrode, an input beyond the ADC range).
    """

    INDEX_MODULUS = 1 << 20

    def __init__(
        self,
        n_samples: int,
        sfreq: float = 256.0,
        n_channels: int = 2,
        *,
        lsb_uv: float = 2 * 4.5 / 24 / 2**24 * 1e6,
        acc: bool = False,
        events: Sequence[Annotation] = (),
        overrides: Sequence[tuple[int, int, int, float]] = (),
    ):
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}.")
        self.n_samples = int(n_samples)
        self.sfreq = float(sfreq)
        self.lsb_uv = float(lsb_uv)
        names = ["IDX"] + [f"EEG {i}" for i in range(1, n_channels)]
        types = ["eeg"] * n_channels
        if acc:
            names += ["ACC X", "ACC Y", "ACC Z"]
            types += ["misc"] * 3
        self.ch_names = tuple(names)
        self.ch_types = tuple(types)
        self.n_exg = n_channels
        self.acc = acc
        self.position = 0
        self.events: list[Annotation] = []
        self.cues: list[tuple[int, str, float]] = []
        self._pending: list[Annotation] = []
        self._future = sorted(events, key=lambda a: a.onset)
        self.overrides = list(overrides)

    @property
    def done(self) -> bool:
        """True at the end of the session."""
        return self.position >= self.n_samples

    def signal(self, start: int, stop: int) -> np.ndarray:
        """Return samples ``start .. stop`` of every channel, shape (n_channels, stop - start)."""
        idx = np.arange(start, stop, dtype=np.int64)
        out = np.empty((len(self.ch_names), idx.size))
        out[0] = (idx % self.INDEX_MODULUS) * self.lsb_uv
        t = idx / self.sfreq
        h = ((idx * 2654435761) % 4294967296) / 4294967296.0 - 0.5
        for c in range(1, self.n_exg):
            out[c] = 20.0 * np.sin(2 * np.pi * (10.0 + c) * t) + 4.0 * h
        if self.acc:
            held = (idx // 8) * 8
            out[self.n_exg] = 50.0 * np.sin(2 * np.pi * held / self.sfreq / 60.0)
            out[self.n_exg + 1] = 10.0
            out[self.n_exg + 2] = 980.0
        for ch, a, b, value in self.overrides:
            lo, hi = max(a, start), min(b, stop)
            if hi > lo:
                out[ch, lo - start : hi - start] = value
        return out

    def read(self, n: int) -> Chunk:
        """Return the next ``n`` samples (fewer at the end) as a Chunk."""
        stop = min(self.position + max(int(n), 0), self.n_samples)
        data = self.signal(self.position, stop)
        while self._future and self._future[0].onset * self.sfreq < stop:
            self._pending.append(self._future.pop(0))
        ann, self._pending = tuple(self._pending), []
        chunk = Chunk(
            data,
            self.position,
            self.sfreq,
            self.ch_names,
            self.ch_types,
            np.zeros(data.shape, np.uint8),
            ann,
        )
        self.position = stop
        return chunk

    def apply_cue(self, kind: str, level: float) -> str:
        """Record a cue (no physiology here) and return its outcome."""
        self.cues.append((self.position, kind, float(level)))
        ann = Annotation(self.position / self.sfreq, 0.0, f"Cue: {kind} -> noted")
        self.events.append(ann)
        self._pending.append(ann)
        return "noted"


#: Names of the :attr:`Device.counters`.
_COUNTERS = (
    "packets_sent",
    "packets_lost",
    "packets_corrupted",
    "packets_duplicated",
    "packets_reordered",
    "packets_truncated",
    "packets_unsent",
    "disconnects",
    "acks_lost",
    "acks_corrupted",
    "commands_ok",
    "repeats",
    "rejected_no_tag",
    "rejected_bad_tag",
    "rejected_replay",
    "rejected_args",
    "rejected_counter",
    "rejected_corrupt",
    "commands_rejected",
    "cues",
    "sessions",
)


class Device:
    """The simulated headset: source + firmware + link faults + command handling.

    Parameters
    ----------
    source : Sleeper-like
        Object with ``ch_names``, ``ch_types``, ``sfreq``, ``n_samples``, ``read(n) -> Chunk``
        and optionally ``done`` and ``apply_cue(kind, level) -> str``.
    seed : int
        Seed of every packet-fault draw.
    faults : FaultConfig or None
        Faults; the packet ones (loss, corrupt, duplicate, reorder, disconnect, clockdrift)
        apply here, the signal ones belong to the source.
    key : bytes or None
        Pairing key (>= 16 bytes); None draws a fresh random key (see ``key``).
    samples_per_packet : int
        Samples per DATA packet.
    block_packets : int
        Packets produced per step of :meth:`advance_block`.
    firmware_kw : dict or None
        Further arguments of :class:`headset.firmware.Firmware`.

    Attributes
    ----------
    counters : dict
        ``packets_sent``, ``packets_lost``, ``packets_corrupted``, ``packets_duplicated``,
        ``packets_reordered``, ``packets_truncated``, ``packets_unsent`` (during outages),
        ``disconnects``, ``acks_lost``, ``acks_corrupted``, ``commands_ok``, ``repeats``,
        ``rejected_no_tag``, ``rejected_bad_tag``, ``rejected_replay``, ``rejected_args``,
        ``rejected_counter`` (above ``MAX_COMMAND_COUNTER``), ``rejected_corrupt`` (command
        bytes that did not parse), ``commands_rejected`` (sum), ``cues``, ``sessions``.
    """

    def __init__(
        self,
        source,
        *,
        seed: int = 0,
        faults: FaultConfig | None = None,
        key: bytes | None = None,
        samples_per_packet: int = 8,
        block_packets: int = 32,
        firmware_kw: dict | None = None,
    ):
        self.source = source
        self.faults = faults if faults is not None else FaultConfig()
        if key is None:
            key = secrets.token_bytes(32)
        if not isinstance(key, bytes | bytearray) or len(key) < 16:
            raise ValueError("the pairing key must be at least 16 bytes.")
        self.key = bytes(key)
        self.fw = Firmware(
            source.ch_names,
            source.ch_types,
            source.sfreq,
            samples_per_packet=samples_per_packet,
            **(firmware_kw or {}),
        )
        self.sfreq = float(source.sfreq)
        self.block_packets = int(block_packets)
        if self.block_packets < 1:
            raise ValueError(f"block_packets must be >= 1, got {block_packets}.")
        n_total = getattr(source, "n_samples", None)
        self.n_samples = None if n_total is None else int(n_total)
        ss = np.random.SeedSequence([int(seed), 0x5EED_DE71])
        s_packets, s_acks, s_sched = ss.spawn(3)
        self._rng = np.random.default_rng(s_packets)
        self._ack_rng = np.random.default_rng(s_acks)
        self.outages = self._schedule_outages(np.random.default_rng(s_sched))
        self.rate = self.sfreq * (1.0 + self.faults.clockdrift * 1e-6)
        self.speed = 0.0  # set by the transport; 0 = as fast as possible (reported in HELLO)

        self._init_link_state()
        self.counters = dict.fromkeys(_COUNTERS, 0)

    def _init_link_state(self) -> None:
        """Stream position, connection and command state of a device just switched on."""
        self.position = 0  # device sample counter of the next sample to frame
        self.now = 0.0  # host seconds
        self._anchor = (0.0, 0)  # (host time, sample) at the last START
        self.streaming = False
        self.connected = False
        self.ended = False
        self._end_sent = False
        self._outage_idx = 0
        self._outage_stop: int | None = None
        self._out: list[bytes] = []
        self._control: list[bytes] = []  # exempt packets waiting for a connection
        self._held: tuple[bytes, int, int] | None = None  # reordered packet
        self._stim_until = dict.fromkeys(STIM_BITS, -1)
        self._parser = StreamParser("host")
        self._command_key = self.key  # the session's (network link) or the pairing key
        self._last_counter = -1
        self._last_raw = b""
        self._delivered: list[list[int]] = []  # [start, stop) runs of intact samples

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_profile(
        cls,
        profile: str = "healthy",
        seed: int = 0,
        duration_s: float = 8 * 3600.0,
        *,
        faults: FaultConfig | None = None,
        sfreq: float = 256.0,
        montage: Sequence[str] | None = None,
        **kwargs,
    ) -> Device:
        """Build a device around a simulated sleeper (``headset.sleeper.Sleeper``).

        Parameters
        ----------
        profile : str
            Sleeper profile (``healthy``, ``nightmare-prone``, ``insomnia``, ``child``).
        seed : int
            Seed of the sleeper and of the packet faults.
        duration_s : float
            Length of the night, seconds.
        faults : FaultConfig or None
            Faults (signal faults go to the sleeper, packet faults to the device).
        sfreq : float
            Sampling rate, Hz.
        montage : sequence of str or None
            Channel names (None: the default montage).
        **kwargs
            Further arguments of :class:`Device`.
        """
        from .sleeper import Sleeper

        faults = faults if faults is not None else FaultConfig()
        sleeper = Sleeper(
            profile=profile,
            seed=seed,
            duration_s=duration_s,
            sfreq=sfreq,
            faults=faults,
            montage=montage,
        )
        return cls(sleeper, seed=seed, faults=faults, **kwargs)

    def _schedule_outages(self, rng: np.random.Generator) -> list[tuple[int, int]]:
        count = int(round(self.faults.disconnect))
        if count <= 0:
            return []
        n = self.n_samples or int(8 * 3600 * self.sfreq)
        lo, hi = DISCONNECT_SECONDS
        durations = (rng.uniform(lo, hi, count) * self.sfreq).astype(np.int64)
        starts = np.sort(rng.uniform(0.05 * n, 0.95 * n, count)).astype(np.int64)
        out: list[tuple[int, int]] = []
        for a, d in zip(starts.tolist(), durations.tolist(), strict=True):
            if out and a < out[-1][1] + int(self.sfreq):
                a = out[-1][1] + int(self.sfreq)
            out.append((a, a + d))
        return out

    # -- state ----------------------------------------------------------------------------

    @property
    def battery(self) -> int:
        """Battery percent."""
        hours = self.position / self.sfreq / 3600.0
        return int(max(0.0, 100.0 - BATTERY_DRAIN_PER_HOUR * hours))

    @property
    def stim_state(self) -> int:
        """Stimulator bits of the stimuli playing at the current sample."""
        return sum(bit for k, bit in STIM_BITS.items() if self._stim_until[k] > self.position)

    @property
    def in_outage(self) -> bool:
        """True while a simulated disconnect lasts."""
        stop = self._outage_stop
        return stop is not None and self.position < stop and not self.ended

    @property
    def end_sent(self) -> bool:
        """True once the END packet has been queued on a connection."""
        return self._end_sent

    def hello_info(self) -> dict:
        """Return the HELLO description."""
        info = self.fw.describe()
        info.update(
            protocol=PROTOCOL_VERSION,
            device=SIMULATED_DEVICE,
            firmware="1.0",
            streaming=self.streaming,
            position=self.position,
            last_counter=max(self._last_counter, 0),
            n_samples=self.n_samples,
            speed=self.speed,
        )
        return info

    def delivered_mask(self, n: int | None = None) -> np.ndarray:
        """Return the samples sent intact at least once (what a perfect receiver would get).

        Parameters
        ----------
        n : int or None
            Length of the mask (default: samples produced so far).

        Returns
        -------
        ndarray of bool, shape (n,)
            True where a packet carrying the sample left the device uncorrupted.
        """
        n = self.position if n is None else int(n)
        mask = np.zeros(n, dtype=bool)
        for start, stop in self._delivered:
            mask[max(start, 0) : min(stop, n)] = True
        return mask

    # -- connection -----------------------------------------------------------------------

    def connect(self, session_key: bytes | None = None) -> None:
        """Accept a host and start a session: queue HELLO (and END if the night is over).

        Parameters
        ----------
        session_key : bytes or None
            Command key of an authenticated session (from the transport's handshake): it signs
            commands and ACKs, and the command counter starts afresh. None: the pairing key
            signs and the counter goes on.

        Raises
        ------
        ConnectionRefusedError
            During a simulated disconnect.
        """
        if self.in_outage:
            raise ConnectionRefusedError("headset out of reach (simulated disconnect)")
        self._outage_stop = None
        self._command_key = self.key if session_key is None else bytes(session_key)
        if session_key is not None:
            self._last_counter = -1
            self._last_raw = b""
        self.counters["sessions"] += 1
        self.connected = True
        self._out = [encode_hello(self.hello_info())] + self._control
        self._control = []
        self._parser.reset()
        if self.ended and not self._end_sent:
            self._queue_end()

    def disconnect(self) -> None:
        """Forget the host (it closed the connection)."""
        self.connected = False
        self._out = []

    def take_output(self) -> bytes:
        """Return and clear the bytes queued for the host."""
        out = b"".join(self._out)
        self._out = []
        return out

    def _emit_control(self, packet: bytes) -> None:
        if self.connected:
            self._out.append(packet)
        else:
            self._control.append(packet)

    def _queue_end(self) -> None:
        if self.connected:
            if self._held is not None:
                self._send_packet(*self._held)
                self._held = None
            self._out.append(encode_end(self.position))
            self._end_sent = True

    # -- commands -------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the host: parse, authenticate and execute commands, queue ACKs."""
        before = self._parser.counters["corrupt"]
        result = self._parser.feed(data)
        self.counters["rejected_corrupt"] += self._parser.counters["corrupt"] - before
        for cmd in result.messages:
            self._ack(cmd, self._execute(cmd))

    def _reject(self, status: int, counter: str) -> int:
        self.counters[counter] += 1
        self.counters["commands_rejected"] += 1
        return status

    def _execute(self, cmd: Command) -> int:
        if cmd.tag == bytes(TAG_BYTES):
            return self._reject(STATUS_NO_TAG, "rejected_no_tag")
        if not hmac.compare_digest(cmd.tag, command_tag(self._command_key, cmd.signed_bytes())):
            return self._reject(STATUS_BAD_TAG, "rejected_bad_tag")
        if cmd.counter > MAX_COMMAND_COUNTER:
            return self._reject(STATUS_BAD_COUNTER, "rejected_counter")
        if cmd.counter <= self._last_counter:
            if cmd.raw == self._last_raw:
                self.counters["repeats"] += 1
                return STATUS_REPEAT
            return self._reject(STATUS_REPLAY, "rejected_replay")
        try:
            self._run(cmd)
        except ValueError:
            return self._reject(STATUS_BAD_ARGS, "rejected_args")
        except KeyError:
            return self._reject(STATUS_UNKNOWN, "rejected_args")
        self._last_counter = cmd.counter
        self._last_raw = cmd.raw
        self.counters["commands_ok"] += 1
        return STATUS_OK

    def _run(self, cmd: Command) -> None:
        op = cmd.opcode
        if op == CMD_START:
            if not self.streaming:
                self.streaming = True
                self._anchor = (self.now, self.position)
        elif op == CMD_STOP:
            self.streaming = False
        elif op == CMD_CONFIGURE:
            spp, leadoff = parse_configure_payload(cmd.payload)
            if spp is not None:
                self.fw.samples_per_packet = spp
            if leadoff is not None:
                self.fw.leadoff_detection = leadoff
        elif op == CMD_INFO:
            self._emit_control(encode_hello(self.hello_info()))
        elif op in _STIM_KIND:
            level, duration = parse_stim_payload(cmd.payload)
            kind = _STIM_KIND[op]
            apply_cue = getattr(self.source, "apply_cue", None)
            if apply_cue is not None:
                apply_cue(kind, level)
            self._stim_until[kind] = self.position + int(round(duration * self.sfreq))
            self.counters["cues"] += 1
        else:
            raise KeyError(op)

    def _ack(self, cmd: Command, status: int) -> None:
        ack = encode_ack(
            Ack(
                cmd.opcode,
                status,
                cmd.counter,
                self.position,
                self.counters["commands_rejected"],
                self.stim_state,
                max(self._last_counter, 0),
            ),
            self._command_key,
        )
        u = self._ack_rng.random(3)
        if u[0] < self.faults.loss:
            self.counters["acks_lost"] += 1
            return
        if u[1] < self.faults.corrupt:
            self.counters["acks_corrupted"] += 1
            b = bytearray(ack)
            bit = int(u[2] * len(b) * 8)
            b[bit // 8] ^= 1 << (bit % 8)
            ack = bytes(b)
        if self.connected:
            self._out.append(ack)

    # -- production -----------------------------------------------------------------------

    def advance_block(self) -> None:
        """Move host time on by one block of packets (as fast as possible)."""
        spp = self.fw.samples_per_packet
        if self.streaming and not self.ended:
            target = self.position - self.position % spp + self.block_packets * spp
            if self.n_samples is not None:
                target = max(min(target, self.n_samples), self.position + 1)
            t0, k0 = self._anchor
            self.advance_to(max(t0 + (target - k0) / self.rate, self.now + 1e-9))
        else:
            self.advance_to(self.now + self.block_packets * spp / self.rate)

    def advance_to(self, host_time: float) -> None:
        """Produce every packet due by ``host_time`` (host seconds) and move the clock there.

        Parameters
        ----------
        host_time : float
            Host seconds since the session start; earlier times are ignored.
        """
        if host_time <= self.now:
            return
        self.now = float(host_time)
        if not self.streaming or self.ended:
            return
        t0, k0 = self._anchor
        due = k0 + int(np.floor((self.now - t0) * self.rate + 1e-6))
        spp = self.fw.samples_per_packet
        step = self.block_packets * spp
        while not self.ended:
            n_packets = (due - self.position) // spp
            if n_packets <= 0:
                break
            self._produce(min(n_packets * spp, step))

    def _produce(self, n: int) -> None:
        if self.n_samples is not None:
            n = min(n, self.n_samples - self.position)
        chunk = self.source.read(n) if n > 0 else None
        got = 0 if chunk is None else chunk.data.shape[1]
        if chunk is not None:
            for ann in chunk.annotations:
                self.fw.note_event(ann.onset, ann.duration, ann.description)
                self._emit_control(encode_event(ann.onset, ann.duration, ann.description))
        if got:
            spp = self.fw.samples_per_packet
            full = got - got % spp
            stim, batt = self.stim_state, self.battery
            for a, b in ((0, full), (full, got)):
                if b > a:
                    rows, starts, s = self.fw.frame(
                        chunk.data[:, a:b], self.position + a, battery=batt, stim_state=stim
                    )
                    self._send_rows(rows, starts, s)
            self.position += got
        if got < n or getattr(self.source, "done", False) or self.position == self.n_samples:
            self.ended = True
            self._queue_end()

    def _send_rows(self, rows: np.ndarray, starts: np.ndarray, n_samp: int) -> None:
        f = self.faults
        n = rows.shape[0]
        ends = starts + n_samp
        outage_hit = False
        if self._outage_idx < len(self.outages):
            outage_hit = bool(ends[-1] > self.outages[self._outage_idx][0])
        packet_faults = f.loss or f.corrupt or f.duplicate or f.reorder
        if packet_faults or outage_hit:
            u = self._rng.random((n, _U))
        else:
            u = None  # no draws: nothing can go wrong
        if (
            not outage_hit
            and self.connected
            and self._held is None
            and (u is None or not self._faulty(u).any())
        ):
            self._out.append(rows.tobytes())
            self._record(int(starts[0]), int(starts[-1]) + n_samp)
            self.counters["packets_sent"] += n
            return
        if u is None:  # disconnected, or a reordered packet waits: no packet is faulty
            u = np.ones((n, _U))
        for i in range(n):
            self._one_packet(rows[i], int(starts[i]), n_samp, u[i])

    def _faulty(self, u: np.ndarray) -> np.ndarray:
        f = self.faults
        return (
            (u[:, 0] < f.loss)
            | (u[:, 1] < f.corrupt)
            | (u[:, 2] < f.duplicate)
            | (u[:, 3] < f.reorder)
        )

    def _one_packet(self, row: np.ndarray, start: int, n_samp: int, u: np.ndarray) -> None:
        f = self.faults
        if self._outage_idx < len(self.outages):
            a, b = self.outages[self._outage_idx]
            if start + n_samp > a:
                self._outage_idx += 1
                self._outage_stop = b
                if self.connected:
                    cut = 1 + int(u[9] * (row.shape[0] - 1))
                    self._out.append(row[:cut].tobytes())
                    self.counters["packets_truncated"] += 1
                    self.counters["disconnects"] += 1
                    self.connected = False
                    self._held = None
                return
        if not self.connected:
            self.counters["packets_unsent"] += 1
            return
        if u[0] < f.loss:
            self.counters["packets_lost"] += 1
            return
        intact = True
        if u[1] < f.corrupt:
            row = row.copy()
            size = row.shape[0]
            bits = {int(u[5 + j] * size * 8) for j in range(1 + int(u[4] * 3))}
            for bit in bits:  # distinct bits: the flips never cancel
                row[bit // 8] ^= np.uint8(1 << (bit % 8))
            intact = False
        packet = row.tobytes()
        copies = 2 if u[2] < f.duplicate else 1
        if u[3] < f.reorder and self._held is None:
            self._held = (packet * copies, start if intact else -1, n_samp)
            self._count(intact, copies)
            return
        self._send_packet(packet * copies, start if intact else -1, n_samp)
        self._count(intact, copies)
        if self._held is not None:
            self._send_packet(*self._held)
            self._held = None
            self.counters["packets_reordered"] += 1

    def _count(self, intact: bool, copies: int) -> None:
        self.counters["packets_sent"] += copies
        if copies == 2:
            self.counters["packets_duplicated"] += 1
        if not intact:
            self.counters["packets_corrupted"] += copies

    def _record(self, start: int, stop: int) -> None:
        runs = self._delivered
        if runs and runs[-1][1] == start:
            runs[-1][1] = stop
        else:
            runs.append([start, stop])

    def _send_packet(self, data: bytes, start: int, n_samp: int) -> None:
        self._out.append(data)
        if start >= 0:
            self._record(start, start + n_samp)
