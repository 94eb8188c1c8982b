"""Assemble a monitored session from command-line options and run it (``dreamnet monitor``)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from headset.chunk import StreamInfo
from headset.edf.header import truncation_note
from headset.errors import HeadsetError
from headset.faults import parse_faults

from ..channels import pick_channels
from ..errors import StagingError
from ..outputs import printable
from .events import EventWriter
from .session import MonitorSession, run_headless
from .sources import open_source, parse_source

#: Length of a simulated night when ``--duration`` is not given, seconds.
DEFAULT_NIGHT_S = 8 * 3600.0


@dataclass
class MonitorOptions:
    """Options of ``dreamnet monitor`` (see its ``--help``)."""

    source: str = "synthetic"
    seed: int = 0
    profile: str = "healthy"
    speed: float | None = 60.0
    duration_s: float | None = None
    faults: str | None = None
    record: str | None = None
    events: str | None = None
    report: str | None = None
    sleeper: str | None = None
    key: str | None = None
    grace_s: float = 10.0
    tui: bool = True
    #: Replace existing output files (``--force``); an output that is an input is never allowed.
    force: bool = False
    #: Replay the complete records of a truncated ``--source`` file instead of refusing it.
    allow_truncated: bool = False
    #: Frames the headset process reads ahead (0: the headset runs in this process).
    read_ahead: int = 8


#: Why the session ended -> exit code (128 + signal number for the signals).
EXIT_CODES = {"interrupt": 130, "terminated": 143, "hangup": 129}


def _check_outputs(opts: MonitorOptions, source: Path | None) -> None:
    """Fail before the night starts if an output cannot be written (exit code 2).

    An existing output is refused unless ``opts.force``; an output that is the ``--source``
    file or the ``--sleeper`` profile (also through a link) is always refused. With
    ``--report DIR`` the report's files, and the recording and event stream it keeps there
    unless named, count as outputs.
    """
    from ..night.report import REPORT_FILES
    from ..outputs import check_outputs

    outputs = [("--record", opts.record), ("--events", opts.events)]
    if opts.report is not None:
        d = Path(opts.report)
        outputs += [("--report", d / name) for name in REPORT_FILES]
        outputs += [
            ("--report", d / name)
            for name, given in (("recording.edf", opts.record), ("events.jsonl", opts.events))
            if given is None
        ]
    for label, path in (("--record", opts.record), ("--events", opts.events)):
        if path is None or path == "-":
            continue
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise HeadsetError(f"{label} {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise HeadsetError(f"{label} {path}: directory {parent} is not writable")
        if Path(path).is_dir():
            raise HeadsetError(f"{label} {path}: is a directory")
    if opts.record is not None and not str(opts.record).lower().endswith((".edf", ".edf+")):
        raise StagingError(f"--record {opts.record}: the recording is EDF+, use a .edf file name")
    inputs = [("--source", source), ("--sleeper", opts.sleeper)]
    check_outputs(outputs, [i for i in inputs if i[1] is not None], force=opts.force)
    if opts.report is not None:
        p = Path(opts.report)
        if p.exists() and not p.is_dir():
            raise HeadsetError(f"--report {opts.report}: exists and is not a directory")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HeadsetError(
                f"--report {opts.report}: cannot create the directory ({exc.strerror or exc})"
            ) from None
        if not os.access(p, os.W_OK):
            raise HeadsetError(f"--report {opts.report}: directory is not writable")
    if opts.sleeper is not None:
        p = Path(opts.sleeper)
        if p.is_dir():
            raise HeadsetError(f"--sleeper {opts.sleeper}: is a directory, expected a JSON file")
        if not p.resolve().parent.is_dir():
            raise HeadsetError(f"--sleeper {opts.sleeper}: directory does not exist")


def _check_key(key: str) -> None:
    """Load the pairing key once, so a missing or malformed ``--key`` fails for every source."""
    from .sources import _load_key

    try:
        _load_key(key)
    except HeadsetError as exc:
        msg = str(exc)
        raise HeadsetError(msg if msg.startswith("--key") else f"--key {msg}") from None


def _with_report_outputs(opts: MonitorOptions) -> MonitorOptions:
    """Keep the recording and the event stream in the report's directory unless named.

    The morning report is built from them.
    """
    if opts.report is None:
        return opts
    report_dir = Path(opts.report)
    return dataclasses.replace(
        opts,
        record=opts.record or str(report_dir / "recording.edf"),
        events=opts.events or str(report_dir / "events.jsonl"),
    )


def _open_monitor_source(opts: MonitorOptions, kind: str, target, night: float, faults):
    """Open the monitor's source (a truncated file only when ``--allow-truncated``)."""
    if kind == "file" and opts.allow_truncated:
        from headset.replay import Replay

        from .sources import ReplaySource

        return ReplaySource(Replay(target, allow_truncated=True), f"file {target.name}")
    return open_source(
        opts.source,
        seed=opts.seed,
        profile=opts.profile,
        duration_s=night,
        faults=faults,
        key=opts.key,
        read_ahead=opts.read_ahead,
    )


def build_session(opts: MonitorOptions) -> MonitorSession:
    """Open the source and every output, and return a session ready to run.

    Parameters
    ----------
    opts : MonitorOptions
        The options.

    Returns
    -------
    MonitorSession
        The session (its ``start`` has not been called).

    Raises
    ------
    HeadsetError, StagingError
        Bad source, options or outputs (the command line turns them into exit code 2).
    """
    from .pipeline import Pipeline, finishers

    faults = parse_faults(opts.faults)
    kind, target = parse_source(opts.source)
    simulated = kind in ("synthetic", "drill")
    if not simulated and opts.faults:
        raise StagingError(
            "--faults applies to --source synthetic or drill only (a served headset takes its "
            "own --faults)"
        )
    _check_outputs(opts, target if kind == "file" else None)
    if opts.key is not None:  # a bad key is an error whatever the source
        _check_key(opts.key)
    opts = _with_report_outputs(opts)
    night = opts.duration_s if opts.duration_s is not None else DEFAULT_NIGHT_S
    source = _open_monitor_source(opts, kind, target, night, faults)
    recorder = None
    with contextlib.ExitStack() as on_error:  # on an error, close what was opened (newest first)
        on_error.callback(_close_quietly, source)
        if not pick_channels(source.ch_names, source.ch_types, "eeg"):
            raise HeadsetError(
                f"--source {opts.source}: no EEG channel, nothing to stage or watch "
                f"(channels: {', '.join(source.ch_names)})"
            )
        pipeline = Pipeline(
            StreamInfo.create(source.sfreq, source.ch_names, source.ch_types),
            send=source.send_cue if getattr(source, "can_stimulate", True) else None,
            sleeper_profile=opts.sleeper,
            grace_s=opts.grace_s,
        )
        replay = getattr(source, "replay", None)
        if replay is not None and replay.header.missing_records:
            pipeline.notes.append(truncation_note(replay.header))  # into the event stream
        if opts.record is not None:
            from headset.recorder import Recorder

            recorder = Recorder(opts.record, source.ch_names, source.ch_types, source.sfreq)
            on_error.callback(_close_quietly, recorder)
        events = EventWriter(opts.events)
        on_error.callback(_close_quietly, events)
        meta = {
            "seed": opts.seed if simulated else None,
            "profile": opts.profile if kind == "synthetic" else None,
            "faults": opts.faults or "",
            "grace_s": opts.grace_s,
            "sleeper_profile": opts.sleeper,
        }
        session = MonitorSession(
            source,
            pipeline=pipeline,
            events=events,
            recorder=recorder,
            duration_s=night if kind == "synthetic" else opts.duration_s,
            grace_s=opts.grace_s,
            meta=meta,
            on_finish=finishers(opts, pipeline),
            view=opts.tui,  # headless: no trace ring, no display filter
        )
        session.options = opts  # as completed here (report -> recording and events paths)
        on_error.pop_all()
        return session


def _summary(session: MonitorSession, opts: MonitorOptions) -> str:
    st = session.state
    c = st.counters
    parts = [
        f"{st.end_reason}: {session.t / 3600:.2f} h",
        f"{len(st.hypnogram)} epochs",
        f"{c.get('arousal', 0)} arousals",
        f"{c.get('nightmare_alert', 0)} nightmare alerts",
        f"{c.get('cues_sent', 0)} cues",
    ]
    files = []
    if opts.record:
        files.append(f"recording {printable(opts.record)}")
    if opts.events and opts.events != "-":
        files.append(f"events {printable(opts.events)}")
    report = getattr(session, "report", None)
    if report is not None:
        files.append(f"report {printable(report.html)}")
    if opts.sleeper:
        files.append(f"sleeper profile {printable(opts.sleeper)}")
    line = "dreamnet monitor: " + ", ".join(parts)
    if files:
        line += "; " + ", ".join(files)
    elif opts.events != "-":
        from .view import NOT_SAVED_HINT

        line += f"; {NOT_SAVED_HINT}: no file written, typed notes are lost"
    replay = getattr(session.source, "replay", None)
    if replay is not None and replay.header.missing_records:
        line += f"\ndreamnet monitor: {truncation_note(replay.header)}"
    for err in getattr(session, "errors", []):
        line += f"\ndreamnet monitor: warning: {err}"
    return line


def run_monitor(opts: MonitorOptions, stdout=None, stderr=None) -> int:
    """Run ``dreamnet monitor`` with the given options.

    Parameters
    ----------
    opts : MonitorOptions
        The options.
    stdout, stderr : file objects or None
        Where the summary goes (default the process's streams).

    Returns
    -------
    int
        0 when the night ended or the technician quit, 130 after Ctrl-C / SIGTERM (the files are
        finalised in every case).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    tui = opts.tui
    if tui and opts.events == "-":
        raise StagingError("--events - writes to stdout: use it with --no-tui")
    session = build_session(opts)
    if tui and not (sys.stdin.isatty() and stdout.isatty()):
        print("dreamnet monitor: not a terminal, running headless (--no-tui)", file=stderr)
        tui = False
    # a live source (TCP, LSL) is paced by the far end: process samples as they arrive
    speed = None if getattr(session.source, "live", False) else opts.speed
    with contextlib.ExitStack() as stack:
        stack.callback(_install_signals(session))  # restores the handlers, last
        on_error = stack.enter_context(contextlib.ExitStack())
        on_error.callback(session.finish, "error")
        try:
            if tui:
                from .view import run_live

                reason = run_live(session, speed)
            else:
                reason = run_headless(session, speed)
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, still closing the files
            session.finish("interrupt")
            reason = "interrupt"
        on_error.pop_all()
    summary = _summary(session, getattr(session, "options", opts))
    print(summary, file=stderr if (not tui or opts.events == "-") else stdout)
    return EXIT_CODES.get(reason, 0)


def _close_quietly(closer) -> None:
    """Close ``closer`` while an error unwinds: the first error is the one reported."""
    with contextlib.suppress(Exception):
        closer.close()


def _install_signals(session: MonitorSession):
    """Turn SIGINT, SIGTERM and SIGHUP into a stop request; return the restorer.

    The loop sees the request between two blocks and finishes the session cleanly (recording
    closed on a whole record, event stream and report written). A second Ctrl-C while the
    first is being honoured raises ``KeyboardInterrupt`` (the files are still closed).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    names = {"SIGINT": "interrupt", "SIGTERM": "terminated", "SIGHUP": "hangup"}
    reasons = {}
    for name, reason in names.items():
        sig = getattr(signal, name, None)
        if sig is not None:
            reasons[sig] = reason

    def _handler(signum, frame):
        if session.stop_request is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        session.stop_request = reasons.get(signum, "interrupt")

    saved = {sig: signal.signal(sig, _handler) for sig in reasons}

    def restore():
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    return restore
