"""The technician's live view: a full-screen rich layout that only reads the session's state.

:func:`run_live` drives a :class:`~staging.monitor.session.MonitorSession` at a given speed,
draws :class:`MonitorView` at most ``MAX_FPS`` times a second (and only when something changed),
and turns key presses into the session's technician actions. Every decision stays in the session,
so a night watched here and the same night run with ``--no-tui`` produce the same events (the
view's own settings, the trace page, scale and channels and the truth panel, change nothing).

The screen, top to bottom: a header (source, clock time and session time, speed, lights); the
stage with its probabilities, heart rate and nightmare risk; the hypnogram on a clock-time axis;
the simulator's truth (a synthetic source only, key ``t``); the trace panel
(:mod:`.traces`: the filtered signals at a fixed scale in µV per division); the electrodes
(lead-off state, quality, RMS) with the filter and front-end settings in force; the alerts
with the countdown of a pending cue; the event log; EEG band powers; counters and keys.
"""

from __future__ import annotations

import datetime
import time

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.layout import Layout
from rich.panel import Panel
from rich.text import Text

from headset.recorder import DEFAULT_START
from headset.stages import EPOCH_S, N1, N2, N3, UNSCORED, R, W, stage_name

from ..closedloop.nightmare import MARKER_NAMES
from ..stager.model import LOW_CONFIDENCE
from .keys import KEY_HELP, KeyInterpreter, KeyReader
from .session import MonitorSession, Pacer, cue_text
from .traces import TracePanel, TraceSettings

#: Most renders per second (each render costs a few milliseconds of CPU).
MAX_FPS = 4.0
#: Rows of the hypnogram, top to bottom (the clinical convention: wake on top, N3 at the bottom).
HYPNO_ROWS = (W, R, N1, N2, N3)
STAGE_STYLE = {
    W: "bold yellow",
    R: "bold magenta",
    N1: "bold cyan",
    N2: "bold blue",
    N3: "bold green",
    UNSCORED: "dim",
}
LEVEL_STYLE = {"ok": "green", "warn": "yellow", "bad": "bold white on red"}
#: EEG bands of the band-power bars, Hz.
BANDS = (("δ", 0.5, 4.0), ("θ", 4.0, 8.0), ("α", 8.0, 12.0), ("σ", 12.0, 16.0), ("β", 16.0, 30.0))
#: Seconds of signal behind the band powers.
BAND_S = 8.0
#: Spacing of the hypnogram's clock ticks, minutes (the smallest that leaves room for labels).
TICK_MIN = (5, 10, 15, 30, 60, 120, 180)
#: Width of the side column (electrodes and settings), characters.
SIDE_W = 46
#: Actions that change only the view (they still work on the final screen of a night).
VIEW_ACTIONS = frozenset(
    ("quit", "zoom_in", "zoom_out", "page_longer", "page_shorter", "channels", "truth")
)


def _hms(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _dur(seconds: float) -> str:
    s = int(max(0.0, seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def start_clock(session: MonitorSession) -> datetime.datetime:
    """Clock time of the session start: the recording's, a replayed file's, else 23:00.

    The monitor's recorder dates a recording :data:`headset.recorder.DEFAULT_START` unless told
    otherwise (the same night gives the same bytes), so the view shows the clock written in
    the file.
    """
    recorder = getattr(session, "recorder", None)
    start = getattr(recorder, "start", None)
    if start is None:
        replay = getattr(session.source, "replay", None)
        start = getattr(getattr(replay, "header", None), "start", None)
    return start if start is not None else DEFAULT_START


class Hypnogram:
    """Renderable hypnogram of the scored epochs so far on a clock-time axis.

    Parameters
    ----------
    hypnogram : sequence of int
        One stage code per 30-s epoch.
    total_epochs : int or None
        Epochs of the whole planned session (sets the time axis); None fits what exists.
    start_s : float
        Clock time of the session start, seconds after midnight (ticks fall on whole hours,
        or on whole 5-30 minutes for a short session).
    """

    def __init__(self, hypnogram, total_epochs: int | None = None, start_s: float = 0.0):
        self.hyp = np.asarray(hypnogram, dtype=np.int8)
        self.total = total_epochs
        self.start_s = float(start_s)

    def axis(self, width: int, span_s: float) -> str:
        """Return the tick line under the hypnogram: ``|HH:MM`` where each tick falls."""
        line = [" "] * width
        step = next((m for m in TICK_MIN if width * m * 60 / span_s >= 7), TICK_MIN[-1]) * 60
        first = -self.start_s % step
        for t in np.arange(first, span_s, step):
            col = int(t / span_s * width)
            label = "|" + _hms((self.start_s + t) % 86400)[:5]
            if col + len(label) <= width:
                line[col : col + len(label)] = label
        return "".join(line)

    def __rich_console__(self, console, options):  # noqa: D105
        width = max(8, options.max_width - 4)
        n = len(self.hyp)
        span = max(n, self.total or 0, 1)
        # column c covers epochs [c * span / width, (c + 1) * span / width): it shows the
        # epoch at its start, so the drawing is continuous whatever the zoom
        ep = (np.arange(width) * span) // width
        filled = int(np.searchsorted(ep, n)) if n else 0
        cols = np.full(width, UNSCORED, dtype=np.int8)
        cols[:filled] = self.hyp[ep[:filled]]
        for row in HYPNO_ROWS:
            line = Text(f"{stage_name(row):>2} ", style=STAGE_STYLE[row])
            chars = np.where(cols == row, "█", np.where(np.arange(width) < filled, "·", " "))
            line.append("".join(chars), style=STAGE_STYLE[row])
            yield line
        yield Text("   " + self.axis(width, span * EPOCH_S), style="dim", no_wrap=True)


def band_powers(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Relative power of :data:`BANDS` in a short signal (periodogram, Hann window).

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Microvolts.
    sfreq : float
        Hz.

    Returns
    -------
    ndarray, shape (len(BANDS),)
        Fractions of the 0.5-30 Hz power; zeros for a signal without power.
    """
    if x.size < 16:
        return np.zeros(len(BANDS))
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1.0 / sfreq)
    p = np.array([spec[(f >= lo) & (f < hi)].sum() for _, lo, hi in BANDS])
    tot = p.sum()
    return p / tot if tot > 0 else p


#: What the header shows when the session writes no file, and how to change that.
NOT_SAVED = "NOT RECORDING"
NOT_SAVED_HINT = "not recording (start with --record, --events or --report to keep notes)"


def is_saving(session: MonitorSession) -> bool:
    """Return True if the session writes a recording or an event stream to a file or stdout."""
    return session.recorder is not None or session.events.path is not None


def settings_lines(session: MonitorSession) -> list[str]:
    """Return the filter and front-end settings in force, one short line each.

    The filters are the monitor's filter bank (what the traces show); the front end is what
    the device reported in its HELLO (gain, input range, resolution), when it reports it.
    """
    out = []
    bank = getattr(session.pipeline, "bank", None)
    if bank is not None:
        types = [t for t in dict.fromkeys(session.ch_types) if bank.bands.get(t)]
        bands = ", ".join(f"{t.upper()} {lo:g}-{hi:g}" for t in types for lo, hi in [bank.bands[t]])
        notch = f"; notch {bank.mains:g} Hz" if bank.mains else ""
        out.append(f"filters (Hz): {bands}{notch}")
    else:
        out.append("filters: none (no filter bank): raw signals")
    dev = getattr(session.source, "settings", None) or {}
    if "gain" in dev:
        rng = f", range ±{dev['vref'] / dev['gain'] * 1e3:g} mV" if "vref" in dev else ""
        lsb = f", {dev['lsb_uv']:.3f} µV/bit" if "lsb_uv" in dev else ""
        out.append(f"front end: gain {dev['gain']:g}{rng}{lsb}, {session.sfreq:g} Hz")
    else:
        out.append(f"front end: not reported by this source; {session.sfreq:g} Hz")
    return out


def evidence_lines(evidence: dict, n: int = 3) -> list[str]:
    """Return the markers that weigh most in a nightmare alert, in words against baseline.

    Parameters
    ----------
    evidence : dict
        Marker -> ``value``, ``baseline``, ``unit``, ``evidence`` (standardised, -1..4),
        ``weight`` (the ``nightmare_alert`` event's field).
    n : int
        Most lines.

    Returns
    -------
    list of str
        E.g. ``chin EMG tone 7.7 µV (baseline 0.8 µV)``, largest weighted evidence first; markers
        that did not rise (evidence <= 0.2) are left out.
    """
    top = sorted(evidence.items(), key=lambda kv: -kv[1]["evidence"] * kv[1]["weight"])
    out = []
    for name, v in top[:n]:
        if v["evidence"] <= 0.2:
            continue
        unit = str(v["unit"]).replace("uV", "µV").replace("/min", "per min")
        value, base = f"{v['value']:.1f} {unit}", f"{v['baseline']:.1f} {unit}"
        out.append(f"{MARKER_NAMES.get(name, name)} {value} (baseline {base})")
    return out


class MonitorView:
    """Builds the screen from a session's state (never changes the session).

    Parameters
    ----------
    session : MonitorSession
        The session to show.
    speed : float or None
        The requested speed (None: as fast as possible), shown in the header.

    Attributes
    ----------
    traces : TraceSettings
        Page, scale and channel set of the trace panel (keys ``+ - < > c``).
    show_truth : bool
        Whether the simulator's truth panel is shown (key ``t``; a synthetic source only).
    """

    def __init__(self, session: MonitorSession, speed: float | None):
        self.session = session
        self.speed = speed
        self.wall_start = time.monotonic()
        self.note_prompt: str | None = None
        self.message = ""
        #: Whether anything of the session reaches a file (a recording or an event stream).
        self.saving = is_saving(session)
        self.traces = TraceSettings()
        self.show_truth = session.state.simulated
        start = start_clock(session)
        self._start_s = start.hour * 3600 + start.minute * 60 + start.second
        self._settings = settings_lines(session)

    def clock(self, t: float) -> str:
        """Clock time (``HH:MM:SS``) of session time ``t`` (s)."""
        return _hms((self._start_s + t) % 86400)

    # ---------------------------------------------------------------- panels
    def _header(self) -> Text:
        st = self.session.state
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        if not st.paused and _effective_speed(st, self.speed) != self.speed:
            speed = "1x (cue pending)"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" dreamnet monitor ", style="bold white on blue")
        t.append(f"  {st.source}  ", style="bold")
        t.append(f"clock {self.clock(st.t)}", style="bold")
        t.append(f"  session {_hms(st.t)}")
        if st.duration_s:
            t.append(f" of {_hms(st.duration_s)}")
        t.append(f"  speed {speed}")
        if st.lights:
            at, state = st.lights[-1]
            t.append(f"  lights {state} at {self.clock(at)[:5]}", style="bold cyan")
        if not self.saving:
            t.append(f"  {NOT_SAVED}", style="bold white on red")
        if st.paused:
            t.append("  PAUSED", style="bold black on yellow")
        if st.finished:
            t.append(f"  ENDED ({st.end_reason})", style="bold black on green")
        return t

    def _stage_panel(self) -> Panel:
        st = self.session.state
        lines = []
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f" {stage_name(st.stage)} ", style=STAGE_STYLE[st.stage] + " reverse")
        if st.stage != UNSCORED:
            head.append(f" for {_dur(st.time_in_stage)}")
            conf = Text(f" confidence {st.confidence:.2f} (0-1)", no_wrap=True)
            if st.confidence < LOW_CONFIDENCE:
                conf.append(" LOW", style="bold yellow")
        else:
            head.append("  first epoch at 30 s", style="dim")
            conf = Text("")
        lines += [head, conf]
        if st.out_of_distribution:
            lines.append(Text(" signals unlike the training data", style="bold red"))
        if st.probs:
            probs = " ".join(f"{stage_name(i)} {p * 100:.0f}" for i, p in enumerate(st.probs))
            lines.append(Text(f" prob. %: {probs}", style="dim", no_wrap=True, overflow="ellipsis"))
        hr = "--" if st.heart_rate is None else f"{st.heart_rate:.0f}"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" heart rate ", style="red")
        t.append(f"{hr} bpm", style="bold red" if st.heart_rate else "dim")
        lines.append(t)
        risk = st.nightmare_risk
        style = "bold red" if risk >= 0.5 else ""
        lines.append(Text(f" nightmare risk {risk:.2f} (0-1)", style=style, no_wrap=True))
        return Panel(Group(*lines), title="stage", box=box.ROUNDED)

    def _hypno_panel(self) -> Panel:
        st = self.session.state
        total = int(st.duration_s // EPOCH_S) if st.duration_s else None
        return Panel(
            Hypnogram(st.hypnogram, total, self._start_s),
            title="hypnogram (clock time)",
            box=box.ROUNDED,
        )

    def _truth_panel(self, height: int) -> Panel:
        """Show the simulator's ground truth, apart from what the monitor detected."""
        st = self.session.state
        lines = []
        if st.true_stage != UNSCORED:
            lines.append(Text(f"stage {stage_name(st.true_stage)}", no_wrap=True))
            m = min(len(st.hypnogram), len(st.truth))
            pairs = [(a, b) for a, b in zip(st.hypnogram[:m], st.truth[:m]) if a >= 0 and b >= 0]
            if pairs:
                agree = sum(a == b for a, b in pairs) / len(pairs)
                lines.append(Text(f"scored agrees: {agree:.0%} of {len(pairs)} epochs"))
        else:
            lines.append(Text("no stage yet", style="dim"))
        for at, text in list(st.truth_log)[-max(0, height - len(lines)) :]:
            lines.append(Text(f"{self.clock(at)} {text}", no_wrap=True, overflow="ellipsis"))
        # a replayed file's annotations stand where a simulator's truth would
        replay = hasattr(self.session.source, "replay")
        title = "annotations in the file" if replay else "simulator truth"
        return Panel(Group(*lines), title=f"{title} (t hides)", box=box.ROUNDED, style="dim")

    def _trace_panel(self, rows: int) -> Panel:
        s = self.session
        st = s.state
        panel = TracePanel(
            s.trace(), st.ch_names, st.ch_types, st.sfreq, self.traces, rows, s.lead_off_since()
        )
        return Panel(panel, title=self.traces.title(st.ch_types), box=box.ROUNDED)

    def _electrodes_panel(self) -> Panel:
        s = self.session
        st = s.state
        s.refresh_quality()
        off = s.lead_off_since()
        body = Text(no_wrap=True, overflow="ellipsis")
        body.append(f"{'channel':<10} {'lead':<9} {'quality':<13} {'RMS':>7}\n", style="dim")
        for i, q in enumerate(st.quality):
            if q.type == "misc":
                continue
            body.append(f"{q.name[:10]:<10} ", style="bold" if q.level == "ok" else "red")
            if i in off:
                body.append(f"{'OFF ' + _dur(st.t - off[i]):<9}", style="bold white on red")
            else:
                body.append(f"{'on':<9}", style="green")
            label = (q.level.upper() if q.level != "ok" else "ok") + (
                f" {q.reason}" if q.reason else ""
            )
            body.append(f" {label[:13]:<13}", style=LEVEL_STYLE[q.level])
            body.append(f" {q.rms_uv:4.0f} µV\n")
        notes = Text("\n".join(self._settings), style="dim")
        return Panel(
            Group(body, notes),
            title="electrodes (lead-off; no impedance)",
            box=box.ROUNDED,
        )

    def _bands_panel(self) -> Panel:
        s = self.session
        st = s.state
        trace = s.trace()[:, -round(BAND_S * st.sfreq) :]
        body = Text(no_wrap=True, overflow="ellipsis")
        body.append(" " * 9 + "".join(f"{n:>3}    " for n, _, _ in BANDS) + "\n", style="bold")
        for i in [i for i, t in enumerate(st.ch_types) if t == "eeg"][:3]:
            rel = band_powers(trace[i], st.sfreq) if trace.size else np.zeros(len(BANDS))
            body.append(f"{st.ch_names[i][:9]:<9}")
            for r in rel:
                body.append(f"{r * 100:3.0f} {'█' * int(round(r * 3)):<3}", style="cyan")
            body.append("\n")
        return Panel(body, title=f"EEG band power, % (last {BAND_S:g} s)", box=box.ROUNDED)

    def _alerts_panel(self) -> Panel:
        st = self.session.state
        body = Text()
        iv = st.pending
        if iv is not None:
            what = cue_text(iv.kind, iv.level, iv.duration_s)
            if iv.deadline == float("inf"):
                body.append(f"sending {what} (approved)\n", style="bold black on yellow")
            else:
                left = max(0.0, iv.deadline - st.t)
                body.append(
                    f"cue in {left:.0f} s unless vetoed (v)\n", style="bold black on yellow"
                )
                body.append(f"  {what}\n  y sends it now\n", style="bold")
        open_alerts = st.open_alerts
        for a in open_alerts[-6:]:
            body.append(f"! {self.clock(a.t)} {a.text}\n", style="bold white on red")
            if a is open_alerts[-1]:
                for line in evidence_lines(a.evidence):
                    body.append(f"  {line}\n", style="bold")
        if not open_alerts and iv is None:
            body.append("no open alerts\n", style="green")
        acked = [a for a in st.alerts if a.acked][-3:]
        for a in acked:
            body.append(f"  {self.clock(a.t)} {a.text} (acknowledged)\n", style="dim")
        return Panel(body, title=f"alerts ({len(open_alerts)} open)", box=box.ROUNDED)

    def _log_panel(self, height: int) -> Panel:
        st = self.session.state
        body = Text()
        for line in list(st.log)[-max(1, height) :]:
            style = ""
            if line.kind in ("nightmare_alert", "lead_off"):
                style = "red"
            elif line.kind in ("intervention", "veto", "approve"):
                style = "yellow"
            elif line.kind in ("note", "ack", "lights"):
                style = "cyan"
            text = f"{self.clock(line.t)} {line.text}"
            if line.count > 1:
                text += f" (x{line.count} since {self.clock(line.since)})"
            body.append(text + "\n", style=style)
        body.no_wrap = True
        body.overflow = "ellipsis"
        return Panel(body, title="interventions and events (clock time)", box=box.ROUNDED)

    def _footer(self) -> Text:
        st = self.session.state
        d = st.device
        c = st.counters
        t = Text(no_wrap=True, overflow="ellipsis")
        if d:
            t.append(
                f" packets ok {d.get('packets_ok', 0)}  lost {d.get('lost', 0)}  "
                f"corrupt {d.get('corrupt', 0)}  reconnects {d.get('reconnects', 0)}  "
            )
        cues = c.get("cues_sent", 0)
        t.append(
            f" gaps {c.get('gap', 0)}  arousals {c.get('arousal', 0)}  "
            f"alerts {c.get('nightmare_alert', 0)}  cues {cues} "
        )
        t.append("\n")
        # the answer to the last key comes first, so a long key help never hides it
        if self.note_prompt is not None:
            t.append(f"note: {self.note_prompt}_", style="bold black on cyan")
            t.append("  (Enter save, Esc cancel)" if self.saving else "  (NOT SAVED: no file)")
        elif st.finished:
            written = "files written" if self.saving else "nothing written (not recording)"
            t.append(f"session ended ({st.end_reason}); {written}.  q exit", style="bold")
        if self.message:
            t.append(f" {self.message} ", style="bold black on white")
        if self.note_prompt is None and not st.finished:
            t.append(" " + KEY_HELP, style="bold")
        if st.missing:
            t.append(f"  [not available: {', '.join(st.missing)}]", style="dim")
        return t

    def render(self, height: int | None = None, width: int | None = None) -> Layout:
        """Return the whole screen as a rich Layout.

        Parameters
        ----------
        height : int or None
            Terminal height in lines (sizes the panels); None assumes 45.
        width : int or None
            Terminal width in columns (under 110 the electrodes panel is left out; the EEG
            band powers need 170); None assumes 140.

        Returns
        -------
        rich.layout.Layout
            The screen.
        """
        height = height or 45
        width = width or 140
        top_h = 8  # five hypnogram rows and the clock axis
        n_tr = max(1, len(TracePanel(None, (), self.session.ch_types, 1, self.traces).channels()))
        # the traces get what leaves the alerts and the log at least 8 lines, 1-3 rows each
        room = height - 1 - top_h - 2 - 8 - 3
        rows = min(3, max(1, room // n_tr))
        trace_h = n_tr * rows + 3
        root = Layout()
        root.split_column(
            Layout(self._header(), size=1),
            Layout(name="top", size=top_h),
            Layout(name="mid", size=trace_h),
            Layout(name="bottom"),
            Layout(self._footer(), size=2),
        )
        wide = width >= 120
        top = [Layout(self._stage_panel(), size=37 if wide else 30)]
        top.append(Layout(self._hypno_panel(), ratio=1))
        if self.show_truth and self.session.state.simulated:
            top.append(Layout(self._truth_panel(top_h - 2), size=40 if wide else 24))
        root["top"].split_row(*top)
        if width >= 110:
            root["mid"].split_row(
                Layout(self._trace_panel(rows), ratio=1),
                Layout(self._electrodes_panel(), size=SIDE_W),
            )
        else:  # narrow: the traces only
            root["mid"].update(self._trace_panel(rows))
        log_h = max(1, height - 1 - top_h - trace_h - 2 - 2)
        bottom = [Layout(self._alerts_panel(), ratio=2), Layout(self._log_panel(log_h), ratio=3)]
        if width >= 170:
            bottom.append(Layout(self._bands_panel(), size=SIDE_W))
        root["bottom"].split_row(*bottom)
        return root


def apply_action(session: MonitorSession, view: MonitorView, action) -> bool:
    """Apply one technician action; returns True when the technician asked to quit."""
    name = action.name
    st = session.state
    tr = view.traces
    if name == "quit":
        return True
    if name == "ack":
        ids = session.ack()
        view.message = f"acknowledged {len(ids)} alert(s)" if ids else "no open alert"
    elif name == "veto":
        view.message = "intervention vetoed" if session.veto() else "nothing to veto"
    elif name == "approve":
        view.message = "intervention sent" if session.approve() else "nothing to approve"
    elif name == "note":
        session.note(action.text)
        view.message = "note saved" if view.saving else f"note NOT saved: {NOT_SAVED_HINT}"
    elif name == "lights":
        state = "on" if st.lights and st.lights[-1][1] == "off" else "off"
        session.mark_lights(state)
        where = "written into the recording" if view.saving else f"NOT saved: {NOT_SAVED_HINT}"
        view.message = f"lights {state} at {view.clock(st.t)} ({where})"
    elif name == "pause":
        session.set_paused(not st.paused)
        view.message = ""
    elif name in ("zoom_in", "zoom_out"):
        ok = tr.change_zoom(1 if name == "zoom_in" else -1)
        view.message = (
            "scale: "
            + ", ".join(f"{t.upper()} {tr.scale_uv(t):g}" for t in tr.types if t in st.ch_types)
            + " µV/div"
            + ("" if ok else " (the end of the scale)")
        )
    elif name in ("page_longer", "page_shorter"):
        ok = tr.change_page(1 if name == "page_longer" else -1)
        view.message = f"page {tr.page_s:g} s" + ("" if ok else " (no longer/shorter page)")
    elif name == "channels":
        tr.next_channels()
        view.message = "channels: " + " + ".join(t.upper() for t in tr.types)
    elif name == "truth":
        if st.simulated:
            view.show_truth = not view.show_truth
            view.message = f"simulator truth {'shown' if view.show_truth else 'hidden'}"
        else:
            view.message = "no simulator truth: not a synthetic source"
    st.version += 1  # redraw with the change
    return False


def _size(console: Console) -> tuple[int, int]:
    size = console.size
    return size.height, size.width


def _effective_speed(st, speed: float | None) -> float | None:
    """Real time at most while an intervention awaits the technician (its grace period)."""
    awaiting = st.pending is not None and st.pending.deadline != float("inf")
    if awaiting and (speed is None or speed > 1.0):
        return 1.0
    return speed


def run_live(
    session: MonitorSession,
    speed: float | None,
    console: Console | None = None,
    stay_open: bool = True,
) -> str:
    """Run a session with the live view until it ends or the technician quits.

    Parameters
    ----------
    session : MonitorSession
        The session to drive.
    speed : float or None
        Session seconds per wall second (None: as fast as possible). While an intervention is
        pending the clock runs at real time at most, so the grace period is real seconds.
    console : rich.console.Console or None
        Where to draw (default: the terminal).
    stay_open : bool
        Keep showing the final state after the night ends until ``q`` (only when keys can be
        read; otherwise return at once).

    Returns
    -------
    str
        Why the session ended (``end``, ``duration``, ``quit``, ``interrupt``).

    Notes
    -----
    ``q`` and Ctrl-C both finalise the session (recording, event stream, report) before the
    terminal is restored.
    """
    from rich.live import Live

    console = console or Console()
    view = MonitorView(session, speed)
    interp = KeyInterpreter()
    pacer = Pacer(speed)
    min_frame = 1.0 / MAX_FPS
    last_render = -1.0
    rendered = -1
    session.start()

    def finalise(live, reason):
        view.message = "finalising: closing the recording, writing the report..."
        try:
            live.update(view.render(*_size(console)), refresh=True)
        finally:
            session.finish(reason)

    with KeyReader() as keys:
        live = Live(
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        with live:
            try:
                while True:
                    st = session.state
                    if session.stop_request is not None and not st.finished:
                        finalise(live, session.stop_request)
                    if not st.finished:
                        eff = _effective_speed(st, speed)
                        target = pacer.target(session.t, st.paused, eff)
                        frame_end = time.monotonic() + min_frame
                        pending_before = st.pending
                        while (
                            not st.finished
                            and not st.paused
                            and session.t + session.frame_s <= target + 1e-9
                            and time.monotonic() < frame_end
                        ):
                            session.step()
                            if st.pending is not pending_before:
                                break  # re-pace at once (a proposal slows the clock)
                    now = time.monotonic()
                    if st.version != rendered or now - last_render >= 1.0:
                        if now - last_render >= min_frame:
                            view.note_prompt = interp.note_buffer
                            live.update(view.render(*_size(console)), refresh=True)
                            last_render, rendered = now, st.version
                    natural_end = st.end_reason in ("end", "duration")
                    if st.finished and not (stay_open and keys.is_tty and natural_end):
                        break
                    # wait for keys until the next block is due or the next frame
                    if st.finished or st.paused:
                        timeout = min_frame
                    else:
                        eff = _effective_speed(st, speed)
                        if eff is None:
                            timeout = 0.0
                        else:
                            due = (session.t + session.frame_s - pacer.budget) / eff
                            timeout = min(max(due, 0.0), min_frame)
                    chars = keys.wait(timeout)
                    if not chars:
                        continue
                    before = interp.note_buffer
                    quit_ = False
                    for action in interp.feed(chars):
                        if st.finished and action.name not in VIEW_ACTIONS:
                            continue
                        quit_ = apply_action(session, view, action) or quit_
                    if interp.note_buffer != before:
                        st.version += 1
                    if quit_:
                        if not st.finished:
                            finalise(live, "quit")
                        break
            except KeyboardInterrupt:
                if not session.state.finished:
                    session.finish("interrupt")
    return session.state.end_reason
