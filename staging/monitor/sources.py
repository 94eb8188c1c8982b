"""Where a monitored session's samples come from: one small interface over every source.

A source has ``label``, ``ch_names``, ``ch_types``, ``sfreq``, ``simulated`` (ground truth in the
chunks' annotations), ``live`` (paced by the far end, not by the monitor), ``done``,
``read(n) -> Chunk | None`` (at most ``n`` samples), ``send_cue(kind, level, duration_s) ->
(ok, outcome, attempts)``, ``counters`` (packets ok/lost/corrupt, reconnects...) and ``close()``.

Specs understood by :func:`open_source`: ``synthetic`` (the embedded simulated headset),
``drill`` (a scripted 20-minute practice night on it, with a nightmare at 11 minutes),
``FILE.edf`` / ``FILE.bdf`` (a recording replayed as if live), ``tcp://HOST:PORT`` (a headset
served by ``dreamnet headset serve``), ``lsl:NAME`` (an LSL stream).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
from pathlib import Path

from headset.chunk import Chunk
from headset.errors import HeadsetError
from headset.faults import FaultConfig

from ..errors import StagingError

_TCP_RE = re.compile(r"^tcp://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)/?$")


class _Base:
    label = "source"
    simulated = False
    live = False
    done = False
    can_stimulate = True
    #: The device's front-end settings (gain, input range, resolution), where it reports them.
    settings: dict = {}

    @property
    def counters(self) -> dict[str, int]:
        """Device counters (packets, reconnects...); empty where the source has none."""
        return {}

    def _describe(self, stream, label: str) -> None:
        """Take the label, and the channels and sampling rate of ``stream``.

        Parameters
        ----------
        stream : object
            The underlying headset, replay or inlet (has ``ch_names``, ``ch_types``, ``sfreq``).
        label : str
            Text shown in the view and the event stream.
        """
        self.label = label
        self.ch_names = tuple(stream.ch_names)
        self.ch_types = tuple(stream.ch_types)
        self.sfreq = float(stream.sfreq)

    def send_cue(self, kind: str, level: float, duration_s: float) -> tuple[bool, str, int]:
        """Send a stimulus; returns (acknowledged, outcome text, attempts)."""
        return False, "no stimulator on this source (a replayed recording)", 1

    def close(self) -> None:
        """Release the source (idempotent)."""


class HeadsetSource(_Base):
    """A :class:`headset.driver.Headset` (embedded, TCP or LSL) as a monitor source.

    Parameters
    ----------
    headset : headset.driver.Headset
        A connected and started headset.
    label : str
        Text shown in the view and the event stream.
    simulated : bool
        True when the far end is the simulator (its chunks carry ground truth).
    live : bool
        True when the far end paces the stream (TCP, LSL).
    """

    def __init__(self, headset, label: str, simulated: bool, live: bool):
        self.headset = headset
        self._describe(headset, label)
        self.simulated = simulated
        self.live = live
        self._closed = False
        info = getattr(headset, "info", None) or {}
        self.settings = {k: info[k] for k in ("gain", "vref", "lsb_uv") if k in info}

    @property
    def done(self) -> bool:  # noqa: D102
        return bool(self.headset.ended)

    @property
    def counters(self) -> dict[str, int]:  # noqa: D102
        return dict(getattr(self.headset, "counters", {}) or {})

    def read(self, n: int) -> Chunk | None:
        """Return up to ``n`` samples (None at the end of the stream)."""
        # a live link is paced by the far end: wait briefly, so the view stays responsive
        c = self.headset.read(n, timeout=0.25 if self.live else 1.0)
        if c is None or c.n_samples == 0:
            return None
        return c

    def send_cue(self, kind: str, level: float, duration_s: float) -> tuple[bool, str, int]:
        """Send an authenticated stimulation command and wait for the device's answer.

        Raises
        ------
        HeadsetError
            Refused (key) or not acknowledged after the driver's retries.
        """
        ack = self.headset.send_stimulus(kind, level, duration_s)
        sample = getattr(ack, "sample", None)
        where = f" at {sample / self.sfreq:.1f} s" if sample is not None else ""
        return True, f"acknowledged by the headset{where}", 1

    def close(self) -> None:  # noqa: D102
        if not self._closed:
            self._closed = True
            self.headset.close()


class ReplaySource(_Base):
    """A recorded EDF/BDF file streamed as if live (the monitor paces it).

    Parameters
    ----------
    replay : headset.replay.Replay
        The opened file.
    label : str
        Text shown in the view and the event stream.
    """

    def __init__(self, replay, label: str):
        self.replay = replay
        self._describe(replay, label)
        self.simulated = True  # annotations of the file come along as ground truth
        self._done = False

    @property
    def done(self) -> bool:  # noqa: D102
        return self._done

    def read(self, n: int) -> Chunk | None:
        """Return up to ``n`` samples (None at the end of the file).

        The conclusions of an earlier monitored session in the file (``Scored stage``,
        ``Detected arousal``, ``Nightmare alert``, ``Intervention``, notes) are left out: this
        session draws its own, and a new recording must not mix the two.
        """
        c = self.replay.read(n)
        if c is None or c.n_samples == 0:
            self._done = True
            return None
        if c.annotations and any(_is_conclusion(a.description) for a in c.annotations):
            kept = tuple(a for a in c.annotations if not _is_conclusion(a.description))
            c = dataclasses.replace(c, annotations=kept)
        return c

    def close(self) -> None:  # noqa: D102
        close = getattr(self.replay, "close", None)
        if close is not None:
            close()


#: Annotation texts that are a monitored session's conclusions, not ground truth or device events.
CONCLUSION_PREFIXES = (
    "Scored stage",
    "Detected arousal",
    "Nightmare alert",
    "Intervention:",
    "Intervention vetoed:",
    "Note:",
    "Lights off",
    "Lights on",
)


def _is_conclusion(text: str) -> bool:
    return text.startswith(CONCLUSION_PREFIXES)


class LslSource(_Base):
    """An LSL stream (:class:`headset.transport.LslInlet`) as a monitor source (receive only).

    Parameters
    ----------
    inlet : headset.transport.LslInlet
        The resolved inlet.
    label : str
        Text shown in the view and the event stream.
    """

    live = True

    def __init__(self, inlet, label: str):
        self.inlet = inlet
        self._describe(inlet, label)
        self._done = False

    @property
    def done(self) -> bool:  # noqa: D102
        return self._done or bool(getattr(self.inlet, "done", False))

    def read(self, n: int) -> Chunk | None:
        """Return what has arrived (at most about ``n`` samples); None when the stream ended."""
        c = self.inlet.read(timeout=0.2)
        if c is None:
            self._done = True
            return None
        return c if c.n_samples else None

    def close(self) -> None:  # noqa: D102
        self.inlet.close()


def _serve(conn, factory, parent_pid: int, parent_end) -> None:
    """Child side of :class:`ProcessSource`: open the source, answer requests in order.

    The child follows its parent (:func:`headset.lifeline.follow_parent`, in a process group
    of its own: Ctrl-C, a hang-up or a SIGTERM sent to the terminal's group reach only the
    monitor, which finalises its files and then closes this process), ends cleanly on SIGTERM,
    and also ends when the pipe to the parent reaches its end (its copy of the parent's end of
    the pipe is closed first, so that the parent's death is seen as EOF).
    """
    from headset.lifeline import follow_parent

    parent_end.close()
    follow_parent(parent_pid, own_group=True)
    try:
        src = factory()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", _portable(exc)))
        conn.close()
        return
    keys = ("label", "ch_names", "ch_types", "sfreq", "simulated", "settings")
    meta = {k: getattr(src, k) for k in keys}
    meta["live"] = getattr(src, "live", False)
    conn.send(("ok", meta))
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            op = msg[0]
            if op == "close":
                break
            try:
                if op == "read":
                    c = src.read(msg[1])
                    conn.send(("ok", (c, bool(src.done), src.counters)))
                elif op == "cue":
                    conn.send(("ok", src.send_cue(*msg[1:])))
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                conn.send(("error", _portable(exc)))
    finally:
        try:
            src.close()
        finally:
            conn.close()


def _portable(exc: BaseException) -> BaseException:
    """Return an exception that can cross the pipe to the parent with its meaning.

    The project's own errors and built-in exceptions travel as they are (the parent re-raises
    them, so bad input still exits with code 2); anything else becomes a HeadsetError with
    its type and message.
    """
    if isinstance(exc, HeadsetError | StagingError) or type(exc).__module__ == "builtins":
        return exc
    return HeadsetError(f"{type(exc).__name__}: {exc}")


class ProcessSource(_Base):
    """Run a source in a child process that reads ahead: the headset works on the other core.

    The simulated sleeper, the firmware and the driver cost about as much as the whole
    pipeline; in a child process they run while the monitor processes the previous samples.
    Requests are answered in order, so what the session sees depends only on ``depth``, never
    on timing: a command reaches the device after the ``depth`` frames requested before it.

    Parameters
    ----------
    factory : callable
        Builds the source (in the child), e.g. ``lambda: _open_synthetic(...)``.
    frame_n : int
        Samples per read request.
    depth : int
        Read requests kept outstanding (frames of look-ahead).

    Raises
    ------
    HeadsetError
        Whatever opening the source raised in the child (bad key, unreachable address...).
    """

    def __init__(self, factory, frame_n: int, depth: int = 8):
        import multiprocessing as mp
        import warnings

        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        args = (child, factory, os.getpid(), self._conn)
        self._proc = ctx.Process(target=_serve, args=args, daemon=True)
        with warnings.catch_warnings():
            # Python >= 3.12 warns about fork() in any process with threads (OpenBLAS has
            # some); the child only builds the headset and computes, it takes no lock of ours
            warnings.simplefilter("ignore", DeprecationWarning)
            self._proc.start()
        child.close()
        try:
            status, payload = self._conn.recv()
        except EOFError:
            self._proc.join(1.0)
            raise HeadsetError("the headset process ended before describing the stream") from None
        if status == "error":
            self._proc.join(2.0)
            raise payload
        for k, v in payload.items():
            setattr(self, k, v)
        self.frame_n = int(frame_n)
        self.depth = max(1, int(depth))
        self._outstanding = 0
        self._ready: list = []  # answers to read requests received while waiting for a cue
        self._done = False
        self._done_requested = False  # the child said the stream ended: ask for no more
        self._counters: dict = {}
        self._closed = False

    @property
    def done(self) -> bool:  # noqa: D102
        return self._done

    @property
    def counters(self) -> dict[str, int]:  # noqa: D102
        return self._counters

    def _request_reads(self) -> None:
        while self._outstanding < self.depth and not self._done_requested:
            self._send(("read", self.frame_n))
            self._outstanding += 1

    def _send(self, msg) -> None:
        try:
            self._conn.send(msg)
        except OSError:
            self._lost()

    def _recv(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            self._lost()

    def _lost(self):
        """Raise the error of a child that ended (killed, or its source failed hard)."""
        self._proc.join(1.0)
        raise HeadsetError(
            f"the headset process ended unexpectedly (exit code {self._proc.exitcode})"
        ) from None

    def read(self, n: int) -> Chunk | None:
        """Return the next frame read ahead by the child (``n`` is only a hint)."""
        if self._done and not self._ready:
            return None
        self._request_reads()
        if self._ready:
            status, payload = self._ready.pop(0)
        else:
            status, payload = self._recv()
            self._outstanding -= 1
        if status == "error":
            raise payload
        c, done, counters = payload
        self._counters = counters
        if done or c is None:
            self._done_requested = True
        if c is None:
            self._done = True
            return None
        self._done = done and not self._outstanding and not self._ready
        return c

    def send_cue(self, kind: str, level: float, duration_s: float) -> tuple[bool, str, int]:
        """Send a stimulus through the child's command path (after the frames requested)."""
        self._send(("cue", kind, level, duration_s))
        while self._outstanding:
            self._ready.append(self._recv())
            self._outstanding -= 1
        status, payload = self._recv()
        if status == "error":
            raise payload
        return payload

    def close(self) -> None:  # noqa: D102
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.send(("close",))
        except (OSError, BrokenPipeError):
            pass
        self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1.0)
        self._conn.close()


def parse_source(spec: str) -> tuple[str, object]:
    """Classify a ``--source`` value.

    Parameters
    ----------
    spec : str
        ``synthetic``, a file path, ``tcp://HOST:PORT`` or ``lsl:NAME``.

    Returns
    -------
    kind : str
        ``synthetic``, ``file``, ``tcp`` or ``lsl``.
    target : object
        None, the :class:`~pathlib.Path`, ``(host, port)`` or the stream name.

    Raises
    ------
    StagingError
        For a malformed spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise StagingError(
            "--source must be synthetic, drill, FILE.edf, tcp://HOST:PORT or lsl:NAME"
        )
    spec = spec.strip()
    if spec == "synthetic":
        return "synthetic", None
    if spec == "drill":
        return "drill", None
    if spec.startswith("tcp:"):
        m = _TCP_RE.match(spec)
        if m is None:
            raise StagingError(f"bad TCP source {spec!r}: expected tcp://HOST:PORT")
        port = int(m.group("port"))
        if not 0 < port < 65536:
            raise StagingError(f"bad TCP source {spec!r}: port must be 1-65535")
        return "tcp", (m.group("host").strip("[]"), port)
    if spec.startswith("lsl:"):
        name = spec[4:].strip()
        if not name:
            raise StagingError(f"bad LSL source {spec!r}: expected lsl:NAME")
        return "lsl", name
    if "://" in spec:
        raise StagingError(
            f"unknown source {spec!r}: expected synthetic, drill, FILE.edf, tcp://HOST:PORT "
            "or lsl:NAME"
        )
    path = Path(spec)
    if not path.exists():
        raise HeadsetError(f"{spec}: no such file")
    if path.is_dir():
        raise HeadsetError(f"{spec}: is a directory, not a recording")
    if not os.access(path, os.R_OK):
        raise HeadsetError(f"{spec}: permission denied")
    return "file", path


def open_source(
    spec: str = "synthetic",
    *,
    seed: int = 0,
    profile: str = "healthy",
    duration_s: float | None = 8 * 3600.0,
    faults: FaultConfig | None = None,
    key: str | bytes | None = None,
    sfreq: float = 256.0,
    frame_s: float = 1.0,
    read_ahead: int = 0,
):
    """Open a monitor source.

    Parameters
    ----------
    spec : str
        ``synthetic`` (default), ``FILE.edf``, ``tcp://HOST:PORT`` or ``lsl:NAME``.
    seed : int
        Seed of the simulated night (synthetic only).
    profile : str
        Sleeper profile (synthetic only), e.g. ``healthy`` or ``nightmare-prone``.
    duration_s : float or None
        Length of the simulated night in seconds (synthetic only; None: 8 h).
    faults : FaultConfig or None
        Simulated faults (synthetic only: signal faults in the sleeper, packet faults in the
        embedded device link).
    key : str or bytes or None
        Pairing key authenticating stimulation commands (TCP, embedded headset).
    sfreq : float
        Sampling rate of the simulated headset, Hz.
    frame_s : float
        Seconds per read (with ``read_ahead``).
    read_ahead : int
        0 runs the headset (simulated, TCP) in this process; N > 0 runs it in a child
        process that keeps N frames of look-ahead (:class:`ProcessSource`), where ``fork``
        exists.

    Returns
    -------
    object
        A source (see the module docstring).

    Raises
    ------
    HeadsetError
        Missing or unreadable file, unreachable address, refused pairing key.
    StagingError
        Malformed spec.
    """
    kind, target = parse_source(spec)
    faults = faults if faults is not None else FaultConfig()
    if kind == "synthetic":
        factory = functools.partial(_open_synthetic, seed, profile, duration_s, faults, key, sfreq)
    elif kind == "drill":
        factory = functools.partial(_open_drill, seed, faults, sfreq)
    elif kind == "tcp":
        factory = functools.partial(_open_tcp, target, key)
    elif kind == "file":
        return _open_file(target)
    else:
        return _open_lsl(target)
    if read_ahead and _can_fork():
        return ProcessSource(factory, frame_n=round(sfreq * frame_s), depth=read_ahead)
    return factory()


def _can_fork() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


#: Seconds of packets the embedded device produces per step of its virtual clock. Larger steps
#: cost less per sample (the device layer's per-call overhead); the price is that a command
#: reaches the simulated sleeper up to this much after the samples the monitor has seen (the
#: sleeper itself generates its physiology in 10-s blocks).
DEVICE_STEP_S = 5.0
_SAMPLES_PER_PACKET = 8


def _device_kw(sfreq: float) -> dict:
    return {
        "samples_per_packet": _SAMPLES_PER_PACKET,
        "block_packets": max(1, round(DEVICE_STEP_S * sfreq / _SAMPLES_PER_PACKET)),
    }


@contextlib.contextmanager
def _closed_on_error(resource):
    """Close ``resource`` when the block raises (any exception, Ctrl-C too); else keep it open."""
    with contextlib.ExitStack() as on_error:
        on_error.callback(resource.close)
        yield resource
        on_error.pop_all()


def _open_synthetic(seed, profile, duration_s, faults, key, sfreq):
    """Open the embedded headset: sleeper -> firmware -> packets -> driver, in process.

    The in-process link runs in virtual time (``speed="max"``): the device produces a packet
    when the driver asks for it, so what happens depends only on the samples, never on the
    wall clock; the monitor paces the session itself.
    """
    from headset.driver import Headset

    duration_s = 8 * 3600.0 if duration_s is None else float(duration_s)
    hs = Headset.simulated(
        profile, seed, duration_s, faults=faults, speed="max", device_kw=_device_kw(sfreq)
    )
    with _closed_on_error(hs):
        hs.connect()
        hs.start()
    label = f"synthetic {profile} seed {seed}"
    return HeadsetSource(hs, label, simulated=True, live=False)


#: The practice night of ``--source drill``: (stage, minutes) in order, and the nightmare.
DRILL_PLAN: tuple[tuple[str, float], ...] = (
    ("W", 2.0),
    ("N1", 1.0),
    ("N2", 5.0),
    ("R", 9.0),
    ("N2", 3.0),
)
#: Onset and duration (s) of the drill's nightmare: after 3 minutes of calm REM.
DRILL_NIGHTMARE_S: tuple[float, float] = (11.0 * 60.0, 180.0)


def drill_hypnogram() -> list[str]:
    """Return the drill night's hypnogram, one stage per 30-s epoch (20 minutes)."""
    out: list[str] = []
    for stage, minutes in DRILL_PLAN:
        out += [stage] * int(round(minutes * 2))
    return out


def _open_drill(seed, faults, sfreq):
    """Open the practice night: 20 min on the embedded headset, a nightmare at 11 min.

    The night is scripted (wake, N1, N2, then REM with three calm minutes before a nightmare
    that builds up over three minutes) so a technician can practise acknowledging, vetoing
    and approving; the signals, the detection and the sleeper's response are the real ones.
    """
    from headset.driver import Headset
    from headset.sleeper import Sleeper

    hyp = drill_hypnogram()
    sleeper = Sleeper(
        profile="nightmare-prone",
        seed=seed,
        duration_s=len(hyp) * 30.0,
        sfreq=sfreq,
        faults=faults,
        hypnogram=hyp,
        nightmares=[DRILL_NIGHTMARE_S],
    )
    hs = Headset.simulated(
        seed=seed, faults=faults, speed="max", source=sleeper, device_kw=_device_kw(sfreq)
    )
    with _closed_on_error(hs):
        hs.connect()
        hs.start()
    return HeadsetSource(hs, f"drill seed {seed}", simulated=True, live=False)


def _open_file(path: Path):
    from headset.replay import Replay

    replay = Replay(path)
    return ReplaySource(replay, f"file {path.name}")


def _load_key(key) -> bytes | None:
    """Return a pairing key given as hex text or as a file (``headset.protocol.save_key``)."""
    if key is None:
        return None
    if isinstance(key, bytes | bytearray):
        return bytes(key)
    text = str(key).strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        from headset.protocol import load_key

        return load_key(text)
    if len(raw) < 16:
        raise HeadsetError("--key: the pairing key must be at least 16 bytes (32 hex digits)")
    return raw


def _open_tcp(addr, key):
    """Open a headset served over TCP: an authenticated session, then a signed command.

    The source is ``simulated`` (ground truth in the stream) only when the device's HELLO
    names the simulated headset.
    """
    from headset.device import SIMULATED_DEVICE
    from headset.driver import Headset

    host, port = addr
    url = f"tcp://{host}:{port}"
    hs = Headset.tcp(url, key=_load_key(key), max_reconnects=5)
    with _closed_on_error(hs):
        try:
            hs.connect(timeout=5.0)
        except HeadsetError as exc:
            hint = " (check --key)" if "pairing key" in str(exc) else ""
            raise HeadsetError(f"{url}: {exc}{hint}") from None
        try:
            hs.start()
            hs.configure()  # an authenticated no-op: a wrong or missing key is refused here
        except HeadsetError as exc:
            raise HeadsetError(f"{url}: {exc} (check --key)") from None
    simulated = hs.info.get("device") == SIMULATED_DEVICE
    return HeadsetSource(hs, url, simulated=simulated, live=True)


def _quiet_liblsl() -> None:
    """Keep liblsl's start-up log off stderr (errors stay one line); a user's LSLAPICFG wins.

    The setting goes to liblsl in memory (``pylsl.set_config_content``): no file is written
    and the environment is left alone. It counts only before liblsl's first call.
    """
    if "LSLAPICFG" in os.environ:
        return
    try:
        import pylsl
    except (ImportError, RuntimeError):  # no pylsl or no liblsl: LslInlet says so
        return
    set_content = getattr(pylsl, "set_config_content", None)
    try:
        if set_content is not None:
            set_content("[log]\nlevel = -2\n")
    except NotImplementedError:  # liblsl < 1.17.7: its log stays on
        return


def _open_lsl(name):
    _quiet_liblsl()
    from headset.transport import LslInlet

    try:
        inlet = LslInlet(name)
    except ImportError:
        raise HeadsetError(f"lsl:{name}: pylsl is not installed (pip install pylsl)") from None
    return LslSource(inlet, f"lsl:{name}")
