"""The ward's live view (rich): one row per bed, the beds that need a person on top.

Each row shows the bed's name, stage and confidence, time in stage, signal quality, heart
rate, nightmare risk, the pending intervention (with its countdown) or the last one, the
recording, and the open alerts. A bed needs a person when it has a pending cue, an open alert,
a bad signal or is down: those rows come first, coloured. Keys: up/down (or k/j) select,
Enter opens the selected bed in the full monitor view (Esc or Enter comes back), ``a``
acknowledges its alerts, ``v`` vetoes / ``y`` approves its pending cue, ``q`` quits (every
recording and report is finalised). A key reaches the bed at the start of the next round (1 s
of session time); a veto always wins over the grace period, as in the monitor.

The view only reads the ward (:class:`~staging.ward.app.Ward`); the rounds are paced at the
requested speed, at real time at most while a cue is pending, so the grace period is real
seconds for the technician.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from rich import box
from rich.console import Console, Group
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..monitor.keys import KeyReader
from ..monitor.session import Pacer
from .app import Ward

#: Session seconds per round under the live view (a frame of the monitor).
LIVE_ROUND_S = 1.0
#: Most frames drawn per second.
MAX_FPS = 8.0
KEY_HELP = "↑↓ select  enter open  a ack  v veto  y approve  q quit"
_STAGE_STYLE = {"W": "yellow", "N1": "cyan", "N2": "blue", "N3": "magenta", "R": "red", "?": "dim"}
_QUALITY_STYLE = {"ok": "green", "warn": "yellow", "bad": "bold red"}


def _dur(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def urgency(row: dict) -> int:
    """Return how much a bed needs a person: 3 down or cue pending, 2 alert, 1 bad signal, 0."""
    if row.get("down") or row.get("pending"):
        return 3
    if row.get("alerts"):
        return 2
    if row.get("quality", ("ok", ""))[0] == "bad":
        return 1
    return 0


def ordered(ward: Ward) -> list[str]:
    """Return the bed names, those needing a person first (ward order within a level)."""
    return sorted(ward.names, key=lambda n: (-urgency(ward.rows[n]), ward.names.index(n)))


class WardView:
    """Builds the ward's screen (never changes the ward).

    Parameters
    ----------
    ward : Ward
        The ward to show.
    speed : float or None
        The requested speed, shown in the header.
    """

    def __init__(self, ward: Ward, speed: float | None):
        self.ward = ward
        self.speed = speed
        self.selected = ward.names[0]
        self.message = ""
        self.wall_start = time.monotonic()

    def move(self, step: int) -> None:
        """Move the selection ``step`` rows down (negative: up) in the displayed order."""
        names = ordered(self.ward)
        i = names.index(self.selected) if self.selected in names else 0
        self.selected = names[max(0, min(len(names) - 1, i + step))]

    def _header(self) -> Text:
        w = self.ward
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        if pending(w) and (self.speed is None or self.speed > 1):
            speed = "1x (cue pending)"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" dreamnet ward ", style="bold white on blue")
        t.append(f"  {len(w.names)} beds  session {_dur(w.t)}")
        t.append(f"  night clock {_dur((23 * 3600 + w.t) % 86400)[:-3]}")
        t.append(f"  speed {speed}")
        need = sum(urgency(w.rows[n]) >= 2 for n in w.names)
        if need:
            t.append(f"  {need} bed(s) need you", style="bold white on red")
        if w.counts["disturbance"]:
            t.append(f"  disturbances {w.counts['disturbance']}", style="bold yellow")
        if w.finished:
            t.append(f"  ENDED ({w.end_reason})", style="bold black on green")
        return t

    def _table(self, max_rows: int, width: int) -> Table:
        w = self.ward
        wide = width >= 130
        table = Table(box=box.SIMPLE_HEAD, expand=True, padding=(0, 1), show_edge=False)
        table.add_column("bed", no_wrap=True, width=10)
        table.add_column("stage", no_wrap=True, width=9)
        table.add_column("in stage", no_wrap=True, width=8, justify="right")
        table.add_column("signal", no_wrap=True, width=22 if wide else 12)
        table.add_column("HR bpm", no_wrap=True, width=6, justify="right")
        table.add_column("risk", no_wrap=True, width=5, justify="right")
        table.add_column("intervention", no_wrap=True, ratio=2)
        if wide:
            table.add_column("recording", no_wrap=True, width=10)
        table.add_column("alerts", no_wrap=True, ratio=1)
        names = ordered(w)
        if self.selected in names and names.index(self.selected) >= max_rows:
            names.remove(self.selected)  # the selected bed is always on screen
            names.insert(max_rows - 1, self.selected)
        shown, hidden = names[:max_rows], names[max_rows:]
        for name in shown:
            r = w.rows[name]
            u = urgency(r)
            style = "reverse" if name == self.selected else ""
            if r.get("down"):
                cells = [Text(name, style="bold red"), Text("DOWN", style="bold red"), "", "",
                         "", "", Text(str(r["down"]), style="red")]  # fmt: skip
                cells += [""] * (len(table.columns) - len(cells))
                table.add_row(*cells, style=style)
                continue
            stage = r.get("stage", "?")
            q_level, q_text = r.get("quality", ("ok", ""))
            pend = r.get("pending")
            if pend is not None:
                kind, level, deadline = pend
                left = deadline - r.get("t", 0.0)
                when = "approved" if deadline == float("inf") else f"sends in {max(left, 0):.0f} s"
                iv = Text(f"PENDING {kind} {level:.2f}: {when}", style="bold white on red")
            else:
                iv = Text(r.get("last") or "", style="dim")
            hr = r.get("hr")
            risk = r.get("risk", 0.0)
            alerts = r.get("alerts") or []
            cells = [
                Text(name, style="bold red" if u >= 2 else "bold"),
                Text(f"{stage} {r.get('confidence', 0.0):.2f}" if stage != "?" else "?",
                     style=_STAGE_STYLE.get(stage, "")),
                _dur(r.get("in_stage", 0.0)),
                Text(q_level if q_level == "ok" else f"{q_level} {q_text}",
                     style=_QUALITY_STYLE[q_level]),
                "--" if hr is None else f"{hr:.0f}",
                Text(f"{risk:.2f}", style="bold red" if risk >= 0.5 else ""),
                iv,
            ]  # fmt: skip
            if wide:
                rec = r.get("recording")
                cells.append(Text("off" if rec is None else rec, style="dim" if rec else "yellow"))
            cells.append(Text("; ".join(alerts), style="bold red" if alerts else ""))
            table.add_row(*cells, style=style)
        if hidden:
            more = sum(urgency(w.rows[n]) >= 2 for n in hidden)
            note = f"+{len(hidden)} more beds" + (f" ({more} need you)" if more else "")
            table.add_row(Text(note, style="bold yellow" if more else "dim"))
        return table

    def _log(self, height: int) -> Panel:
        w = self.ward
        body = Text(no_wrap=True, overflow="ellipsis")
        room = [(t, text) for t, _, text in w.log][-max(1, height // 2) :]
        for t, text in room:
            body.append(f"{_dur(t):>8} ward  {text}\n", style="bold yellow")
        r = w.rows.get(self.selected, {})
        for line in r.get("log", [])[-max(1, height - len(room)) :]:
            body.append(f"{self.selected}: {line}\n")
        return Panel(body, title=f"the room, and {self.selected}", box=box.ROUNDED)

    def _footer(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.ward.finished:
            t.append(f"ward ended ({self.ward.end_reason}); files written.  q exit", style="bold")
        else:
            t.append(" " + KEY_HELP, style="bold")
        if self.message:
            t.append(f"  {self.message}", style="italic")
        return t

    def render(self, height: int | None = None, width: int | None = None):
        """Return the screen: the full monitor view of an opened bed, else the ward table."""
        height = height or 48
        width = width or 160
        snap = self.ward.snapshot if self.ward.focus else None
        if snap is not None:
            return self._bed_view(snap, height, width)
        # the beds first (the log keeps at least 3 lines), the log takes what is left
        n = len(self.ward.names)
        max_rows = max(1, min(n, height - 2 - 4 - 3))
        table_h = (max_rows if max_rows == n else max_rows + 1) + 4
        root = Layout()
        root.split_column(
            Layout(self._header(), size=1),
            Layout(Panel(self._table(max_rows, width), box=box.ROUNDED, title="beds"),
                   size=table_h),
            Layout(self._log(max(1, height - 2 - table_h - 2))),
            Layout(self._footer(), size=1),
        )  # fmt: skip
        return root

    def _bed_view(self, snap: dict, height: int, width: int):
        from ..monitor.view import MonitorView

        proxy = SimpleNamespace(
            state=snap["state"],
            trace=lambda: snap["trace"],
            refresh_quality=lambda: snap["state"].quality,
            recorder=True if snap["recording"] else None,
            events=SimpleNamespace(path=self.ward.events_path),
            frame_s=snap["frame_s"],
            t=snap["t"],
            sfreq=snap["sfreq"],
            ch_types=snap["ch_types"],
            lead_off_since=lambda: snap["lead_off"],
            source=SimpleNamespace(settings=snap["settings"]),
            pipeline=SimpleNamespace(
                bank=None if snap["bank"] is None else SimpleNamespace(**snap["bank"])
            ),
        )
        view = MonitorView(proxy, self.speed)
        view.wall_start = self.wall_start
        view.message = f"bed {self.ward.focus}: Esc or Enter back to the ward. {self.message}"
        screen = view.render(height - 1, width)
        top = Text(no_wrap=True)
        top.append(f" ward > {self.ward.focus} ", style="bold black on cyan")
        return Group(top, screen)


def pending(ward: Ward) -> bool:
    """Return True while a bed's cue waits for its grace period (the clock runs at real time)."""
    return any(r.get("pending") and r["pending"][2] != float("inf") for r in ward.rows.values())


def parse_keys(chars: str) -> list[str]:
    """Decode key presses into ward actions (``up``, ``down``, ``open``, ``back``, ...)."""
    out = []
    i = 0
    while i < len(chars):
        ch = chars[i]
        i += 1
        if ch == "\x1b":
            if i < len(chars) and chars[i] in "[O":
                j = i + 1
                while j < len(chars) and not ("@" <= chars[j] <= "~"):
                    j += 1
                final = chars[j] if j < len(chars) else ""
                i = j + 1
                out += {"A": ["up"], "B": ["down"]}.get(final, [])
                continue
            out.append("back")
            continue
        action = {"k": "up", "j": "down", "\r": "open", "\n": "open", "a": "ack", "v": "veto",
                  "y": "approve", "q": "quit", "b": "back"}.get(ch.lower())  # fmt: skip
        if action:
            out.append(action)
    return out


def apply_key(ward: Ward, view: WardView, action: str) -> bool:
    """Apply one key action; returns True when the technician asked to quit."""
    name = view.selected
    if action == "quit":
        return True
    if action in ("up", "down") and ward.focus is None:
        view.move(-1 if action == "up" else 1)
    elif action == "open":
        ward.focus = None if ward.focus else name
        view.message = ""
    elif action == "back":
        ward.focus = None
    elif action in ("ack", "veto", "approve"):
        row = ward.rows.get(name, {})
        if action != "ack" and not row.get("pending"):
            view.message = f"{name}: nothing to {action}"
        elif action == "ack" and not row.get("alerts"):
            view.message = f"{name}: no open alert"
        else:
            ward.command(name, action)
            view.message = {"ack": "acknowledged", "veto": "VETOED", "approve": "approved"}[
                action
            ] + f" ({name})"
    return False


def run_live(ward: Ward, speed: float | None, console: Console | None = None) -> str:
    """Run the ward with its live view until it ends or the technician quits.

    Returns
    -------
    str
        Why the ward ended (``end``, ``quit``, ``interrupt``...).
    """
    from rich.live import Live

    console = console or Console()
    view = WardView(ward, speed)
    ward.want_rows = True
    pacer = Pacer(speed)
    min_frame = 1.0 / MAX_FPS
    with KeyReader() as keys:
        live = Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False,
                    redirect_stderr=False)  # fmt: skip
        with live:
            try:
                last = -1.0
                while True:
                    if ward.stop_request is not None and not ward.finished:
                        ward.finish(ward.stop_request)
                    if not ward.finished:
                        eff = 1.0 if pending(ward) and (speed is None or speed > 1) else speed
                        target = pacer.target(ward.t, False, eff)
                        frame_end = time.monotonic() + min_frame
                        while (not ward.finished and ward.t + LIVE_ROUND_S <= target + 1e-9
                               and time.monotonic() < frame_end):  # fmt: skip
                            ward.step(LIVE_ROUND_S)
                    now = time.monotonic()
                    if now - last >= min_frame:
                        size = console.size
                        live.update(view.render(size.height, size.width), refresh=True)
                        last = now
                    if ward.finished and not keys.is_tty:
                        break
                    chars = keys.wait(min_frame)
                    quit_ = False
                    for action in parse_keys(chars):
                        quit_ = apply_key(ward, view, action) or quit_
                    if chars:
                        last = -1.0
                    if quit_:
                        if not ward.finished:
                            view.message = "finalising every bed: recordings, reports..."
                            size = console.size
                            live.update(view.render(size.height, size.width), refresh=True)
                            ward.finish("quit")
                        break
            except KeyboardInterrupt:
                ward.finish("interrupt")
    return ward.end_reason
