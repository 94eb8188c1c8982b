"""The beds' side of the ward: monitored sessions advanced together, in this or a worker process.

:class:`BedGroup` holds some of the ward's beds, each a complete
:class:`~staging.monitor.session.MonitorSession` (its own source, pipeline, recording and event
stream), and advances them to a common session time when the ward asks (:meth:`BedGroup.advance`),
after applying the ward's commands to each (room noise, a disturbance, the technician's keys).
Each bed's session depends only on its own samples and on the commands, which the ward sends at
fixed session times; so the beds conclude the same whatever group or process they are in.

:class:`WorkerGroup` runs a :class:`BedGroup` in a child process that follows the ward
(:func:`headset.lifeline.follow_parent`): the child ends when the ward ends, even by ``kill -9``,
and its recordings stay readable (the recorder flushes whole records).

A bed whose source fails, while opening or later, is marked down with the reason; the others go
on.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from headset.chunk import StreamInfo
from headset.errors import HeadsetError

from ..errors import StagingError
from ..monitor.events import format_event
from .beds import BedSpec

#: Room noise reaches a simulated sleeper as this cue of its response model (a loud sound).
NOISE_KIND = "audio"
#: Wall seconds a live bed (TCP, LSL) may take per round before the ward moves on without it.
LIVE_BUDGET_S = 0.25
_SLEEP = frozenset({"N1", "N2", "N3", "R"})


@dataclass
class BedConfig:
    """What every bed of the ward shares (see ``dreamnet ward --help``)."""

    duration_s: float | None = 8 * 3600.0
    faults: object = None  # FaultConfig of every simulated bed
    record_dir: str | None = None
    report_dir: str | None = None
    grace_s: float = 10.0
    sfreq: float = 256.0
    view: bool = True  # keep what the live view draws (MonitorSession's ``view``)


class _Lines:
    """A file-like sink of the bed's event lines (and a copy into a file, for its report)."""

    def __init__(self, path: str | None):
        self.lines: list[str] = []
        self._fh = open(path, "w", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, text: str) -> None:
        if text != "\n":
            self.lines.append(text.rstrip("\n"))
        if self._fh is not None:
            self._fh.write(text)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def take(self) -> list[str]:
        out, self.lines = self.lines, []
        return out

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Bed:
    """One bed: its monitored session, and for a simulated bed the sleeper (room noise)."""

    def __init__(self, spec: BedSpec, cfg: BedConfig):
        self.spec = spec
        self.name = spec.name
        self._cfg = cfg
        self._events_path: str | None = None
        self.session = None
        self.sleeper = None
        self.down: str | None = None
        self.record_path: str | None = None
        self.report_path: str | None = None
        self._sink = _Lines(None)
        self._extra: list[str] = []
        self._prev_stage = "?"
        try:
            self._open(cfg)
        except (HeadsetError, StagingError, ValueError, TypeError, OSError) as exc:
            self._fail(exc, 0.0)

    # ------------------------------------------------------------------ opening
    def _open(self, cfg: BedConfig) -> None:
        from ..monitor.pipeline import Pipeline
        from ..monitor.session import MonitorSession

        spec = self.spec
        source = self._source(cfg)
        recorder = None
        try:
            send = source.send_cue if getattr(source, "can_stimulate", True) else None
            pipeline = Pipeline(
                StreamInfo.create(source.sfreq, source.ch_names, source.ch_types),
                send=send,
                sleeper_profile=spec.sleeper,
                grace_s=cfg.grace_s,
            )
            events_path = None
            if cfg.report_dir is not None:
                bed_dir = Path(cfg.report_dir) / spec.name
                bed_dir.mkdir(parents=True, exist_ok=True)
                events_path = str(bed_dir / "events.jsonl")
                self.record_path = str(bed_dir / "recording.edf")
            if cfg.record_dir is not None:
                self.record_path = str(Path(cfg.record_dir) / f"{spec.name}.edf")
            if self.record_path is not None:
                from headset.recorder import Recorder

                recorder = Recorder(
                    self.record_path, source.ch_names, source.ch_types, source.sfreq
                )
            from ..monitor.events import EventWriter

            self._sink = _Lines(events_path)
            self._events_path = events_path
            meta = {
                "bed": spec.name,
                "seed": spec.seed if spec.simulated else None,
                "profile": spec.profile if spec.simulated else None,
                "grace_s": cfg.grace_s,
                "sleeper_profile": spec.sleeper,
            }
            self.session = MonitorSession(
                source,
                pipeline=pipeline,
                events=EventWriter(self._sink),
                recorder=recorder,
                duration_s=cfg.duration_s if spec.source == "synthetic" else None,
                grace_s=cfg.grace_s,
                meta=meta,
                view=cfg.view,
            )
        except BaseException:
            for closer in (recorder, source):
                if closer is not None:
                    try:
                        closer.close()
                    except Exception:  # noqa: BLE001, S110 - already failing
                        pass
            raise

    def _source(self, cfg: BedConfig):
        from ..monitor.sources import HeadsetSource, _device_kw, open_source

        spec = self.spec
        if spec.source != "synthetic":
            return open_source(spec.source, seed=spec.seed, key=spec.key, faults=None)
        from headset.driver import Headset
        from headset.sleeper import Sleeper

        night = 8 * 3600.0 if cfg.duration_s is None else float(cfg.duration_s)
        self.sleeper = Sleeper(
            spec.profile,
            spec.seed,
            duration_s=night,
            sfreq=cfg.sfreq,
            faults=cfg.faults,
            keep_history=False,  # constant memory: the annotations go out in the chunks
        )
        hs = Headset.simulated(
            seed=spec.seed,
            faults=cfg.faults,
            speed="max",
            source=self.sleeper,
            device_kw=_device_kw(cfg.sfreq),
        )
        try:
            hs.connect()
            hs.start()
        except BaseException:
            hs.close()
            raise
        label = f"synthetic {spec.profile} seed {spec.seed}"
        return HeadsetSource(hs, label, simulated=True, live=False)

    # ------------------------------------------------------------------ running
    @property
    def active(self) -> bool:
        """True while the bed's session runs."""
        return self.down is None and self.session is not None and not self.session.finished

    def _fail(self, exc: BaseException, t: float) -> None:
        self.down = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.session is not None and not self.session.finished:
            try:
                self.session.finish("error")
            except Exception:  # noqa: BLE001, S110 - the bed is already down
                pass
        self._extra.append(format_event(t, "bed_down", error=self.down, log=f"DOWN: {self.down}"))

    def command(self, cmd: tuple) -> None:
        """Apply one command of the ward (see :meth:`BedGroup.advance`)."""
        if not self.active:
            return
        s = self.session
        op = cmd[0]
        try:
            if op == "noise":
                if self.sleeper is not None:
                    self.sleeper.apply_cue(NOISE_KIND, float(cmd[1]))
            elif op == "disturbance":
                _, ident, onset, end, n_beds, hold_s = cmd
                s.mark(
                    "disturbance",
                    "Disturbance",
                    onset,
                    end - onset,
                    log=f"DISTURBANCE of the room ({n_beds} beds): no nightmare cue for it",
                    disturbance=ident,
                    beds=n_beds,
                )
                s.hold_cues(max(end, s.t) + hold_s, "room disturbance")
            elif op == "ack":
                s.ack()
            elif op == "veto":
                s.veto()
            elif op == "approve":
                s.approve()
            elif op == "note":
                s.note(cmd[1])
        except (HeadsetError, StagingError, OSError) as exc:
            self._fail(exc, s.t)

    def advance(self, t_end: float, live_budget_s: float = LIVE_BUDGET_S) -> None:
        """Run the session up to session time ``t_end`` (a live source: within a wall budget)."""
        if not self.active:
            return
        s = self.session
        live = bool(getattr(s.source, "live", False))
        deadline = time.monotonic() + live_budget_s
        try:
            while s.t + 1e-9 < t_end and s.step():
                if live and time.monotonic() > deadline:
                    break
        except (HeadsetError, StagingError, OSError, ValueError) as exc:
            self._fail(exc, s.t)

    def finish(self, reason: str) -> None:
        """End the session (the recording is closed on a whole record)."""
        if self.session is not None and not self.session.finished:
            try:
                self.session.finish(reason)
            except Exception as exc:  # noqa: BLE001 - the other beds must still finish
                self._fail(exc, self.session.t)
        self._sink.close()

    def report(self) -> str | None:
        """Write the bed's morning report (when asked for); return its page or an error."""
        if self._cfg.report_dir is None or self.record_path is None or self.session is None:
            return None
        from ..night.report import build_report

        out = Path(self._cfg.report_dir) / self.name
        try:
            res = build_report(self.record_path, out, events_path=self._events_path)
        except Exception as exc:  # noqa: BLE001 - one bed's report must not stop the others
            return f"error: {exc}"
        return str(res.html)

    def take(self, full: bool = True) -> tuple[list[str], dict, list[tuple[float, float]]]:
        """Return the bed's new event lines, its row for the view, and its new arousals.

        The arousals are the detector's, and the awakenings (an epoch scored W after sleep):
        what the ward's disturbance rule counts. Without ``full`` the row says only whether
        the bed runs (headless: the view's fields are not computed).
        """
        lines = self._sink.take() + self._extra
        self._extra = []
        arousals = []
        for line in lines:
            head = line[:40]
            if '"type": "arousal"' in head:
                ev = json.loads(line)
                arousals.append((float(ev["onset"]), float(ev["duration"])))
            elif '"type": "stage"' in head:
                ev = json.loads(line)
                if ev["stage"] == "W" and self._prev_stage in _SLEEP:
                    arousals.append((float(ev["onset"]), float(ev["duration"])))
                self._prev_stage = ev["stage"]
        return lines, self.row() if full else self._brief(), arousals

    def snapshot(self) -> dict | None:
        """Return what the full monitor view needs of this bed: its state and recent trace."""
        s = self.session
        if s is None:
            return None
        s.refresh_quality()
        bank = getattr(s.pipeline, "bank", None)
        return {
            "state": s.state,
            "trace": s.trace(),
            "recording": s.recorder is not None,
            "frame_s": s.frame_s,
            "t": s.t,
            "sfreq": s.sfreq,
            "ch_types": list(s.ch_types),
            "lead_off": s.lead_off_since(),
            "settings": dict(getattr(s.source, "settings", None) or {}),
            "bank": None if bank is None else {"bands": dict(bank.bands), "mains": bank.mains},
        }

    def _brief(self) -> dict:
        s = self.session
        finished = s is None or s.finished
        return {"name": self.name, "down": self.down, "finished": finished}

    def row(self) -> dict:
        """Return the bed's row of the ward view (plain data)."""
        from headset.stages import UNSCORED, stage_name

        r = {"name": self.name, "down": self.down, "source": self.spec.source}
        s = self.session
        if s is None:
            return r
        s.refresh_quality()
        st = s.state
        worst = max(st.quality, key=lambda q: ("ok", "warn", "bad").index(q.level), default=None)
        iv = st.pending
        last = next((i for i in reversed(st.interventions) if i.status != "proposed"), None)
        rec = s.recorder
        r.update(
            label=st.source,
            t=s.t,
            finished=st.finished,
            end_reason=st.end_reason,
            stage=stage_name(st.stage) if st.stage != UNSCORED else "?",
            confidence=float(st.confidence),
            in_stage=float(st.time_in_stage),
            quality=(worst.level, f"{worst.name}: {worst.reason}") if worst else ("ok", ""),
            hr=st.heart_rate,
            risk=float(st.nightmare_risk),
            alerts=[a.text for a in st.open_alerts],
            pending=None if iv is None else (iv.kind, iv.level, iv.deadline),
            last=None if last is None else f"{last.status} {last.kind} {last.t / 60:.0f}m",
            recording=None
            if rec is None
            else ("closed" if rec.closed else f"{rec.stats['records']} s"),
            log=[f"{ln.t / 60:6.1f}m {ln.text}" for ln in list(st.log)[-3:]],
            counters={k: int(v) for k, v in st.counters.items()},
        )
        return r


class BedGroup:
    """Some beds of the ward, advanced together (in this process or a worker's)."""

    def __init__(self, specs: list[BedSpec], cfg: BedConfig):
        self.beds = [Bed(s, cfg) for s in specs]
        for b in self.beds:
            if b.session is not None:
                b.session.start()

    def advance(
        self, t_end: float, commands: dict[str, list[tuple]], focus=None, rows: bool = True
    ) -> dict:
        """Apply each bed's commands, then run every bed to session time ``t_end``.

        Parameters
        ----------
        t_end : float
            Session seconds.
        commands : dict
            Bed name -> commands, in order: ``("noise", level)``, ``("disturbance", id, onset,
            end, n_beds, hold_s)``, ``("ack",)``, ``("veto",)``, ``("approve",)``,
            ``("note", text)``.

        focus : str or None
            A bed opened in the full monitor view: its :meth:`Bed.snapshot` comes along.
        rows : bool
            Compute each bed's row for the view (False: only whether it runs).

        Returns
        -------
        dict
            Bed name -> (event lines, row, arousals as (onset, duration)); under the key
            ``None``, the snapshot of ``focus`` (or None).
        """
        for b in self.beds:
            for cmd in commands.get(b.name, ()):
                b.command(cmd)
            b.advance(t_end)
        out: dict = {b.name: b.take(rows) for b in self.beds}
        out[None] = next((b.snapshot() for b in self.beds if b.name == focus), None)
        return out

    def finish(self, reason: str, report: bool) -> dict:
        """End every session; write the reports; return what :meth:`advance` returns + reports."""
        for b in self.beds:
            b.finish(reason)
        out = {b.name: b.take() for b in self.beds}
        if report:
            for b in self.beds:
                out[b.name] = (*out[b.name], b.report())
        return out

    def close(self) -> None:
        """Finish every session (idempotent): used on the way out of an error."""
        for b in self.beds:
            b.finish("error")


def _serve(conn, specs, cfg, parent_pid: int, parent_end) -> None:
    """Child side of :class:`WorkerGroup`: build the beds, answer requests in order."""
    from headset.lifeline import follow_parent

    parent_end.close()
    follow_parent(parent_pid, own_group=True)
    group = None
    try:
        group = BedGroup(specs, cfg)
        conn.send(("ok", None))
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "advance":
                conn.send(("ok", group.advance(*msg[1:])))
            elif msg[0] == "finish":
                conn.send(("ok", group.finish(msg[1], msg[2])))
                group = None
                break
    except Exception as exc:  # noqa: BLE001 - reported to the ward
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
    finally:
        if group is not None:
            group.close()
        conn.close()


class WorkerGroup:
    """A :class:`BedGroup` in a child process (fork), driven through a pipe.

    ``advance`` is split into :meth:`send_advance` and :meth:`answer`, so the ward can start
    every worker before waiting for any, and send a worker its next round before the others
    answered (the answers come in the order of the requests).
    """

    def __init__(self, specs: list[BedSpec], cfg: BedConfig):
        import multiprocessing as mp
        import warnings

        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, specs, cfg, os.getpid(), self._conn), daemon=True
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (see sources)
            self._proc.start()
        child.close()
        self.names = [s.name for s in specs]
        self.pid = self._proc.pid
        self._closed = False
        self._dead = False
        self._pending = 1  # requests sent and not answered (the first: the beds opened)
        self._result()

    @property
    def dead(self) -> bool:
        """True once a request could not be sent (the worker is gone)."""
        return self._dead

    def fileno(self) -> int:
        """Return the pipe's descriptor (readable when an answer is in, or the worker is gone)."""
        return self._conn.fileno()

    def _result(self):
        if self._dead:
            self._proc.join(1.0)
            raise StagingError(
                f"a ward worker ended unexpectedly (exit code {self._proc.exitcode})"
            )
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(1.0)
            raise StagingError(
                f"a ward worker ended unexpectedly (exit code {self._proc.exitcode})"
            ) from None
        self._pending -= 1
        if status == "error":
            raise StagingError(f"a ward worker failed: {payload}")
        return payload

    def send_advance(self, t_end: float, commands: dict, focus=None, rows=True) -> None:
        """Ask the worker to advance its beds (answer with :meth:`result`)."""
        mine = {k: v for k, v in commands.items() if k in self.names}
        self._send(("advance", t_end, mine, focus if focus in self.names else None, rows))

    def _send(self, msg) -> None:
        self._pending += 1
        try:
            self._conn.send(msg)
        except OSError:  # the worker is gone: result() says so
            self._dead = True

    def answer(self) -> dict:
        """Return the answer to the oldest request not yet answered."""
        return self._result()

    def result(self) -> dict:
        """Return the answer to the last request (the answers to earlier ones are dropped)."""
        while self._pending > 1:
            self._result()
        return self._result()

    def send_finish(self, reason: str, report: bool) -> None:
        """Ask the worker to finish its beds (answer with :meth:`result`)."""
        self._send(("finish", reason, report))

    def close(self) -> None:
        """Wait for the worker to end (it ends after ``finish``), else end it."""
        if self._closed:
            return
        self._closed = True
        self._proc.join(10.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2.0)
        self._conn.close()
