"""The technician's live view: a full-screen rich layout that only reads the session's state.

:func:`run_live` drives a :class:`~staging.monitor.session.MonitorSession` at a given speed,
draws :class:`MonitorView` at most ``MAX_FPS`` times a second (and only when something changed),
and turns key presses into the session's technician actions. Every decision stays in the session,
so a night watched here and the same night run with ``--no-tui`` produce the same events.
"""

from __future__ import annotations

import time

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from headset.stages import N1, N2, N3, UNSCORED, R, W, stage_name

from ..stager.model import LOW_CONFIDENCE
from .keys import KEY_HELP, KeyInterpreter, KeyReader
from .session import MonitorSession, Pacer

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
_SPARK = " ▁▂▃▄▅▆▇█"
#: EEG bands of the band-power bars, Hz.
BANDS = (("δ", 0.5, 4.0), ("θ", 4.0, 8.0), ("α", 8.0, 12.0), ("σ", 12.0, 16.0), ("β", 16.0, 30.0))


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


class Hypnogram:
    """Renderable hypnogram of the scored epochs so far, fitted to the panel's width.

    Parameters
    ----------
    hypnogram : sequence of int
        One stage code per 30-s epoch.
    total_epochs : int or None
        Epochs of the whole planned session (sets the time axis); None fits what exists.
    """

    def __init__(self, hypnogram, total_epochs: int | None = None):
        self.hyp = np.asarray(hypnogram, dtype=np.int8)
        self.total = total_epochs

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
            chars = "".join(
                "█" if cols[c] == row else ("·" if c < filled else " ") for c in range(width)
            )
            line.append(chars, style=STAGE_STYLE[row])
            yield line


class Sparkline:
    """Renderable one-line trace of a signal, fitted to the panel's width."""

    def __init__(self, x: np.ndarray, style: str = "cyan"):
        self.x = np.asarray(x, dtype=float)
        self.style = style

    def __rich_console__(self, console, options):  # noqa: D105
        width = max(1, options.max_width)
        x = self.x
        if x.size < 2:
            yield Text(" " * width)
            return
        n = (x.size // width) * width
        if n >= width:
            cols = x[-n:].reshape(width, -1).mean(axis=1)
        else:
            cols = np.interp(np.linspace(0, x.size - 1, width), np.arange(x.size), x)
        lo, hi = np.percentile(cols, [2, 98])
        if not np.isfinite(lo) or hi - lo < 1e-9:
            yield Text("▄" * width, style=self.style)
            return
        k = np.clip(((cols - lo) / (hi - lo) * 8).round().astype(int), 1, 8)
        yield Text("".join(_SPARK[i] for i in k), style=self.style)


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


class MonitorView:
    """Builds the screen from a session's state (never changes the session).

    Parameters
    ----------
    session : MonitorSession
        The session to show.
    speed : float or None
        The requested speed (None: as fast as possible), shown in the header.
    """

    def __init__(self, session: MonitorSession, speed: float | None):
        self.session = session
        self.speed = speed
        self.wall_start = time.monotonic()
        self.note_prompt: str | None = None
        self.message = ""
        #: Whether anything of the session reaches a file (a recording or an event stream).
        self.saving = is_saving(session)

    # ---------------------------------------------------------------- panels
    def _header(self) -> Text:
        st = self.session.state
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        if not st.paused and _effective_speed(st, self.speed) != self.speed:
            speed = "1x (pending)"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" dreamnet monitor ", style="bold white on blue")
        t.append(f"  {st.source}  ", style="bold")
        t.append(f"session {_hms(st.t)}")
        if st.duration_s:
            t.append(f" / {_hms(st.duration_s)}")
        clock = (23 * 3600 + st.t) % 86400
        t.append(f"  night clock {_hms(clock)[:5]}")
        t.append(f"  elapsed {_hms(time.monotonic() - self.wall_start)}")
        t.append(f"  speed {speed}")
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
            head.append(f" {st.confidence:.2f}  {_dur(st.time_in_stage)}")
            if st.confidence < LOW_CONFIDENCE:
                head.append("  low confidence", style="bold yellow")
        else:
            head.append("  first epoch at 30 s", style="dim")
        lines.append(head)
        if st.out_of_distribution:
            lines.append(
                Text(" signals unlike the training data: stages uncertain", style="bold red")
            )
        if st.probs:
            lines.append(
                Text(
                    " ".join(f"{stage_name(i)} {p * 100:.0f}" for i, p in enumerate(st.probs))
                    + " %",
                    style="dim",
                    no_wrap=True,
                    overflow="ellipsis",
                )
            )
        if st.simulated and st.true_stage != UNSCORED:
            t = Text(f"truth {stage_name(st.true_stage)}", style="dim", no_wrap=True)
            m = min(len(st.hypnogram), len(st.truth))
            pairs = [(a, b) for a, b in zip(st.hypnogram[:m], st.truth[:m]) if a >= 0 and b >= 0]
            if pairs:
                t.append(f"  agree {sum(a == b for a, b in pairs) / len(pairs):.0%}")
            lines.append(t)
        hr = "--" if st.heart_rate is None else f"{st.heart_rate:.0f}"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("♥ ", style="bold red")
        t.append(f"{hr} bpm", style="bold red" if st.heart_rate else "dim")
        t.append(f"  risk {st.nightmare_risk:.2f}")
        lines.append(t)
        return Panel(Group(*lines), title="stage", box=box.ROUNDED)

    def _hypno_panel(self) -> Panel:
        st = self.session.state
        total = int(st.duration_s // 30) if st.duration_s else None
        return Panel(Hypnogram(st.hypnogram, total), title="hypnogram", box=box.ROUNDED)

    def _signals_panel(self) -> Panel:
        s = self.session
        st = s.state
        trace = s.trace()
        s.refresh_quality()
        table = Table.grid(expand=True, padding=(0, 1))
        table.add_column("ch", no_wrap=True, width=10)
        table.add_column("q", no_wrap=True, width=12)
        table.add_column("rms", no_wrap=True, justify="right", width=8)
        table.add_column("trace", ratio=1, no_wrap=True)
        for i, q in enumerate(st.quality):
            if q.type == "misc":
                continue
            label = q.level.upper() if q.level != "ok" else "ok"
            if q.reason:
                label += f" {q.reason}"
            table.add_row(
                Text(q.name, style="bold" if q.level == "ok" else LEVEL_STYLE[q.level]),
                Text(label, style=LEVEL_STYLE[q.level]),
                f"{q.rms_uv:.0f} µV",
                Sparkline(trace[i, -int(4 * st.sfreq) :] if trace.size else trace[i]),
            )
        return Panel(table, title="signals (quality, last 4 s)", box=box.ROUNDED)

    def _bands_panel(self) -> Panel:
        s = self.session
        st = s.state
        trace = s.trace()
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True, width=10)
        for name, _, _ in BANDS:
            table.add_column(name, ratio=1, no_wrap=True)
        eeg = [i for i, t in enumerate(st.ch_types) if t == "eeg"][:3]
        table.add_row("", *[Text(n, style="bold") for n, _, _ in BANDS])
        for i in eeg:
            rel = band_powers(trace[i], st.sfreq) if trace.size else np.zeros(len(BANDS))
            cells = [
                Text(f"{r * 100:2.0f} " + "█" * int(round(r * 5)), style="cyan", no_wrap=True)
                for r in rel
            ]
            table.add_row(st.ch_names[i], *cells)
        return Panel(table, title="EEG band power, % (last 8 s)", box=box.ROUNDED)

    def _alerts_panel(self) -> Panel:
        st = self.session.state
        body = Text()
        iv = st.pending
        if iv is not None:
            if iv.deadline == float("inf"):
                when = "approved, sending"
            else:
                when = f"sends in {max(0.0, iv.deadline - st.t):.0f} s"
            body.append(f"PENDING {iv.kind} {iv.level:.2f}: {when}\n", style="bold black on yellow")
            keys = "" if iv.deadline == float("inf") else "   v veto   y approve"
            body.append(f"  risk {st.nightmare_risk:.2f}{keys}\n", style="bold")
        open_alerts = st.open_alerts
        for a in open_alerts[-6:]:
            body.append(f"! {_hms(a.t)} {a.text}\n", style="bold white on red")
        if not open_alerts and iv is None:
            body.append("no open alerts\n", style="green")
        acked = [a for a in st.alerts if a.acked][-3:]
        for a in acked:
            body.append(f"  {_hms(a.t)} {a.text} (acknowledged)\n", style="dim")
        return Panel(body, title=f"alerts ({len(open_alerts)} open)", box=box.ROUNDED)

    def _log_panel(self, height: int) -> Panel:
        st = self.session.state
        body = Text()
        lines = list(st.log)[-max(1, height) :]
        for t, kind, text in lines:
            style = ""
            if kind in ("nightmare_alert", "lead_off"):
                style = "red"
            elif kind in ("intervention", "veto", "approve"):
                style = "yellow"
            elif kind in ("note", "ack"):
                style = "cyan"
            body.append(f"{_hms(t)} {text}\n", style=style)
        body.no_wrap = True
        body.overflow = "ellipsis"
        return Panel(body, title="interventions and events", box=box.ROUNDED)

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
        if self.note_prompt is not None:
            t.append(f"note: {self.note_prompt}_", style="bold black on cyan")
            t.append("  (Enter save, Esc cancel)" if self.saving else "  (NOT SAVED: no file)")
        elif st.finished:
            written = "files written" if self.saving else "nothing written (not recording)"
            t.append(f"session ended ({st.end_reason}); {written}.  q exit", style="bold")
        else:
            t.append(" " + KEY_HELP, style="bold")
        if self.message:
            t.append(f"  {self.message}", style="italic")
        if st.missing:
            t.append(f"  [not available: {', '.join(st.missing)}]", style="dim")
        return t

    def render(self, height: int | None = None, width: int | None = None) -> Layout:
        """Return the whole screen as a rich Layout.

        Parameters
        ----------
        height : int or None
            Terminal height in lines (sizes the panels); None assumes 40.
        width : int or None
            Terminal width in columns (narrow terminals drop the band-power panel); None
            assumes 120.

        Returns
        -------
        rich.layout.Layout
            The screen.
        """
        height = height or 40
        width = width or 120
        n_sig = sum(t != "misc" for t in self.session.state.ch_types)
        top_h = 7  # five hypnogram rows
        sig_h = max(n_sig + 2, 5)
        if height < 30:  # small terminal: the event log keeps at least a few lines
            sig_h = max(3, min(sig_h, height - 1 - top_h - 2 - 6))
        root = Layout()
        root.split_column(
            Layout(self._header(), size=1),
            Layout(name="top", size=top_h),
            Layout(name="mid", size=sig_h),
            Layout(name="bottom"),
            Layout(self._footer(), size=2),
        )
        root["top"].split_row(
            Layout(self._stage_panel(), size=32), Layout(self._hypno_panel(), ratio=1)
        )
        if width >= 110:
            root["mid"].split_row(
                Layout(self._signals_panel(), ratio=4), Layout(self._bands_panel(), ratio=3)
            )
        else:  # narrow: the signals only
            root["mid"].update(self._signals_panel())
        log_h = max(1, height - 1 - top_h - sig_h - 2 - 2)
        root["bottom"].split_row(
            Layout(self._alerts_panel(), ratio=3), Layout(self._log_panel(log_h), ratio=5)
        )
        return root


def apply_action(session: MonitorSession, view: MonitorView, action) -> bool:
    """Apply one technician action; returns True when the technician asked to quit."""
    name = action.name
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
    elif name == "pause":
        session.set_paused(not session.state.paused)
        view.message = ""
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
                        if st.finished and action.name != "quit":
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
