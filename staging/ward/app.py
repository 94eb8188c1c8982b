"""The ward: one technician, many beds (``dreamnet ward``).

:class:`Ward` spreads the beds over worker processes (:mod:`.worker`) and advances them in
rounds of session time (5 s headless, 1 s under the live view: a block of the monitor), all
beds to the same time. Between rounds it merges what the beds concluded into one event stream
where every event names its bed, follows the room (:mod:`.detect`: several beds aroused at
once is a disturbance; each affected bed gets a ``Disturbance`` annotation and no nightmare cue
for it) and hands the beds the technician's keys and the simulated room's noise. Commands reach
a bed only at round boundaries fixed in session time, so a seeded ward gives the same stream
whatever the number of worker processes and the pacing (tested).

One rule, every mode: the room's decisions made at the end of a block (session time ``t``)
reach their beds at ``t + 5 s``, the start of the round after the next (headless); the room's
noise and the technician's keys reach them at the start of the next round (a veto is never
delayed). So headless at full speed the rounds are pipelined: a worker whose answer is in is
sent its next round at once, while the ward merges the round and waits for the other workers,
never more than one round ahead of them.

The room's noise (``--faults noise=K``) is a fault of the simulated ward: K loud sounds spread
over the night, each delivered at the same moment to every simulated sleeper through the
sleeper's cue-response model (an ``audio`` cue at full level): sleepers in N1, N2 or REM arouse
or wake, in N3 they have a confusion arousal, awake ones are unaffected.

The event stream is the monitor's (:mod:`staging.monitor.events`) with ``bed`` first in every
event, in rounds (within a round: the room's noise, then the beds in ward order, then the room's
decisions), and the ward's own events under ``"bed": "ward"``:

``ward_start``
    ``beds`` (names), ``seed``, ``noise`` (room noises planned).
``room_noise``
    A simulated room noise (``level``, ``truth``: it is the simulator's ground truth).
``disturbance``
    ``id``, ``status`` (``new``, or ``grown`` when a later arousal joins it), ``onset``,
    ``duration``, ``beds`` (all so far), ``added`` (the beds new to it). Each added bed's own
    stream has a ``disturbance`` event (annotation ``Disturbance``) and the policy's hold.
``bed_down``
    (under the bed's name) ``error``: its source or its worker failed; the bed stays down.
``ward_end``
    ``reason``, ``duration_s``, ``errors``, ``disturbance`` and ``room_noise`` counts.
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headset.errors import HeadsetError
from headset.stages import EPOCH_S

from ..errors import StagingError
from ..monitor.events import format_event
from . import MAX_WORKERS
from .beds import (
    BedSpec,
    check_beds,
    check_count,
    parse_bed,
    read_beds_file,
    simulated_beds,
    split_faults,
)
from .detect import MIN_BEDS, QUORUM, WINDOW_S, DisturbanceDetector
from .worker import BedConfig, BedGroup, WorkerGroup

#: Session seconds per headless round: one block of the monitor (its decisions' granularity).
ROUND_S = 5.0
#: Level (0-1) of a room noise as a cue of the sleeper's response model.
NOISE_LEVEL = 1.0
#: Seconds after a disturbance's last arousal during which its beds get no nightmare cue.
HOLD_S = 60.0
#: Files of the ward's own page in ``--report DIR``.
WARD_PAGE = "ward.html"


@dataclass
class WardOptions:
    """Options of ``dreamnet ward`` (see its ``--help``)."""

    n_beds: int | None = None
    bed: list[str] = field(default_factory=list)
    beds_file: str | None = None
    seed: int = 0
    speed: float | None = 60.0
    duration_s: float | None = None
    faults: str | None = None
    record: str | None = None
    events: str | None = None
    report: str | None = None
    grace_s: float = 10.0
    tui: bool = True
    workers: int | None = None
    force: bool = False
    min_beds: int = MIN_BEDS
    window_s: float = WINDOW_S
    quorum: float = QUORUM
    lsl_events: bool = False


def ward_beds(opts: WardOptions) -> list[BedSpec]:
    """Return the ward's beds from ``--beds``, ``--bed`` and ``--beds-file`` (in that order)."""
    beds: list[BedSpec] = []
    if opts.n_beds is not None:
        beds += simulated_beds(check_count(opts.n_beds), opts.seed)
    for i, text in enumerate(opts.bed):
        beds.append(parse_bed(text, opts.seed, len(beds) + i))
    if opts.beds_file is not None:
        beds += read_beds_file(opts.beds_file, opts.seed)
    if not beds:
        raise StagingError("no beds: give --beds N, --bed NAME=SOURCE or --beds-file FILE")
    return check_beds(beds)


def noise_times(n: int, duration_s: float, seed: int) -> list[float]:
    """Return the session times (s) of ``n`` room noises in a night of ``duration_s``.

    The night after the first 40 % of an hour (or of a short night: sleepers fall asleep
    first) is cut into ``n`` equal slots; each noise falls in the middle half of its slot, on
    a round boundary (:data:`ROUND_S`), drawn from ``seed``.
    """
    if n <= 0:
        return []
    start = min(3600.0, duration_s) * 0.4
    slot = (duration_s - start) / n
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7015E]))
    out = []
    for k in range(n):
        t = start + slot * (k + 0.25 + 0.5 * rng.random())
        out.append(float(np.floor(t / ROUND_S) * ROUND_S))
    return out


@dataclass
class _Round:
    """A round of the ward: session time ``[t0, t1)``, what it carries, what came back."""

    t0: float
    t1: float
    commands: dict[str, list[tuple]]
    noises: list[float]  # session times of the room noises in it
    pending: set  # the groups that have not answered it yet
    results: dict = field(default_factory=dict)  # bed name -> its answer
    snapshot: dict | None = None  # of the bed opened in the full view

    def file(self, answer: dict) -> None:
        """Keep a group's answer (:meth:`~staging.ward.worker.BedGroup.advance`)."""
        snapshot = answer.pop(None, None)
        if snapshot is not None:  # only the focused bed's group sends one
            self.snapshot = snapshot
        self.results.update(answer)


def _bed_line(name: str, line: str) -> str:
    """Put the bed's name first in one of its event lines."""
    return '{"bed": ' + json.dumps(name) + ", " + line[1:]


class Ward:
    """The beds of a ward, advanced together; the room's events; one merged event stream.

    Parameters
    ----------
    beds : list of BedSpec
        The beds.
    cfg : BedConfig
        What every bed shares (night length, faults, output folders, grace period).
    workers : int
        Worker processes (0: every bed in this process). Bed ``i`` goes to worker
        ``i % workers``.
    n_noise : int
        Room noises in the night (simulated beds only).
    seed : int
        The ward's seed (the noise schedule).
    events : str or None
        The ward's event stream (JSON lines); None writes none.
    min_beds, window_s, quorum : int, float, float
        The disturbance rule (:class:`~staging.ward.detect.DisturbanceDetector`).
    lsl : object or None
        An LSL marker outlet (``push(line)``) that also receives every event.
    pipeline : bool
        Pipelined rounds (worker processes only; for a headless run at full speed): a worker
        whose answer is in gets its next round before the round is merged, so no worker waits
        for another at every round's end. The stream is the same; a technician's command
        would reach the beds a round later, hence not with a view or a pace.
    """

    def __init__(
        self,
        beds: list[BedSpec],
        cfg: BedConfig,
        *,
        workers: int = 0,
        n_noise: int = 0,
        seed: int = 0,
        events: str | None = None,
        min_beds: int = MIN_BEDS,
        window_s: float = WINDOW_S,
        quorum: float = QUORUM,
        lsl=None,
        pipeline: bool = False,
    ):
        if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers:
            raise ValueError(f"workers must be an int >= 0, got {workers!r}")
        self.specs = list(beds)
        self.names = [b.name for b in beds]
        self.cfg = cfg
        self.t = 0.0
        self.stop_request: str | None = None
        self.finished = False
        self.end_reason = ""
        self.detector = DisturbanceDetector(min_beds, window_s, quorum=quorum)
        night = cfg.duration_s if cfg.duration_s is not None else 8 * 3600.0
        self.noise = noise_times(n_noise, night, seed) if any(b.simulated for b in beds) else []
        self.rows: dict[str, dict] = {b.name: {"name": b.name, "down": None} for b in beds}
        self.log: list[tuple[float, str, str]] = []  # (t, bed, text) of the ward's own events
        self.reports: dict[str, str | None] = {}
        self.counts = {"disturbance": 0, "room_noise": 0}
        self._queued: dict[str, list[tuple]] = {}  # the technician's, for the next round
        self._due: list[tuple[float, str, tuple]] = []  # the room's: (session time, bed, cmd)
        self._flight: list[_Round] = []  # rounds started and not yet merged, in order
        self._inbox: dict = {}  # worker group -> the rounds it was sent and has not answered
        #: Let the workers run one round ahead of the merge (headless at full speed only).
        self.pipeline = pipeline
        synthetic = all(b.source == "synthetic" for b in beds)
        self._night_end = cfg.duration_s if synthetic else None
        #: The bed opened in the full monitor view (its snapshot comes with every round).
        self.focus: str | None = None
        #: Whether the beds' rows are computed every round (a view is attached).
        self.want_rows = False
        self.snapshot: dict | None = None
        self._lsl = lsl
        self._fh = open(events, "w", encoding="utf-8") if events else None  # noqa: SIM115
        self.events_path = events
        self._meta = {"beds": self.names, "seed": seed, "noise": n_noise}
        n_groups = min(workers, len(beds))
        self.groups: list = []
        try:
            if n_groups == 0:
                self.groups = [BedGroup(self.specs, cfg)]
            else:
                for w in range(n_groups):
                    self.groups.append(WorkerGroup(self.specs[w::n_groups], cfg))
        except BaseException:
            self._abort()
            raise
        self._write([self._ward_event(0.0, "ward_start", **self._meta)])

    # ------------------------------------------------------------------ output
    def _ward_event(self, t: float, type: str, **fields) -> str:
        return _bed_line("ward", format_event(t, type, **fields))

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._fh is not None:
            self._fh.write("\n".join(lines) + "\n")
            self._fh.flush()
        if self._lsl is not None:
            for line in lines:
                self._lsl.push(line)

    # ------------------------------------------------------------------ technician
    def command(self, bed: str, *cmd) -> None:
        """Queue a command for ``bed`` (``ack``, ``veto``, ``approve``, ``note`` TEXT)."""
        if bed not in self.rows:
            raise ValueError(f"no bed named {bed!r}")
        self._queued.setdefault(bed, []).append(tuple(cmd))

    @property
    def running(self) -> int:
        """Number of beds that still run (neither down nor finished)."""
        return sum(1 for r in self.rows.values() if not r.get("down") and not r.get("finished"))

    @property
    def active(self) -> bool:
        """True while a bed still runs."""
        return self.running > 0

    # ------------------------------------------------------------------ rounds
    def step(self, round_s: float = ROUND_S) -> bool:
        """Advance every bed by ``round_s`` seconds of session time; False once the ward ended.

        The room's decisions made at the end of a block (session time ``t``) reach their beds
        at ``t + ROUND_S``: headless, at the start of the round after the next. The room's
        noise and the technician's commands reach the beds at the start of the next round.
        A pipelined ward (:attr:`pipeline`) returns once the round is merged, its workers
        possibly already running the next one (see :class:`Ward`).
        """
        if self.finished:
            return False
        if self.stop_request is not None:
            self.finish(self.stop_request)
            return False
        if not self._flight:
            self._new_round(self.t, self.t + round_s)
        while True:
            self._feed(round_s)
            if not self._flight[0].pending:
                break
            self._collect()
        self._conclude(self._flight.pop(0))
        if not self.active:
            self.finish("end")
            return False
        return True

    def _feed(self, round_s: float | None) -> None:
        """Send each idle group its next round (one of ``round_s`` s starts if :meth:`_ahead`).

        ``round_s`` None starts none: only the rounds already started are sent.
        """
        for g in list(self.groups):
            if self._inbox.get(g):
                continue  # busy with a round
            rnd = next((r for r in self._flight if g in r.pending), None)
            if rnd is None:
                if round_s is None or not self._ahead():
                    continue
                t0 = self._flight[-1].t1
                rnd = self._new_round(t0, t0 + round_s)
            if isinstance(g, WorkerGroup):
                g.send_advance(rnd.t1, rnd.commands, self.focus, self.want_rows)
                self._inbox.setdefault(g, []).append(rnd)
            else:
                rnd.pending.discard(g)  # first: an interrupted advance is not run twice
                rnd.file(g.advance(rnd.t1, rnd.commands, self.focus, self.want_rows))

    def _ahead(self) -> bool:
        """Whether a round may start while one is in flight (pipelined, workers only).

        The room's decisions the new round carries are those of the round before the one in
        flight, already merged; so a worker runs at most one round ahead of another. Never
        while stopping, nor beyond the night's end (when every bed's night has a known length).
        """
        t0 = self._flight[-1].t1
        return (
            self.pipeline
            and len(self._flight) == 1
            and self.stop_request is None
            and all(isinstance(g, WorkerGroup) for g in self.groups)
            and (self._night_end is None or t0 < self._night_end - 1e-9)
        )

    def _new_round(self, t0: float, t1: float) -> _Round:
        """Start the round ``[t0, t1)`` (session seconds) and return it.

        Its commands: the room's noise first, then the room's decisions now due, then the
        technician's keys.
        """
        commands: dict[str, list[tuple]] = {}
        due = [d for d in self._due if d[0] <= t0 + 1e-9]
        self._due = [d for d in self._due if d[0] > t0 + 1e-9]
        for _, name, cmd in due:
            commands.setdefault(name, []).append(cmd)
        for name, cmds in self._queued.items():
            commands.setdefault(name, []).extend(cmds)
        self._queued = {}
        noises = [tn for tn in self.noise if t0 - 1e-9 <= tn < t1 - 1e-9]
        for _ in noises:
            for b in self.specs:
                if b.simulated:
                    commands.setdefault(b.name, []).insert(0, ("noise", NOISE_LEVEL))
        rnd = _Round(t0, t1, commands, noises, pending=set(self.groups))
        self._flight.append(rnd)
        return rnd

    def _collect(self) -> None:
        """Wait for the next answer of a worker and file it under its round."""
        from multiprocessing.connection import wait

        busy = [g for g in self.groups if self._inbox.get(g)]
        ready = [g for g in busy if g.dead] or wait(busy)
        for g in ready:
            rnd = self._inbox[g][0]
            try:
                res = g.answer()
                self._inbox[g].pop(0)
            except StagingError as exc:  # the worker died: its beds are down, not the ward
                res = self._lost(g, exc, rnd.t0)
            rnd.file(res)
            rnd.pending.discard(g)

    def _conclude(self, rnd: _Round) -> None:
        """Merge a round every group answered: events written, the room's decisions queued."""
        # the beds that ran the round: the quorum's base (counted before the round ends them:
        # in the last round of a night every bed finishes, and a quorum of the beds still
        # running after it would fall to nothing)
        running = self.running
        self.snapshot = rnd.snapshot
        self.t = rnd.t1
        lines = []
        for tn in rnd.noises:
            self.counts["room_noise"] += 1
            lines.append(self._ward_event(tn, "room_noise", level=NOISE_LEVEL, truth=True))
            self.log.append((tn, "ward", "room noise (simulated)"))
        lines += self._merge(rnd.results)
        if abs(rnd.t1 / ROUND_S - round(rnd.t1 / ROUND_S)) < 1e-9:  # the room at block ends
            lines += self._room(rnd.t1, running)
        self._write(lines)

    def _land(self) -> None:
        """Collect the rounds in flight (on the way out): merged while beds still run.

        A round some workers have not had yet is sent to them first, so each merged round is
        whole; once every bed has ended, the rounds sent beyond are dropped (they hold
        nothing, and merging them would run the room once more than in-process).
        """
        while any(self._inbox.values()):
            self._collect()
        while self._flight and self.active:
            self._feed(None)  # the rounds started go to every worker; none starts
            while self._flight[0].pending:
                self._collect()
            self._conclude(self._flight.pop(0))
        self._flight = []

    def _lost(self, group, exc: Exception, t: float) -> dict:
        """Take a dead worker out of the ward; return its beds' answers (down)."""
        self.groups.remove(group)
        self._inbox.pop(group, None)
        for rnd in self._flight:
            rnd.pending.discard(group)
        group.close()
        out = {}
        for name in group.names:
            row = {"name": name, "down": str(exc), "finished": True}
            out[name] = ([format_event(t, "bed_down", error=str(exc), log=f"DOWN: {exc}")],
                         row, [])  # fmt: skip
        return out

    def _merge(self, results: dict) -> list[str]:
        lines = []
        for name in self.names:  # ward order, whatever the worker
            if name not in results:  # its worker died earlier
                continue
            bed_lines, row, arousals = results[name][:3]
            self.rows[name] = row
            lines += [_bed_line(name, ln) for ln in bed_lines]
            for onset, duration in arousals:
                self.detector.add(name, onset, duration)
        return lines

    def _room(self, t: float, running: int) -> list[str]:
        """Decide the room's disturbances as of ``t``, ``running`` beds having run the round."""
        lines = []
        for d, new in self.detector.update(t, running):
            fresh = len(d.beds) == len(new)
            for name in new:
                cmd = ("disturbance", d.id, d.onset, d.end, len(d.beds), HOLD_S)
                self._due.append((t + ROUND_S, name, cmd))
            if fresh:
                self.counts["disturbance"] += 1
                text = f"DISTURBANCE of the room: {len(d.beds)} beds aroused within "
                text += f"{self.detector.window_s:g} s ({', '.join(sorted(d.beds))})"
                self.log.append((d.onset, "ward", text))
            lines.append(
                self._ward_event(
                    t,
                    "disturbance",
                    id=d.id,
                    status="new" if fresh else "grown",
                    onset=d.onset,
                    duration=d.duration,
                    beds=sorted(d.beds),
                    added=sorted(new),
                )
            )
        return lines

    # ------------------------------------------------------------------ end
    def finish(self, reason: str = "end") -> None:
        """End every bed (recordings closed, reports written); idempotent."""
        if self.finished:
            return
        self.finished = True
        self.end_reason = reason
        try:
            self._land()
        finally:
            self._end(reason)

    def _end(self, reason: str) -> None:
        """Finish every group's beds; write their last events and the ward's end."""
        report = self.cfg.report_dir is not None
        results: dict = {}
        errors = []
        for g in self.groups:
            if isinstance(g, WorkerGroup):
                try:
                    g.send_finish(reason, report)
                except OSError as exc:
                    errors.append(str(exc))
        for g in self.groups:
            try:
                results.update(
                    g.result() if isinstance(g, WorkerGroup) else g.finish(reason, report)
                )
            except StagingError as exc:
                errors.append(str(exc))
        lines = []
        for name in self.names:
            if name not in results:
                continue
            bed_lines, row = results[name][:2]
            self.rows[name] = row
            lines += [_bed_line(name, ln) for ln in bed_lines]
            if report:
                self.reports[name] = results[name][3]
        lines.append(
            self._ward_event(
                self.t, "ward_end", reason=reason, duration_s=self.t, errors=errors, **self.counts
            )
        )
        self._write(lines)
        self._abort()
        if report:
            self.summary_page(Path(self.cfg.report_dir) / WARD_PAGE)

    def _abort(self) -> None:
        for g in self.groups:
            try:
                g.close()
            except Exception:  # noqa: BLE001, S110 - closing on the way out
                pass
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lsl is not None:
            self._lsl.close()
            self._lsl = None

    def summary_page(self, path: Path) -> Path:
        """Write the ward's summary page: one row per bed, the room's events, links."""
        rows = []
        for name in self.names:
            r = self.rows.get(name, {})
            c = r.get("counters", {})
            rep = self.reports.get(name)
            link = (
                f'<a href="{html.escape(name)}/report.html">report</a>'
                if rep and not rep.startswith("error")
                else html.escape(rep or "no report")
            )
            cells = [
                html.escape(name),
                html.escape(str(r.get("label", r.get("source", "")))),
                f"{r.get('t', 0.0) / 3600:.2f}",
                str(int(c.get("stage", 0) * EPOCH_S / 60)),
                str(c.get("arousal", 0)),
                str(c.get("nightmare_alert", 0)),
                str(c.get("cues_sent", 0)),
                str(c.get("disturbance", 0)),
                html.escape(r.get("down") or r.get("end_reason", "")),
                link,
            ]
            rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
        room = "".join(f"<li>{t / 60:.1f} min: {html.escape(text)}</li>" for t, _, text in self.log)
        head = [
            "bed",
            "source",
            "hours",
            "scored (min)",
            "arousals",
            "nightmare alerts",
            "cues sent",
            "disturbances",
            "end",
            "morning report",
        ]
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Ward night</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style></head><body>"
            f"<h1>Ward night: {len(self.names)} beds, {self.t / 3600:.2f} h</h1>"
            f"<p>Ended: {html.escape(self.end_reason)}. Room noises (simulated): "
            f"{self.counts['room_noise']}; disturbances found: {self.counts['disturbance']} "
            f"(at least {self.detector.min_beds} beds and {self.detector.quorum:.0%} of the "
            f"ward aroused within "
            f"{self.detector.window_s:g} s).</p>"
            "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(rows) + "</table>"
            f"<h2>The room</h2><ul>{room or '<li>nothing</li>'}</ul></body></html>"
        )  # fmt: skip
        path.write_text(page, encoding="utf-8")
        return path


def _check_outputs(opts: WardOptions, beds: list[BedSpec]) -> None:
    """Fail before the night if an output exists (unless --force) or cannot be written."""
    from ..outputs import check_outputs

    outputs = [("--events", opts.events)]
    for flag, d in (("--record", opts.record), ("--report", opts.report)):
        if d is None:
            continue
        p = Path(d)
        if p.exists() and not p.is_dir():
            raise HeadsetError(f"{flag} {d}: exists and is not a directory")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HeadsetError(f"{flag} {d}: cannot create the directory ({exc})") from None
        if not os.access(p, os.W_OK):
            raise HeadsetError(f"{flag} {d}: directory is not writable")
    from ..night.report import REPORT_FILES

    for b in beds:
        if opts.record is not None:
            outputs.append(("--record", Path(opts.record) / f"{b.name}.edf"))
        if opts.report is not None:
            d = Path(opts.report) / b.name
            outputs += [("--report", d / f) for f in (*REPORT_FILES, "events.jsonl")]
            if opts.record is None:
                outputs.append(("--report", d / "recording.edf"))
    if opts.report is not None:
        outputs.append(("--report", Path(opts.report) / WARD_PAGE))
    if opts.events is not None:
        parent = Path(opts.events).resolve().parent
        if not parent.is_dir():
            raise HeadsetError(f"--events {opts.events}: directory {parent} does not exist")
    inputs = [("--bed", b.source) for b in beds if not b.source.startswith(("synth", "drill"))]
    inputs += [("--bed", b.sleeper) for b in beds if b.sleeper]
    inputs = [(flag, p) for flag, p in inputs if "://" not in p and not p.startswith("lsl:")]
    check_outputs(outputs, inputs, force=opts.force)


def default_workers(n_beds: int) -> int:
    """Worker processes for ``n_beds``: one per core, at most one per bed."""
    return max(1, min(os.cpu_count() or 1, n_beds))


def build_ward(opts: WardOptions) -> Ward:
    """Check the options and outputs, open every bed, and return the ward (not yet run)."""
    if opts.events == "-":
        raise StagingError("--events -: the ward writes its event stream to a file")
    if opts.workers is not None and not 0 <= opts.workers <= MAX_WORKERS:
        raise StagingError(f"--workers must be within 0-{MAX_WORKERS}, got {opts.workers}")
    n_noise, faults = split_faults(opts.faults)
    beds = ward_beds(opts)
    _check_outputs(opts, beds)
    cfg = BedConfig(
        duration_s=opts.duration_s if opts.duration_s is not None else 8 * 3600.0,
        faults=faults,
        record_dir=opts.record,
        report_dir=opts.report,
        grace_s=opts.grace_s,
        view=opts.tui,  # headless: no bed keeps the signal a view would draw
    )
    workers = default_workers(len(beds)) if opts.workers is None else opts.workers
    lsl = None
    if opts.lsl_events:
        from .lsl import MarkerOutlet

        lsl = MarkerOutlet("dreamnet-ward")
    return Ward(
        beds,
        cfg,
        workers=workers,
        n_noise=n_noise,
        seed=opts.seed,
        events=opts.events,
        min_beds=opts.min_beds,
        quorum=opts.quorum,
        window_s=opts.window_s,
        lsl=lsl,
        pipeline=opts.speed is None and not opts.tui,
    )


def run_headless(ward: Ward, speed: float | None) -> str:
    """Run the ward to its end without a view, paced at ``speed`` (None: as fast as possible).

    A ward built for a headless run at full speed (:func:`build_ward`) runs pipelined rounds.
    """
    from ..monitor.session import Pacer

    pacer = Pacer(speed)
    try:
        while not ward.finished:
            if speed is None or ward.t + ROUND_S <= pacer.target(ward.t, False) + 1e-9:
                ward.step(ROUND_S)
            else:
                time.sleep(min(max((ward.t + ROUND_S - pacer.budget) / speed, 0.001), 0.25))
    except KeyboardInterrupt:
        ward.finish("interrupt")
    except BaseException:
        ward.finish("error")
        raise
    return ward.end_reason


def summary_line(ward: Ward) -> str:
    """One line for the terminal: what the night gave."""
    down = [n for n, r in ward.rows.items() if r.get("down")]
    c = ward.counts
    line = (
        f"dreamnet ward: {ward.end_reason}: {len(ward.names)} beds, {ward.t / 3600:.2f} h, "
        f"{c['disturbance']} disturbance(s), {c['room_noise']} room noise(s)"
    )
    if down:
        line += "; down: " + ", ".join(f"{n} ({ward.rows[n]['down']})" for n in down)
    if ward.events_path:
        line += f"; events {ward.events_path}"
    if ward.cfg.report_dir:
        line += f"; report {Path(ward.cfg.report_dir) / WARD_PAGE}"
    return line


def run_ward(opts: WardOptions, stdout=None, stderr=None) -> int:
    """Run ``dreamnet ward``; returns the exit code (0, or 128 + signal after a stop)."""
    import sys

    from ..monitor.app import EXIT_CODES, _install_signals

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    ward = build_ward(opts)
    tui = opts.tui
    if tui and not (sys.stdin.isatty() and stdout.isatty()):
        print("dreamnet ward: not a terminal, running headless (--no-tui)", file=stderr)
        tui = False
    restore = _install_signals(ward)
    try:
        if tui:
            from .view import run_live

            reason = run_live(ward, opts.speed)
        else:
            reason = run_headless(ward, opts.speed)
    except KeyboardInterrupt:
        ward.finish("interrupt")
        reason = "interrupt"
    except BaseException:
        ward.finish("error")
        raise
    finally:
        restore()
    print(summary_line(ward), file=stderr)
    return EXIT_CODES.get(reason, 0)


__all__ = ["Ward", "WardOptions", "build_ward", "run_headless", "run_ward"]
