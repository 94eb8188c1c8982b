"""The morning report: sleep statistics, events, heart rate and recommendations of one night.

:func:`build_report` reads a recording (EDF/EDF+/BDF, the project's own or real PSG) in
blocks, and writes to a directory:

- ``report.html``: one self-contained page (figures embedded as base64 PNG, no external file),
- ``hypnogram.png`` (stages with arousals, nightmare episodes, alerts and cues),
  ``spectrogram.png`` (one EEG channel, 0.5-30 Hz per 30-s epoch) and ``heart_rate.png``,
- ``report.json``: the summary (statistics, events, heart rate, recommendations, notes).

Where things come from (each stated in the report's ``sources``):

- **stages**: the pipeline's ``Scored stage X`` annotations (a monitored session); without
  them :func:`staging.stager.score` stages the recording. ``Sleep stage X`` annotations (the
  simulator's truth, or a human scorer's) are compared with them (agreement, Cohen's kappa);
  they are used directly only when the recording cannot be scored.
- **arousals**: ``Detected arousal`` annotations, else
  :class:`staging.closedloop.arousal.ArousalDetector` run on the recording; ``Arousal``
  annotations (truth) are compared with them.
- **nightmare alerts**: ``Nightmare alert`` annotations (and the monitor's event stream when
  given), else :class:`staging.closedloop.nightmare.NightmareDetector` run on the recording;
  their outcome ("settled" or "awakening") comes from the hypnogram that followed.
- **heart rate**: R peaks of the ECG channel (:mod:`dsp.ecg`); without ECG the report says so.
"""

from __future__ import annotations

import base64
import html
import json
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from scipy.signal import welch

from dsp.ecg import RPeakDetector, heart_rate, rr_intervals
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
from .stats import alert_outcomes, sleep_statistics

#: Every file :func:`build_report` may write into its directory.
REPORT_FILES = ("report.html", "report.json", "hypnogram.png", "spectrogram.png", "heart_rate.png")
_BLOCK_S = 300.0  # seconds read at a time
_STAGE_ROW = {0: 4, 4: 3, 1: 2, 2: 1, 3: 0}  # plot rows: W top, then R, N1, N2, N3
_STAGE_COLOR = {0: "#e69f00", 1: "#56b4e9", 2: "#0072b2", 3: "#002b5c", 4: "#d55e00"}


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


# ---- reading ---------------------------------------------------------------------------------
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


class _Pass:
    """One streaming pass over the recording: spectrogram, R peaks, detectors."""

    def __init__(self, rep, hyp, run_arousal, run_nightmare, baseline):
        self.sfreq = fs = rep.sfreq
        self.names, self.types = rep.ch_names, rep.ch_types
        eeg = pick_channels(self.names, self.types, "eeg")
        self.eeg = eeg[0] if eeg else None
        ecg = pick_channels(self.names, self.types, "ecg")
        self.ecg = ecg[0] if ecg else None
        self.epoch_n = int(round(EPOCH_S * fs))
        self.psd_rows: list[np.ndarray] = []
        self.freqs = None
        self._eeg_buf = np.zeros(0)
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
        if self.eeg is not None:
            x = chunk.data[self.eeg]
            x = np.where(np.isfinite(x), x, 0.0)
            self._eeg_buf = np.concatenate([self._eeg_buf, x])
            while self._eeg_buf.size >= self.epoch_n:
                seg = self._eeg_buf[: self.epoch_n]
                self._eeg_buf = self._eeg_buf[self.epoch_n :]
                nper = min(self.epoch_n, int(4 * self.sfreq))
                f, p = welch(seg, self.sfreq, nperseg=nper)
                keep = (f >= 0.5) & (f <= 30.0)
                self.freqs = f[keep]
                self.psd_rows.append(p[keep])
        if self.rpeaks is not None:
            self.peaks.append(
                self.rpeaks.push(chunk.data[self.ecg], chunk.flags[self.ecg], chunk.first_sample)
            )
        if self.arousal is not None:
            self.arousal.push(chunk)
        if self.nightmare is not None:
            self.nightmare.push(chunk)

    def finish(self):
        if self.rpeaks is not None:
            self.peaks.append(self.rpeaks.flush())
        if self.arousal is not None:
            self.arousal.flush()


# ---- figures -----------------------------------------------------------------------------------
def _fig():
    from matplotlib.figure import Figure

    return Figure(figsize=(11, 3.2), dpi=100, layout="constrained")


def _hours(t_s):
    return np.asarray(t_s, dtype=float) / 3600.0


def _plot_hypnogram(path, hyp, events, title):
    fig = _fig()
    ax = fig.add_subplot()
    n = hyp.size
    t = _hours(np.arange(n + 1) * EPOCH_S)
    rows = np.array([_STAGE_ROW.get(int(s), np.nan) for s in hyp], dtype=float)
    ax.step(t[:-1], rows, where="post", color="0.3", lw=1.0)
    for e in np.flatnonzero(hyp == 4):
        ax.plot(t[e : e + 2], [3, 3], color=_STAGE_COLOR[4], lw=3, solid_capstyle="butt")
    for on, dur in events.get("nightmares", []):
        ax.axvspan(_hours(on), _hours(on + dur), color="#cc79a7", alpha=0.25, lw=0)
    ar = events.get("arousals", [])
    if ar:
        ax.plot(_hours(ar), np.full(len(ar), 4.55), "|", color="#009e73", ms=8, label="arousal")
    al = events.get("alerts", [])
    if al:
        ax.plot(_hours(al), np.full(len(al), 3.5), "v", color="#cc0000", ms=7,
                label="nightmare alert")  # fmt: skip
    for i, (tc, _kind) in enumerate(events.get("cues", [])):
        ax.axvline(_hours(tc), color="#8000ff", lw=0.8, ls="--", label="cue" if i == 0 else None)
    ax.set_yticks([0, 1, 2, 3, 4], ["N3", "N2", "N1", "R", "W"])
    ax.set_ylim(-0.5, 4.9)
    ax.set_xlim(0, t[-1])
    ax.set_xlabel("time since lights off (h)")
    ax.set_title(title)
    if ar or al or events.get("cues"):
        ax.legend(loc="lower right", fontsize=8, ncol=3)
    fig.savefig(path)


def _plot_spectrogram(path, freqs, psd, ch_name):
    fig = _fig()
    ax = fig.add_subplot()
    db = 10 * np.log10(np.maximum(psd, 1e-6)).T
    t = _hours(np.arange(psd.shape[0] + 1) * EPOCH_S)
    lo, hi = np.percentile(db, [2, 98])
    df = freqs[1] - freqs[0] if freqs.size > 1 else 1.0
    f_edges = np.concatenate([freqs - df / 2, [freqs[-1] + df / 2]])
    im = ax.pcolormesh(t, f_edges, db, shading="flat", cmap="viridis", vmin=lo, vmax=hi)
    fig.colorbar(im, ax=ax, label="dB (µV²/Hz)")
    ax.set_ylabel("Hz")
    ax.set_xlabel("time since lights off (h)")
    ax.set_title(f"Spectrogram, {ch_name} (30-s epochs)")
    fig.savefig(path)


def _plot_hr(path, t, hr, hyp, alerts):
    fig = _fig()
    ax = fig.add_subplot()
    ep = np.minimum((t // EPOCH_S).astype(int), hyp.size - 1)
    for st in (0, 1, 2, 3, 4):
        m = hyp[ep] == st
        if np.any(m):
            ax.plot(_hours(t[m]), hr[m], ".", ms=1.5, color=_STAGE_COLOR[st], label=STAGE_NAMES[st])
    if alerts:
        y = np.nanmax(hr) if hr.size else 100
        ax.plot(_hours(alerts), np.full(len(alerts), y), "v", color="#cc0000", ms=7,
                label="nightmare alert")  # fmt: skip
    ax.set_ylabel("heart rate (bpm)")
    ax.set_xlabel("time since lights off (h)")
    ax.set_title("Beat-to-beat heart rate (accepted intervals), coloured by stage")
    ax.legend(loc="upper right", fontsize=8, ncol=6, markerscale=6)
    fig.savefig(path)


# ---- main ------------------------------------------------------------------------------------
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
    from headset.replay import Replay

    if stages not in ("auto", "scored", "true"):
        raise ValueError(
            "Invalid value for the 'stages' parameter. Allowed values are 'auto', 'scored', "
            f"'true', but got {stages!r} instead."
        )
    path = Path(path)
    out = Path(out_dir)
    notes: list[str] = []
    sources: dict[str, str] = {}
    rep = Replay(path, speed="max", allow_truncated=allow_truncated)
    try:
        fs = rep.sfreq
        n_epochs = int(rep.n_samples // round(EPOCH_S * fs))  # a partial last epoch is dropped
        if n_epochs < 1:
            raise StagingError(f"{path}: shorter than one 30-s epoch")
        anns = list(dict.fromkeys(rep.annotations))  # identical duplicates count once
        notes += list(rep.notes)
        true_h = stages_from_annotations(anns, n_epochs, TRUE_STAGE_PREFIX)
        scored_h = stages_from_annotations(anns, n_epochs, SCORED_STAGE_PREFIX)
        hyp = None
        if stages in ("auto", "scored") and scored_h is not None:
            hyp, sources["stages"] = scored_h, "Scored stage annotations (the pipeline's scoring)"
        elif stages == "scored" or (stages == "auto" and scored_h is None):
            hyp, why = _score(path, n_epochs, notes, allow_truncated)
            if hyp is not None:
                sources["stages"] = "staging.stager.score (offline stager) on this recording"
            elif stages == "scored":
                raise StagingError(
                    f"{path}: no Scored stage annotations and the stager failed: {why}"
                )
        if hyp is None:
            if true_h is None:
                raise StagingError(
                    f"{path}: no stage annotations and the recording cannot be staged: {why}"
                )
            hyp, sources["stages"] = true_h, "Sleep stage annotations (truth / human scorer)"
        agreement = None
        if true_h is not None and hyp is not true_h:
            po, kappa, n_both = epoch_agreement(hyp, true_h)
            agreement = {"accuracy": po, "kappa": kappa, "epochs": n_both}

        # events from annotations
        def times(pred):
            return [a for a in anns if pred(a.description.strip())]

        det_ar = [a.onset for a in times(lambda d: d == "Detected arousal")]
        true_ar = [a.onset for a in times(lambda d: d == "Arousal")]
        nm_true = [(a.onset, a.duration) for a in times(lambda d: d == "Nightmare")]
        alert_ann = [a.onset for a in times(lambda d: d == "Nightmare alert")]
        cues = [(a.onset, a.description.split(":", 1)[1].strip())
                for a in times(lambda d: d.startswith("Intervention:"))]  # fmt: skip
        sim_cues = [(a.onset, a.description.split(":", 1)[1].strip())
                    for a in times(lambda d: d.startswith("Cue:"))]  # fmt: skip
        stream = _parse_events_jsonl(events_path) if events_path else []
        tech_notes = [{"t": a.onset, "text": a.description.split(":", 1)[1].strip()}
                      for a in times(lambda d: d.startswith("Note:"))]  # fmt: skip
        if not tech_notes:  # not in the recording: the event stream has them
            tech_notes = [{"t": float(e["t"]), "text": str(e.get("text", ""))}
                          for e in stream if e.get("type") == "note"]  # fmt: skip
        stream_alerts = [e for e in stream if e.get("type") == "nightmare_alert"]
        if stream_alerts and not alert_ann:
            alert_ann = [float(e["t"]) for e in stream_alerts]
        if not cues:
            cues = [
                (float(e["t"]), str(e.get("kind", "?")))
                for e in stream
                if e.get("type") == "intervention" and e.get("status", e.get("action")) == "sent"
            ]
        if not cues and sim_cues:
            cues = sim_cues

        baseline = None
        if sleeper_profile is not None:
            prof = SleeperProfile.load(sleeper_profile)
            baseline = prof.detector_baseline()
            notes.append(prof.notice)
        run_ar = not det_ar
        run_nm = not alert_ann
        sp = _Pass(rep, hyp, run_ar, run_nm, baseline)
        notes += sp.notes
        block = max(1, int(_BLOCK_S * fs))
        while not rep.done:
            sp.push(rep.read(block))
        sp.finish()
    finally:
        rep.close()

    # arousals
    if det_ar:
        arousals = det_ar
        sources["arousals"] = "Detected arousal annotations"
    elif sp.arousal is not None:
        arousals = [e.onset_s for e in sp.arousal.events]
        sources["arousals"] = "ArousalDetector run on this recording"
        notes += sp.arousal.missing
    else:
        arousals = None
        sources["arousals"] = "not available (no EEG)"
    arousal_check = None
    if arousals is not None and true_ar:
        tp, fp, fn = match_events(arousals, true_ar, 3.0)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        arousal_check = {"true": len(true_ar), "tp": tp, "fp": fp, "fn": fn, "f1": f1}

    # nightmare alerts
    alert_details: list[dict] = []
    if alert_ann:
        alerts = sorted(alert_ann)
        sources["nightmare_alerts"] = (
            "Nightmare alert annotations" if not stream_alerts else "monitor event stream"
        )
        for e in stream_alerts:
            alert_details.append({"t": float(e["t"]), "risk": e.get("risk"),
                                  "evidence": e.get("evidence", {}),
                                  "missing": e.get("missing", [])})  # fmt: skip
    elif sp.nightmare is not None:
        alerts = [a.t for a in sp.nightmare.alerts]
        sources["nightmare_alerts"] = "NightmareDetector run on this recording"
        alert_details = [a.to_event() for a in sp.nightmare.alerts]
        missing = [m for m in sp.nightmare.missing if not m.startswith("respiration")]
        if missing:
            notes.append("nightmare detection without: " + "; ".join(missing))
    else:
        alerts = []
        sources["nightmare_alerts"] = "not available"
    outcomes = alert_outcomes(alerts, hyp) if alerts else []
    for d, o in zip(alert_details, outcomes):
        d["outcome"] = o
    if not alert_details:
        alert_details = [{"t": t, "outcome": o} for t, o in zip(alerts, outcomes)]

    # heart rate
    hr_summary: dict = {}
    t_hr = hr = np.zeros(0)
    if sp.rpeaks is not None:
        peaks = np.concatenate(sp.peaks) if sp.peaks else np.zeros(0, np.int64)
        t_hr, hr = heart_rate(peaks, fs, breaks=sp.rpeaks.restarts)
        _, rr, ok = rr_intervals(peaks, fs, breaks=sp.rpeaks.restarts)
        hr_summary = {"beats": int(peaks.size), "accepted_intervals": int(np.count_nonzero(ok))}
        ep = (t_hr // EPOCH_S).astype(int).clip(0, n_epochs - 1)
        per = {}
        for st in range(5):
            m = hyp[ep] == st
            if np.count_nonzero(m) >= 10:
                rr_st = 60.0 / hr[m]
                d = np.diff(rr_st) * 1000.0
                d = d[np.abs(d) < 300]
                per[STAGE_NAMES[st]] = {
                    "mean_bpm": float(np.mean(hr[m])),
                    "rmssd_ms": float(np.sqrt(np.mean(d * d))) if d.size > 2 else None,
                }
        hr_summary["by_stage"] = per
        if sp.rpeaks.n_invalid:
            hr_summary["unusable_ecg_s"] = round(sp.rpeaks.n_invalid / fs, 1)
        sources["heart_rate"] = f"R peaks of {sp.names[sp.ecg]}"
    else:
        sources["heart_rate"] = "not available: no ECG channel"
        notes.append("no ECG channel: heart rate, heart-rate variability and the heart-rate "
                     "marker of the nightmare detector are not available")  # fmt: skip

    # statistics and recommendations
    st = sleep_statistics(hyp, arousal_onsets_s=arousals, nightmare_alert_outcomes=outcomes)
    lights_off = rep.header.start
    night = NightRecord(st, lights_off=lights_off, immersive_end=list(immersive_end),
                        n_nightmares=len(alerts))  # fmt: skip
    history = [_night_from_summary(p) for p in previous]
    rec = recommend([*history, night], age_years=age_years)

    # figures
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    f = out / "hypnogram.png"
    _plot_hypnogram(
        f,
        hyp,
        {"arousals": arousals or [], "alerts": alerts, "nightmares": nm_true, "cues": cues},
        f"Hypnogram ({sources['stages'].split(' (')[0]})",
    )
    figures["hypnogram"] = f
    if sp.psd_rows:
        f = out / "spectrogram.png"
        _plot_spectrogram(f, sp.freqs, np.vstack(sp.psd_rows), sp.names[sp.eeg])
        figures["spectrogram"] = f
    else:
        notes.append("no EEG channel: no spectrogram")
    if hr.size:
        f = out / "heart_rate.png"
        _plot_hr(f, t_hr, hr, hyp, alerts)
        figures["heart_rate"] = f

    summary = {
        "file": path.name,
        "lights_off": lights_off.isoformat() if lights_off else None,
        "duration_s": round(rep.n_samples / fs, 3),
        "sfreq": fs,
        "channels": dict(zip(sp.names, sp.types)),
        "sources": sources,
        "hypnogram": [stage_name(int(s)) for s in hyp],
        "stats": st.to_dict(),
        "stage_agreement_with_annotations": _clean(agreement),
        "arousals": {
            "count": None if arousals is None else len(arousals),
            "check_against_truth": _clean(arousal_check),
        },  # fmt: skip
        "nightmares": {
            "true_episodes": [{"onset_s": o, "duration_s": d} for o, d in nm_true],
            "alerts": _clean(alert_details),
            "cues": [{"t": t, "what": k} for t, k in cues],
        },
        "heart_rate": _clean(hr_summary),
        "recommendations": rec.to_dict(),
        "technician_notes": tech_notes,
        "notes": notes,
        "figures": {k: v.name for k, v in figures.items()},
    }
    jpath = out / "report.json"
    jpath.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    hpath = out / "report.html"
    hpath.write_text(_html(summary, figures), encoding="utf-8")
    return ReportResult(hpath, jpath, figures, summary)


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


def _night_from_summary(p) -> NightRecord:
    """Return a NightRecord from an earlier ``report.json``."""
    from .stats import SleepStats

    p = Path(p)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        s = d["stats"]
        nan = float("nan")

        def num(v):
            return nan if v is None else float(v)

        stats = SleepStats(
            tib_min=num(s["tib_min"]),
            spt_min=num(s["spt_min"]),
            tst_min=num(s["tst_min"]),
            se_pct=num(s["se_pct"]),
            sme_pct=num(s["sme_pct"]),
            sol_min=num(s["sol_min"]),
            rem_latency_min=num(s["rem_latency_min"]),
            waso_min=num(s["waso_min"]),
            stage_min={k: num(v) for k, v in s["stage_min"].items()},
            stage_pct_tst={k: num(v) for k, v in s["stage_pct_tst"].items()},
            n_awakenings=int(s["n_awakenings"]),
            n_arousals=s.get("n_arousals"),
            arousal_index=num(s.get("arousal_index")),
            n_nightmare_alerts=int(s.get("n_nightmare_alerts", 0)),
            nightmare_outcomes=dict(s.get("nightmare_outcomes", {})),
        )
        lo = d.get("lights_off")
        return NightRecord(stats, lights_off=datetime.fromisoformat(lo) if lo else None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StagingError(f"{p}: not a dreamnet report.json ({exc})") from None


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


def _fmt(v, unit="", nd=1):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}{unit}"
    return f"{v}{unit}"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html(s: dict, figures: dict[str, Path]) -> str:
    e = html.escape
    st = s["stats"]
    rows = [
        ("Time in bed", _fmt(st["tib_min"], " min")),
        ("Total sleep time", _fmt(st["tst_min"], " min")),
        ("Sleep efficiency", _fmt(st["se_pct"], " %")),
        ("Sleep-onset latency", _fmt(st["sol_min"], " min")),
        ("REM latency (from sleep onset)", _fmt(st["rem_latency_min"], " min")),
        ("Wake after sleep onset", _fmt(st["waso_min"], " min")),
        ("Awakenings", _fmt(st["n_awakenings"])),
        ("Arousal index", _fmt(st["arousal_index"], " /h")),
        ("Nightmare alerts", _fmt(st["n_nightmare_alerts"])),
    ]
    stage_rows = "".join(
        f"<tr><td>{k}</td><td>{_fmt(st['stage_min'][k], ' min')}</td>"
        f"<td>{_fmt(st['stage_pct_tst'].get(k), ' %') if k != 'W' else ''}</td></tr>"
        for k in ("W", "N1", "N2", "N3", "R")
    )
    recs = s["recommendations"]["recommendations"]
    if recs:
        rec_html = "".join(
            f"<li><b>{e(r['title'])}</b><br>{e(r['advice'])}<br><span class=m>Measured: "
            f"{e(r['measured'])}; threshold {e(r['threshold'])}; source: {e(r['guideline'])}"
            "</span></li>"
            for r in recs
        )
        rec_html = f"<ol>{rec_html}</ol>"
    else:
        rec_html = "<p>No recommendation: every evaluated measure is within its guideline.</p>"
    ne = s["recommendations"]["not_evaluated"]
    if ne:
        rec_html += "<p class=m>Not evaluated: " + "; ".join(
            f"{e(k)} ({e(v)})" for k, v in ne.items()
        ) + "</p>"  # fmt: skip
    alerts = s["nightmares"]["alerts"]
    if alerts:
        arow = []
        for a in alerts:
            ev = a.get("evidence") or {}
            top = sorted(ev.items(), key=lambda kv: -(kv[1].get("evidence", 0) or 0))[:3]
            evtxt = "; ".join(
                f"{k}: {_fmt(v.get('value'), ' ' + v.get('unit', ''))} "
                f"(baseline {_fmt(v.get('baseline'))})"
                for k, v in top
            )
            arow.append(
                f"<tr><td>{_fmt(a['t'] / 3600, ' h', 2)}</td><td>{_fmt(a.get('risk'), '', 2)}"
                f"</td><td>{e(a.get('outcome', ''))}</td><td>{e(evtxt) or '–'}</td></tr>"
            )
        alert_html = ("<table><tr><th>time</th><th>risk</th><th>outcome</th><th>evidence</th>"
                      "</tr>" + "".join(arow) + "</table>")  # fmt: skip
    else:
        alert_html = "<p>No nightmare alert.</p>"
    hr = s["heart_rate"]
    if hr.get("by_stage"):
        hr_html = "<table><tr><th>stage</th><th>mean HR</th><th>RMSSD</th></tr>" + "".join(
            f"<tr><td>{k}</td><td>{_fmt(v['mean_bpm'], ' bpm')}</td>"
            f"<td>{_fmt(v['rmssd_ms'], ' ms')}</td></tr>"
            for k, v in hr["by_stage"].items()
        ) + "</table>"  # fmt: skip
    else:
        hr_html = f"<p>{e(s['sources'].get('heart_rate', 'not available'))}</p>"
    figs = "".join(
        f"<figure>{_img(p, k)}<figcaption>{e(k)}</figcaption></figure>" for k, p in figures.items()
    )
    agree = s.get("stage_agreement_with_annotations")
    agree_html = ""
    if agree:
        agree_html = (
            f"<p class=m>Agreement with the Sleep stage annotations: "
            f"{_fmt(100 * (agree['accuracy'] or 0), ' %')} of {agree['epochs']} epochs, "
            f"Cohen's kappa {_fmt(agree['kappa'], '', 2)}.</p>"
        )
    sources = "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in s["sources"].items())
    notes = "".join(f"<li>{e(n)}</li>" for n in s["notes"])
    tech = "".join(
        f"<li>{_fmt(n['t'] / 3600, ' h', 2)}: {e(n['text'])}</li>" for n in s["technician_notes"]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>dreamnet sleep report: {e(s["file"])}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:left}}img{{max-width:100%}}.m{{color:#555;font-size:.9em}}figure{{margin:1em 0}}
</style></head><body>
<h1>Sleep report</h1>
<p>{e(s["file"])} &middot; lights off {e(str(s["lights_off"] or "unknown"))} &middot;
{_fmt(s["duration_s"] / 3600, " h", 2)} recorded</p>
<h2>Night at a glance</h2>
<table>{"".join(f"<tr><th>{e(a)}</th><td>{b}</td></tr>" for a, b in rows)}</table>
<table><tr><th>stage</th><th>minutes</th><th>% of sleep</th></tr>{stage_rows}</table>
{agree_html}
<h2>Recommendations</h2>{rec_html}
<h2>Nightmares</h2>{alert_html}
<h2>Heart rate</h2>{hr_html}
{"<h2>Technician's notes</h2><ul>" + tech + "</ul>" if tech else ""}
<h2>Figures</h2>{figs}
<h2>Where the numbers come from</h2><ul>{sources}</ul>
{"<h2>Notes</h2><ul>" + notes + "</ul>" if notes else ""}
<p class=m>Generated by dreamnet. Statistics follow the AASM definitions; this report is not a
diagnosis.</p>
</body></html>
"""


__all__ = ["ReportResult", "build_report", "stages_from_annotations"]
