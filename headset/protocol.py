"""The headset's wire protocol: packet and command byte layouts, CRC, authentication, parser.

This module is the one place where the byte layout is written down; the firmware
(:mod:`headset.firmware`), the simulated device (:mod:`headset.device`) and the driver
(:mod:`headset.driver`) all encode and decode through it.

Framing (both directions)
-------------------------
Every packet is ``sync | type | length | body | crc``::

    offset  size  field
    0       2     sync marker: A5 5A from the device, C3 3C from the host
    2       1     type (see below)
    3       2     body length L in bytes, uint16 little-endian
    5       L     body
    5+L     4     CRC-32 (IEEE, as zlib.crc32) of bytes 2 .. 5+L (type, length, body), LE

The two directions use different sync markers, so a stream fed the wrong way never parses.
Integers are little-endian except the ADC samples, which are big-endian (MSB first) as the
ADS1299 shifts them out.

Device -> host types
--------------------
``DATA`` (0x01): one packet of ``S`` consecutive samples::

    body offset  size        field
    0            2           sequence number, uint16, +1 per DATA packet, wraps 65535 -> 0
    2            4           device sample counter of the packet's first sample, uint32
    6            4           lead-off status, bit i = ExG channel i off (uint32)
    10           1           battery, percent
    11           1           stimulator state: bit0 audio, bit1 vibration, bit2 wake (playing)
    12           1           C, number of ExG channels (0..32)
    13           1           A, number of auxiliary (accelerometer) channels
    14           1           S, samples in this packet (1..255)
    15           1           D, samples per auxiliary value (the accelerometer's decimation)
    16           2*A*K       auxiliary values, int16 LE, channel-major, K = ceil(S / D)
    16+2AK       3*C*S       ExG samples, signed 24-bit big-endian, sample-major
                             (all C channels of sample 0, then sample 1, ...)

``ACK`` (0x02, 43 bytes): opcode (u8), status (u8, ``STATUS_*``), command counter (u64), device
sample counter when executed (u32), commands rejected so far (u32), stimulator state (u8), counter
of the last command the device accepted (u64; lets a host whose counter fell behind catch up),
tag (16 bytes). The device signs its answers as the host signs its commands (below, with type
0x02), so that nobody on the link can tell the host that a cue was delivered when it was not:
a host with the pairing key trusts no unsigned "accepted".

``END`` (0x03, 9 bytes): total samples of the session (u64), reason (u8, 0 = end of night).

``HELLO`` (0x04, variable, <= ``MAX_VARIABLE_BODY``): UTF-8 JSON describing the stream (sampling
rate, channel names and types, which channels travel as ExG and which as auxiliary, LSB size,
samples per packet, last accepted command counter, ...). Sent on every connection.

``EVENT`` (0x05, variable): simulator ground truth, never sent by real hardware: onset (f64, s),
duration (f64, s), UTF-8 description.

Host -> device commands
-----------------------
Body: ``counter (u64) | payload | tag (16 bytes)``. The counter is the anti-replay nonce: the
device accepts a command only if its counter is larger than that of every command it accepted
before in the session, and at most ``MAX_COMMAND_COUNTER`` (2**63, so that a session can never
run out of counters: a larger one is refused with ``STATUS_BAD_COUNTER`` and changes nothing).
The tag is the first 16 bytes of HMAC-SHA256(command key, type | length | counter | payload); a
tag of zeros means "no key". The command key is the session's (below) on a network link, the
pairing key itself in process. Payloads:

=================  ======  =================================================================
command            type    payload
=================  ======  =================================================================
START              0x10    none
STOP               0x11    none
CONFIGURE          0x12    samples per packet (u8, 0 = unchanged), lead-off detection (u8:
                           0 off, 1 on, 255 unchanged)
INFO               0x13    none (the device answers with a HELLO as well as the ACK)
AUDIO              0x20    level (u16, per mille 0..1000), duration (u32, ms)
VIBRATION          0x21    level, duration as AUDIO
WAKE               0x22    level, duration as AUDIO
=================  ======  =================================================================

Every command is answered by an ``ACK`` whose status says whether it was executed
(``STATUS_OK``), a repetition of the command last executed (``STATUS_REPEAT``: same bytes; not
executed again, so a host may retry safely), or refused (no tag, bad tag, replayed counter,
bad arguments, unknown command, counter out of range). Commands with a bad CRC are not answered.

Sessions on a network link
--------------------------
Over TCP (``dreamnet headset serve``, :class:`headset.transport.TcpServer` and
``TcpTransport``) no byte of the stream flows before both ends have proved that they hold the
pairing key, and everything after that is encrypted and authenticated with keys of this session
only. The handshake (fixed sizes, no framing)::

    device -> host  CHALLENGE  "DNC1" | device nonce (16)                           20 bytes
    host -> device  AUTH       "DNA1" | host nonce (16) | host proof (32)           52 bytes
    device -> host  WELCOME    "DNW1" | status (u8: 0 ok, 1 refused) | device proof (32)

A proof is HMAC-SHA256(pairing key, label | device nonce | host nonce) with the label
``b"dreamnet host"`` or ``b"dreamnet device"`` (one side's proof is never the other's), compared
in constant time. Nonces are 16 random bytes from the operating system, fresh on both sides for
every connection. The device answers a wrong proof with status 1 (and a zero proof) and closes;
the host gives up on a device whose proof is wrong. The session keys are HKDF-SHA256(pairing
key, salt = device nonce | host nonce, info ``b"dreamnet session 1"``), 96 bytes: the device ->
host key, the host -> device key, and the session's command key (commands and ACKs are signed
with it, and its counters start afresh: a command recorded in one session is refused in any
other).

After WELCOME each direction is a series of sealed frames::

    offset  size  field
    0       4     L, uint32 LE, 16 < L <= MAX_SEALED_FRAME
    4       L     ChaCha20-Poly1305 ciphertext of the protocol bytes, then its 16-byte tag

The AEAD nonce is 4 zero bytes and the frame's number (u64 LE), counted from 0 in each
direction; the associated data is the length field. A frame that does not authenticate (altered,
replayed, reordered, cut) ends the connection. Inside, the packets are those above, unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass, field

import numpy as np

from dsp.validate import check_option

from ._crc import (
    CRC_TABLE,
    HEADER_BYTES,
    KIND_DATA,
    KIND_FIXED,
    KIND_VARIABLE,
    TRAILER_BYTES,
    crc32_rows,
    data_body_length,
    decode_data,
    encode_data_rows,
    scan,
)

PROTOCOL_VERSION = 1

DEVICE_SYNC = b"\xa5\x5a"
HOST_SYNC = b"\xc3\x3c"

# device -> host
TYPE_DATA = 0x01
TYPE_ACK = 0x02
TYPE_END = 0x03
TYPE_HELLO = 0x04
TYPE_EVENT = 0x05

# host -> device
CMD_START = 0x10
CMD_STOP = 0x11
CMD_CONFIGURE = 0x12
CMD_INFO = 0x13
CMD_AUDIO = 0x20
CMD_VIBRATION = 0x21
CMD_WAKE = 0x22

#: Command names by type byte.
COMMAND_NAMES = {
    CMD_START: "start",
    CMD_STOP: "stop",
    CMD_CONFIGURE: "configure",
    CMD_INFO: "info",
    CMD_AUDIO: "audio",
    CMD_VIBRATION: "vibration",
    CMD_WAKE: "wake",
}
#: Stimulator command type by kind (the kinds of ``Sleeper.apply_cue``).
STIM_COMMANDS = {"audio": CMD_AUDIO, "vibration": CMD_VIBRATION, "wake": CMD_WAKE}
#: Bit of each stimulus in the stimulator-state byte.
STIM_BITS = {"audio": 1, "vibration": 2, "wake": 4}

STATUS_OK = 0
STATUS_REPEAT = 1
STATUS_NO_TAG = 2
STATUS_BAD_TAG = 3
STATUS_REPLAY = 4
STATUS_BAD_ARGS = 5
STATUS_UNKNOWN = 6
STATUS_BAD_COUNTER = 7
#: Status names by code.
STATUS_NAMES = {
    STATUS_OK: "ok",
    STATUS_REPEAT: "repeat",
    STATUS_NO_TAG: "no tag",
    STATUS_BAD_TAG: "bad tag",
    STATUS_REPLAY: "replayed counter",
    STATUS_BAD_ARGS: "bad arguments",
    STATUS_UNKNOWN: "unknown command",
    STATUS_BAD_COUNTER: "counter out of range",
}

TAG_BYTES = 16
COUNTER_BYTES = 8
#: Largest command counter a device accepts (half the 64-bit range: a session never runs out).
MAX_COMMAND_COUNTER = 1 << 63
MAX_VARIABLE_BODY = 2048
MAX_EXG_CHANNELS = 32
SEQ_MODULUS = 1 << 16
COUNTER_MODULUS = 1 << 32
#: Full-scale ADC codes (signed 24-bit).
CODE_MIN = -(1 << 23)
CODE_MAX = (1 << 23) - 1
AUX_MIN = -32767
AUX_MAX = 32767

_ACK = struct.Struct("<BBQIIBQ")
_END = struct.Struct("<QB")
_EVENT_HEAD = struct.Struct("<dd")
_STIM = struct.Struct("<HI")
_CONFIGURE = struct.Struct("<BB")
_PAYLOAD_LEN = {
    CMD_START: 0,
    CMD_STOP: 0,
    CMD_INFO: 0,
    CMD_CONFIGURE: _CONFIGURE.size,
    CMD_AUDIO: _STIM.size,
    CMD_VIBRATION: _STIM.size,
    CMD_WAKE: _STIM.size,
}


def _frame(sync: bytes, ptype: int, body: bytes) -> bytes:
    head = bytes((ptype,)) + struct.pack("<H", len(body))
    crc = _crc_bytes(head + body)
    return sync + head + body + struct.pack("<I", crc)


def _crc_bytes(data: bytes) -> int:
    arr = np.frombuffer(data, dtype=np.uint8).reshape(1, -1)
    out = np.zeros(1, dtype=np.uint32)
    crc32_rows(arr, 0, arr.shape[1], CRC_TABLE, out)
    return int(out[0])


# --------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """A device's answer to a command.

    Parameters
    ----------
    opcode : int
        Type byte of the command answered.
    status : int
        ``STATUS_*`` code.
    counter : int
        Counter (nonce) of the command answered.
    sample : int
        Device sample counter when the command was handled.
    rejected : int
        Commands the device has rejected so far.
    stim_state : int
        Stimulator state bits after the command.
    last_counter : int
        Counter of the last command the device accepted.
    tag : bytes
        16-byte authentication tag (zeros: unsigned).
    """

    opcode: int
    status: int
    counter: int
    sample: int
    rejected: int
    stim_state: int
    last_counter: int = 0
    tag: bytes = bytes(TAG_BYTES)

    def signed_bytes(self) -> bytes:
        """Bytes covered by the tag: type, length and the fields (as encoded)."""
        body = _ACK.pack(
            self.opcode,
            self.status,
            self.counter,
            self.sample % COUNTER_MODULUS,
            min(self.rejected, 0xFFFFFFFF),
            self.stim_state,
            self.last_counter,
        )
        return bytes((TYPE_ACK,)) + struct.pack("<H", _ACK.size + TAG_BYTES) + body

    def authentic(self, key: bytes) -> bool:
        """Return True if the tag is the one the device holding ``key`` gives these fields."""
        return hmac.compare_digest(self.tag, command_tag(key, self.signed_bytes()))

    @property
    def accepted(self) -> bool:
        """True if the command was executed now or before (``ok`` or ``repeat``)."""
        return self.status in (STATUS_OK, STATUS_REPEAT)

    @property
    def status_name(self) -> str:
        """Readable status."""
        return STATUS_NAMES.get(self.status, f"status {self.status}")


@dataclass(frozen=True)
class Hello:
    """Stream description sent by the device on every connection (the JSON fields)."""

    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class End:
    """End of the session: ``total`` samples were produced."""

    total: int
    reason: int = 0


@dataclass(frozen=True)
class Event:
    """A ground-truth event of the simulator (onset and duration in seconds)."""

    onset: float
    duration: float
    description: str


@dataclass(frozen=True)
class Command:
    """A decoded host command, as the device sees it.

    Parameters
    ----------
    opcode : int
        Command type byte.
    counter : int
        Anti-replay counter.
    payload : bytes
        Arguments.
    tag : bytes
        16-byte authentication tag (zeros: none).
    raw : bytes
        The whole packet, for detecting a retried (identical) command.
    """

    opcode: int
    counter: int
    payload: bytes
    tag: bytes
    raw: bytes

    @property
    def name(self) -> str:
        """Command name (``"start"``, ``"audio"``, ...)."""
        return COMMAND_NAMES.get(self.opcode, f"0x{self.opcode:02x}")

    def signed_bytes(self) -> bytes:
        """Bytes covered by the tag: type, length, counter and payload."""
        return self.raw[2 : HEADER_BYTES + COUNTER_BYTES + len(self.payload)]


def encode_ack(ack: Ack, key: bytes | None = None) -> bytes:
    """Encode an ACK packet (device -> host), signed with the pairing key.

    Parameters
    ----------
    ack : Ack
        The answer (its ``tag`` is ignored: the packet gets the tag of ``key``).
    key : bytes or None
        Pairing key; None writes an all-zero tag (unsigned).

    Returns
    -------
    bytes
        The packet.
    """
    signed = ack.signed_bytes()
    return _frame(DEVICE_SYNC, TYPE_ACK, signed[3:] + command_tag(key, signed))


def encode_end(total: int, reason: int = 0) -> bytes:
    """Encode an END packet: ``total`` samples were produced in the session."""
    return _frame(DEVICE_SYNC, TYPE_END, _END.pack(total, reason))


def encode_hello(info: dict) -> bytes:
    """Encode a HELLO packet from a JSON-serialisable dict.

    Raises
    ------
    ValueError
        If the JSON text is longer than ``MAX_VARIABLE_BODY`` bytes.
    """
    body = json.dumps(info, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_VARIABLE_BODY:
        raise ValueError(f"HELLO of {len(body)} bytes exceeds {MAX_VARIABLE_BODY} bytes.")
    return _frame(DEVICE_SYNC, TYPE_HELLO, body)


def encode_event(onset: float, duration: float, description: str) -> bytes:
    """Encode an EVENT packet (simulator ground truth); long texts are cut to fit."""
    text = description.encode()[: MAX_VARIABLE_BODY - _EVENT_HEAD.size]
    text = text.decode(errors="ignore").encode()
    return _frame(DEVICE_SYNC, TYPE_EVENT, _EVENT_HEAD.pack(onset, duration) + text)


def command_tag(key: bytes | None, signed: bytes) -> bytes:
    """Compute the tag of a command or an ACK: HMAC-SHA256 cut to 16 bytes (zeros: no key).

    Parameters
    ----------
    key : bytes or None
        Pairing key shared by host and device.
    signed : bytes
        The bytes covered: type, length and body without the tag (a command: counter and
        payload; an ACK: its fields).

    Returns
    -------
    bytes
        16 bytes.
    """
    if key is None:
        return bytes(TAG_BYTES)
    return hmac.new(key, signed, hashlib.sha256).digest()[:TAG_BYTES]


def encode_command(opcode: int, counter: int, payload: bytes = b"", key: bytes | None = None):
    """Encode and sign a host -> device command.

    Parameters
    ----------
    opcode : int
        ``CMD_*`` type byte.
    counter : int
        Anti-replay counter, 0 <= counter < 2**64, larger than any accepted before in the
        session (the device refuses any above ``MAX_COMMAND_COUNTER``).
    payload : bytes
        Arguments (see the module docstring).
    key : bytes or None
        Pairing key; None sends an all-zero tag (the device will refuse the command).

    Returns
    -------
    bytes
        The packet.
    """
    if not 0 <= counter < 1 << 64:
        raise ValueError(f"command counter must fit in 64 bits, got {counter}.")
    head = bytes((opcode,)) + struct.pack("<H", COUNTER_BYTES + len(payload) + TAG_BYTES)
    signed = head + struct.pack("<Q", counter) + payload
    body = signed[3:] + command_tag(key, signed)
    crc = _crc_bytes(head + body)
    return HOST_SYNC + head + body + struct.pack("<I", crc)


def stim_payload(level: float, duration_s: float) -> bytes:
    """Payload of a stimulator command.

    Parameters
    ----------
    level : float
        Intensity, 0 to 1 (sent in per mille).
    duration_s : float
        Duration in seconds, > 0 and <= 600 (sent in milliseconds).
    """
    if not 0.0 <= float(level) <= 1.0:
        raise ValueError(f"stimulus level must be within 0 and 1, got {level!r}.")
    if not 0.0 < float(duration_s) <= 600.0:
        raise ValueError(f"stimulus duration must be in (0, 600] seconds, got {duration_s!r}.")
    return _STIM.pack(int(round(level * 1000)), int(round(duration_s * 1000)))


def parse_stim_payload(payload: bytes) -> tuple[float, float]:
    """Return ``(level 0..1, duration in s)`` of a stimulator payload (ValueError if invalid)."""
    permille, ms = _STIM.unpack(payload)
    if permille > 1000 or ms == 0 or ms > 600_000:
        raise ValueError("stimulus level or duration out of range")
    return permille / 1000.0, ms / 1000.0


def configure_payload(samples_per_packet: int | None = None, leadoff: bool | None = None):
    """Payload of CONFIGURE (None leaves a setting unchanged)."""
    s = 0 if samples_per_packet is None else int(samples_per_packet)
    if not 0 <= s <= 255:
        raise ValueError(f"samples_per_packet must be within 1 and 255, got {s}.")
    lo = 255 if leadoff is None else int(bool(leadoff))
    return _CONFIGURE.pack(s, lo)


def parse_configure_payload(payload: bytes) -> tuple[int | None, bool | None]:
    """Decode a CONFIGURE payload into ``(samples_per_packet, leadoff)`` (None: unchanged)."""
    s, lo = _CONFIGURE.unpack(payload)
    if lo not in (0, 1, 255):
        raise ValueError("lead-off setting must be 0, 1 or 255")
    return (s or None), (None if lo == 255 else bool(lo))


# --------------------------------------------------------------------------------------------
# DATA packets, vectorised
# --------------------------------------------------------------------------------------------


def data_packet_size(n_exg: int, n_aux: int, n_samples: int, aux_div: int) -> int:
    """Size in bytes of a whole DATA packet (framing included)."""
    return HEADER_BYTES + int(data_body_length(n_exg, n_aux, n_samples, aux_div)) + TRAILER_BYTES


def encode_data(seq, counter, leadoff, battery, stim, aux, codes, aux_div: int) -> np.ndarray:
    """Encode DATA packets of one layout, vectorised.

    Parameters
    ----------
    seq, counter, leadoff, battery, stim : array_like of int, shape (n,)
        Sequence number (taken mod 2**16), first sample counter (mod 2**32), lead-off mask,
        battery percent, stimulator state of each packet.
    aux : ndarray of int, shape (n, A, K)
        Auxiliary values (clipped to int16).
    codes : ndarray of int, shape (n, C, S)
        Signed 24-bit ADC codes.
    aux_div : int
        Samples per auxiliary value (``K = ceil(S / aux_div)``).

    Returns
    -------
    ndarray of uint8, shape (n, packet_size)
        One packet per row; ``rows.tobytes()`` is the byte stream.
    """
    codes = np.asarray(codes)
    aux = np.asarray(aux)
    n, n_exg, n_samp = codes.shape
    n_aux = aux.shape[1]
    if n_exg > MAX_EXG_CHANNELS or not 1 <= n_samp <= 255 or n_aux > 255:
        raise ValueError(
            f"DATA layout out of range: {n_exg} ExG channels (<= 32), {n_samp} samples "
            f"(1..255), {n_aux} auxiliary channels (<= 255)."
        )
    if aux.shape[2] != -(-n_samp // aux_div):
        raise ValueError(f"aux must have ceil(S / aux_div) = {-(-n_samp // aux_div)} values.")
    body_len = int(data_body_length(n_exg, n_aux, n_samp, aux_div))
    size = HEADER_BYTES + body_len + TRAILER_BYTES
    rows = np.empty((n, size), dtype=np.uint8)
    hdr = np.empty((n, 5), dtype=np.int64)
    for j, values in enumerate((seq, counter, leadoff, battery, stim)):
        hdr[:, j] = np.asarray(values, dtype=np.int64).reshape(n)
    hdr[:, 0] %= SEQ_MODULUS
    hdr[:, 1] %= COUNTER_MODULUS
    encode_data_rows(
        rows, hdr, aux.astype(np.int64, copy=False),
        codes if codes.dtype == np.int32 else codes.astype(np.int64),  # the firmware's, as is
        AUX_MIN, AUX_MAX, DEVICE_SYNC[0], DEVICE_SYNC[1], TYPE_DATA, aux_div, CRC_TABLE,
    )  # fmt: skip
    return rows


@dataclass
class DataBatch:
    """Decoded DATA packets of one layout, in arrival order.

    Attributes
    ----------
    seq : ndarray of int64, shape (n,)
        Sequence numbers (0..65535).
    counter : ndarray of int64, shape (n,)
        Device sample counter of each packet's first sample (0..2**32-1).
    leadoff : ndarray of int64, shape (n,)
        Lead-off masks.
    battery, stim : ndarray of int64, shape (n,)
        Battery percent and stimulator state.
    aux : ndarray of int16, shape (n, A, K)
        Auxiliary values.
    codes : ndarray of int32, shape (n, C, S)
        ADC codes.
    aux_div : int
        Samples per auxiliary value.
    """

    seq: np.ndarray
    counter: np.ndarray
    leadoff: np.ndarray
    battery: np.ndarray
    stim: np.ndarray
    aux: np.ndarray
    codes: np.ndarray
    aux_div: int

    @property
    def n_samples(self) -> int:
        """Samples per packet (S)."""
        return self.codes.shape[2]

    def __len__(self) -> int:
        return self.codes.shape[0]


@dataclass
class ParseResult:
    """What one call of :meth:`StreamParser.feed` found.

    Attributes
    ----------
    batches : list of DataBatch
        DATA packets (device direction), one batch per run of equal layout, in stream order.
    messages : list
        Other packets in stream order: ``Ack``, ``Hello``, ``End``, ``Event`` (device
        direction) or ``Command`` (host direction). ``messages_pos[i]`` is the number of DATA
        packets that preceded ``messages[i]`` in this call.
    messages_pos : list of int
        See above.
    """

    batches: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    messages_pos: list = field(default_factory=list)

    @property
    def n_data(self) -> int:
        """Number of DATA packets."""
        return sum(len(b) for b in self.batches)


def _type_tables(direction: str):
    kinds = np.zeros(256, dtype=np.int8)
    fixed = np.zeros(256, dtype=np.int64)
    if direction == "device":
        kinds[TYPE_DATA] = KIND_DATA
        kinds[TYPE_ACK] = KIND_FIXED
        fixed[TYPE_ACK] = _ACK.size + TAG_BYTES
        kinds[TYPE_END] = KIND_FIXED
        fixed[TYPE_END] = _END.size
        kinds[TYPE_HELLO] = KIND_VARIABLE
        kinds[TYPE_EVENT] = KIND_VARIABLE
        return DEVICE_SYNC, kinds, fixed
    for op, plen in _PAYLOAD_LEN.items():
        kinds[op] = KIND_FIXED
        fixed[op] = COUNTER_BYTES + plen + TAG_BYTES
    return HOST_SYNC, kinds, fixed


class StreamParser:
    """Streaming parser of one direction of the protocol; never raises on any bytes.

    Feed it bytes as they arrive, in pieces of any size; the packets found are the same
    whatever the split. Bytes that do not form a valid packet (garbage, a corrupt or
    truncated packet) are skipped, and the parser resynchronises on the next valid packet.

    Parameters
    ----------
    direction : {"device", "host"}
        ``"device"`` parses what a device sends (DATA, ACK, ...), ``"host"`` what a host sends
        (commands).

    Attributes
    ----------
    counters : dict
        ``packets`` (valid), ``corrupt`` (packets' worth of junk: every run of junk counts as
        ``ceil(run / packet size)``, at least 1; the size is that of the nearest valid DATA
        packet, so a stream without any counts each run once), ``resyncs`` (runs of junk),
        ``junk_bytes``,
        ``crc_errors`` (plausible headers whose CRC failed), ``truncated`` (partial packets
        dropped by :meth:`reset`) and ``bytes``.
    """

    def __init__(self, direction: str = "device"):
        check_option("direction", direction, ("device", "host"))
        self.direction = direction
        sync, self._kinds, self._fixed = _type_tables(direction)
        self._s0, self._s1 = sync[0], sync[1]
        self._buf = b""
        self._junk = 0
        self._ref_size = 0
        self.counters = dict.fromkeys(
            ("packets", "corrupt", "resyncs", "junk_bytes", "crc_errors", "truncated", "bytes"),
            0,
        )

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> ParseResult:
        """Parse the next bytes of the stream.

        Parameters
        ----------
        data : bytes-like
            Bytes in stream order (any length, including 0).

        Returns
        -------
        ParseResult
            Packets completed by these bytes.
        """
        try:
            data = bytes(data)
        except (TypeError, ValueError):
            return ParseResult()
        self.counters["bytes"] += len(data)
        self._buf = self._buf + data if self._buf else data
        return self._run(final=False)

    def flush(self) -> ParseResult:
        """End of stream: parse what can be parsed and count the rest as junk."""
        result = self._run(final=True)
        self._close_junk_run()
        return result

    def reset(self) -> None:
        """Drop pending bytes (the connection was lost): a partial packet counts as truncated."""
        if self._buf:
            self.counters["truncated"] += 1
        self._buf = b""
        self._close_junk_run()

    def _close_junk_run(self) -> None:
        if self._junk:
            self._count_junk(self._junk)
            self._junk = 0

    def _count_junk(self, run: int) -> None:
        ref = self._ref_size or run
        self.counters["resyncs"] += 1
        self.counters["corrupt"] += max(1, -(-run // ref))
        self.counters["junk_bytes"] += run

    def _run(self, final: bool) -> ParseResult:
        result = ParseResult()
        buf = np.frombuffer(self._buf, dtype=np.uint8)
        end = buf.shape[0]
        pos = 0
        while True:
            cap = max(16, (end - pos) // (HEADER_BYTES + TRAILER_BYTES) + 1)
            offs = np.empty(cap, dtype=np.int64)
            lens = np.empty(cap, dtype=np.int64)
            junks = np.empty(cap, dtype=np.int64)
            n, new_pos, tail_junk, crc_err = scan(
                buf,
                pos,
                end,
                final,
                self._s0,
                self._s1,
                self._kinds,
                self._fixed,
                MAX_VARIABLE_BODY,
                CRC_TABLE,
                offs,
                lens,
                junks,
            )
            self.counters["crc_errors"] += int(crc_err)
            self._collect(buf, offs[:n], lens[:n], junks[:n], result)
            self._junk += int(tail_junk)
            pos = int(new_pos)
            if n < cap:
                break
        self._buf = self._buf[pos:]
        if final:
            self._buf = b""
        return result

    def _collect(self, buf, offs, lens, junks, result: ParseResult) -> None:
        n = offs.shape[0]
        if n == 0:
            return
        self.counters["packets"] += n
        types = buf[offs + 2]
        is_data = types == TYPE_DATA
        n_data = int(np.count_nonzero(is_data))
        # junk runs: before each packet; the first one continues the pending run
        if self._junk or junks.any():
            runs = junks.copy()
            runs[0] += self._junk
            self._junk = 0
            sizes = lens + HEADER_BYTES + TRAILER_BYTES
            for i in np.flatnonzero(runs).tolist():  # rare: only after garbage
                if self._ref_size == 0 and is_data[i:].any():
                    j = i + int(np.argmax(is_data[i:]))
                    self._ref_size = int(sizes[j])
                self._count_junk(int(runs[i]))
        if self.direction == "host":
            for o, ln in zip(offs.tolist(), lens.tolist(), strict=True):
                result.messages.append(self._command(buf, o, ln))
                result.messages_pos.append(0)
            return
        if n_data == n:  # the usual case: only DATA packets
            self._ref_size = int(lens[-1]) + HEADER_BYTES + TRAILER_BYTES
            self._decode_data(buf, offs, result)
            return
        data_idx = np.flatnonzero(is_data)
        if data_idx.size:
            self._ref_size = int(lens[data_idx[-1]]) + HEADER_BYTES + TRAILER_BYTES
            self._decode_data(buf, offs[data_idx], result)
        before = np.cumsum(is_data) - is_data
        for i in np.flatnonzero(~is_data).tolist():
            msg = self._message(buf, int(offs[i]), int(lens[i]), int(types[i]))
            if msg is not None:
                result.messages.append(msg)
                result.messages_pos.append(int(before[i]))

    def _decode_data(self, buf, offs, result: ParseResult) -> None:
        cols = offs[:, None] + (HEADER_BYTES + 12 + np.arange(4))
        layout = np.ascontiguousarray(buf[cols]).view("<u4")[:, 0].astype(np.int64)
        if layout[0] == layout[-1] and (layout == layout[0]).all():
            segments = [np.arange(offs.shape[0])]
        else:
            cuts = np.flatnonzero(layout[1:] != layout[:-1]) + 1
            segments = np.split(np.arange(offs.shape[0]), cuts)
        for seg in segments:
            lay = int(layout[seg[0]])
            n_exg, n_aux = lay & 0xFF, (lay >> 8) & 0xFF
            n_samp, aux_div = (lay >> 16) & 0xFF, lay >> 24
            k = -(-n_samp // aux_div)
            m = seg.shape[0]
            hdr = np.empty((m, 5), dtype=np.int64)
            aux = np.empty((m, n_aux, k), dtype=np.int16)
            codes = np.empty((m, n_exg, n_samp), dtype=np.int32)
            sel = offs if len(segments) == 1 else offs[seg]
            decode_data(buf, sel, n_exg, n_aux, n_samp, aux_div, hdr, aux, codes)
            result.batches.append(
                DataBatch(
                    seq=hdr[:, 0],
                    counter=hdr[:, 1],
                    leadoff=hdr[:, 2],
                    battery=hdr[:, 3],
                    stim=hdr[:, 4],
                    aux=aux,
                    codes=codes,
                    aux_div=aux_div,
                )
            )

    @staticmethod
    def _message(buf, off: int, length: int, ptype: int):
        body = buf[off + HEADER_BYTES : off + HEADER_BYTES + length].tobytes()
        try:
            if ptype == TYPE_ACK:
                return Ack(*_ACK.unpack(body[: _ACK.size]), tag=body[_ACK.size :])
            if ptype == TYPE_END:
                return End(*_END.unpack(body))
            if ptype == TYPE_HELLO:
                info = json.loads(body.decode())
                return Hello(info) if isinstance(info, dict) else None
            if ptype == TYPE_EVENT:
                onset, dur = _EVENT_HEAD.unpack(body[: _EVENT_HEAD.size])
                text = body[_EVENT_HEAD.size :].decode(errors="replace")
                return Event(onset, dur, text)
        except (ValueError, struct.error, UnicodeDecodeError, RecursionError):
            return None
        return None

    @staticmethod
    def _command(buf, off: int, length: int) -> Command:
        raw = buf[off : off + HEADER_BYTES + length + TRAILER_BYTES].tobytes()
        body = raw[HEADER_BYTES : HEADER_BYTES + length]
        (counter,) = struct.unpack("<Q", body[:COUNTER_BYTES])
        return Command(
            opcode=raw[2],
            counter=counter,
            payload=body[COUNTER_BYTES:-TAG_BYTES],
            tag=body[-TAG_BYTES:],
            raw=raw,
        )


# --------------------------------------------------------------------------------------------
# sessions on a network link
# --------------------------------------------------------------------------------------------

NONCE_BYTES = 16
PROOF_BYTES = 32
CHALLENGE_MAGIC = b"DNC1"
AUTH_MAGIC = b"DNA1"
WELCOME_MAGIC = b"DNW1"
CHALLENGE_BYTES = len(CHALLENGE_MAGIC) + NONCE_BYTES
AUTH_BYTES = len(AUTH_MAGIC) + NONCE_BYTES + PROOF_BYTES
WELCOME_BYTES = len(WELCOME_MAGIC) + 1 + PROOF_BYTES
#: Largest sealed frame (ciphertext and tag), bytes; longer data travels in several frames.
MAX_SEALED_FRAME = 1 << 20
_AEAD_TAG = 16
_LENGTH = struct.Struct("<I")
_PROOF_LABELS = {"host": b"dreamnet host", "device": b"dreamnet device"}


def new_nonce() -> bytes:
    """Draw a fresh 16-byte session nonce (from the operating system's secure source)."""
    import secrets

    return secrets.token_bytes(NONCE_BYTES)


def session_proof(key: bytes, side: str, device_nonce: bytes, host_nonce: bytes) -> bytes:
    """Return the proof that ``side`` (``"host"`` or ``"device"``) holds the pairing key.

    Parameters
    ----------
    key : bytes
        Pairing key.
    side : {"host", "device"}
        Who proves.
    device_nonce, host_nonce : bytes
        The session's nonces (16 bytes each).

    Returns
    -------
    bytes
        32 bytes: HMAC-SHA256(key, label | device nonce | host nonce).
    """
    label = _PROOF_LABELS[side]
    return hmac.new(key, label + device_nonce + host_nonce, hashlib.sha256).digest()


def encode_challenge(device_nonce: bytes) -> bytes:
    """Encode the device's CHALLENGE (the first bytes of every connection)."""
    return CHALLENGE_MAGIC + device_nonce


def parse_challenge(data: bytes) -> bytes | None:
    """Return the device nonce of a CHALLENGE (None if ``data`` is not one)."""
    if len(data) != CHALLENGE_BYTES or not data.startswith(CHALLENGE_MAGIC):
        return None
    return bytes(data[len(CHALLENGE_MAGIC) :])


def encode_auth(key: bytes, device_nonce: bytes, host_nonce: bytes) -> bytes:
    """Encode the host's AUTH: its nonce and its proof of the pairing key."""
    return AUTH_MAGIC + host_nonce + session_proof(key, "host", device_nonce, host_nonce)


def check_auth(key: bytes, device_nonce: bytes, data: bytes) -> bytes | None:
    """Return the host nonce of an AUTH whose proof is right (None: not an AUTH, wrong key)."""
    if len(data) != AUTH_BYTES or not data.startswith(AUTH_MAGIC):
        return None
    host_nonce = bytes(data[len(AUTH_MAGIC) : len(AUTH_MAGIC) + NONCE_BYTES])
    proof = bytes(data[len(AUTH_MAGIC) + NONCE_BYTES :])
    expected = session_proof(key, "host", device_nonce, host_nonce)
    return host_nonce if hmac.compare_digest(proof, expected) else None


def encode_welcome(key: bytes, device_nonce: bytes, host_nonce: bytes, ok: bool) -> bytes:
    """Encode the device's WELCOME: accepted with its own proof, or refused (zero proof)."""
    if not ok:
        return WELCOME_MAGIC + b"\x01" + bytes(PROOF_BYTES)
    return WELCOME_MAGIC + b"\x00" + session_proof(key, "device", device_nonce, host_nonce)


def check_welcome(key: bytes, device_nonce: bytes, host_nonce: bytes, data: bytes) -> str:
    """Judge the device's WELCOME: ``"ok"``, ``"refused"``, or ``"forged"`` (wrong proof)."""
    if len(data) != WELCOME_BYTES or not data.startswith(WELCOME_MAGIC):
        return "forged"
    status = data[len(WELCOME_MAGIC)]
    if status == 1:
        return "refused"
    expected = session_proof(key, "device", device_nonce, host_nonce)
    proof = bytes(data[len(WELCOME_MAGIC) + 1 :])
    return "ok" if status == 0 and hmac.compare_digest(proof, expected) else "forged"


class LinkSession:
    """One end of an authenticated, encrypted session (keys and frame numbers).

    Parameters
    ----------
    key : bytes
        Pairing key.
    device_nonce, host_nonce : bytes
        The nonces of the handshake.
    side : {"host", "device"}
        Which end this is.

    Attributes
    ----------
    command_key : bytes
        Key that signs commands and ACKs in this session.
    """

    def __init__(self, key: bytes, device_nonce: bytes, host_nonce: bytes, side: str):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        if side not in _PROOF_LABELS:
            raise ValueError(f"side must be 'host' or 'device', got {side!r}.")
        material = HKDF(
            algorithm=hashes.SHA256(),
            length=96,
            salt=device_nonce + host_nonce,
            info=b"dreamnet session 1",
        ).derive(key)
        to_host, to_device, self.command_key = material[:32], material[32:64], material[64:]
        send, recv = (to_host, to_device) if side == "device" else (to_device, to_host)
        self._seal = ChaCha20Poly1305(send)
        self._open = ChaCha20Poly1305(recv)
        self._sent = 0
        self._received = 0
        self._buf = b""

    @staticmethod
    def _nonce(number: int) -> bytes:
        return bytes(4) + struct.pack("<Q", number)

    def seal(self, data: bytes) -> bytes:
        """Return ``data`` as sealed frames (empty for empty data)."""
        out = []
        step = MAX_SEALED_FRAME - _AEAD_TAG
        for a in range(0, len(data), step):
            piece = data[a : a + step]
            head = _LENGTH.pack(len(piece) + _AEAD_TAG)
            out.append(head + self._seal.encrypt(self._nonce(self._sent), piece, head))
            self._sent += 1
        return b"".join(out)

    def open(self, data: bytes) -> bytes:
        """Take received bytes; return the plaintext of the frames they complete.

        Raises
        ------
        HeadsetError
            If a frame does not authenticate or announces an impossible length: the link
            cannot be trusted any more and must be closed.
        """
        from cryptography.exceptions import InvalidTag

        from .errors import HeadsetError

        buf = self._buf + bytes(data)
        out = []
        pos = 0
        while len(buf) - pos >= _LENGTH.size:
            (n,) = _LENGTH.unpack_from(buf, pos)
            if not _AEAD_TAG < n <= MAX_SEALED_FRAME:
                raise HeadsetError(f"sealed frame of impossible length {n}")
            if len(buf) - pos - _LENGTH.size < n:
                break
            head = buf[pos : pos + _LENGTH.size]
            body = buf[pos + _LENGTH.size : pos + _LENGTH.size + n]
            try:
                out.append(self._open.decrypt(self._nonce(self._received), body, head))
            except InvalidTag:
                raise HeadsetError("a sealed frame failed authentication") from None
            self._received += 1
            pos += _LENGTH.size + n
        self._buf = buf[pos:]
        return b"".join(out)


# --------------------------------------------------------------------------------------------
# pairing keys
# --------------------------------------------------------------------------------------------


def new_key() -> bytes:
    """Draw a fresh 32-byte pairing key (from the operating system's secure source)."""
    import secrets

    return secrets.token_bytes(32)


def save_key(path, key: bytes) -> None:
    """Write a pairing key as hex to ``path``, readable by its owner only (mode 0600)."""
    import os

    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")


def load_key(path) -> bytes:
    """Read a pairing key written by :func:`save_key`.

    Raises
    ------
    HeadsetError
        If the file cannot be read or does not hold at least 16 bytes of hex.
    """
    from .errors import HeadsetError

    try:
        with open(path) as f:
            text = f.read().strip()
        key = bytes.fromhex(text)
    except OSError as exc:
        raise HeadsetError(f"{path}: cannot read the pairing key: {exc.strerror}") from None
    except ValueError:
        raise HeadsetError(f"{path}: the pairing key must be hexadecimal") from None
    if len(key) < 16:
        raise HeadsetError(f"{path}: the pairing key must be at least 16 bytes")
    return key
