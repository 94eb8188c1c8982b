"""The morning report: sleep statistics, events, signal quality and recommendations of one night.

:func:`build_report` reads a recording (EDF/EDF+/BDF, the project's own or real PSG) in
blocks, and writes to a directory:

- ``report.html``: one self-contained page (rendered from the jinja2 template
  ``templates/report.html``; figures embedded as base64 PNG, no external file),
- ``hypnogram.png`` (stages with arousals, nightmare episodes, alerts and cues),
  ``spectrogram.png`` (one EEG channel, 0.5-30 Hz per 30-s epoch) and ``heart_rate.png``, all on
  a clock-time axis (:mod:`staging.night.report_figures`),
- ``report.json``: the summary (statistics, events, signal quality, interventions, heart rate,
  recommendations, notes).

It is built in named steps: the stage sources (:func:`_stage_sources`), the recording's
annotations and event stream (:func:`_recording_events`), one detection pass over the samples
(:class:`_Pass`: spectrogram, R peaks, signal quality, detectors when their annotations are
absent), arousals and nightmare alerts, heart rate, signal quality, interventions, statistics and
recommendations, figures, and the page (:mod:`staging.night.report_page`).

Where things come from (each stated in the report's ``sources``):

- **stages**: the pipeline's ``Scored stage X`` annotations (the online stager of a monitored
  session); without them :func:`staging.stager.score` (the offline stager) stages the recording.
  ``Sleep stage X`` annotations (the simulator's truth, or a scorer's) are an independent
  scoring of the same night: the agreement with them is shown, saying which they are. They are
  used directly only when the recording cannot be scored (and then no agreement is shown).
- **arousals**: ``Detected arousal`` annotations, else
  :class:`staging.closedloop.arousal.ArousalDetector` run on the recording; ``Arousal``
  annotations (truth) are compared with them.
- **nightmare alerts**: ``Nightmare alert`` annotations (and the monitor's event stream when
  given), else :class:`staging.closedloop.nightmare.NightmareDetector` run on the recording;
  whether the sleeper woke within 3 minutes comes from the hypnogram that followed.
- **interventions**: ``Intervention: <cue>``, ``Intervention failed: <cue>`` and ``Intervention
  vetoed: <cue>`` annotations (one row each); the event stream adds the intensity, who approved
  and the monitor's judgement of the outcome. A simulated night without a monitor has the
  simulator's ``Cue: <cue> -> <response>`` annotations instead.
- **signal quality**: per 30-s epoch and channel, :func:`dsp.quality.epoch_quality` on the raw
  samples (flat, saturated, lead-off, mains, movement), the device's gap and lead-off flags, and
  the ``Lead off``, ``Gap``, ``Connection lost`` and (simulated) ``Electrode pop`` annotations.
- **heart rate**: R peaks of the ECG channel (:mod:`dsp.ecg`); without ECG the report says so.
- **lights off / on**: ``Lights off`` / ``Lights on`` annotations when the technician marked
  them (the statistics then cover that interval), else the recording's start and end.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from dsp import quality as dq
from dsp.ecg import RPeakDetector, heart_rate, rr_intervals
from dsp.spectral import welch_psd
from dsp.validate import check_option
from headset.chunk import FLAG_GAP
from headset.errors import HeadsetError
from headset.stages import (
    EPOCH_S,
    SCORED_STAGE_PREFIX,
    STAGE_NAMES,
    TRUE_STAGE_PREFIX,
    UNSCORED,
    parse_stage_annotation,
    stage_name,
)

from ..channels import pick_channels
from ..closedloop.arousal import ArousalDetector, match_events
from ..closedloop.nightmare import NightmareDetector
from ..closedloop.profile import SleeperProfile
from ..errors import StagingError
from ..stager.evaluate import epoch_agreement
from .recommend import NightRecord, recommend
from .report_figures import ClockAxis, Figure, plot_heart_rate, plot_hypnogram, plot_spectrogram
from .stats import SleepStats, alert_outcomes, sleep_statistics

#: Every file :func:`build_report` may write into its directory.
REPORT_FILES = ("report.html", "report.json", "hypnogram.png", "spectrogram.png", "heart_rate.png")
#: What a sleep study may measure that a dreamnet headset does not: (what, channel-name
#: fragments that show it was recorded, what cannot be scored without it). The report lists
#: those the recording lacks instead of staying silent about them.
MEASURES = (
    ("respiration (airflow, effort)", ("resp", "flow", "thor", "abdo", "effort", "nasal"),
     "apnoea and hypopnoea cannot be scored"),
    ("oxygen saturation (SpO2)", ("spo2", "sao2", "oxi", "pleth"),
     "desaturations cannot be scored"),
    ("leg EMG", ("leg", "tib", "lat"), "periodic limb movements cannot be scored"),
    ("ECG", ("ecg", "ekg"), "no heart rate or heart-rate variability"),
    ("body position", ("pos",), "sleep cannot be split by position"),
    ("snoring (microphone)", ("snor", "mic"), "snoring cannot be scored"),
)  # fmt: skip
_BLOCK_S = 300.0  # seconds read at a time
#: A cue's outcome from the recording alone: did the sleeper wake within this many seconds.
_OUTCOME_WINDOW_S = 180.0
#: Quality flags that make an epoch of a channel unusable (mains is removed by the notch filter).
_UNUSABLE = dq.FLAT | dq.SATURATED | dq.LEAD_OFF | dq.NONFINITE | dq.MOVEMENT


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    html : Path
        The self-contained page.
    json : Path
        The summary.
    figures : dict of str to Path
        ``hypnogram``, ``spectrogram``, ``heart_rate`` PNG files (those that could be made).
    summary : dict
        The content of ``report.json``.
    """

    html: Path
    json: Path
    figures: dict[str, Path]
    summary: dict = field(default_factory=dict)


# ---- reading -------------------------------------------------------------------------------------
def stages_from_annotations(annotations, n_epochs: int, prefix: str) -> np.ndarray | None:
    """Hypnogram from stage annotations with a given prefix.

    Parameters
    ----------
    annotations : sequence of Annotation
        The recording's annotations.
    n_epochs : int
        Epochs in the recording.
    prefix : str
        ``"Sleep stage "`` (truth or human scorer) or ``"Scored stage "`` (the pipeline).

    Returns
    -------
    ndarray of int8, shape (n_epochs,) or None
        Stage per epoch (-1 where none), or None when no annotation has this prefix. An
        annotation longer than one epoch fills every epoch it covers.
    """
    hyp = np.full(n_epochs, UNSCORED, dtype=np.int8)
    found = False
    p = prefix.lower()
    for a in annotations:
        text = a.description.strip()
        if not text.lower().startswith(p) and not (
            p == TRUE_STAGE_PREFIX.lower() and text.lower() == "movement time"
        ):
            continue
        st = parse_stage_annotation(text)
        if st is None:
            continue
        found = True
        e0 = int(math.floor(a.onset / EPOCH_S + 1e-6))
        n = max(1, int(round(a.duration / EPOCH_S))) if a.duration > 0 else 1
        for e in range(max(e0, 0), min(e0 + n, n_epochs)):
            hyp[e] = st
    return hyp if found else None


def _parse_events_jsonl(path) -> list[dict]:
    path = Path(path)
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StagingError(f"{path}: cannot read the event stream ({exc.strerror})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            raise StagingError(f"{path}: line {i} is not JSON") from None
        if not isinstance(ev, dict) or "t" not in ev or "type" not in ev:
            raise StagingError(f"{path}: line {i} lacks the 't' and 'type' fields")
        out.append(ev)
    return out


def not_measured(ch_names, ch_types) -> list[str]:
    """Return what the recording does not measure, and what that leaves unscored.

    Parameters
    ----------
    ch_names, ch_types : sequence of str
        The recording's channels and their MNE types.

    Returns
    -------
    list of str
        One line per row of :data:`MEASURES` that no word of a channel name or type begins
        with, e.g.
        ``"oxygen saturation (SpO2): desaturations cannot be scored"``.
    """
    words = re.split(
        r"[^a-z0-9]+", " ".join(f"{n} {t}" for n, t in zip(ch_names, ch_types)).lower()
    )
    return [
        f"{what}: {then}"
        for what, keys, then in MEASURES
        if not any(w.startswith(keys) for w in words if w)
    ]


def _is_simulated(header, anns) -> bool:
    """Return True when the recording comes from the simulated sleeper (header or truth)."""
    ident = f"{header.patient} {header.recording}".lower()
    if "simulated" in ident or "dreamnet_simulator" in ident:
        return True
    truth_only = ("Nightmare", "Awakening", "Arousal", "Movement")
    return any(
        a.description in truth_only or a.description.startswith(("Cue: ", "Electrode pop: "))
        for a in anns
    )


# ---- step 1: stage sources -----------------------------------------------------------------------
def _stage_sources(path, anns, n_epochs, stages, simulated, allow_truncated, notes, sources):
    """Return the stages the report uses and their agreement with an independent scoring.

    The agreement is None when there is no independent scoring (no ``Sleep stage``
    annotations, or they are the stages used).
    """
    true_h = stages_from_annotations(anns, n_epochs, TRUE_STAGE_PREFIX)
    scored_h = stages_from_annotations(anns, n_epochs, SCORED_STAGE_PREFIX)
    truth_name = (
        "the simulator's ground truth (Sleep stage annotations of this synthetic recording)"
        if simulated
        else "the Sleep stage annotations in the file (a scorer's; the file does not say whom)"
    )
    hyp, why = None, "no stager"
    if stages in ("auto", "scored") and scored_h is not None:
        hyp = scored_h
        sources["stages"] = "dreamnet online stager (Scored stage annotations of the session)"
    elif stages == "scored" or (stages == "auto" and scored_h is None):
        hyp, why = _score(path, n_epochs, notes, allow_truncated)
        if hyp is not None:
            sources["stages"] = "dreamnet offline stager (staging.stager.score) on this recording"
        elif stages == "scored":
            raise StagingError(f"{path}: no Scored stage annotations and the stager failed: {why}")
    if hyp is None:
        if true_h is None:
            raise StagingError(
                f"{path}: no stage annotations and the recording cannot be staged: {why}"
            )
        hyp = true_h
        sources["stages"] = truth_name[0].upper() + truth_name[1:]
        return hyp, None
    if true_h is None:
        return hyp, None
    trained = None if simulated else _in_training_data(path)
    if trained is not None:
        notes.append(
            f"agreement with the Sleep stage annotations not shown: this recording ({trained}) "
            "is in the stager's training data, so it would be a training fit, not a check"
        )
        return hyp, None
    po, kappa, n_both = epoch_agreement(hyp, true_h)
    return hyp, {"accuracy": po, "kappa": kappa, "epochs": n_both, "reference": truth_name}


def _in_training_data(path: Path) -> str | None:
    """Return the training file the default stager learned from that ``path`` is, or None.

    Matched by the file name or the first 16 hex digits of its SHA-256, as the model's
    ``trained_on`` metadata lists them.
    """
    import hashlib

    from ..stager.model import default_model

    files = default_model().meta.get("trained_on", {}).get("edf", [])
    if not files:
        return None
    if any(f.get("file") == path.name for f in files):
        return path.name
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()[:16]
    return next((f.get("file") for f in files if f.get("sha256_16") == digest), None)


def _score(path, n_epochs, notes, allow_truncated=False):
    """Return (stages, None), or (None, why the recording could not be scored)."""
    from ..stager.score import score

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = score(path, allow_truncated=allow_truncated)
        for w in caught:
            notes.append(f"stager: {w.message}")
    except (StagingError, HeadsetError) as exc:
        why = str(exc).removeprefix(f"{path.name}: ").removeprefix(f"{path}: ")
        notes.append(f"stager failed: {why}")
        return None, why
    h = np.full(n_epochs, UNSCORED, dtype=np.int8)
    k = min(n_epochs, len(res.stages))
    h[:k] = res.stages[:k]
    return h, None


# ---- step 2: annotations and the event stream ----------------------------------------------------
@dataclass
class _Events:
    """What the recording's annotations (and the monitor's event stream) say happened."""

    detected_arousals: list[float]
    true_arousals: list[float]
    true_nightmares: list[tuple[float, float]]
    alerts: list[float]
    stream: list[dict]
    interventions: list[dict]
    notes: list[dict]
    quality: list  # Annotation: Lead off, Gap, Connection lost, Electrode pop, Saturation
    lights: dict


def _after(text: str) -> str:
    return text.split(":", 1)[1].strip()


def _interventions_from(anns, stream) -> tuple[list[dict], str]:
    """Interventions (one per annotation, else per stream event) and where they come from."""
    status = {"Intervention: ": "sent", "Intervention failed: ": "failed",
              "Intervention vetoed: ": "vetoed"}  # fmt: skip
    rows = [
        {"t": a.onset, "cue": _after(a.description), "status": s}
        for a in anns
        for p, s in status.items()
        if a.description.startswith(p)
    ]
    if rows:
        return rows, "Intervention annotations of the recording"
    rows = [
        {"t": float(e["t"]), "cue": str(e.get("kind", "?")), "status": e["status"]}
        for e in stream
        if e.get("type") == "intervention" and e.get("status") in ("sent", "failed")
    ] + [
        {"t": float(e["t"]), "cue": str(e.get("kind", "?")), "status": "vetoed"}
        for e in stream
        if e.get("type") == "veto"
    ]
    if rows:
        return sorted(rows, key=lambda r: r["t"]), "the monitor's event stream"
    rows = []
    for a in anns:
        if a.description.startswith("Cue: "):
            cue, _, resp = _after(a.description).partition("->")
            rows.append({"t": a.onset, "cue": cue.strip(), "status": "sent",
                         "outcome": f"simulated response: {resp.strip()}"})  # fmt: skip
    if rows:
        return rows, "the simulator's Cue annotations (no monitor)"
    return rows, "no intervention annotation in the recording (nor in an event stream)"


def _recording_events(anns, events_path, sources) -> _Events:
    """Sort the annotations (and the event stream) into what the report uses."""
    stream = _parse_events_jsonl(events_path) if events_path else []

    def onsets(text):
        return [a.onset for a in anns if a.description == text]

    notes = [{"t": a.onset, "text": _after(a.description)}
             for a in anns if a.description.startswith("Note:")]  # fmt: skip
    if not notes:  # not in the recording: the event stream has them
        notes = [{"t": float(e["t"]), "text": str(e.get("text", ""))}
                 for e in stream if e.get("type") == "note"]  # fmt: skip
    alerts = onsets("Nightmare alert") or [
        float(e["t"]) for e in stream if e.get("type") == "nightmare_alert"
    ]
    interventions, sources["interventions"] = _interventions_from(anns, stream)
    quality_prefix = ("Lead off: ", "Electrode pop: ", "Saturation: ")
    lights = {}
    for key, text in (("off_s", "lights off"), ("on_s", "lights on")):
        at = [a.onset for a in anns if a.description.strip().lower() == text]
        if at:
            lights[key] = at[0]
    return _Events(
        detected_arousals=onsets("Detected arousal"),
        true_arousals=onsets("Arousal"),
        true_nightmares=[(a.onset, a.duration) for a in anns if a.description == "Nightmare"],
        alerts=sorted(alerts),
        stream=stream,
        interventions=interventions,
        notes=notes,
        quality=[
            a
            for a in anns
            if a.description in ("Gap", "Connection lost")
            or a.description.startswith(quality_prefix)
        ],  # fmt: skip
        lights=lights,
    )


# ---- step 3: one pass over the samples -----------------------------------------------------------
class _Pass:
    """One streaming pass over the recording: spectrogram, R peaks, quality, detectors."""

    def __init__(self, rep, hyp, run_arousal, run_nightmare, baseline, mains):
        self.sfreq = fs = rep.sfreq
        self.names, self.types = rep.ch_names, rep.ch_types
        eeg = pick_channels(self.names, self.types, "eeg")
        self.eeg = eeg[0] if eeg else None
        ecg = pick_channels(self.names, self.types, "ecg")
        self.ecg = ecg[0] if ecg else None
        self.mains = mains
        self.epoch_n = int(round(EPOCH_S * fs))
        self.psd_rows: list[np.ndarray] = []
        self.freqs = None
        self.qflags: list[np.ndarray] = []  # per epoch: (n_channels,) dsp.quality bits
        self.gaps: list[np.ndarray] = []  # per epoch: (n_channels,) True if a sample was missing
        self._buf = np.zeros((len(self.names), 0))
        self._fbuf = np.zeros((len(self.names), 0), np.uint8)
        self.rpeaks = RPeakDetector(fs) if self.ecg is not None and fs >= 100 else None
        self.peaks: list[np.ndarray] = []
        self.arousal = self.nightmare = None
        self.notes: list[str] = []
        if run_arousal and self.eeg is not None:
            try:
                self.arousal = ArousalDetector(fs, self.names, self.types)
                self.arousal.set_hypnogram(hyp)
            except StagingError as exc:
                self.notes.append(f"arousals not detected: {exc}")
        if run_nightmare and fs >= 100:
            try:
                self.nightmare = NightmareDetector(fs, self.names, self.types, baseline=baseline)
                self.nightmare.set_hypnogram(hyp)
            except ValueError as exc:
                self.notes.append(f"nightmares not detected: {exc}")

    def push(self, chunk):
        self._buf = np.concatenate([self._buf, chunk.data], axis=1)
        self._fbuf = np.concatenate([self._fbuf, chunk.flags], axis=1)
        k = self._buf.shape[1] // self.epoch_n
        if k:
            n = k * self.epoch_n
            self._epochs(self._buf[:, :n], self._fbuf[:, :n], k)
            self._buf, self._fbuf = self._buf[:, n:], self._fbuf[:, n:]
        if self.rpeaks is not None:
            self.peaks.append(
                self.rpeaks.push(chunk.data[self.ecg], chunk.flags[self.ecg], chunk.first_sample)
            )
        if self.arousal is not None:
            self.arousal.push(chunk)
        if self.nightmare is not None:
            self.nightmare.push(chunk)

    def _epochs(self, data, flags, k):
        """Spectrogram rows and quality flags of ``k`` whole epochs."""
        ep = data.reshape(len(self.names), k, self.epoch_n).transpose(1, 0, 2)
        fl = flags.reshape(len(self.names), k, self.epoch_n).transpose(1, 0, 2)
        q = dq.epoch_quality(ep, self.sfreq, self.types, mains=self.mains, flags=fl)
        self.qflags.extend(q.flags)
        self.gaps.extend((fl & FLAG_GAP).any(axis=2))
        if self.eeg is not None:
            x = ep[:, self.eeg]
            x = np.where(np.isfinite(x), x, 0.0)
            nper = min(self.epoch_n, int(4 * self.sfreq))
            f, p = welch_psd(x, self.sfreq, nper)
            keep = (f >= 0.5) & (f <= 30.0)
            self.freqs = f[keep]
            self.psd_rows.extend(p[:, keep])

    def finish(self):
        if self.rpeaks is not None:
            self.peaks.append(self.rpeaks.flush())
        if self.arousal is not None:
            self.arousal.flush()


def _detection_pass(rep, hyp, ev: _Events, sleeper_profile, mains, notes) -> _Pass:
    """Run the one pass over the samples; detectors only where the annotations lack them."""
    baseline = None
    if sleeper_profile is not None:
        prof = SleeperProfile.load(sleeper_profile)
        baseline = prof.detector_baseline()
        notes.append(prof.notice)
    sp = _Pass(rep, hyp, not ev.detected_arousals, not ev.alerts, baseline, mains)
    notes += sp.notes
    block = max(1, int(_BLOCK_S * rep.sfreq))
    while not rep.done:
        sp.push(rep.read(block))
    sp.finish()
    return sp


# ---- step 4: arousals and nightmare alerts -------------------------------------------------------
def _arousals(ev: _Events, sp: _Pass, sources, notes):
    """Return ``(arousal onsets or None, check against the true arousals or None)``."""
    if ev.detected_arousals:
        arousals = ev.detected_arousals
        sources["arousals"] = "Detected arousal annotations (the monitor's arousal detector)"
    elif sp.arousal is not None:
        arousals = [e.onset_s for e in sp.arousal.events]
        sources["arousals"] = "dreamnet arousal detector run on this recording"
        notes += sp.arousal.missing
    else:
        sources["arousals"] = "not available (no EEG)"
        return None, None
    if not ev.true_arousals:
        return arousals, None
    tp, fp, fn = match_events(arousals, ev.true_arousals, 3.0)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return arousals, {"true": len(ev.true_arousals), "tp": tp, "fp": fp, "fn": fn, "f1": f1}


def _nightmare_alerts(ev: _Events, sp: _Pass, hyp, sources, notes) -> list[dict]:
    """Return one dict per alert: ``t``, ``risk``, ``evidence``, stages, ``outcome``.

    ``stage_when_raised`` is the detector's stage at the alert (the online stager's, "?" when
    not recorded), ``stage`` the final hypnogram's epoch, which may differ when the epoch ended
    in an awakening.
    """
    if ev.alerts:
        by_t = {round(float(e["t"]), 1): e for e in ev.stream if e.get("type") == "nightmare_alert"}
        details = [dict(by_t.get(round(t, 1), {}), t=t) for t in ev.alerts]
        sources["nightmare_alerts"] = "Nightmare alert annotations" + (
            " and the monitor's event stream" if by_t else ""
        )
    elif sp.nightmare is not None:
        details = [a.to_event() for a in sp.nightmare.alerts]
        sources["nightmare_alerts"] = "dreamnet nightmare detector run on this recording"
        missing = [m for m in sp.nightmare.missing if not m.startswith("respiration")]
        if missing:
            notes.append("nightmare detection without: " + "; ".join(missing))
    else:
        sources["nightmare_alerts"] = "not available"
        return []
    outcomes = alert_outcomes([d["t"] for d in details], hyp) if details else []
    keep = ("t", "risk", "evidence", "missing")
    return [
        {**{k: d[k] for k in keep if k in d}, "stage_when_raised": d.get("stage", "?"),
         "stage": _stage_at(hyp, d["t"]), "outcome": o}
        for d, o in zip(details, outcomes)
    ]  # fmt: skip


def _stage_at(hyp, t: float) -> str:
    e = int(t // EPOCH_S)
    return stage_name(int(hyp[e])) if 0 <= e < hyp.size else "?"


# ---- step 5: heart rate --------------------------------------------------------------------------
def _heart_rate(sp: _Pass, hyp, sources, notes):
    """Return ``(summary, beat times s, heart rate bpm)``."""
    if sp.rpeaks is None:
        sources["heart_rate"] = "not available: no ECG channel"
        notes.append("no ECG channel: heart rate, heart-rate variability and the heart-rate "
                     "marker of the nightmare detector are not available")  # fmt: skip
        return {}, np.zeros(0), np.zeros(0)
    fs = sp.sfreq
    peaks = np.concatenate(sp.peaks) if sp.peaks else np.zeros(0, np.int64)
    t_hr, hr = heart_rate(peaks, fs, breaks=sp.rpeaks.restarts)
    _, _, ok = rr_intervals(peaks, fs, breaks=sp.rpeaks.restarts)
    summary = {"beats": int(peaks.size), "accepted_intervals": int(np.count_nonzero(ok))}
    ep = (t_hr // EPOCH_S).astype(int).clip(0, hyp.size - 1)
    per = {}
    for st in range(5):
        m = hyp[ep] == st
        if np.count_nonzero(m) >= 10:
            d = np.diff(60.0 / hr[m]) * 1000.0
            d = d[np.abs(d) < 300]
            per[STAGE_NAMES[st]] = {
                "mean_bpm": float(np.mean(hr[m])),
                "rmssd_ms": float(np.sqrt(np.mean(d * d))) if d.size > 2 else None,
            }
    summary["by_stage"] = per
    if sp.rpeaks.n_invalid:
        summary["unusable_ecg_s"] = round(sp.rpeaks.n_invalid / fs, 1)
    sources["heart_rate"] = f"R peaks of {sp.names[sp.ecg]}"
    return summary, t_hr, hr


# ---- step 6: signal quality ----------------------------------------------------------------------
def _episodes(anns, text: str) -> tuple[int, float]:
    """Merge overlapping annotations with this text: ``(episodes, total seconds)``."""
    spans = sorted((a.onset, a.onset + a.duration) for a in anns if a.description == text)
    n, total, end = 0, 0.0, -math.inf
    for a, b in spans:
        if a > end:
            n += 1
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return n, total


def _signal_quality(sp: _Pass, ev: _Events, mains) -> dict:
    """Per channel: usable minutes and what spoiled the rest; per night: gaps, link losses."""
    q = np.array(sp.qflags, np.uint8).reshape(-1, len(sp.names))
    gaps = np.array(sp.gaps, bool).reshape(q.shape)
    usable = ((q & _UNUSABLE) == 0) & ~gaps
    ep_min = EPOCH_S / 60.0
    channels = []
    for i, (name, typ) in enumerate(zip(sp.names, sp.types)):
        n_lo, s_lo = _episodes(ev.quality, f"Lead off: {name}")
        channels.append({
            "channel": name, "type": typ,
            "usable_min": float(np.count_nonzero(usable[:, i]) * ep_min),
            "recorded_min": float(q.shape[0] * ep_min),
            "lead_off_episodes": n_lo, "lead_off_min": s_lo / 60.0,
            "pops": sum(a.description == f"Electrode pop: {name}" for a in ev.quality),
            **{f"{k}_epochs": int(np.count_nonzero(q[:, i] & bit)) for k, bit in (
                ("lead_off", dq.LEAD_OFF), ("saturated", dq.SATURATED), ("flat", dq.FLAT),
                ("mains", dq.MAINS), ("movement", dq.MOVEMENT), ("nonfinite", dq.NONFINITE))},
            "gap_epochs": int(np.count_nonzero(gaps[:, i])),
        })  # fmt: skip
    n_gap, s_gap = _episodes(ev.quality, "Gap")
    return {
        "channels": channels,
        "gaps": n_gap,
        "gap_s": s_gap,
        "connection_lost": sum(a.description == "Connection lost" for a in ev.quality),
        "mains_hz": mains,
        "pops_annotated": any(a.description.startswith("Electrode pop: ") for a in ev.quality),
    }


# ---- step 7: interventions -----------------------------------------------------------------------
def _interventions(ev: _Events, hyp) -> list[dict]:
    """One row per intervention: cue, time, stage, intensity, approval, outcome."""
    stream = ev.stream
    rows = []
    prev_t = -math.inf
    for iv in ev.interventions:
        t, cue = iv["t"], iv["cue"]
        row = {"t": t, "cue": cue, "status": iv["status"], "stage": _stage_at(hyp, t)}
        near = [e for e in stream if e.get("kind") == cue and prev_t < float(e["t"]) <= t + 1.0]
        sent = [e for e in near if e.get("type") == "intervention" and "level" in e]
        row["level"] = float(sent[-1]["level"]) if sent else None
        approve = [e.get("by") for e in near if e.get("type") == "approve"]
        row["approval"] = (
            "vetoed by the technician" if iv["status"] == "vetoed"
            else "not recorded" if not approve
            else "approved by the technician" if approve[-1] == "technician"
            else "not vetoed within the grace period"
        )  # fmt: skip
        judged = [e for e in stream if e.get("type") == "cue_outcome"
                  and abs(float(e.get("sent_t", -1e9)) - t) < 1.0]  # fmt: skip
        if iv["status"] != "sent":
            row["outcome"] = "not sent"
        elif judged:
            row["outcome"] = f"{judged[0]['outcome']} (monitor)"
        elif "outcome" in iv:
            row["outcome"] = iv["outcome"]
        else:
            woke = alert_outcomes([t], hyp, window_s=_OUTCOME_WINDOW_S)[0] == "awakening"
            row["outcome"] = ("woke" if woke else "did not wake") + " within 3 min (hypnogram)"
        rows.append(row)
        prev_t = t
    return rows


# ---- step 8: statistics and recommendations ------------------------------------------------------
def _statistics(hyp, arousals, alerts, lights, start, immersive_end, previous, age_years):
    """Return ``(SleepStats, recommendations, lights-off clock time)`` of lights off .. on."""
    e0 = int(lights.get("off_s", 0.0) // EPOCH_S)
    e1 = int(math.ceil(lights.get("on_s", hyp.size * EPOCH_S) / EPOCH_S))
    e1 = min(max(e1, e0 + 1), hyp.size)
    t0, t1 = e0 * EPOCH_S, e1 * EPOCH_S
    inside = [a - t0 for a in arousals or () if t0 <= a < t1]
    st = sleep_statistics(
        hyp[e0:e1],
        arousal_onsets_s=None if arousals is None else inside,
        nightmare_alert_outcomes=[a["outcome"] for a in alerts if t0 <= a["t"] < t1],
    )
    lights_off = None if start is None else start + timedelta(seconds=t0)
    night = NightRecord(st, lights_off=lights_off, immersive_end=list(immersive_end))
    history = [_night_from_summary(p) for p in previous]
    return st, recommend([*history, night], age_years=age_years), lights_off


def _night_from_summary(p) -> NightRecord:
    """Return a NightRecord from an earlier ``report.json``."""
    p = Path(p)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        lo = d.get("lights_off")
        stats = SleepStats.from_dict(d["stats"])
        return NightRecord(stats, lights_off=datetime.fromisoformat(lo) if lo else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StagingError(f"{p}: not a dreamnet report.json ({exc})") from None


# ---- step 9: figures -----------------------------------------------------------------------------
def _figures(out: Path, n: _Night, hr_data, arousals, alerts, clock) -> dict[str, Figure]:
    """Write the PNG figures; return name -> :class:`Figure`."""
    hyp, sp, ev, sources, notes = n.hyp, n.sp, n.ev, n.sources, n.notes
    figs: dict[str, Figure] = {}
    stager = sources["stages"].split(" (")[0]
    f = out / "hypnogram.png"
    cues = [r["t"] for r in ev.interventions if r["status"] == "sent"]
    al = [a["t"] for a in alerts]
    marks = [text for text, shown in (
        ("arousals (green ticks)", arousals), ("nightmare alerts (red triangles)", al),
        ("cues sent (violet dashed lines)", cues),
        ("nightmares of the simulated sleeper (pink bands, ground truth)", ev.true_nightmares),
        ("lights off and on (dotted lines)", ev.lights),
    ) if shown]  # fmt: skip
    plot_hypnogram(f, hyp, {"arousals": arousals or [], "alerts": al, "cues": cues,
                            "nightmares": ev.true_nightmares}, clock,
                   f"Hypnogram, {stager}", ev.lights)  # fmt: skip
    figs["hypnogram"] = Figure(
        f, f"Hypnogram, {stager}",
        f"Sleep stage per 30-s epoch ({sources['stages']}); REM drawn in red"
        + (f". Marks: {', '.join(marks)}." if marks else "."),
    )  # fmt: skip
    if sp.psd_rows:
        f = out / "spectrogram.png"
        name = sp.names[sp.eeg]
        plot_spectrogram(f, sp.freqs, np.vstack(sp.psd_rows), clock, name)
        figs["spectrogram"] = Figure(
            f, f"EEG spectrogram, {name}",
            "Power spectral density (Welch, 4-s windows) of each 30-s epoch, 0.5-30 Hz, in dB; "
            "slow-wave sleep shows as bright low frequencies, wake and REM as alpha/beta power"
            + "".join(f"; {name} was off its electrode from {clock.label(a.onset)} for "
                      f"{a.duration / 60:.0f} min (dark band)"
                      for a in ev.quality if a.description == f"Lead off: {name}") + ".",
        )  # fmt: skip
    else:
        notes.append("no EEG channel: no spectrogram")
    t_hr, hr = hr_data
    if hr.size:
        f = out / "heart_rate.png"
        plot_heart_rate(f, t_hr, hr, hyp, al, clock)
        figs["heart_rate"] = Figure(
            f, "Heart rate, beat to beat",
            f"Instantaneous heart rate from the accepted R-R intervals of {sp.names[sp.ecg]}, "
            "one dot per beat coloured by the sleep stage; nightmare alerts as red dashed lines.",
        )  # fmt: skip
    return figs


# ---- main ----------------------------------------------------------------------------------------
def build_report(
    path,
    out_dir,
    *,
    age_years: float | None = None,
    events_path=None,
    previous=(),
    immersive_end=(),
    sleeper_profile=None,
    stages: str = "auto",
    allow_truncated: bool = False,
    mains: float | None = 50.0,
) -> ReportResult:
    """Write the morning report of one recording.

    Parameters
    ----------
    path : str or Path
        EDF/EDF+/BDF recording.
    out_dir : str or Path
        Output directory (created).
    age_years : float, optional
        Sleeper's age, for the sleep-duration recommendation.
    events_path : str or Path, optional
        The monitor's event stream (JSON lines) of this session.
    previous : sequence of str or Path
        ``report.json`` files of earlier nights (for regularity and nightmare frequency).
    immersive_end : sequence of datetime
        End times of immersive sessions before this night.
    sleeper_profile : str or Path, optional
        Sleeper profile JSON (baselines for the nightmare detector).
    stages : {"auto", "scored", "true"}
        Which stages the statistics use: ``auto`` = the pipeline's scored stages, else
        :func:`staging.stager.score`, else the ``Sleep stage`` annotations.
    allow_truncated : bool
        Report on the complete data records of a recording cut short (the report's notes say
        how many) instead of refusing it.
    mains : {50.0, 60.0, None}
        Mains frequency (Hz) of the signal-quality check; None skips it.

    Returns
    -------
    ReportResult
        Paths written and the summary.

    Raises
    ------
    HeadsetError
        Unreadable recording (one line naming the file and the problem).
    StagingError
        No stage can be obtained, bad event stream or profile.
    """
    from .report_page import render

    out = Path(out_dir)
    n = _read_night(Path(path), stages, events_path, sleeper_profile, mains, allow_truncated)
    arousals, arousal_check = _arousals(n.ev, n.sp, n.sources, n.notes)
    alerts = _nightmare_alerts(n.ev, n.sp, n.hyp, n.sources, n.notes)
    hr_summary, t_hr, hr = _heart_rate(n.sp, n.hyp, n.sources, n.notes)
    st, rec, lights_off = _statistics(
        n.hyp, arousals, alerts, n.ev.lights, n.start, immersive_end, previous, age_years
    )
    clock = ClockAxis(n.start)
    out.mkdir(parents=True, exist_ok=True)
    figs = _figures(out, n, (t_hr, hr), arousals, alerts, clock)
    summary = {
        **_header_summary(n, lights_off),
        "stats": st.to_dict(),
        "stage_agreement_with_annotations": _clean(n.agreement),
        **_event_summary(n, arousals, arousal_check, alerts, mains),
        "heart_rate": _clean(hr_summary),
        "recommendations": rec.to_dict(),
        "not_measured": not_measured(n.sp.names, n.sp.types),
        "notes": n.notes,
        "figures": {k: v.path.name for k, v in figs.items()},
    }
    jpath, hpath = out / "report.json", out / "report.html"
    jpath.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    hpath.write_text(render(summary, figs, clock), encoding="utf-8")
    return ReportResult(hpath, jpath, {k: v.path for k, v in figs.items()}, summary)


@dataclass
class _Night:
    """What the reading steps learned of one recording."""

    path: Path
    start: datetime | None
    sfreq: float
    n_samples: int
    simulated: bool
    hyp: np.ndarray
    agreement: dict | None
    ev: _Events
    sp: _Pass
    notes: list[str]
    sources: dict[str, str]


def _read_night(path: Path, stages, events_path, sleeper_profile, mains, allow_truncated):
    """Run steps 1-3: stages, annotations and event stream, the pass over the samples."""
    from headset.replay import Replay

    check_option("stages", stages, ("auto", "scored", "true"))
    dq.epoch_quality(np.zeros((1, 8)), 100.0, mains=mains)  # checks `mains` before reading
    notes: list[str] = []
    sources: dict[str, str] = {}
    rep = Replay(path, speed="max", allow_truncated=allow_truncated)
    try:
        n_epochs = int(rep.n_samples // round(EPOCH_S * rep.sfreq))  # a partial epoch is dropped
        if n_epochs < 1:
            raise StagingError(f"{path}: shorter than one 30-s epoch")
        anns = list(dict.fromkeys(rep.annotations))  # identical duplicates count once
        notes += list(rep.notes)
        simulated = _is_simulated(rep.header, anns)
        hyp, agreement = _stage_sources(
            path, anns, n_epochs, stages, simulated, allow_truncated, notes, sources
        )
        ev = _recording_events(anns, events_path, sources)
        sp = _detection_pass(rep, hyp, ev, sleeper_profile, mains, notes)
    finally:
        rep.close()
    return _Night(path, rep.header.start, rep.sfreq, rep.n_samples, simulated, hyp, agreement,
                  ev, sp, notes, sources)  # fmt: skip


def _event_summary(n: _Night, arousals, arousal_check, alerts, mains) -> dict:
    """Return the summary's events: arousals, nightmares, interventions, notes, quality."""
    return {
        "arousals": {
            "count": None if arousals is None else len(arousals),
            "check_against_truth": _clean(arousal_check),
        },
        "nightmares": {
            "true_episodes": [{"onset_s": o, "duration_s": d} for o, d in n.ev.true_nightmares],
            "alerts": _clean(alerts),
        },
        "interventions": _clean(_interventions(n.ev, n.hyp)),
        "technician_notes": n.ev.notes,
        "signal_quality": _clean(_signal_quality(n.sp, n.ev, mains)),
    }


def _header_summary(n: _Night, lights_off) -> dict:
    """Return the summary's description of the recording."""
    return {
        "file": n.path.name,
        "recording_start": None if n.start is None else n.start.isoformat(),
        "lights_off": None if lights_off is None else lights_off.isoformat(),
        "lights": {k: round(v, 3) for k, v in n.ev.lights.items()},
        "simulated": n.simulated,
        "duration_s": round(n.n_samples / n.sfreq, 3),
        "sfreq": n.sfreq,
        "channels": dict(zip(n.sp.names, n.sp.types)),
        "sources": n.sources,
        "hypnogram": [stage_name(int(s)) for s in n.hyp],
    }


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(v) else round(float(v), 3)
    if isinstance(v, np.integer):
        return int(v)
    return v


__all__ = [
    "MEASURES",
    "REPORT_FILES",
    "ReportResult",
    "build_report",
    "stages_from_annotations",
]
