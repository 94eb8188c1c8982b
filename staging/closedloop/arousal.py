"""Streaming cortical-arousal detector (AASM rule).

AASM: an arousal is an abrupt shift of EEG frequency - alpha, theta and/or frequencies above
16 Hz, but not spindles - lasting at least 3 s, after at least 10 s of stable sleep; in REM it
also needs a concurrent rise of chin-EMG tone lasting at least 1 s.

How it is measured here:

1. Every ``hop_s`` (0.5 s) the band powers of the last ``win_s`` (1.5 s, Hann window,
   :func:`dsp.spectral.welch_psd` and :func:`~dsp.spectral.band_power`, set up once in a
   :class:`~dsp.spectral.Periodogram`) are computed on the
   central and occipital EEG channels (summed): theta 4-8 Hz, alpha 8-11.5 Hz, sigma
   11.5-16 Hz (spindles), beta 16-30 Hz.
2. Each frame is compared with the *background*: the median log power of the frames in the
   10 s before it (frames inside a detected shift or with flagged samples excluded). A frame
   is *shifted* when alpha or beta power exceeds the background by ``shift_db`` (or theta by
   ``theta_db``), unless the sigma band rose more (a spindle).
3. A run of shifted frames (one missing frame tolerated) lasting >= 3 s is a candidate; its
   onset is the first shifted frame's window centre minus ``onset_lead_s``.
   Steps 2 and 3 run frame after frame in a numba kernel
   (:func:`staging.closedloop._kernels.eeg_shifts`).
4. The candidate is an arousal when the stage at its onset is sleep, the 10 s before it were
   sleep without another arousal and with a full background, and, in REM, the chin-EMG RMS
   (0.25-s bins, 20-100 Hz) exceeded ``emg_ratio`` times its background for >= 1 s within it.

The stage comes from outside (the online stager, or the true hypnogram in tests): pass it
with :meth:`ArousalDetector.push` or :meth:`ArousalDetector.set_stage`. Events are released
once the stage of every epoch they depend on is known, so an online stager that scores an
epoch after it ends delays the events by up to one epoch but does not change them.

Wake signs (for the intervention policy, which must not cue a sleeper who may be waking) need
no stage and come as soon as they are measured (:meth:`ArousalDetector.take_signs`):

- ``EEG shift``: a run of shifted frames (step 2) reaches ``min_duration_s``, whatever the
  stage and the sleep before it (an arousal candidate, before the AASM conditions of step 4);
- ``chin EMG burst``: the chin-EMG RMS stays above ``emg_ratio`` times its background (the
  median of the 0.25-s bins from 10 s to 2 s before) for ``emg_min_s``;
- ``movement``: on the accelerometer (``misc`` channels named ``ACC...``, milli-g), the
  peak-to-peak of any axis over 1 s exceeds ``movement_mg`` and 5 times its median of the
  last minute (breathing rocks the head by a few milli-g, a body movement by hundreds);
- ``arousal``: every released arousal event (step 4), at its onset.

Each run above its threshold gives one sign, at the run's start.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsp.spectral import Periodogram
from dsp.validate import check_positive
from headset.chunk import BAD_FLAGS, Annotation, Chunk, StreamInfo
from headset.stages import EPOCH_S, UNSCORED, R, W

from ..channels import pick_channels
from ..errors import StagingError
from ..events import ANNOTATIONS, arousal_record, to_event
from . import _kernels
from .stream import ChunkBatcher, EmgRms, Framer, StageInput, split_chunk

#: The bands of :func:`~staging.closedloop._kernels.eeg_shifts`'s codes.
_BANDS = {_kernels.ALPHA: "alpha", _kernels.BETA: "beta", _kernels.THETA: "theta"}


@dataclass(frozen=True)
class WakeSign:
    """A sign that the sleeper may be waking (module docstring).

    Attributes
    ----------
    t : float
        Seconds since the session start at which it began.
    source : str
        ``EEG shift``, ``chin EMG burst``, ``movement`` or ``arousal``.
    """

    t: float
    source: str


@dataclass(frozen=True)
class ArousalEvent:
    """One detected arousal.

    Attributes
    ----------
    onset_s, offset_s : float
        Seconds since the session start.
    stage : int
        Stage of the epoch holding the onset.
    shift_db : float
        Largest alpha/beta/theta rise over the background during the event, dB.
    band : str
        The band that rose most (``alpha``, ``beta`` or ``theta``).
    emg_rise_s : float
        Longest run of raised chin-EMG within the event, seconds (NaN without EMG).
    """

    onset_s: float
    offset_s: float
    stage: int
    shift_db: float
    band: str
    emg_rise_s: float

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.offset_s - self.onset_s

    def to_annotation(self) -> Annotation:
        """Return the EDF+ annotation ``Detected arousal`` (DESIGN 3)."""
        return Annotation(self.onset_s, self.duration_s, ANNOTATIONS["arousal"])

    def to_event(self) -> dict:
        """Return the event-stream object at the onset (:mod:`staging.events`)."""
        return to_event(self.onset_s, "arousal", arousal_record(self))


class ArousalDetector(StageInput):
    """Streaming AASM arousal detector (see the module docstring for the rule).

    Parameters
    ----------
    sfreq : float or None
        Sampling rate, Hz (at least 64, :data:`staging.checks.MIN_SFREQ`); None (with
        ``ch_names`` and ``ch_types``): the stream is taken from the first chunk.
    ch_names, ch_types : sequence of str or None
        Channels of the chunks that will be pushed.
    shift_db : float
        Alpha or beta rise over the background that marks a shifted frame, dB.
    theta_db : float
        Theta rise that marks a shifted frame, dB (higher: theta moves with REM sawtooth waves).
    min_duration_s : float
        Shortest arousal, s (AASM: 3).
    stable_s : float
        Stable sleep required before an arousal, s (AASM: 10).
    emg_ratio : float
        Chin-EMG RMS over its background that counts as a rise (REM rule).
    emg_min_s : float
        Shortest EMG rise in REM, s (AASM: 1).
    win_s, hop_s : float
        Spectral window and hop, s.
    onset_lead_s : float
        Correction from the first shifted window's centre to the onset, s.
    movement_mg : float
        Smallest 1-s peak-to-peak of an accelerometer axis that is a movement, milli-g.
    movement_factor : float
        ... and how many times its median over the still seconds of the last
        ``movement_history_s`` it must be (no unit).
    movement_history_s : float
        Seconds of still 1-s peak-to-peaks kept for that median.
    emg_bin_s : float
        Chin-EMG RMS bin, s (20-100 Hz, :class:`~staging.closedloop.stream.EmgRms`).
    emg_gap_s : float
        The background of a chin-EMG burst ends this many seconds before the bin, s.
    spindle_margin : float
        A frame is a spindle, not a shift, when sigma rose more than alpha and beta by this
        fraction of ``shift_db`` (no unit).

    Attributes
    ----------
    info : StreamInfo or None
        The stream (None until the first chunk when none was given).
    missing : list of str
        Evidence not available (e.g. ``"chin EMG: REM arousals cannot be confirmed"``).
    """

    consumer = "arousal detection"

    def __init__(
        self,
        sfreq: float | None = None,
        ch_names: Sequence[str] | None = None,
        ch_types: Sequence[str] | None = None,
        *,
        shift_db: float = 6.5,
        theta_db: float = 9.0,
        min_duration_s: float = 3.0,
        stable_s: float = 10.0,
        emg_ratio: float = 2.0,
        emg_min_s: float = 1.0,
        win_s: float = 1.5,
        hop_s: float = 0.5,
        onset_lead_s: float = 0.5,
        movement_mg: float = 50.0,
        movement_factor: float = 5.0,
        movement_history_s: float = 60.0,
        emg_bin_s: float = 0.25,
        emg_gap_s: float = 2.0,
        spindle_margin: float = 0.5,
    ):
        for name in ("shift_db", "theta_db", "min_duration_s", "stable_s", "emg_ratio"):
            check_positive(name, locals()[name])
        self.emg_min_s = check_positive("emg_min_s", emg_min_s)
        self.movement_mg = check_positive("movement_mg", movement_mg)
        self.movement_factor = check_positive("movement_factor", movement_factor)
        self.movement_history_s = check_positive("movement_history_s", movement_history_s)
        if round(self.movement_history_s) < 1:
            raise ValueError(
                f"movement_history_s must round to at least 1 s, got {movement_history_s} s."
            )
        self.emg_bin_s = check_positive("emg_bin_s", emg_bin_s)
        self.emg_gap_s = check_positive("emg_gap_s", emg_gap_s, allow_zero=True)
        if not self.emg_gap_s < float(stable_s):
            raise ValueError(
                f"emg_gap_s must be below stable_s ({stable_s} s: the chin-EMG background is the "
                f"bins from stable_s to emg_gap_s before), got {emg_gap_s} s."
            )
        self.spindle_margin = check_positive("spindle_margin", spindle_margin, allow_zero=True)
        self.hop_s = check_positive("hop_s", hop_s)
        self.win_s = check_positive("win_s", win_s)
        self.shift = float(shift_db) / 10.0 * np.log(10.0)  # natural-log units of power
        self.theta_shift = float(theta_db) / 10.0 * np.log(10.0)
        self.min_duration_s = float(min_duration_s)
        self.stable_s = float(stable_s)
        self.emg_ratio = float(emg_ratio)
        self.onset_lead_s = float(onset_lead_s)
        self.missing: list[str] = []
        self._run: dict | None = None  # the run of shifted frames in progress
        self._pending: list[dict] = []
        self._last_event_end = -np.inf
        self._signs: list[WakeSign] = []
        self.events: list[ArousalEvent] = []
        self._init_input(sfreq, ch_names, ch_types)

    def _bind(self, info: StreamInfo) -> None:
        """Set up what depends on the stream: channels, frames, filters, backgrounds."""
        self.eeg = pick_channels(info.ch_names, info.ch_types, "eeg")
        if not self.eeg:
            raise StagingError("arousal detection needs an EEG channel; the recording has none")
        emg = pick_channels(info.ch_names, info.ch_types, "emg")
        self.emg = emg[0] if emg else None
        self.acc = [i for i, u in enumerate(info.units) if u == "mg"]
        if self.emg is None:
            self.missing.append("chin EMG: REM arousals cannot be confirmed (none reported)")
        if not self.acc:
            self.missing.append("accelerometer: movements are not seen (no ACC channel)")
        fs = info.sfreq
        self.hop = max(1, round(self.hop_s * fs))
        self.win = max(self.hop, round(self.win_s * fs))
        self._bind_bands(fs)
        if self.emg is not None:
            self._emg_rms = EmgRms(fs, self.emg_bin_s)
            self._emg_bin = self._emg_rms.bin
            # bursts: the background of a bin is the bins from stable_s to emg_gap_s before it
            self._burst_bg = int(round(self.stable_s * fs / self._emg_bin))
            self._burst_gap = int(round(self.emg_gap_s * fs / self._emg_bin))
            self._burst_need = max(1, int(np.ceil(self.emg_min_s * fs / self._emg_bin - 1e-9)))
            if not 0 <= self._burst_gap < self._burst_bg:
                raise ValueError(
                    f"stable_s ({self.stable_s} s) and emg_gap_s ({self.emg_gap_s} s) leave no "
                    f"chin-EMG background bin of {self._emg_bin / fs} s between them."
                )
            # RMS of the last stable_s of bins (NaN: flagged, or before the first bin)
            self._emg_recent = np.full(self._burst_bg, np.nan)
            self._emg_run = 0  # consecutive bins above the background
        if self.acc:
            # the state of _kernels.movements: the second in progress (whole seconds, back to
            # back), the 1-s peak-to-peaks of the still seconds of the last minute
            self._acc_part = np.zeros((len(self.acc), max(1, round(fs))))
            self._acc_hist = np.zeros(int(round(self.movement_history_s)))
            self._acc_state = np.zeros(3, np.int64)
        # background: log band powers of the last n_bg frames and whether each is usable
        self._n_bg = int(round(self.stable_s / (self.hop / fs)))
        self._ring = np.zeros((self._n_bg, 4))
        self._ring_ok = np.zeros(self._n_bg, dtype=bool)
        self._shift_state = np.zeros(4, np.int64)  # ring slot, background frames, run, gap
        # (bin start, rms) of the last minute: the background and the event of _emg_rise
        self._emg_hist: deque = deque(maxlen=int(60 / self.emg_bin_s))
        self._batch = ChunkBatcher(self.hop * 2)

    def _bind_bands(self, fs: float) -> None:
        """Set up the EEG frames and the theta, alpha, sigma and beta bands (Hz)."""
        bands = {"theta": (4.0, 8.0), "alpha": (8.0, 11.5), "sigma": (11.5, 16.0)}
        bands["beta"] = (16.0, min(30.0, 0.45 * fs))
        self._spectrum = Periodogram(fs, self.win, bands, window=np.hanning(self.win))
        self._framer = Framer(len(self.eeg), self.win, self.hop)

    def take_signs(self) -> list[WakeSign]:
        """Return the wake signs measured since the last call (module docstring), in order.

        Returns
        -------
        list of WakeSign
            Signs of every source, sorted by time.
        """
        out, self._signs = sorted(self._signs, key=lambda x: x.t), []
        return out

    # ---- signal input --------------------------------------------------------------------
    def push(self, chunk: Chunk, stage: int | None = None) -> list[ArousalEvent]:
        """Feed a chunk; return the arousals confirmed so far and not returned before.

        Parameters
        ----------
        chunk : Chunk
            Next samples (same channels as at construction).
        stage : int, optional
            Stage of every epoch the chunk touches (for a caller who knows it, e.g. the
            current online estimate); epochs given by :meth:`set_stage` are not overridden.

        Returns
        -------
        list of ArousalEvent
            Newly released events, in time order.
        """
        self._check_chunk(
            chunk, ": feed consecutive chunks (gaps are flagged samples, not missing ones)."
        )
        self._next = chunk.stop_sample
        self._stage_chunk(chunk, stage)
        block = self._batch.add(chunk)
        if block is None:
            return self._release()
        return self._process(block)

    def _process(self, block):
        out = []
        # long blocks (a whole recording) are fed in pieces so that the EMG history and the
        # EEG frames stay in step: the result does not depend on the chunking
        for piece in split_chunk(block, max(self.hop * 8, 1)):
            out += self._push(piece)
        return out

    def _push(self, chunk):
        if chunk.n_samples == 0:
            return self._release()
        if self.emg is not None:
            self._push_emg(chunk)
        if self.acc:
            self._push_acc(chunk)
        x = chunk.data[self.eeg]
        fl = chunk.flags[self.eeg]
        frames, fflags, starts = self._framer.push(x, fl, chunk.first_sample)
        if frames is not None:
            self._frames(frames, fflags, starts)
        return self._release()

    def flush(self) -> list[ArousalEvent]:
        """End of the session: close a run in progress and release what can be released."""
        if self.info is None:  # no chunk came
            return []
        block = self._batch.take()
        out = self._process(block) if block is not None else []
        if self._run is not None:
            self._close_run()
            self._shift_state[_kernels.S_IN_RUN] = self._shift_state[_kernels.S_GAP] = 0
        return out + self._release(final=True)

    def _push_emg(self, chunk):
        bad = (chunk.flags[self.emg] & BAD_FLAGS) != 0
        rms, starts = self._emg_rms.push(chunk.data[self.emg], bad, chunk.first_sample)
        if not rms.size:
            return
        self._emg_hist.extend(zip(starts.tolist(), rms.tolist()))
        self._emg_bursts(rms, starts)

    def _emg_bursts(self, rms, starts):
        """Chin-EMG bursts: ``emg_min_s`` above ``emg_ratio`` x the bins 10 s to 2 s before."""
        n_bg, need = self._burst_bg, self._burst_need
        allr = np.concatenate([self._emg_recent, rms])
        self._emg_recent = allr[-n_bg:]
        self._emg_run, hits = _kernels.emg_bursts(
            allr, n_bg, self._burst_gap, n_bg // 2, self.emg_ratio, need, self._emg_run
        )
        for i in hits.tolist():
            first = int(starts[i]) - (need - 1) * self._emg_bin
            self._signs.append(WakeSign(first / self.sfreq, "chin EMG burst"))

    def _push_acc(self, chunk):
        """Movements: 1-s peak-to-peak of an accelerometer axis over its threshold."""
        for s in _kernels.movements(
            chunk.data[self.acc], chunk.first_sample, self.movement_mg, self.movement_factor,
            self._acc_part, self._acc_hist, self._acc_state,
        ).tolist():  # fmt: skip
            self._signs.append(WakeSign(s / self.sfreq, "movement"))

    def _frames(self, frames, fflags, starts):
        # one Hann-windowed periodogram per frame and channel (welch_psd with one segment),
        # its band powers (n_ch, n_fr, 4), µV², channels summed
        bp = self._spectrum.band_power(frames).sum(axis=0)
        bad = fflags.any(axis=(0, 2)) | ~np.all(np.isfinite(bp), axis=1)
        logp = np.log(np.maximum(bp, 1e-12))
        shifted, score, band, n_ok, closes = _kernels.eeg_shifts(
            logp, bad, self._ring, self._ring_ok, self._shift_state, self._n_bg // 2,
            self.shift, self.theta_shift, self.spindle_margin * self.shift,
        )  # fmt: skip
        # the runs: the frames that start, extend or end one
        for i in np.flatnonzero(shifted | closes).tolist():
            if closes[i]:
                self._close_run()
                continue
            centre = (int(starts[i]) + self.win / 2) / self.sfreq
            score_i, band_i = score[i], _BANDS[band[i]]
            if self._run is None:
                self._run = {"first": centre, "last": centre, "peak": score_i, "band": band_i,
                             "bg_n": int(n_ok[i])}  # fmt: skip
            else:
                self._run["last"] = centre
                if score_i > self._run["peak"]:
                    self._run["peak"], self._run["band"] = score_i, band_i
            run = self._run
            hop_s = self.hop / self.sfreq
            if not run.get("signed") and run["last"] - run["first"] + hop_s >= self.min_duration_s:
                run["signed"] = True
                self._signs.append(WakeSign(run["first"] - self.onset_lead_s, "EEG shift"))

    def _close_run(self):
        run, self._run = self._run, None
        hop_s = self.hop / self.sfreq
        onset = run["first"] - self.onset_lead_s
        offset = run["last"] + hop_s - self.onset_lead_s + 0.5 * hop_s
        if offset - onset < self.min_duration_s:
            return
        run["onset"], run["offset"] = onset, offset
        run["emg_s"] = self._emg_rise(onset, offset)
        self._pending.append(run)

    def _stage(self, t):
        return self._stages.get(int(t // EPOCH_S))

    def _release(self, final=False):
        out = []
        keep = []
        for run in self._pending:
            onset, offset = run["onset"], run["offset"]
            need = {int(max(onset - self.stable_s, 0.0) // EPOCH_S), int(onset // EPOCH_S)}
            stages = [self._stages.get(e) for e in sorted(need)]
            if any(s is None for s in stages):
                if not final:
                    keep.append(run)
                continue
            stage = self._stage(onset)
            ok = all(s not in (W, UNSCORED) for s in stages)
            ok &= onset - self._last_event_end >= self.stable_s
            ok &= run["bg_n"] >= self._n_bg // 2
            emg_s = run["emg_s"]
            if ok and stage == R and not emg_s >= self.emg_min_s:
                ok = False
            if ok:
                ev = ArousalEvent(
                    onset_s=float(onset),
                    offset_s=float(offset),
                    stage=int(stage),
                    shift_db=float(run["peak"] * 10.0 / np.log(10.0)),
                    band=run["band"],
                    emg_rise_s=emg_s,
                )
                self._last_event_end = offset
                out.append(ev)
                self._signs.append(WakeSign(ev.onset_s, "arousal"))
        self._pending = keep
        self.events.extend(out)
        return out

    def _emg_rise(self, onset, offset):
        """Longest run (s) of EMG bins above emg_ratio x background within the event."""
        if self.emg is None:
            return float("nan")
        fs = self.sfreq
        b = self._emg_bin / fs
        bins = [(s / fs, r) for s, r in self._emg_hist]
        before = [r for t, r in bins if onset - self.stable_s <= t < onset - b and np.isfinite(r)]
        if len(before) < 4:
            return float("nan")
        base = float(np.median(before))
        best = run = 0
        for t, r in bins:
            if onset - b <= t < offset + b:
                if np.isfinite(r) and r > self.emg_ratio * base:
                    run += 1
                    best = max(best, run)
                else:
                    run = 0
        return best * b


def detect_arousals(
    data,
    sfreq: float,
    ch_names: Sequence[str],
    ch_types: Sequence[str],
    hypnogram,
    flags=None,
    **kwargs,
) -> list[ArousalEvent]:
    """Detect arousals in a whole recording (offline run of :class:`ArousalDetector`).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Signals in microvolts.
    sfreq : float
        Sampling rate, Hz.
    ch_names, ch_types : sequence of str
        Channel names and MNE types.
    hypnogram : array_like of int, shape (n_epochs,)
        Stage per 30-s epoch.
    flags : ndarray of uint8, shape (n_channels, n_samples), optional
        Per-sample flags.
    **kwargs
        Options of :class:`ArousalDetector`.

    Returns
    -------
    list of ArousalEvent
        The arousals, in time order.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D (n_channels, n_samples), got shape {data.shape}.")
    if flags is None:
        flags = np.zeros(data.shape, np.uint8)
    det = ArousalDetector(sfreq, ch_names, ch_types, **kwargs)
    det.set_hypnogram(hypnogram)
    chunk = Chunk(data, 0, float(sfreq), tuple(ch_names), tuple(ch_types), np.asarray(flags))
    det.push(chunk)
    det.flush()
    return list(det.events)


def match_events(detected_onsets, true_onsets, tol_s: float = 3.0) -> tuple[int, int, int]:
    """Match onsets one-to-one within a tolerance.

    Parameters
    ----------
    detected_onsets, true_onsets : array_like of float
        Onsets in seconds.
    tol_s : float
        Largest onset difference of a match, seconds.

    Returns
    -------
    (tp, fp, fn) : tuple of int
        Matched, unmatched detections, unmatched true events.
    """
    det = sorted(float(d) for d in detected_onsets)
    tru = sorted(float(t) for t in true_onsets)
    used = [False] * len(det)
    tp = 0
    for t in tru:
        best, best_d = None, tol_s
        for j, d in enumerate(det):
            if not used[j] and abs(d - t) <= best_d:
                best, best_d = j, abs(d - t)
        if best is not None:
            used[best] = True
            tp += 1
    return tp, len(det) - tp, len(tru) - tp
