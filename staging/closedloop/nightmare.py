"""Nightmare risk during REM, from the markers of sympathetic activation (DESIGN 4).

A nightmare is a REM episode of escalating activation: the heart speeds up, chin-EMG tone and
twitches rise, alpha and beta intrude into the EEG, rapid eye movements get denser (and breathing
faster). :class:`NightmareDetector` measures each marker every ``step_s`` seconds against the
sleeper's own calm-REM baseline, turns each into evidence (0 = baseline, 1 = clearly raised), and
combines them into a risk score (0-1). An alert is raised when, in REM, the risk stays above the
threshold for ``confirm_steps`` consecutive steps; it carries the evidence that raised it.

Markers (each from one channel type; missing channels are reported, never invented):

- heart rate (ECG): mean RR rate over 10 s (R peaks, :mod:`dsp.ecg`); evidence 1 at
  +``hr_bpm`` bpm.
- EMG tone (chin EMG): 20th percentile of 0.25-s RMS (20-100 Hz) over 10 s; evidence 1 at
  x ``tone_ratio``.
- EMG twitches (chin EMG): 0.25-s bins above 4x the baseline tone, per minute over 30 s;
  evidence 1 at +``twitch_per_min``.
- alpha/beta intrusion (EEG): 8-11.5 + 16-30 Hz power over 10 s; evidence 1 at +``eeg_db`` dB.
- eye movements (EOG): rapid deflections of E2-E1 per minute over 30 s; evidence 1 at
  x ``eog_ratio``.

The score is the weighted sum of the evidence (each clipped to -1..4; the EMG evidence is also
capped by the heart-rate evidence when there is an ECG, see ``emg_hr_cap``), rescaled by
``measurable weight / weight with a baseline`` while some baselines are still being learned,
through a logistic:
``risk = 1 / (1 + exp(-(score - score_mid) / score_scale))``.

Baselines are the medians of the markers over calm REM (risk below ``calm_risk``) in the last
20 minutes of REM of the night. A sleeper profile can provide them from earlier nights (heart
rate, EMG tone); otherwise the detector needs ``min_baseline_s`` of calm REM before it can
alert (the first REM period of the night, which in nightmare-prone sleepers is usually calm).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter

from dsp._validate import check_channels, check_positive
from dsp.ecg import HeartRateTracker
from dsp.iir import SOSFilter
from headset.chunk import Annotation, Chunk
from headset.stages import EPOCH_S, R, stage_name

from ..channels import pick_channels
from .stream import BAD_FLAGS, ChunkBatcher, StageInput

MARKERS = ("heart_rate", "emg_tone", "emg_twitches", "eeg_alpha_beta", "eye_movements")
#: Each marker in words, for people (the live view, reports).
MARKER_NAMES = {
    "heart_rate": "heart rate",
    "emg_tone": "chin EMG tone",
    "emg_twitches": "chin EMG twitches",
    "eeg_alpha_beta": "EEG alpha-beta power",
    "eye_movements": "eye movements",
}
_MARKER_CHANNEL = {
    "heart_rate": "ECG",
    "emg_tone": "chin EMG",
    "emg_twitches": "chin EMG",
    "eeg_alpha_beta": "EEG",
    "eye_movements": "EOG",
}
DEFAULT_WEIGHTS = {
    "heart_rate": 0.7,
    "emg_tone": 2.0,
    "emg_twitches": 0.3,
    "eeg_alpha_beta": 0.3,
    "eye_movements": 0.2,
}


@dataclass(frozen=True)
class NightmareAlert:
    """An alert: a nightmare is building up.

    Attributes
    ----------
    t : float
        Session time of the alert, seconds.
    risk : float
        Risk score (0-1) at the alert.
    stage : int
        Stage used (R).
    evidence : dict of str to dict
        Per marker: ``value``, ``baseline``, ``unit``, ``evidence`` (0 = baseline, 1 = clearly
        raised), ``weight``.
    missing : tuple of str
        Evidence that was not available, with why.
    rising_since : float
        Session time at which the risk first exceeded ``calm_risk`` in this build-up, seconds.
    """

    t: float
    risk: float
    stage: int
    evidence: dict
    missing: tuple[str, ...] = ()
    rising_since: float = float("nan")

    def summary(self) -> str:
        """One line: the risk and the markers that contributed most."""
        top = sorted(
            ((v["evidence"] * v["weight"], k, v) for k, v in self.evidence.items()),
            key=lambda x: x[0],
            reverse=True,
        )
        parts = []
        for _, name, v in top[:3]:
            if v["evidence"] > 0.2:
                parts.append(f"{name} {v['value']:.1f} {v['unit']} (baseline {v['baseline']:.1f})")
        s = f"nightmare risk {self.risk:.2f}: " + ("; ".join(parts) or "combined markers")
        if self.missing:
            s += " [missing: " + "; ".join(self.missing) + "]"
        return s

    def to_annotation(self) -> Annotation:
        """Return the EDF+ annotation ``Nightmare alert`` (DESIGN 3)."""
        return Annotation(self.t, 0.0, "Nightmare alert")

    def to_event(self) -> dict:
        """Return the event-stream object ``{"t", "type": "nightmare_alert", "risk", ...}``."""
        ev = {
            k: {kk: (round(vv, 3) if isinstance(vv, float) else vv) for kk, vv in v.items()}
            for k, v in self.evidence.items()
        }
        return {
            "t": round(self.t, 3),
            "type": "nightmare_alert",
            "risk": round(self.risk, 3),
            "stage": stage_name(self.stage),
            "evidence": ev,
            "missing": list(self.missing),
        }


@dataclass
class DetectorSettings:
    """Tunable constants of :class:`NightmareDetector` (see the module docstring).

    Parameters
    ----------
    step_s : float
        Seconds between two evaluations.
    threshold : float
        Risk that raises an alert.
    confirm_steps : int
        Consecutive steps above the threshold needed.
    calm_risk : float
        Risk below which a REM step feeds the baselines, and below which an alert ends.
    release_s : float
        Seconds of risk below ``calm_risk`` after which a new alert may be raised.
    min_baseline_s : float
        Calm REM (seconds) needed before a marker without a prior baseline counts.
    hr_bpm, tone_ratio, twitch_per_min, eeg_db, eog_ratio : float
        Marker changes that count as evidence 1.
    weights : dict of str to float
        Weight of each marker.
    score_mid, score_scale : float
        Logistic of the score.
    rem_settle_s : float
        The risk is 0 in the first seconds of a REM period (the chin EMG is still falling to
        atonia; nightmares come late in long REM periods).
    jump_eeg, jump_tone : float
        A rise of the EEG or EMG-tone evidence by this much from one step to the next is
        abrupt: an arousal, not the build-up of a nightmare.
    arousal_hold_s : float
        After an abrupt rise, no alert for this many seconds (the arousal must pass; a
        nightmare's rise persists).
    emg_hr_cap : tuple of float
        ``(a, b)``: with a heart rate, the EMG evidence (tone, twitches) may not exceed
        ``a + b * heart-rate evidence`` (clipped to 0-4). A nightmare is a sympathetic
        activation: chin tone that rises while the heart does not is a change of stage (the
        stager's verdict on the current epoch comes only at its end) or of posture.
    """

    step_s: float = 5.0
    threshold: float = 0.5
    confirm_steps: int = 2
    calm_risk: float = 0.25
    release_s: float = 60.0
    min_baseline_s: float = 60.0
    hr_bpm: float = 6.0
    tone_ratio: float = 1.4
    twitch_per_min: float = 6.0
    eeg_db: float = 3.0
    eog_ratio: float = 2.0
    weights: dict = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    score_mid: float = 2.0
    score_scale: float = 0.4
    rem_settle_s: float = 60.0
    jump_eeg: float = 1.5
    jump_tone: float = 2.5
    arousal_hold_s: float = 25.0
    emg_hr_cap: tuple[float, float] = (1.0, 2.0)


class _Bins:
    """RMS of a streaming band-passed signal over fixed bins, with flagged bins as NaN."""

    def __init__(self, sos, bin_len):
        self.filt = SOSFilter(sos, 1)
        self.started = False
        self.n = bin_len
        self.buf = np.zeros(0)
        self.bad = np.zeros(0, dtype=bool)
        self.start = 0

    def push(self, x, bad, first):
        if not self.started:
            self.started = True
            self.start = first
        y = self.filt(x[None, :])[0]
        self.buf = np.concatenate([self.buf, y])
        self.bad = np.concatenate([self.bad, bad])
        k = self.buf.size // self.n
        if k == 0:
            return np.zeros(0), np.zeros(0, np.int64)
        seg = self.buf[: k * self.n].reshape(k, self.n)
        rms = np.sqrt(np.mean(seg * seg, axis=1))
        rms[self.bad[: k * self.n].reshape(k, self.n).any(axis=1)] = np.nan
        starts = self.start + np.arange(k) * self.n
        self.buf = self.buf[k * self.n :]
        self.bad = self.bad[k * self.n :]
        self.start += k * self.n
        return rms, starts


class NightmareDetector(StageInput):
    """Streaming REM nightmare risk and alerts (see the module docstring).

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz (at least 100).
    ch_names, ch_types : sequence of str
        Channels of the chunks that will be pushed.
    baseline : dict, optional
        Priors from the sleeper's profile (``rem_hr_bpm``, ``rem_emg_uv``; None values are
        learned tonight), e.g. ``SleeperProfile.detector_baseline()``.
    settings : DetectorSettings, optional
        Thresholds and weights.

    Attributes
    ----------
    missing : list of str
        Evidence that cannot be measured with these channels, and why.
    alerts : list of NightmareAlert
        Every alert raised so far.
    trace : list of tuple
        ``(t, stage, risk)`` of every step (for reports and benchmarks).
    """

    def __init__(
        self,
        sfreq: float,
        ch_names: Sequence[str],
        ch_types: Sequence[str],
        *,
        baseline: dict | None = None,
        settings: DetectorSettings | None = None,
    ):
        self.sfreq = check_positive("sfreq", sfreq)
        if self.sfreq < 100:
            raise ValueError(f"nightmare detection needs at least 100 Hz, got {sfreq:g} Hz.")
        self.ch_names, self.ch_types = check_channels(ch_names, ch_types)
        self.cfg = settings if settings is not None else DetectorSettings()
        unknown = set(self.cfg.weights) - set(MARKERS)
        if unknown:
            raise ValueError(f"unknown marker weights {sorted(unknown)}; markers are {MARKERS}.")
        fs = self.sfreq
        self.step = max(1, round(self.cfg.step_s * fs))
        ecg = pick_channels(self.ch_names, self.ch_types, "ecg")
        emg = pick_channels(self.ch_names, self.ch_types, "emg")
        eog = pick_channels(self.ch_names, self.ch_types, "eog")
        eeg = pick_channels(self.ch_names, self.ch_types, "eeg")
        self.ecg = ecg[0] if ecg else None
        self.emg = emg[0] if emg else None
        self.eog = eog[:2]
        self.eeg = eeg
        self.missing: list[str] = []
        self.available = {m: True for m in MARKERS}
        for marker, ok in (
            ("heart_rate", self.ecg is not None),
            ("emg_tone", self.emg is not None),
            ("emg_twitches", self.emg is not None),
            ("eeg_alpha_beta", bool(self.eeg)),
            ("eye_movements", bool(self.eog)),
        ):
            if not ok:
                self.available[marker] = False
                self.missing.append(f"{marker}: no {_MARKER_CHANNEL[marker]} channel")
        if not any(self.cfg.weights.get(m, 0) > 0 and self.available[m] for m in MARKERS):
            raise ValueError("no nightmare marker can be measured with these channels.")
        self.missing.append("respiration: not measured (no respiration channel)")
        # per-marker front ends
        if self.ecg is not None:
            self._hr = HeartRateTracker(fs, keep_s=120.0)
        if self.emg is not None:
            hi = min(100.0, 0.45 * fs)
            sos = butter(4, [20.0, hi], btype="bandpass", fs=fs, output="sos")
            self._emg = _Bins(sos, max(1, round(0.25 * fs)))
            self._emg_s = np.zeros(0, np.int64)  # bin starts of the last 60 s
            self._emg_r = np.zeros(0)  # their RMS, µV (NaN: flagged)
        if self.eog:
            self._eog_filt = SOSFilter(
                butter(2, [0.5, 8.0], btype="bandpass", fs=fs, output="sos"), 1
            )
            self._eog_started = False
            self._eog_prev = 0.0
            self._eog_last_event = -np.inf
            self._eog_events: deque = deque()
            self._eog_noise: deque = deque(maxlen=240)
            self._eog_med = np.inf
            self._eog_buf = np.zeros(0)
            self._eog_start = 0
        if self.eeg:
            f = np.fft.rfftfreq(self.step, 1.0 / fs)
            self._ab_mask = ((f >= 8.0) & (f < 11.5)) | ((f >= 16.0) & (f < min(30.0, 0.45 * fs)))
            self._taper = np.hanning(self.step)
            self._eeg_hist: deque = deque(maxlen=2)
        # step buffer of EEG samples and flags
        self._buf = np.zeros((len(self.eeg), 0))
        self._bufbad = np.zeros(0, dtype=bool)
        self._buf_start = 0
        # baselines: deques of calm-REM marker values (<= 20 min of REM)
        n_keep = int(20 * 60 / self.cfg.step_s)
        self._base: dict[str, deque] = {m: deque(maxlen=n_keep) for m in MARKERS}
        self._prior: dict[str, float | None] = {m: None for m in MARKERS}
        self._base_cache: dict[str, tuple] = {}
        self._base_n = dict.fromkeys(MARKERS, 0)
        baseline = baseline or {}
        for key in baseline:
            if key not in ("rem_hr_bpm", "rem_rmssd_ms", "rem_emg_uv"):
                raise ValueError(f"unknown baseline {key!r}.")
        if baseline.get("rem_hr_bpm") is not None:
            self._prior["heart_rate"] = float(baseline["rem_hr_bpm"])
        if baseline.get("rem_emg_uv") is not None:
            self._prior["emg_tone"] = float(baseline["rem_emg_uv"])
        self._rmssd_base: deque = deque(maxlen=n_keep)
        self._stages: dict[int, int] = {}
        self._last_stage = -1
        self._next = None
        self._batch = ChunkBatcher(max(1, round(fs)))
        self._above = 0
        self._rem_since = None
        self._prev_ev: dict = {}
        self._hold_until = -np.inf
        self._calm_since = -np.inf
        self._rising_since = float("nan")
        self._alert_active: NightmareAlert | None = None
        self.risk = 0.0
        self.evidence: dict = {}
        self.alerts: list[NightmareAlert] = []
        self.trace: list[tuple[float, int, float]] = []

    # ---- stage input: set_stage, set_hypnogram (StageInput) -------------------------------
    def _stage_at(self, t):
        e = int(t // EPOCH_S)
        if e in self._stages:
            self._last_stage = self._stages[e]
            return self._last_stage
        # not scored yet (online stager): the latest known stage
        for k in (e - 1, e - 2):
            if k in self._stages:
                return self._stages[k]
        return self._last_stage

    @property
    def active_alert(self) -> NightmareAlert | None:
        """The alert in force (until the risk has been calm for ``release_s``), or None."""
        return self._alert_active

    # ---- signal input ----------------------------------------------------------------------
    def push(self, chunk: Chunk, stage: int | None = None) -> list[NightmareAlert]:
        """Feed a chunk; return the alerts raised in it.

        Parameters
        ----------
        chunk : Chunk
            Next samples (same channels as at construction, consecutive).
        stage : int, optional
            Stage of the epochs the chunk touches, when the caller knows it (epochs given by
            :meth:`set_stage` are not overridden).

        Returns
        -------
        list of NightmareAlert
            New alerts.
        """
        self._check_chunk(chunk)
        if self._next is None:
            self._buf_start = chunk.first_sample
        self._next = chunk.stop_sample
        self._stage_chunk(chunk, stage)
        block = self._batch.add(chunk)
        if block is None:
            return []
        return self._process(block)

    def flush(self) -> list[NightmareAlert]:
        """Process the samples still gathered (end of the session); return new alerts."""
        block = self._batch.take()
        return [] if block is None else self._process(block)

    def _process(self, block):
        out = []
        # cut at the step boundaries: every evaluation sees the data up to its step's end and
        # nothing after it, so the result does not depend on the chunking
        a, b = block.first_sample, block.stop_sample
        k0 = (a - self._buf_start) // self.step + 1
        cuts = [self._buf_start + k * self.step for k in range(k0, k0 + (b - a) // self.step + 2)]
        cuts = [a] + [c for c in cuts if a < c < b] + [b]
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            piece = block if (lo, hi) == (a, b) else block.piece(lo - a, hi - a)
            out += self._push(piece)
        return out

    def _push(self, chunk):
        if chunk.n_samples == 0:
            return []
        fs = self.sfreq
        bad = (chunk.flags & BAD_FLAGS) != 0
        if self.ecg is not None:
            self._hr.push(chunk.data[self.ecg], chunk.flags[self.ecg], chunk.first_sample)
        if self.emg is not None:
            rms, starts = self._emg.push(chunk.data[self.emg], bad[self.emg], chunk.first_sample)
            if rms.size:
                keep = self._emg_s >= chunk.stop_sample - 60 * fs
                self._emg_s = np.concatenate([self._emg_s[keep], starts])
                self._emg_r = np.concatenate([self._emg_r[keep], rms])
        if self.eog:
            self._push_eog(chunk, bad)
        out = []
        self._buf = np.concatenate([self._buf, chunk.data[self.eeg]], axis=1)
        self._bufbad = np.concatenate([self._bufbad, bad[self.eeg].any(axis=0)])
        while self._buf.shape[1] >= self.step:
            seg = self._buf[:, : self.step]
            segbad = bool(self._bufbad[: self.step].any())
            self._buf = self._buf[:, self.step :]
            self._bufbad = self._bufbad[self.step :]
            self._buf_start += self.step
            alert = self._evaluate(self._buf_start, seg, segbad)
            if alert is not None:
                out.append(alert)
        return out

    def _push_eog(self, chunk, bad):
        x = chunk.data[self.eog]
        d = x[1] - x[0] if x.shape[0] == 2 else x[0]
        if not self._eog_started:
            self._eog_started = True
            self._eog_start = chunk.first_sample
        y = self._eog_filt(d[None, :])[0]
        fs = self.sfreq
        slope = np.abs(np.diff(np.concatenate(([self._eog_prev], y)))) * fs  # µV/s
        self._eog_prev = y[-1]
        slope[bad[self.eog].any(axis=0)] = 0.0
        self._eog_buf = np.concatenate([self._eog_buf, slope])
        # whole seconds only: the threshold of each second is 5x the median slope of the
        # seconds before it (and at least 300 µV/s); 0.3-s refractory
        sec = max(1, int(round(fs)))
        refr = 0.3 * fs
        while self._eog_buf.size >= sec:
            block = self._eog_buf[:sec]
            self._eog_buf = self._eog_buf[sec:]
            thr = max(300.0, 5.0 * self._eog_med)
            for i in np.flatnonzero(block > thr):
                smp = self._eog_start + int(i)
                if smp - self._eog_last_event >= refr:
                    self._eog_events.append(smp)
                    self._eog_last_event = smp
            self._eog_noise.append(float(np.median(block)))
            self._eog_med = float(np.median(self._eog_noise))
            self._eog_start += sec

    # ---- evaluation -----------------------------------------------------------------------
    def _markers(self, end, seg, segbad):
        fs = self.sfreq
        val = {}
        if self.ecg is not None:
            hr = self._hr.rate_bpm(10.0, now=end)
            val["heart_rate"] = hr
            self._rmssd_now = self._hr.rmssd_ms(60.0, now=end)
        if self.emg is not None:
            s_, r_ = self._emg_s, self._emg_r
            tone_bins = r_[(s_ >= end - 10 * fs) & (s_ < end) & np.isfinite(r_)]
            val["emg_tone"] = (
                float(np.percentile(tone_bins, 20)) if tone_bins.size >= 20 else np.nan
            )
            base = self._baseline("emg_tone")
            recent = r_[(s_ >= end - 30 * fs) & (s_ < end)]
            if base is not None and np.isfinite(base) and recent.size >= 60:
                above = np.isfinite(recent) & (recent > 4.0 * base)
                onsets = np.count_nonzero(
                    np.diff(np.concatenate(([False], above))).astype(bool) & above
                )
                val["emg_twitches"] = onsets * 2.0  # per minute
            else:
                val["emg_twitches"] = np.nan
        if self.eeg:
            if segbad:
                p = np.nan
            else:
                spec = np.abs(np.fft.rfft(seg * self._taper, axis=-1)) ** 2
                p = float(np.sum(spec[:, self._ab_mask]))
            self._eeg_hist.append(p)
            ps = [q for q in self._eeg_hist if np.isfinite(q)]
            val["eeg_alpha_beta"] = 10 * np.log10(np.mean(ps)) if ps else np.nan
        if self.eog:
            lo30 = end - 30 * fs
            while self._eog_events and self._eog_events[0] < lo30:
                self._eog_events.popleft()
            val["eye_movements"] = len(self._eog_events) * 2.0  # per minute
        return val

    def _baseline(self, m):
        cached = self._base_cache.get(m)
        if cached is not None:
            return cached[0]
        q = self._base[m]
        need = self.cfg.min_baseline_s / self.cfg.step_s
        val = float(np.median(q)) if len(q) >= need else self._prior[m]
        self._base_cache[m] = (val,)
        return val

    def _evidence(self, m, v, base):
        c = self.cfg
        if m == "heart_rate":
            e = (v - base) / c.hr_bpm
            unit = "bpm"
        elif m == "emg_tone":
            e = np.log(v / base) / np.log(c.tone_ratio) if v > 0 and base > 0 else np.nan
            unit = "uV"
        elif m == "emg_twitches":
            e = (v - base) / c.twitch_per_min
            unit = "/min"
        elif m == "eeg_alpha_beta":
            e = (v - base) / c.eeg_db
            unit = "dB"
        else:
            e = np.log(max(v, 1.0) / max(base, 1.0)) / np.log(c.eog_ratio)
            unit = "/min"
        return float(np.clip(e, -1.0, 4.0)), unit

    def _evaluate(self, end, seg, segbad):
        t = end / self.sfreq
        stage = self._stage_at(t - 1e-9)
        vals = self._markers(end, seg, segbad)
        c = self.cfg
        evidence = {}
        score = 0.0
        w_avail = 0.0
        w_possible = sum(c.weights.get(m, 0.0) for m in MARKERS if self.available[m])
        for m in MARKERS:
            w = c.weights.get(m, 0.0)
            if w <= 0 or not self.available[m]:
                continue
            v = vals.get(m, np.nan)
            base = self._baseline(m)
            if base is None or not np.isfinite(v):
                continue
            e, unit = self._evidence(m, v, base)
            if not np.isfinite(e):
                continue
            evidence[m] = {"value": float(v), "baseline": float(base), "unit": unit,
                           "evidence": e, "weight": w}  # fmt: skip
        if "heart_rate" in evidence:
            a, b = c.emg_hr_cap
            cap = float(np.clip(a + b * evidence["heart_rate"]["evidence"], 0.0, 4.0))
            for m in ("emg_tone", "emg_twitches"):
                if m in evidence and evidence[m]["evidence"] > cap:
                    evidence[m]["evidence"] = cap
                    evidence[m]["capped_by_heart_rate"] = True
        for v in evidence.values():
            score += v["weight"] * v["evidence"]
            w_avail += v["weight"]
        # REM period: how long
        if stage == R:
            if self._rem_since is None:
                self._rem_since = t
        else:
            self._rem_since = None
        # abrupt rises are arousals: hold alerts while they pass
        for m, jump in (("eeg_alpha_beta", c.jump_eeg), ("emg_tone", c.jump_tone)):
            if m in evidence and evidence[m]["evidence"] - self._prev_ev.get(m, 0.0) >= jump:
                self._hold_until = t + c.arousal_hold_s
        self._prev_ev = {m: v["evidence"] for m, v in evidence.items()}
        settled = stage == R and t - self._rem_since >= c.rem_settle_s
        # enough markers with a baseline: at least half of the measurable weight
        if settled and w_avail > 0 and w_avail >= 0.5 * w_possible:
            score *= w_possible / w_avail
            risk = float(1.0 / (1.0 + np.exp(-(score - c.score_mid) / c.score_scale)))
        else:
            risk = 0.0
        self.risk = risk
        self.evidence = evidence
        self.trace.append((t, stage, risk))
        # calm REM feeds the baselines
        if stage == R and risk < c.calm_risk and self._alert_active is None:
            for m, v in vals.items():
                if np.isfinite(v):
                    self._base[m].append(v)
                    self._base_n[m] += 1
                    # the median moves slowly: refresh it every 6th value (30 s of REM)
                    if self._base_n[m] % 6 == 0 or len(self._base[m]) <= 12:
                        self._base_cache.pop(m, None)
            if self.ecg is not None and np.isfinite(self._rmssd_now):
                self._rmssd_base.append(self._rmssd_now)
        # alert logic
        if risk >= c.calm_risk:
            if not np.isfinite(self._rising_since):
                self._rising_since = t
            self._calm_since = np.inf
        else:
            self._rising_since = float("nan")
            if not np.isfinite(self._calm_since):
                self._calm_since = t
            if self._alert_active is not None and t - self._calm_since >= c.release_s:
                self._alert_active = None
        ok = risk >= c.threshold and stage == R and t >= self._hold_until
        self._above = self._above + 1 if ok else 0
        if self._above >= c.confirm_steps and self._alert_active is None:
            alert = NightmareAlert(
                t=t,
                risk=risk,
                stage=stage,
                evidence=evidence,
                missing=tuple(self.missing),
                rising_since=self._rising_since,
            )
            self._alert_active = alert
            self.alerts.append(alert)
            return alert
        return None

    def baselines(self) -> dict[str, float | None]:
        """Return the night's calm-REM baselines, for the sleeper's profile.

        Returns
        -------
        dict
            ``rem_hr_bpm``, ``rem_rmssd_ms``, ``rem_emg_uv`` (None where not measured).
        """

        def med(q):
            return float(np.median(q)) if len(q) else None

        return {
            "rem_hr_bpm": med(self._base["heart_rate"]),
            "rem_rmssd_ms": med(self._rmssd_base),
            "rem_emg_uv": med(self._base["emg_tone"]),
        }
