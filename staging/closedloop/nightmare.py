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
- alpha/beta intrusion (EEG): 8-11.5 + 16-30 Hz power over 10 s (dB re 1 µV², Hann
  periodograms of :func:`dsp.spectral.welch_psd`, as a :class:`~dsp.spectral.Periodogram`);
  evidence 1 at +``eeg_db`` dB.
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
from math import isfinite

import numpy as np
from scipy.signal import butter

from dsp.ecg import HeartRateTracker
from dsp.iir import SOSFilter
from dsp.spectral import Periodogram
from headset.chunk import BAD_FLAGS, Annotation, Chunk, StreamInfo
from headset.stages import EPOCH_S, R

from ..channels import pick_channels
from ..events import ANNOTATIONS, nightmare_alert_record, to_event
from ..stager.features import GrowingRows
from . import _kernels
from .stream import (
    ChunkBatcher,
    EmgRms,
    Framer,
    StageInput,
    percentile,
)

#: A step of :attr:`NightmareDetector.trace`: its end (s), stage code and risk (float32).
TRACE_DTYPE = np.dtype([("t", np.float64), ("stage", np.int8), ("risk", np.float32)])

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
        return Annotation(self.t, 0.0, ANNOTATIONS["nightmare_alert"])

    def to_event(self) -> dict:
        """Return the event-stream object at the alert (:mod:`staging.events`)."""
        return to_event(self.t, "nightmare_alert", nightmare_alert_record(self))


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
    evidence_range : tuple of float
        Each marker's evidence is clipped to this range (no unit).
    min_weight_fraction : float
        Fraction of the measurable weight that must have a baseline before there is a risk.
    baseline_rem_s : float
        Calm REM kept for the baselines, s (the last 20 minutes).
    baseline_refresh_steps : int
        A baseline's median is recomputed every this many new values (steps), and at every
        value while it has at most twice as many.
    hr_window_s, rmssd_window_s, hr_keep_s : float
        Heart rate averaged over, RMSSD over (for the profile), beats kept, s.
    emg_bin_s : float
        Chin-EMG RMS bin, s (:class:`~staging.closedloop.stream.EmgRms`, 20-100 Hz).
    tone_window_s, tone_percentile : float
        EMG tone: this percentile (%) of the bins of the last ``tone_window_s`` seconds.
    tone_min_bins : int
        Usable bins needed for a tone value.
    twitch_window_s : float
        Twitches are counted over this many seconds (and reported per minute).
    twitch_factor : float
        A bin above this many times the tone baseline is a twitch.
    twitch_min_bins : int
        Bins needed for a twitch count.
    eeg_alpha_hz, eeg_beta_hz : tuple of float
        Alpha and beta bands of the intrusion marker, Hz (the beta top is lowered to 0.45 fs).
    eeg_steps : int
        Steps whose alpha + beta power is averaged.
    eog_band_hz : tuple of float
        Band-pass of the E2-E1 derivation before its slope is taken, Hz.
    eog_slope_factor : float
        A rapid eye movement: slope above this many times the median slope of the seconds
        before it ...
    eog_min_slope : float
        ... and above this, µV/s.
    eog_refractory_s : float
        Shortest time between two counted eye movements, s.
    eog_noise_s : int
        Seconds of 1-s median slopes that make the EOG background.
    eye_window_s : float
        Eye movements are counted over this many seconds (and reported per minute).
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
    evidence_range: tuple[float, float] = (-1.0, 4.0)
    min_weight_fraction: float = 0.5
    baseline_rem_s: float = 1200.0
    baseline_refresh_steps: int = 6
    hr_window_s: float = 10.0
    rmssd_window_s: float = 60.0
    hr_keep_s: float = 120.0
    emg_bin_s: float = 0.25
    tone_window_s: float = 10.0
    tone_percentile: float = 20.0
    tone_min_bins: int = 20
    twitch_window_s: float = 30.0
    twitch_factor: float = 4.0
    twitch_min_bins: int = 60
    eeg_alpha_hz: tuple[float, float] = (8.0, 11.5)
    eeg_beta_hz: tuple[float, float] = (16.0, 30.0)
    eeg_steps: int = 2
    eog_band_hz: tuple[float, float] = (0.5, 8.0)
    eog_slope_factor: float = 5.0
    eog_min_slope: float = 300.0
    eog_refractory_s: float = 0.3
    eog_noise_s: int = 240
    eye_window_s: float = 30.0


class _EyeMovements:
    """Rapid eye movements of E2-E1 (or the one EOG channel), counted over a sliding window.

    The derivation is band-passed (``eog_band_hz``) and its absolute slope (µV/s) taken; in
    whole seconds, a sample whose slope exceeds ``eog_slope_factor`` times the median slope
    of the seconds before it (and ``eog_min_slope``) is a movement, ``eog_refractory_s``
    after the last one.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    cfg : DetectorSettings
        The detector's settings.
    """

    def __init__(self, sfreq: float, cfg: DetectorSettings):
        self.sfreq, self.cfg = sfreq, cfg
        if not int(cfg.eog_noise_s) >= 1:
            raise ValueError(
                f"eog_noise_s must be at least 1 (s of EOG background), got {cfg.eog_noise_s}."
            )
        sos = butter(2, list(cfg.eog_band_hz), btype="bandpass", fs=sfreq, output="sos")
        self._filt = SOSFilter(sos, 1)
        self._events: deque = deque()  # samples of the movements in the window
        # the state of _kernels.eye_movements: the second in progress, the running median of
        # the seconds' median slopes (eog_noise_s of them), the last sample and movement
        self._part = np.zeros(max(1, int(round(sfreq))))
        self._ring = np.zeros(int(cfg.eog_noise_s))
        self._srt = np.zeros(int(cfg.eog_noise_s))
        self._ist = np.zeros(5, np.int64)
        self._fst = np.array([0.0, np.inf, -np.inf])  # E_PREV, E_MED, E_LAST

    def push(self, x: np.ndarray, bad: np.ndarray, first: int) -> None:
        """Count the movements of the next samples.

        Parameters
        ----------
        x : ndarray, shape (n_eog, n_samples)
            The one or two EOG channels (E1, E2), µV.
        bad : ndarray of bool, shape (n_samples,)
            Unusable samples (their slope counts as 0).
        first : int
            Absolute index of the first sample.
        """
        cfg = self.cfg
        d = x[1] - x[0] if x.shape[0] == 2 else x[0]
        y = self._filt(d[None, :])[0]
        # second after second, each threshold from the seconds before it only
        self._events.extend(
            _kernels.eye_movements(
                y, bad, first, self.sfreq, cfg.eog_min_slope, cfg.eog_slope_factor,
                cfg.eog_refractory_s * self.sfreq, self._part, self._ring, self._srt, self._ist,
                self._fst,
            ).tolist()
        )  # fmt: skip

    def per_minute(self, end: int) -> float:
        """Return the movements per minute over the ``eye_window_s`` before sample ``end``."""
        window = self.cfg.eye_window_s
        lo = end - window * self.sfreq
        while self._events and self._events[0] < lo:
            self._events.popleft()
        return len(self._events) * (60.0 / window)


class NightmareDetector(StageInput):
    """Streaming REM nightmare risk and alerts (see the module docstring).

    Parameters
    ----------
    sfreq : float or None
        Sampling rate, Hz (at least 100, :data:`staging.checks.MIN_SFREQ`); None (with
        ``ch_names`` and ``ch_types``): the stream is taken from the first chunk.
    ch_names, ch_types : sequence of str or None
        Channels of the chunks that will be pushed.
    baseline : dict, optional
        Priors from the sleeper's profile (``rem_hr_bpm``, ``rem_emg_uv``; None values are
        learned tonight), e.g. ``SleeperProfile.detector_baseline()``.
    settings : DetectorSettings, optional
        Thresholds and weights.

    Attributes
    ----------
    info : StreamInfo or None
        The stream (None until the first chunk when none was given).
    missing : list of str
        Evidence that cannot be measured with these channels, and why.
    hr : dsp.ecg.HeartRateTracker or None
        The heart-rate tracker (None without ECG); the monitor shows its rate.
    alerts : list of NightmareAlert
        Every alert raised so far.
    trace : ndarray, shape (n_steps,)
        Every step as a record ``(t, stage, risk)``: :data:`TRACE_DTYPE`, 13 bytes a step (for
        tests and benchmarks; a view, valid until the next push).
    """

    consumer = "nightmare detection"

    def __init__(
        self,
        sfreq: float | None = None,
        ch_names: Sequence[str] | None = None,
        ch_types: Sequence[str] | None = None,
        *,
        baseline: dict | None = None,
        settings: DetectorSettings | None = None,
    ):
        self.cfg = settings if settings is not None else DetectorSettings()
        unknown = set(self.cfg.weights) - set(MARKERS)
        if unknown:
            raise ValueError(f"unknown marker weights {sorted(unknown)}; markers are {MARKERS}.")
        self._init_baselines(baseline or {})
        self._above = 0
        self._rem_since = None
        self._prev_ev: dict = {}
        self._hold_until = -np.inf
        self._calm_since = -np.inf
        self._rising_since = float("nan")
        self._alert_active: NightmareAlert | None = None
        self._last_stage = -1
        self.risk = 0.0
        self.evidence: dict = {}
        self.alerts: list[NightmareAlert] = []
        self._trace = GrowingRows(TRACE_DTYPE, max(1, int(600 / self.cfg.step_s)))
        self._init_input(sfreq, ch_names, ch_types)

    def _init_baselines(self, baseline: dict) -> None:
        """Calm-REM baselines: deques of marker values, with the profile's priors."""
        for key in baseline:
            if key not in ("rem_hr_bpm", "rem_rmssd_ms", "rem_emg_uv"):
                raise ValueError(f"unknown baseline {key!r}.")
        n_keep = int(self.cfg.baseline_rem_s / self.cfg.step_s)
        self._base: dict[str, deque] = {m: deque(maxlen=n_keep) for m in MARKERS}
        self._prior: dict[str, float | None] = {m: None for m in MARKERS}
        self._base_cache: dict[str, tuple] = {}
        self._base_n = dict.fromkeys(MARKERS, 0)
        if baseline.get("rem_hr_bpm") is not None:
            self._prior["heart_rate"] = float(baseline["rem_hr_bpm"])
        if baseline.get("rem_emg_uv") is not None:
            self._prior["emg_tone"] = float(baseline["rem_emg_uv"])
        self._rmssd_base: deque = deque(maxlen=n_keep)

    def _bind(self, info: StreamInfo) -> None:
        """Set up what depends on the stream: the channel of each marker and its front end."""
        cfg, fs = self.cfg, info.sfreq
        self.step = max(1, round(cfg.step_s * fs))
        ecg = pick_channels(info.ch_names, info.ch_types, "ecg")
        emg = pick_channels(info.ch_names, info.ch_types, "emg")
        self.ecg = ecg[0] if ecg else None
        self.emg = emg[0] if emg else None
        self.eog = pick_channels(info.ch_names, info.ch_types, "eog")[:2]
        self.eeg = pick_channels(info.ch_names, info.ch_types, "eeg")
        self._check_markers()
        self.hr = HeartRateTracker(fs, keep_s=cfg.hr_keep_s) if self.ecg is not None else None
        if self.emg is not None:
            self._emg = EmgRms(fs, cfg.emg_bin_s)
            self._emg_s = np.zeros(0, np.int64)  # bin starts of the last twitch/tone window
            self._emg_r = np.zeros(0)  # their RMS, µV (NaN: flagged)
        self._eyes = _EyeMovements(fs, cfg) if self.eog else None
        if self.eeg:
            (b0, b1) = cfg.eeg_beta_hz
            bands = {"alpha": cfg.eeg_alpha_hz, "beta": (b0, min(b1, 0.45 * fs))}
            self._spectrum = Periodogram(fs, self.step, bands, window=np.hanning(self.step))
            self._eeg_hist: deque = deque(maxlen=cfg.eeg_steps)
        self._steps = Framer(len(self.eeg), self.step, self.step)  # EEG of each step
        self._batch = ChunkBatcher(max(1, round(fs)))

    def _check_markers(self) -> None:
        """List the markers these channels cannot measure; raise if none can be."""
        self.missing: list[str] = []
        self.available = {
            "heart_rate": self.ecg is not None,
            "emg_tone": self.emg is not None,
            "emg_twitches": self.emg is not None,
            "eeg_alpha_beta": bool(self.eeg),
            "eye_movements": bool(self.eog),
        }
        for marker in MARKERS:
            if not self.available[marker]:
                self.missing.append(f"{marker}: no {_MARKER_CHANNEL[marker]} channel")
        if not any(self.cfg.weights.get(m, 0) > 0 and self.available[m] for m in MARKERS):
            raise ValueError("no nightmare marker can be measured with these channels.")
        self.missing.append("respiration: not measured (no respiration channel)")
        # what every step weighs: the measurable markers with a weight, and their total
        w = self.cfg.weights
        self._weighted = [(m, w.get(m, 0.0)) for m in MARKERS if self.available[m]]
        self._w_possible = sum(wm for _, wm in self._weighted)
        self._weighted = [(m, wm) for m, wm in self._weighted if not wm <= 0]

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
    def trace(self) -> np.ndarray:
        """``(t, stage, risk)`` of every step so far, :data:`TRACE_DTYPE` records."""
        return self._trace.values

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
            self._origin = chunk.first_sample  # the steps are counted from here
        self._next = chunk.stop_sample
        self._stage_chunk(chunk, stage)
        block = self._batch.add(chunk)
        if block is None:
            return []
        return self._process(block)

    def flush(self) -> list[NightmareAlert]:
        """Process the samples still gathered (end of the session); return new alerts."""
        block = self._batch.take() if self.info is not None else None
        return [] if block is None else self._process(block)

    def _process(self, block):
        out = []
        # cut at the step boundaries: every evaluation sees the data up to its step's end and
        # nothing after it, so the result does not depend on the chunking
        a, b = block.first_sample, block.stop_sample
        k0 = (a - self._origin) // self.step + 1
        cuts = [self._origin + k * self.step for k in range(k0, k0 + (b - a) // self.step + 2)]
        cuts = [a] + [c for c in cuts if a < c < b] + [b]
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            piece = block if (lo, hi) == (a, b) else block.piece(lo - a, hi - a)
            out += self._push(piece)
        return out

    def _push(self, chunk):
        if chunk.n_samples == 0:
            return []
        bad = (chunk.flags & BAD_FLAGS) != 0
        first = chunk.first_sample
        if self.hr is not None:
            self.hr.push(chunk.data[self.ecg], chunk.flags[self.ecg], first)
        if self.emg is not None:
            rms, starts = self._emg.push(chunk.data[self.emg], bad[self.emg], first)
            if rms.size:
                keep_s = max(self.cfg.tone_window_s, self.cfg.twitch_window_s)
                keep = self._emg_s >= chunk.stop_sample - keep_s * self.sfreq
                self._emg_s = np.concatenate([self._emg_s[keep], starts])
                self._emg_r = np.concatenate([self._emg_r[keep], rms])
        if self._eyes is not None:
            self._eyes.push(chunk.data[self.eog], bad[self.eog].any(axis=0), first)
        out = []
        segs, segbad, starts = self._steps.push(chunk.data[self.eeg], bad[self.eeg], first)
        for i, start in enumerate(starts):
            alert = self._evaluate(int(start) + self.step, segs[:, i], bool(segbad[:, i].any()))
            if alert is not None:
                out.append(alert)
        return out

    # ---- evaluation -----------------------------------------------------------------------
    def _markers(self, end, seg, segbad):
        """Measure every marker at sample ``end`` (``seg``: the step's EEG)."""
        val = {}
        if self.hr is not None:
            val["heart_rate"] = self.hr.rate_bpm(self.cfg.hr_window_s, now=end)
            self._rmssd_now = self.hr.rmssd_ms(self.cfg.rmssd_window_s, now=end)
        if self.emg is not None:
            val["emg_tone"], val["emg_twitches"] = self._emg_markers(end)
        if self.eeg:
            val["eeg_alpha_beta"] = self._alpha_beta(seg, segbad)
        if self._eyes is not None:
            val["eye_movements"] = self._eyes.per_minute(end)
        return val

    def _emg_markers(self, end):
        """Return the chin-EMG tone (µV) and twitches (per minute) at sample ``end``."""
        c, fs = self.cfg, self.sfreq
        s_, r_ = self._emg_s, self._emg_r
        # the bin starts increase: each window is one run of bins, found by bisection
        lo_tone, lo_twitch, hi = np.searchsorted(
            s_, [end - c.tone_window_s * fs, end - c.twitch_window_s * fs, end]
        ).tolist()
        tone_bins = r_[lo_tone:hi]
        tone_bins = tone_bins[np.isfinite(tone_bins)]
        tone = (
            percentile(tone_bins, c.tone_percentile)
            if tone_bins.size >= c.tone_min_bins
            else np.nan
        )
        base = self._baseline("emg_tone")
        recent = r_[lo_twitch:hi]
        if base is None or not isfinite(base) or recent.size < c.twitch_min_bins:
            return tone, np.nan
        above = np.isfinite(recent) & (recent > c.twitch_factor * base)
        onsets = np.count_nonzero(np.diff(np.concatenate(([False], above))).astype(bool) & above)
        return tone, onsets * (60.0 / c.twitch_window_s)

    def _alpha_beta(self, seg, segbad):
        """Return the alpha + beta power of the last ``eeg_steps`` steps, dB (NaN: none)."""
        if segbad:
            p = np.nan
        else:
            # one Hann periodogram of the step per channel (welch_psd with one segment)
            p = float(np.sum(self._spectrum.band_power(seg)))  # µV²
        self._eeg_hist.append(p)
        ps = [q for q in self._eeg_hist if isfinite(q)]
        # numpy's mean without its set-up: the same sum (add.reduce) over the same count
        return 10 * np.log10(np.add.reduce(ps) / len(ps)) if ps else np.nan

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
        lo, hi = c.evidence_range
        return float(lo if e < lo else hi if e > hi else e), unit  # np.clip, NaN kept

    def _gather(self, vals):
        """Return the evidence of every marker with a value and a baseline (EMG capped)."""
        c = self.cfg
        evidence = {}
        for m, w in self._weighted:
            v = vals.get(m, np.nan)
            base = self._baseline(m)
            if base is None or not isfinite(v):
                continue
            e, unit = self._evidence(m, v, base)
            if not isfinite(e):
                continue
            evidence[m] = {"value": float(v), "baseline": float(base), "unit": unit,
                           "evidence": e, "weight": w}  # fmt: skip
        if "heart_rate" in evidence:
            a, b = c.emg_hr_cap
            cap = min(max(a + b * evidence["heart_rate"]["evidence"], 0.0), 4.0)  # finite
            for m in ("emg_tone", "emg_twitches"):
                if m in evidence and evidence[m]["evidence"] > cap:
                    evidence[m]["evidence"] = cap
                    evidence[m]["capped_by_heart_rate"] = True
        return evidence

    def _risk(self, t, stage, evidence):
        """Return the risk (0-1) of this step; follow the REM period and abrupt rises."""
        c = self.cfg
        score = 0.0
        w_avail = 0.0
        w_possible = self._w_possible
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
        # enough markers with a baseline: at least a fraction of the measurable weight
        if settled and w_avail > 0 and w_avail >= c.min_weight_fraction * w_possible:
            score *= w_possible / w_avail
            return float(1.0 / (1.0 + np.exp(-(score - c.score_mid) / c.score_scale)))
        return 0.0

    def _learn(self, stage, risk, vals):
        """Calm REM feeds the baselines."""
        c = self.cfg
        if not (stage == R and risk < c.calm_risk and self._alert_active is None):
            return
        for m, v in vals.items():
            if isfinite(v):
                self._base[m].append(v)
                self._base_n[m] += 1
                # the median moves slowly: refresh it every few values
                n = c.baseline_refresh_steps
                if self._base_n[m] % n == 0 or len(self._base[m]) <= 2 * n:
                    self._base_cache.pop(m, None)
        if self.hr is not None and isfinite(self._rmssd_now):
            self._rmssd_base.append(self._rmssd_now)

    def _evaluate(self, end, seg, segbad):
        t = end / self.sfreq
        stage = self._stage_at(t - 1e-9)
        vals = self._markers(end, seg, segbad)
        evidence = self._gather(vals)
        risk = self._risk(t, stage, evidence)
        self.risk = risk
        self.evidence = evidence
        self._trace.append((t, stage, risk))
        self._learn(stage, risk, vals)
        return self._alert(t, stage, risk, evidence)

    def _alert(self, t, stage, risk, evidence):
        """Raise an alert after ``confirm_steps`` steps above the threshold in REM."""
        c = self.cfg
        if risk >= c.calm_risk:
            if not isfinite(self._rising_since):
                self._rising_since = t
            self._calm_since = np.inf
        else:
            self._rising_since = float("nan")
            if not isfinite(self._calm_since):
                self._calm_since = t
            if self._alert_active is not None and t - self._calm_since >= c.release_s:
                self._alert_active = None
        ok = risk >= c.threshold and stage == R and t >= self._hold_until
        self._above = self._above + 1 if ok else 0
        if self._above < c.confirm_steps or self._alert_active is not None:
            return None
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
