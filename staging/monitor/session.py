"""The headless monitoring loop: source -> filter bank -> stager -> detectors -> policy -> device.

:class:`MonitorSession` owns every decision of a monitored night. It advances on the device's
sample clock: it reads the source one *frame* at a time (1 s, aligned to the session start:
recording, device reports, the view's signals, the technician's keys) and hands the pipeline one
*block* at a time (5 s: stages, arousals, nightmare alerts, the policy's decisions). What it
concludes therefore depends only on the samples and on the technician's actions, never on the
wall clock, the speed, or whether a live view is attached. The live view
(:mod:`staging.monitor.view`) and the headless runner (:func:`run_headless`) are two consumers
of the same :class:`SessionState`.

Interventions proposed by the policy wait ``grace_s`` seconds of session time for the technician
(``veto`` cancels, ``approve`` sends at once); with nobody there, they are sent when the grace
period ends. The live view slows the clock to real time while an intervention is pending, so a
technician watching an accelerated night still has the grace period to decide.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dsp.quality import describe, epoch_quality
from headset.chunk import FLAG_GAP, FLAG_LEAD_OFF, Annotation, Chunk
from headset.stages import EPOCH_S, STAGE_NAMES, UNSCORED, parse_stage_annotation, stage_name

from ..events import arousal_record, nightmare_alert_record
from .events import EventWriter

if TYPE_CHECKING:
    from ..closedloop.arousal import ArousalEvent
    from ..closedloop.nightmare import NightmareAlert

#: Seconds of filtered signal kept for the live view's traces (its longest page) and band powers.
TRACE_S = 30.0
#: How many recent log lines (events) the state keeps for the view.
LOG_LINES = 200
#: Decisions of the policy that repeat while it waits (folded into one updated log line).
FOLDED_ACTIONS = ("held", "vetoed")
#: Annotations of a simulated source that come from the device link, not the simulator's truth.
DEVICE_ANNOTATIONS = ("Connection lost",)
#: What the level (0-1) of each cue kind means, for the screen.
LEVEL_NAME = {"audio": "volume", "vibration": "strength", "wake": "intensity"}


def cue_text(kind, level, duration_s=None) -> str:
    """Describe a cue in words with units, e.g. ``audio at volume 15 % for 3 s``.

    Parameters
    ----------
    kind : str
        ``audio``, ``vibration`` or ``wake``.
    level : float
        Intensity, 0-1.
    duration_s : float or None
        Seconds.
    """
    text = f"{kind} at {LEVEL_NAME.get(kind, 'level')} {float(level) * 100:.0f} %"
    if duration_s:
        text += f" for {float(duration_s):g} s"
    return text


@dataclass(eq=False)
class LogLine:
    """One line of the view's event log; a repeated policy decision updates it in place.

    Attributes
    ----------
    t : float
        Session time of the latest occurrence, seconds.
    kind : str
        The event type.
    text : str
        What the line says (the latest occurrence's text).
    count : int
        Occurrences folded into the line.
    since : float
        Session time of the first occurrence, seconds.
    """

    t: float
    kind: str
    text: str
    count: int = 1
    since: float = 0.0


# dsp.quality flags that make a channel "bad" (the rest, mains and movement, make it "warn").
_BAD_QUALITY = ("flat", "saturated", "lead-off", "non-finite")


@dataclass
class Alert:
    """Something the technician should look at (nightmare, lead-off, lost device)."""

    id: int
    t: float
    kind: str
    text: str
    acked: bool = False
    #: A nightmare alert's evidence: marker -> ``value``, ``baseline``, ``unit``, ``evidence``,
    #: ``weight`` (as in the ``nightmare_alert`` event).
    evidence: dict = field(default_factory=dict)


@dataclass
class Intervention:
    """One intervention of the policy and what became of it."""

    id: int
    t: float
    kind: str
    level: float
    duration_s: float
    reason: str
    status: str = "proposed"  # proposed -> sent | vetoed | failed
    deadline: float = 0.0
    outcome: str = ""
    attempts: int = 0


@dataclass
class ChannelQuality:
    """Signal quality of one channel over the last block (and last epoch where known)."""

    name: str
    type: str
    level: str = "ok"  # ok | warn | bad
    reason: str = ""
    rms_uv: float = 0.0


@dataclass
class SessionState:
    """Everything a view needs to draw the session; the session updates it, views only read it.

    Times are seconds since the session start on the sample clock.
    """

    source: str
    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    sfreq: float
    duration_s: float | None
    simulated: bool
    t: float = 0.0
    stage: int = UNSCORED
    confidence: float = 0.0
    probs: tuple[float, ...] = ()
    stage_since: float = 0.0
    out_of_distribution: bool = False
    hypnogram: list[int] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)
    true_stage: int = UNSCORED
    heart_rate: float | None = None
    nightmare_risk: float = 0.0
    quality: list[ChannelQuality] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    pending: Intervention | None = None
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES))
    #: A simulated source's ground truth (``Arousal``, ``Nightmare``, ``Cue: ...``), kept
    #: apart from the detections: (t, text) lines.
    truth_log: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=LOG_LINES)
    )
    #: Lights off / on marked by the technician: (t, "off" | "on").
    lights: list[tuple[float, str]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    device: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    paused: bool = False
    finished: bool = False
    end_reason: str = ""
    version: int = 0

    @property
    def time_in_stage(self) -> float:
        """Seconds since the current scored stage began."""
        return max(0.0, self.t - self.stage_since) if self.stage != UNSCORED else 0.0

    @property
    def open_alerts(self) -> list[Alert]:
        """Alerts not yet acknowledged, oldest first."""
        return [a for a in self.alerts if not a.acked]


@dataclass
class StepOutput:
    """What the processing pipeline concluded from one block (see :mod:`.pipeline`).

    Attributes
    ----------
    stages : list
        Stage estimates completed in the block (``epoch``, ``onset_s``, ``stage``, ``probs``,
        ``confidence``).
    arousals : list of ArousalEvent
        Arousals released in the block (:mod:`staging.events` gives their event fields).
    alerts : list of NightmareAlert
        Nightmare alerts raised in the block.
    decisions : list of dict
        Decisions of the intervention policy: ``t``, ``action`` (``proposed``, ``sent``,
        ``failed``, ``held``, ``cancelled``...), ``reason``, ``kind``, ``level``,
        ``duration_s`` and optional fields (``outcome``, ``attempt``...).
    notes : list of dict
        Other events to log (``type`` and fields).
    heart_rate : float or None
        Current heart rate, bpm.
    nightmare_risk : float or None
        Current nightmare risk, 0-1.
    """

    stages: list = field(default_factory=list)
    arousals: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    heart_rate: float | None = None
    nightmare_risk: float | None = None


class _RunTracker:
    """Follow runs of a per-channel boolean flag across blocks (gaps, lead-off)."""

    def __init__(self, n_ch: int):
        self.start = np.full(n_ch, -1, dtype=np.int64)  # sample index where the run began, -1 none

    def update(self, mask: np.ndarray, first: int):
        """Return (started, ended) lists of (channel, onset_sample, end_sample) for one block."""
        started, ended = [], []
        any_ch = mask.any(axis=1)
        for ch in range(mask.shape[0]):
            cur = self.start[ch]
            if not any_ch[ch]:
                if cur >= 0:
                    ended.append((ch, int(cur), first))
                    self.start[ch] = -1
                continue
            m = mask[ch]
            # edges inside the block
            d = np.diff(m.astype(np.int8), prepend=np.int8(1 if cur >= 0 else 0))
            for i in np.flatnonzero(d):
                if d[i] > 0:
                    self.start[ch] = first + int(i)
                    started.append((ch, first + int(i), -1))
                else:
                    ended.append((ch, int(self.start[ch]), first + int(i)))
                    self.start[ch] = -1
        return started, ended


class MonitorSession:
    """A monitored night: reads the source block by block and makes every decision.

    Parameters
    ----------
    source : object
        A source from :func:`staging.monitor.sources.open_source` (``ch_names``, ``ch_types``,
        ``sfreq``, ``read(n) -> Chunk | None``, ``send_cue(kind, level, duration_s)``,
        ``counters``, ``close()``, ``label``, ``simulated``).
    pipeline : object or None
        The processing chain (:class:`staging.monitor.pipeline.Pipeline`): ``process(chunk)``
        returns a :class:`StepOutput`; None runs without staging or detection (recording only).
    events : EventWriter or None
        Where the event stream goes (None: nowhere; the state still keeps the recent log).
    recorder : object or None
        ``write(chunk)``, ``annotate(Annotation)``, ``close()``; None records nothing.
    duration_s : float or None
        Stop after this many seconds of session time (None: when the source ends).
    grace_s : float
        Seconds of session time a proposed intervention waits for a veto before it is sent.
    frame_s : float
        Seconds read from the source at a time: the recording, the device reports (gaps,
        lead-off), the view's signals and the technician's keys work at this granularity.
    block_s : float
        Seconds of signal handed to the pipeline at a time (a whole number of frames): stage,
        detections and the policy's decisions are taken at block ends, so they depend only on
        the samples, never on how fast the session runs.
    meta : dict or None
        Extra fields of the ``session_start`` event (seed, profile, speed...).
    on_finish : list of callable or None
        Called with the session after the recorder is closed (report, sleeper profile update);
        errors are logged as ``note`` events and do not stop the others.
    view : bool
        Keep what a live view reads: every frame through the pipeline's display filter, the
        last ``TRACE_S`` seconds of it (:meth:`trace`) and its RMS (:meth:`refresh_quality`).
        False (headless, nobody looks) skips the filter and keeps no trace (an empty
        :meth:`trace`; the RMS is of the raw frame): 600 KiB less per bed at 256 Hz x 10
        channels. No decision depends on it.
    """

    def __init__(
        self,
        source,
        *,
        pipeline=None,
        events: EventWriter | None = None,
        recorder=None,
        duration_s: float | None = None,
        grace_s: float = 10.0,
        frame_s: float = 1.0,
        block_s: float = 5.0,
        meta: dict | None = None,
        on_finish=None,
        view: bool = True,
    ):
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0 seconds, got {grace_s}")
        if not frame_s > 0:
            raise ValueError(f"frame_s must be > 0 seconds, got {frame_s}")
        if duration_s is not None and not duration_s > 0:
            raise ValueError(f"duration_s must be > 0 seconds or None, got {duration_s}")
        self.source = source
        self.pipeline = pipeline
        self.events = events if events is not None else EventWriter(None)
        self.recorder = recorder
        self.grace_s = float(grace_s)
        self.sfreq = float(source.sfreq)
        self.ch_names = tuple(source.ch_names)
        self.ch_types = tuple(source.ch_types)
        self.frame_n = max(1, round(frame_s * self.sfreq))
        self.frame_s = self.frame_n / self.sfreq
        self.block_n = self.frame_n * max(1, round(block_s / self.frame_s))
        self.block_s = self.block_n / self.sfreq
        self._frames: list[Chunk] = []  # frames read but not yet given to the pipeline
        self.max_samples = None if duration_s is None else round(duration_s * self.sfreq)
        self.on_finish = list(on_finish or [])
        n_ch = len(self.ch_names)
        self.state = SessionState(
            source=getattr(source, "label", str(source)),
            ch_names=self.ch_names,
            ch_types=self.ch_types,
            sfreq=self.sfreq,
            duration_s=duration_s,
            simulated=bool(getattr(source, "simulated", False)),
            quality=[ChannelQuality(n, t) for n, t in zip(self.ch_names, self.ch_types)],
            counters=collections.Counter(),
            missing=list(getattr(pipeline, "missing", [])),
        )
        self.sample = 0  # next sample index to process
        self._pending_chunk: Chunk | None = None
        self.view = bool(view)
        self._trace_n = round(TRACE_S * self.sfreq) if self.view else 0
        self._trace = np.zeros((n_ch, self._trace_n))
        self._trace_pos = 0  # total samples written into the ring
        self._gaps = _RunTracker(1)
        self._leadoff = _RunTracker(n_ch)
        self._next_id = 1
        self._started = False
        self._closed = False
        self._meta = dict(meta or {})
        #: Set (e.g. by a signal handler) to end the session at the next block: the reason.
        self.stop_request: str | None = None
        self._last_block: tuple[Chunk, np.ndarray] | None = None
        self._quality_version = -1
        self._folded: LogLine | None = None  # the policy's latest folded "held" line

    # ------------------------------------------------------------------ clock
    @property
    def t(self) -> float:
        """Session time in seconds (samples processed / sfreq)."""
        return self.sample / self.sfreq

    def _id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    # ------------------------------------------------------------------ output
    def _emit(
        self,
        type: str,
        t: float | None = None,
        log: str | None = None,
        fold: bool = False,
        **fields: Any,
    ):
        t = self.t if t is None else t
        self.events.emit(t, type, **fields)
        self.state.counters[type] += 1
        if log is not None:
            self._log(t, type, log, fold)
        self.state.version += 1

    def _log(self, t: float, kind: str, text: str, fold: bool) -> None:
        """Add a line to the view's log; a ``fold`` line updates the previous one in place.

        Consecutive decisions of the policy to wait (``held``...) form one line with their
        count and the latest reason, so they never push the alert and the cue off the screen;
        any other line of the policy starts a new one.
        """
        log = self.state.log
        line = self._folded
        if fold and line is not None and line in log:
            line.t, line.text, line.count = t, text, line.count + 1
            return
        line = LogLine(t, kind, text, since=t)
        log.append(line)
        if kind == "intervention" or fold:
            self._folded = line if fold else None

    def _annotate(self, onset: float, duration: float, text: str):
        if self.recorder is not None:
            self.recorder.annotate(Annotation(float(onset), float(duration), text))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Emit ``session_start``; called by :meth:`step` if not called explicitly."""
        if self._started:
            return
        self._started = True
        self._emit(
            "session_start",
            t=0.0,
            log=f"session start: {self.state.source}",
            source=self.state.source,
            sfreq=self.sfreq,
            channels=list(self.ch_names),
            duration_s=self.state.duration_s,
            missing=self.state.missing,
            **self._meta,
        )
        for what in self.state.missing:
            self._emit("info", t=0.0, log=f"not available: {what}", text=f"not available: {what}")
        for text in getattr(self.pipeline, "notes", ()):
            self._emit("info", t=0.0, log=text, text=text)

    @property
    def finished(self) -> bool:
        """True once the session has ended (source exhausted, duration reached, or finish())."""
        return self.state.finished

    def _read_frame(self) -> Chunk | None:
        """Return the next frame: ``frame_n`` samples aligned to the session start, or less."""
        want = self.frame_n - (self.sample % self.frame_n)
        if self.max_samples is not None:
            want = min(want, self.max_samples - self.sample)
        if want <= 0:
            return None
        parts: list[Chunk] = []
        have = 0
        while have < want:
            if self._pending_chunk is not None:
                c, self._pending_chunk = self._pending_chunk, None
            else:
                c = self.source.read(want - have)
                if c is None or c.n_samples == 0:
                    if parts:
                        break
                    # a live source with nothing yet is not the end of the night
                    return None if getattr(self.source, "done", True) else _EMPTY
            if c.n_samples > want - have:  # keep the rest for the next block
                k = want - have
                self._pending_chunk = c.piece(k)
                c = c.piece(0, k)
            parts.append(c)
            have += c.n_samples
        if not parts:
            return None
        return Chunk.concatenate(parts)

    def step(self) -> bool:
        """Process one frame (and the pipeline at block ends). False once the session ended.

        Returns
        -------
        bool
            True while there is more to do.
        """
        if self.state.finished:
            return False
        self.start()
        if self.stop_request is not None:
            self._run_pipeline()
            self.finish(self.stop_request)
            return False
        chunk = self._read_frame()
        if chunk is None:
            self._run_pipeline()
            self.finish("duration" if self._duration_reached() else "end")
            return False
        if chunk is _EMPTY:
            return True
        self._take_frame(chunk)
        if self.sample % self.block_n == 0:
            self._run_pipeline()
        self._update_device()
        self.state.version += 1
        if self._duration_reached():
            self._run_pipeline()
            self.finish("duration")
            return False
        return True

    def _duration_reached(self) -> bool:
        return self.max_samples is not None and self.sample >= self.max_samples

    # ------------------------------------------------------------------ processing
    def _take_frame(self, chunk: Chunk) -> None:
        """Record a frame, follow the device's reports and keep it for the view."""
        st = self.state
        if chunk.first_sample != self.sample:
            # the driver fills gaps, so indices are continuous; anything else is a source bug
            # made visible rather than hidden
            self._emit(
                "info",
                log=f"sample index jump {self.sample} -> {chunk.first_sample}",
                text="sample index jump",
                expected=self.sample,
                got=chunk.first_sample,
            )
        if self.recorder is not None:
            self.recorder.write(chunk)
        self.sample = chunk.stop_sample
        st.t = self.t
        self._flags(chunk)  # events inside the frame first: "t" never goes backwards
        for ann in chunk.annotations:
            self._on_source_annotation(ann)
        show = getattr(self.pipeline, "display", None) if self.view else None
        filtered = show(chunk.data) if show is not None else chunk.data
        self._last_block = (chunk, filtered)
        self._quality_version = -1
        if self._trace_n:
            self._keep_trace(filtered)
        self._frames.append(chunk)

    def _run_pipeline(self) -> None:
        """Hand the frames read since the last block to the pipeline and act on its output."""
        if not self._frames:
            return
        frames, self._frames = self._frames, []
        chunk = Chunk.concatenate(frames)
        st = self.state
        out = self.pipeline.process(chunk) if self.pipeline is not None else StepOutput()
        for est in out.stages:
            self._on_stage(est)
        for ev in out.arousals:
            self._on_arousal(ev)
        if out.heart_rate is not None:
            st.heart_rate = out.heart_rate
        if out.nightmare_risk is not None:
            st.nightmare_risk = out.nightmare_risk
        for al in out.alerts:
            self._on_nightmare_alert(al)
        for note in out.notes:
            note = dict(note)
            self._emit(note.pop("type", "note"), log=note.pop("log", None), **note)
        self._on_decisions(out.decisions)
        self._check_pending()
        st.version += 1

    def _on_source_annotation(self, ann: Annotation) -> None:
        """Annotations that come with the samples (the recorder writes them as they are).

        Stage annotations of a simulator (or of a scored file) feed the view's "truth" line;
        device reports (``Gap``, ``Lead off``) are followed through the flags instead; every
        other one (``Arousal``, ``Nightmare``, ``Cue: ...``, ``Connection lost``...) becomes a
        ``source`` event with its onset, duration and text.
        """
        text = ann.description
        code = parse_stage_annotation(text)
        if code is not None:
            ep = int(round(ann.onset / EPOCH_S))
            truth = self.state.truth
            if ep >= len(truth):
                truth.extend([UNSCORED] * (ep + 1 - len(truth)))
            truth[ep] = code
            self.state.true_stage = code
            return
        if text == "Gap" or text.startswith("Lead off: "):
            return
        truth = self.state.simulated and text not in DEVICE_ANNOTATIONS
        self._emit(
            "source",
            log=None if truth else f"source: {text}",
            onset=float(ann.onset),
            duration=float(ann.duration),
            annotation=text,
        )
        if truth:
            length = f", {ann.duration:.0f} s" if ann.duration >= 1 else ""
            self.state.truth_log.append((float(ann.onset), f"{text}{length}"))
        if text == "Connection lost":
            self._raise_alert("device", f"connection lost {ann.duration:.0f} s", t=ann.onset)

    def _flags(self, chunk: Chunk) -> None:
        """Follow gap and lead-off runs (as the recorder annotates them); events in time order."""
        flags = chunk.flags
        if not flags.any() and not (self._gaps.start >= 0).any():
            if not (self._leadoff.start >= 0).any():
                return
        todo = []  # (sample, order, callable)
        gap = (flags & FLAG_GAP).any(axis=0, keepdims=True)
        _, ended = self._gaps.update(gap, chunk.first_sample)
        for _, on, end in ended:
            todo.append((end, 1, lambda on=on, end=end: self._on_gap(on, end)))
        lo = (flags & FLAG_LEAD_OFF) != 0
        started, ended = self._leadoff.update(lo, chunk.first_sample)
        for ch, on, _ in started:
            todo.append((on, 2, lambda ch=ch, on=on: self._on_lead_off_start(ch, on)))
        for ch, on, end in ended:
            todo.append((end, 0, lambda ch=ch, on=on, end=end: self._on_lead_off_end(ch, on, end)))
        for _, _, fn in sorted(todo, key=lambda x: (x[0], x[1])):
            fn()

    def _on_lead_off_start(self, ch: int, on: int) -> None:
        name = self.ch_names[ch]
        self._emit(
            "lead_off",
            t=on / self.sfreq,
            log=f"lead off: {name}",
            status="start",
            channel=name,
            onset=on / self.sfreq,
        )
        text = f"lead off: {name}"
        if not any(a.text == text for a in self.state.open_alerts):
            self._raise_alert("lead_off", text, t=on / self.sfreq)

    def _on_lead_off_end(self, ch: int, on: int, end: int) -> None:
        name = self.ch_names[ch]
        self._emit(
            "lead_off",
            t=end / self.sfreq,
            log=f"lead back on: {name} after {(end - on) / self.sfreq:.0f} s",
            status="end",
            channel=name,
            onset=on / self.sfreq,
            duration=(end - on) / self.sfreq,
            annotation=f"Lead off: {name}",
        )

    def _on_gap(self, on: int, end: int) -> None:
        self._emit(
            "gap",
            t=end / self.sfreq,
            log=f"gap {(end - on) / self.sfreq:.2f} s",
            onset=on / self.sfreq,
            duration=(end - on) / self.sfreq,
            annotation="Gap",
        )

    def refresh_quality(self) -> list[ChannelQuality]:
        """Update and return ``state.quality`` from the last block (for views; cheap, lazy).

        Per channel, worst first: lead-off, saturation or gap flags; a flat line (standard
        deviation under 0.5 µV) or a railed/popping one (peak-to-peak over 1500 µV) on exG
        channels: ``bad``; a filtered RMS above the type's noise limit: ``warn``; otherwise the
        last epoch's quality check, if the pipeline has one. Nothing here feeds a decision.
        """
        st = self.state
        if self._last_block is None or self._quality_version == st.version:
            return st.quality
        self._quality_version = st.version
        chunk, filtered = self._last_block
        raw, flags = chunk.data, chunk.flags
        n = raw.shape[1]
        if n == 0:
            return st.quality
        quality = None
        if n >= 8:
            mains = getattr(self.pipeline, "mains", None)  # a scripted pipeline may have none
            quality = epoch_quality(raw, self.sfreq, self.ch_types, mains=mains, flags=flags)
        rms = np.sqrt(np.einsum("ij,ij->i", filtered, filtered) / n)
        gap = np.bitwise_or.reduce(flags, axis=1) & FLAG_GAP if flags.any() else np.zeros(len(rms))
        for i, q in enumerate(st.quality):
            q.rms_uv = float(rms[i])
            problems = describe(quality.flags[i]) if quality is not None else []
            bad = [p for p in problems if p in _BAD_QUALITY]
            if bad:
                q.level, q.reason = "bad", bad[0]
            elif gap[i]:
                q.level, q.reason = "bad", "gap"
            elif problems:
                q.level, q.reason = "warn", problems[0]
            else:
                q.level, q.reason = "ok", ""
        return st.quality

    def _keep_trace(self, data: np.ndarray) -> None:
        n = data.shape[1]
        if n >= self._trace_n:
            self._trace[:] = data[:, -self._trace_n :]
            self._trace_pos += n
            return
        i = self._trace_pos % self._trace_n
        k = min(n, self._trace_n - i)
        self._trace[:, i : i + k] = data[:, :k]
        if k < n:
            self._trace[:, : n - k] = data[:, k:]
        self._trace_pos += n

    def trace(self) -> np.ndarray:
        """Return the last ``TRACE_S`` seconds of (filtered) signal, oldest first.

        Returns
        -------
        ndarray, shape (n_channels, n_samples)
            Microvolts; fewer samples at the very start of the session, none without a view.
        """
        n = min(self._trace_pos, self._trace_n)
        if self._trace_pos < self._trace_n or not self._trace_n:
            return self._trace[:, :n].copy()
        i = self._trace_pos % self._trace_n
        return np.concatenate([self._trace[:, i:], self._trace[:, :i]], axis=1)

    # ------------------------------------------------------------------ conclusions
    def _on_stage(self, est) -> None:
        st = self.state
        epoch = int(est.epoch)
        code = int(est.stage)
        onset = float(getattr(est, "onset_s", epoch * EPOCH_S))
        probs = np.asarray(est.probs, dtype=float)
        hyp = st.hypnogram
        if epoch >= len(hyp):
            hyp.extend([UNSCORED] * (epoch + 1 - len(hyp)))
        hyp[epoch] = code
        if code != st.stage:
            st.stage_since = onset
        st.stage = code
        st.confidence = float(est.confidence)
        st.probs = tuple(float(p) for p in probs)
        self._check_distribution()
        name = stage_name(code)
        text = f"Scored stage {name}"
        self._emit(
            "stage",
            log=None,
            epoch=epoch,
            stage=name,
            code=code,
            confidence=float(est.confidence),
            probs={s: float(p) for s, p in zip(STAGE_NAMES, probs)},
            onset=onset,
            duration=EPOCH_S,
            annotation=text,
        )
        self._annotate(onset, EPOCH_S, text)

    def _check_distribution(self) -> None:
        """Warn once when the stream's features leave what the stager was trained on."""
        stager = getattr(self.pipeline, "stager", None)
        if self.state.out_of_distribution or stager is None or len(self.state.hypnogram) % 10:
            return  # checked every 10th epoch (a median over the night so far)
        if getattr(stager, "out_of_distribution", False):
            self.state.out_of_distribution = True
            self._emit(
                "warning",
                log="stager: these signals lie outside what the model was trained on; "
                "treat the stages with caution",
                what="out_of_distribution",
                distance=round(float(stager.distance), 3),
                threshold=round(float(stager.model.ood_threshold), 3),
            )

    def _on_arousal(self, ev: ArousalEvent) -> None:
        rec = arousal_record(ev)
        self._emit("arousal", log=f"arousal in {rec['stage']}, {rec['duration']:.1f} s", **rec)
        self._annotate(rec["onset"], rec["duration"], rec["annotation"])

    def _on_nightmare_alert(self, al: NightmareAlert) -> None:
        rec = nightmare_alert_record(al)
        risk = rec["risk"]
        alert = self._raise_alert("nightmare", f"NIGHTMARE ALERT, risk {risk:.2f} (0-1)", t=self.t)
        alert.evidence = dict(rec["evidence"])
        self._emit(
            "nightmare_alert",
            log=f"nightmare alert, nightmare risk {risk:.2f} (0-1)",
            alert=alert.id,
            **rec,
        )
        self._annotate(rec["onset"], rec["duration"], rec["annotation"])

    def _raise_alert(self, kind: str, text: str, t: float) -> Alert:
        alert = Alert(self._id(), float(t), kind, text)
        self.state.alerts.append(alert)
        if len(self.state.alerts) > LOG_LINES:  # keep memory flat over a long night
            acked = [a for a in self.state.alerts if a.acked]
            self.state.alerts.remove(acked[0] if acked else self.state.alerts[0])
        return alert

    def _on_decisions(self, decisions) -> None:
        for d in decisions:
            self._on_decision(dict(d))

    def _on_decision(self, d: dict) -> None:
        """Log one decision of the intervention policy and follow the pending proposal."""
        st = self.state
        action = str(d.pop("action"))
        t = float(d.pop("t", self.t))
        kind = d.pop("kind", None)
        level = d.pop("level", None)
        duration_s = d.pop("duration_s", None)
        reason = str(d.pop("reason", ""))
        fields = {k: v for k, v in d.items() if v is not None}
        if "stage" in fields and not isinstance(fields["stage"], str):
            fields["stage"] = stage_name(int(fields["stage"]))
        cue = cue_text(kind, level, duration_s) if kind is not None and level is not None else ""
        extra: dict[str, Any] = {}
        ann = None
        if action == "proposed":
            iv = Intervention(
                self._id(), t, str(kind), float(level or 0), float(duration_s or 0), reason
            )
            iv.deadline = t + self.grace_s
            st.pending = iv
            st.interventions.append(iv)
            if len(st.interventions) > LOG_LINES:
                del st.interventions[0]
            extra["deadline"] = iv.deadline
        elif action in ("sent", "failed", "cancelled"):
            iv = st.pending
            st.pending = None  # the policy holds one proposal or command at a time
            if action == "sent":
                ann = f"Intervention: {kind}"
                self.state.counters["cues_sent"] += 1
                if iv is None or iv.kind != kind:  # sent without a proposal (no technician hook)
                    iv = Intervention(
                        self._id(), t, str(kind), float(level or 0), float(duration_s or 0), reason
                    )
                    st.interventions.append(iv)
                iv.status = "sent"
                iv.outcome = str(fields.get("outcome", ""))
            elif action == "failed":
                ann = f"Intervention failed: {kind}"
                if iv is not None:
                    iv.status = "failed"
            elif iv is not None and iv.status == "proposed":
                iv.status = "cancelled"
        if ann is not None:
            extra.update(onset=t, duration=float(duration_s or 0.0), annotation=ann)
        what = {"kind": kind, "level": level, "duration_s": duration_s}
        if action == "proposed":  # the reason says "awaiting acknowledgement": it is not
            log = f"PROPOSED {cue}: sent in {self.grace_s:g} s unless vetoed (v)"
        elif action == "acknowledged":
            log = None  # the approve line says who approved (technician or grace period)
        else:
            shown = action.upper() if action in ("sent", "failed") else action
            log = f"{shown}{' ' + cue if cue else ''}: {reason}"
        self._emit(
            "intervention",
            t=max(t, 0.0),
            log=log,
            fold=action in FOLDED_ACTIONS,
            status=action,
            **{k: v for k, v in what.items() if v is not None},
            reason=reason,
            **fields,
            **extra,
        )
        if ann is not None:
            self._annotate(t, float(duration_s or 0.0), ann)

    def _check_pending(self) -> None:
        iv = self.state.pending
        if iv is None or self.pipeline is None:
            return
        if self.t >= iv.deadline - 1e-9:
            self._emit(
                "approve",
                log=f"no veto within {self.grace_s:g} s: {iv.kind} cue goes ahead",
                id=iv.id,
                kind=iv.kind,
                by="grace period",
            )
            iv.deadline = float("inf")  # approved; the policy sends it at its next update
            self._on_decisions(self.pipeline.approve(self.t))

    def _update_device(self) -> None:
        c = getattr(self.source, "counters", None)
        if not c:
            return
        c = dict(c)
        old = self.state.device
        if c.get("reconnects", 0) > old.get("reconnects", 0):
            self._emit(
                "reconnect",
                log=f"device reconnected ({c['reconnects']})",
                reconnects=c["reconnects"],
            )
        self.state.device = c

    # ------------------------------------------------------------------ technician
    def ack(self) -> list[int]:
        """Acknowledge every open alert; returns their ids (empty: nothing to acknowledge)."""
        ids = []
        for a in self.state.open_alerts:
            a.acked = True
            ids.append(a.id)
        if ids:
            self._emit("ack", log=f"acknowledged {len(ids)} alert(s)", alerts=ids)
            if self.pipeline is not None and hasattr(self.pipeline, "on_ack"):
                self.pipeline.on_ack(ids, self.t)
        return ids

    def veto(self) -> bool:
        """Veto the pending intervention (a veto always wins). Returns True if there was one.

        The policy cancels the cue and sends none for its cooldown; if the alert persists
        after it, a new intervention is proposed.
        """
        iv = self.state.pending
        if iv is None:
            return False
        self.state.pending = None
        iv.status = "vetoed"
        text = f"Intervention vetoed: {iv.kind}"
        self._emit(
            "veto",
            log=f"VETOED {cue_text(iv.kind, iv.level, iv.duration_s)}",
            id=iv.id,
            kind=iv.kind,
            level=iv.level,
            onset=self.t,
            duration=0.0,
            annotation=text,
        )
        self._annotate(self.t, 0.0, text)
        if self.pipeline is not None:
            self._on_decisions(self.pipeline.veto(self.t))
        return True

    def approve(self) -> bool:
        """Approve the pending intervention: the policy sends it at once (next block).

        Returns
        -------
        bool
            True if there was one pending (not yet approved).
        """
        iv = self.state.pending
        if iv is None or iv.deadline == float("inf"):
            return False
        iv.deadline = float("inf")
        self._emit(
            "approve",
            log=f"approved by the technician: {iv.kind} cue goes ahead",
            id=iv.id,
            kind=iv.kind,
            by="technician",
        )
        if self.pipeline is not None:
            self._on_decisions(self.pipeline.approve(self.t))
        return True

    def note(self, text: str) -> None:
        """Write a technician's note into the event stream and the recording."""
        text = " ".join(str(text).split())
        if not text:
            raise ValueError("a note needs some text")
        self._emit(
            "note",
            log=f"note: {text}",
            text=text,
            onset=self.t,
            duration=0.0,
            annotation=f"Note: {text}",
        )
        self._annotate(self.t, 0.0, f"Note: {text}")

    def mark(self, type: str, text: str, onset: float, duration: float, log: str, **fields):
        """Write an event from outside the pipeline (the ward's) into the stream and recording.

        Parameters
        ----------
        type : str
            Event type, e.g. ``disturbance``.
        text : str
            The annotation written into the recording, e.g. ``Disturbance``.
        onset, duration : float
            Seconds on the session clock.
        log : str
            The line shown in the view's log.
        **fields
            Further fields of the event.
        """
        self._emit(type, log=log, onset=onset, duration=duration, annotation=text, **fields)
        self._annotate(onset, duration, text)

    def hold_cues(self, until_s: float, reason: str) -> None:
        """Cancel the pending cue and send none until ``until_s`` (session seconds)."""
        if self.pipeline is not None and hasattr(self.pipeline, "hold"):
            self._on_decisions(self.pipeline.hold(self.t, until_s, reason))

    def mark_lights(self, state: str) -> None:
        """Mark lights off or on: an event and an EDF+ annotation (``Lights off``/``on``).

        Parameters
        ----------
        state : {"off", "on"}
            What the technician just did.
        """
        if state not in ("off", "on"):
            raise ValueError(f"lights state must be 'off' or 'on', got {state!r}")
        text = f"Lights {state}"
        self.state.lights.append((self.t, state))
        self._emit(
            "lights",
            log=f"lights {state}",
            state=state,
            onset=self.t,
            duration=0.0,
            annotation=text,
        )
        self._annotate(self.t, 0.0, text)

    def lead_off_since(self) -> dict[int, float]:
        """Channels whose electrode the device reports off now, and since when.

        Returns
        -------
        dict of int to float
            Channel index -> onset of the lead-off run, seconds of session time.
        """
        on = self._leadoff.start
        return {int(ch): on[ch] / self.sfreq for ch in np.flatnonzero(on >= 0)}

    def set_paused(self, paused: bool) -> None:
        """Pause or resume (only the pacing stops; logged as ``pause``/``resume``)."""
        paused = bool(paused)
        if paused != self.state.paused:
            self.state.paused = paused
            self._emit("pause" if paused else "resume", log="paused" if paused else "resumed")

    # ------------------------------------------------------------------ end
    def finish(self, reason: str = "end") -> None:
        """End the session: close the recording and the stream, run the finishers (idempotent).

        Parameters
        ----------
        reason : str
            ``end`` (source exhausted), ``duration``, ``quit``, ``interrupt`` or ``error``.
        """
        if self._closed:
            return
        self._closed = True
        st = self.state
        st.finished = True
        st.end_reason = reason
        self.start()
        # close open runs so the stream and the recording agree
        for on in self._gaps.start[self._gaps.start >= 0]:
            self._on_gap(int(on), self.sample)
        for ch in np.flatnonzero(self._leadoff.start >= 0):
            self._on_lead_off_end(int(ch), int(self._leadoff.start[ch]), self.sample)
        if st.pending is not None:
            iv, st.pending = st.pending, None
            iv.status = "cancelled"
            self._emit(
                "intervention",
                log=f"cancelled {iv.kind}: session ended",
                status="cancelled",
                kind=iv.kind,
                level=iv.level,
                duration_s=iv.duration_s,
                reason="session ended",
            )
        self._update_device()
        errors = []
        flush = getattr(self.pipeline, "flush", None)
        if flush is not None:
            try:
                out = flush()
                for ev in out.arousals:
                    self._on_arousal(ev)
                for note in out.notes:
                    note = dict(note)
                    self._emit(note.pop("type", "note"), log=note.pop("log", None), **note)
            except Exception as exc:  # noqa: BLE001 - the files must still be closed
                errors.append(f"pipeline: {exc}")
        try:
            if self.recorder is not None:
                self.recorder.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"recorder: {exc}")
        counters = {k: int(v) for k, v in sorted(st.counters.items())}
        self._emit(
            "session_end",
            log=f"session end ({reason})",
            reason=reason,
            duration_s=self.t,
            epochs=len(st.hypnogram),
            events=counters,
            device={k: int(v) for k, v in sorted(st.device.items())},
        )
        for fn in self.on_finish:
            try:
                fn(self)
            except Exception as exc:  # noqa: BLE001 - one failing finisher must not stop the others
                errors.append(f"{getattr(fn, '__name__', 'finisher')}: {exc}")
        self.events.close()
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"source: {exc}")
        self.errors = errors
        st.version += 1


_EMPTY = object()  # sentinel: a live source had nothing yet


class Pacer:
    """Turn wall time into a budget of session time at a given speed.

    Parameters
    ----------
    speed : float or None
        Session seconds per wall second; None runs as fast as possible.
    max_lag_s : float
        Session seconds the budget may run ahead of the processing (a slow machine does not
        accumulate an ever-growing backlog, and a resume does not jump).
    """

    def __init__(self, speed: float | None, max_lag_s: float = 5.0):
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (max), got {speed}")
        self.speed = speed
        self.max_lag_s = max_lag_s
        self._budget = 0.0
        self._last = time.monotonic()

    @property
    def budget(self) -> float:
        """Session time (s) the loop may process up to, as of the last :meth:`target` call."""
        return self._budget

    def target(self, session_t: float, paused: bool, speed: float | None = None) -> float:
        """Return the session time the loop may process up to now.

        Parameters
        ----------
        session_t : float
            Where the session is (seconds).
        paused : bool
            True freezes the budget.
        speed : float or None
            Override of the speed for this interval (e.g. 1 while an intervention is pending).
        """
        now = time.monotonic()
        dt, self._last = now - self._last, now
        speed = self.speed if speed is None else speed
        if paused:
            self._budget = session_t
            return session_t
        if speed is None:
            return float("inf")
        self._budget = min(max(self._budget, session_t) + dt * speed, session_t + self.max_lag_s)
        if self._budget < session_t:
            self._budget = session_t
        return self._budget


def run_headless(session: MonitorSession, speed: float | None) -> str:
    """Run a session to its end without a view, paced at ``speed`` (None: as fast as possible).

    Parameters
    ----------
    session : MonitorSession
        The session (not yet started or already running).
    speed : float or None
        Session seconds per wall second.

    Returns
    -------
    str
        Why the session ended (``end``, ``duration``, or the ``stop_request`` reason).
    """
    pacer = Pacer(speed)
    try:
        if speed is None:
            while session.step():
                pass
        else:
            while not session.finished:
                target = pacer.target(session.t, False)
                while session.t + session.frame_s <= target + 1e-9 and session.step():
                    pass
                if session.stop_request is not None:
                    session.step()  # finishes
                if not session.finished:
                    wait = (session.t + session.frame_s - pacer.budget) / speed
                    time.sleep(min(max(wait, 0.001), 0.25))
    except KeyboardInterrupt:
        session.finish("interrupt")
    return session.state.end_reason
