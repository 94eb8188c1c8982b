"""The morning report's figures, on a clock-time axis (matplotlib, no display needed).

Every figure's x axis is the clock time of the night (``HH:MM``, from the recording's start time
in its header, so 23:00 is followed by 00:00, never by "24.0 h"); a recording without a start
time gets the elapsed time ``h:mm`` since its start instead. Each function writes one PNG and
returns its title and caption, which the page shows under the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from headset.stages import EPOCH_S

_STAGE_ROW = {0: 4, 4: 3, 1: 2, 2: 1, 3: 0}  # plot rows: W top, then R, N1, N2, N3
_STAGE_COLOR = {0: "#e69f00", 1: "#56b4e9", 2: "#0072b2", 3: "#002b5c", 4: "#d55e00"}
_STAGE_LABEL = {0: "wake", 1: "N1", 2: "N2", 3: "N3", 4: "REM", -1: "unscored"}
_ALERT_COLOR = "#cc0000"
_CUE_COLOR = "#8000ff"
#: Candidate tick spacings of the clock axis, seconds.
_TICK_STEPS_S = (60, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class Figure:
    """One figure of the report.

    Attributes
    ----------
    path : Path
        The PNG file.
    title : str
        Heading shown above the image.
    caption : str
        What the figure shows and where its data come from.
    """

    path: Path
    title: str
    caption: str


class ClockAxis:
    """Seconds since the recording start shown as clock time.

    Parameters
    ----------
    start : datetime or None
        Clock time of the recording start (header); None shows elapsed ``h:mm``.
    """

    def __init__(self, start: datetime | None):
        self.start = start
        self._sod = None if start is None else start.hour * 3600 + start.minute * 60 + start.second

    def label(self, t_s: float, seconds: bool = False) -> str:
        """Return the clock time (``HH:MM``, with ``:SS`` if asked) of ``t_s`` seconds in."""
        if self._sod is None:
            t = int(round(t_s))
            return f"{t // 3600}:{t % 3600 // 60:02d}" + (f":{t % 60:02d}" if seconds else "")
        t = int(round(self._sod + t_s)) % 86400
        return f"{t // 3600:02d}:{t % 3600 // 60:02d}" + (f":{t % 60:02d}" if seconds else "")

    def ticks(self, t_end: float) -> np.ndarray:
        """Tick positions (seconds since start) on round clock times, about 4-12 of them."""
        step = next((s for s in _TICK_STEPS_S if t_end / s <= 12), _TICK_STEPS_S[-1])
        sod = self._sod or 0
        first = -(sod % step) % step
        return np.arange(first, t_end + 1e-9, step, dtype=float)

    @property
    def xlabel(self) -> str:
        """Axis label naming the clock."""
        if self.start is None:
            return "time since the recording start (h:mm; the file has no start time)"
        return f"clock time (recording started {self.start:%d %b %Y %H:%M:%S})"

    def apply(self, ax, t_end: float) -> None:
        """Set limits, ticks, labels and the axis title of ``ax``."""
        ax.set_xlim(0, t_end)
        ticks = self.ticks(t_end)
        ax.set_xticks(ticks, [self.label(t) for t in ticks])
        ax.set_xlabel(self.xlabel)


def _fig(height: float = 3.2):
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(11, height), dpi=100, layout="constrained")


def _lights(ax, lights: dict) -> None:
    for key, text in (("off_s", "lights off"), ("on_s", "lights on")):
        t = lights.get(key)
        if t is not None:
            ax.axvline(t, color="0.2", lw=1.2, ls=":")
            ax.annotate(text, (t, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                        textcoords="offset points", fontsize=8, color="0.2")  # fmt: skip


def plot_hypnogram(path, hyp, events: dict, clock: ClockAxis, title: str, lights: dict) -> None:
    """Write the hypnogram with arousals, true nightmares, alerts and cues.

    Parameters
    ----------
    path : Path
        PNG to write.
    hyp : ndarray of int, shape (n_epochs,)
        Stage per 30-s epoch (-1 unscored: no line).
    events : dict
        ``arousals`` (onsets, s), ``nightmares`` ((onset, duration) s), ``alerts`` (s),
        ``cues`` (s): times since the recording start.
    clock : ClockAxis
        The time axis.
    title : str
        Figure title.
    lights : dict
        ``off_s`` / ``on_s``: lights off and on (s since start) when marked.
    """
    fig = _fig()
    ax = fig.add_subplot()
    t = np.arange(hyp.size + 1) * EPOCH_S
    rows = np.array([_STAGE_ROW.get(int(s), np.nan) for s in hyp], dtype=float)
    ax.step(t[:-1], rows, where="post", color="0.3", lw=1.0)
    for e in np.flatnonzero(hyp == 4):
        ax.plot(t[e : e + 2], [3, 3], color=_STAGE_COLOR[4], lw=3, solid_capstyle="butt")
    for i, (on, dur) in enumerate(events.get("nightmares", [])):
        ax.axvspan(on, on + dur, color="#cc79a7", alpha=0.35, lw=0,
                   label="nightmare (simulator truth)" if i == 0 else None)  # fmt: skip
    ar = events.get("arousals", [])
    if len(ar):
        ax.plot(ar, np.full(len(ar), 4.55), "|", color="#009e73", ms=8, label="arousal")
    al = events.get("alerts", [])
    if len(al):
        ax.plot(al, np.full(len(al), 3.5), "v", color=_ALERT_COLOR, ms=6, label="nightmare alert")
    for i, tc in enumerate(events.get("cues", [])):
        ax.axvline(tc, color=_CUE_COLOR, lw=0.8, ls="--", label="cue sent" if i == 0 else None)
    _lights(ax, lights)
    ax.set_yticks([0, 1, 2, 3, 4], ["N3", "N2", "N1", "REM", "Wake"])
    ax.set_ylim(-0.5, 4.9)
    ax.set_ylabel("stage")
    clock.apply(ax, t[-1])
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    fig.savefig(path)


def plot_spectrogram(path, freqs, psd, clock: ClockAxis, ch_name: str) -> None:
    """Write the EEG spectrogram, 0.5-30 Hz per 30-s epoch.

    Parameters
    ----------
    path : Path
        PNG to write.
    freqs : ndarray, shape (n_freqs,)
        Frequencies, Hz.
    psd : ndarray, shape (n_epochs, n_freqs)
        Power spectral density per epoch, µV²/Hz.
    clock : ClockAxis
        The time axis.
    ch_name : str
        The EEG channel.
    """
    fig = _fig()
    ax = fig.add_subplot()
    db = 10 * np.log10(np.maximum(psd, 1e-6)).T
    t = np.arange(psd.shape[0] + 1) * EPOCH_S
    lo, hi = np.percentile(db, [2, 98])
    df = freqs[1] - freqs[0] if freqs.size > 1 else 1.0
    f_edges = np.concatenate([freqs - df / 2, [freqs[-1] + df / 2]])
    im = ax.pcolormesh(t, f_edges, db, shading="flat", cmap="viridis", vmin=lo, vmax=hi)
    fig.colorbar(im, ax=ax, label="power (dB re 1 µV²/Hz)")
    ax.set_ylabel("frequency (Hz)")
    clock.apply(ax, t[-1])
    ax.set_title(f"EEG spectrogram, {ch_name}")
    fig.savefig(path)


def plot_heart_rate(path, t, hr, hyp, alerts, clock: ClockAxis) -> None:
    """Write the beat-to-beat heart rate coloured by stage, with the nightmare alerts.

    Parameters
    ----------
    path : Path
        PNG to write.
    t : ndarray, shape (n_beats,)
        Beat times, seconds since the recording start.
    hr : ndarray, shape (n_beats,)
        Instantaneous heart rate, beats per minute.
    hyp : ndarray of int, shape (n_epochs,)
        Stage per epoch (colours).
    alerts : sequence of float
        Nightmare alert times, seconds since the start (thin vertical lines).
    clock : ClockAxis
        The time axis.
    """
    from matplotlib.lines import Line2D

    fig = _fig()
    ax = fig.add_subplot()
    ep = np.minimum((t // EPOCH_S).astype(int), hyp.size - 1)
    handles = []
    for st in (0, 4, 1, 2, 3, -1):
        m = hyp[ep] == st
        if np.any(m):
            color = _STAGE_COLOR.get(st, "0.6")
            ax.plot(t[m], hr[m], ".", ms=1.5, color=color)
            handles.append(Line2D([], [], ls="", marker="o", ms=5, color=color,
                                  label=_STAGE_LABEL[st]))  # fmt: skip
    for a in alerts:
        ax.axvline(a, color=_ALERT_COLOR, lw=0.8, ls="--")
    if len(alerts):
        handles.append(Line2D([], [], color=_ALERT_COLOR, lw=0.8, ls="--", label="nightmare alert"))
    if hr.size:
        lo, hi = np.percentile(hr, [0.5, 99.5])
        ax.set_ylim(max(0.0, lo - 5), hi + 5)
    ax.set_ylabel("heart rate (beats/min)")
    clock.apply(ax, hyp.size * EPOCH_S)
    ax.set_title("Heart rate, beat to beat")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
              frameon=False, title="stage", title_fontsize=8)  # fmt: skip
    fig.savefig(path)
