"""R-peak detection, beat-to-beat heart rate and heart-rate variability from one ECG lead.

The detector (:class:`RPeakDetector`) is a Pan-Tompkins style state machine compiled with numba
(:mod:`dsp._ecg_kernels`): band-pass 5-18 Hz, derivative, squaring, 150-ms moving-window
integration, adaptive signal/noise thresholds with a 200-ms refractory period, T-wave rejection
and search-back, then refinement of each beat to the R-wave extremum of the raw signal. It runs
streaming (``push`` chunk after chunk) or offline (:func:`detect_r_peaks`), with identical
results whatever the chunking.

Robustness: samples flagged by the device (lead-off, gap, saturation, corrupt), non-finite
samples, samples at the ADC rail and flat lines reset the detector, which emits no beat there
and learns its thresholds again (2 s by default) once the signal is back. Beats whose R wave is
smaller than ``min_height_uv`` above the local mean are dropped (noise on a loose electrode).

Beat series (:func:`rr_intervals`, :func:`heart_rate`, :func:`rmssd`, :class:`HeartRateTracker`)
reject physiologically implausible intervals and intervals that jump by more than
``max_change`` from the recent accepted ones (missed or extra beats), and never chain an
interval across a reset of the detector.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from statistics import median

import numpy as np
from scipy.signal import butter, sosfilt_zi

from . import _ecg_kernels as _k
from .docs import fill_doc
from .flags import BAD_FLAGS
from .validate import as_signal, check_option, check_positive

__all__ = [
    "HeartRateTracker",
    "RPeakDetector",
    "detect_r_peaks",
    "heart_rate",
    "rmssd",
    "rr_intervals",
]


def _as_1d(name, x):
    x = as_signal(x, name)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {x.shape}.")
    return np.ascontiguousarray(x, dtype=np.float64)


#: Lowest sampling rate of R-peak detection, Hz: the QRS complex needs it.
MIN_SFREQ = 100.0


class RPeakDetector:
    """Streaming R-peak detector for one ECG lead.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz (at least 100).
    band : tuple of float
        Band-pass edges of the QRS detector in Hz, default (5, 18).
    polarity : {"auto", "positive", "negative"}
        Direction of the R wave; ``"auto"`` learns it after each (re)start.
    learn_s : float
        Seconds of valid signal used to set the thresholds after each (re)start (no beats are
        reported during them).
    refractory_s : float
        Shortest accepted beat-to-beat interval in seconds (0.2 s = 300 bpm).
    rail_uv : float
        Absolute values at or above this (microvolts) are treated as a railed input.
    flat_s : float
        An unchanged signal for this many seconds is treated as lead-off.
    min_height_uv : float
        Smallest R-wave height above the local mean in microvolts; smaller peaks are dropped.

    Notes
    -----
    ``push`` returns absolute sample indices (``first_sample`` of the chunk plus the position).
    A beat is reported about 0.2-0.3 s after it happened (the confirmation delay).
    """

    def __init__(
        self,
        sfreq: float,
        *,
        band: tuple[float, float] = (5.0, 18.0),
        polarity: str = "auto",
        learn_s: float = 2.0,
        refractory_s: float = 0.2,
        rail_uv: float = 180_000.0,
        flat_s: float = 0.25,
        min_height_uv: float = 100.0,
    ):
        self.sfreq = check_positive("sfreq", sfreq)
        if self.sfreq < MIN_SFREQ:
            raise ValueError(
                f"sfreq must be at least {MIN_SFREQ:g} Hz for R-peak detection, got {sfreq}."
            )
        check_option("polarity", polarity, ("auto", "positive", "negative"))
        lo, hi = (float(b) for b in band)
        if not 0 < lo < hi < self.sfreq / 2:
            raise ValueError(
                f"band must satisfy 0 < low < high < sfreq/2 = {self.sfreq / 2}, got {band}."
            )
        learn_s = check_positive("learn_s", learn_s)
        refractory_s = check_positive("refractory_s", refractory_s)
        flat_s = check_positive("flat_s", flat_s)
        check_positive("rail_uv", rail_uv)
        check_positive("min_height_uv", min_height_uv, allow_zero=True)
        fs = self.sfreq
        self.polarity = polarity
        self._sos = np.ascontiguousarray(
            butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos"), dtype=np.float64
        )
        self._zi_unit = np.ascontiguousarray(sosfilt_zi(self._sos), dtype=np.float64)
        win = max(2, round(0.150 * fs))
        self._ipar = np.zeros(_k.N_IPAR, np.int64)
        self._ipar[_k.P_WIN] = win
        self._ipar[_k.P_REFRACT] = max(1, round(refractory_s * fs))
        self._ipar[_k.P_CONFIRM] = max(1, round(0.2 * fs))
        self._ipar[_k.P_TWAVE] = max(1, round(0.36 * fs))
        self._ipar[_k.P_LEARN] = max(win + 1, round(learn_s * fs))
        self._ipar[_k.P_FLAT] = max(2, round(flat_s * fs))
        self._ipar[_k.P_BEFORE] = round(0.25 * fs)
        self._ipar[_k.P_AFTER] = round(0.02 * fs)
        self._ipar[_k.P_FIXED_POL] = {"auto": 0, "positive": 1, "negative": -1}[polarity]
        self._ipar[_k.P_DECAY] = round(2.0 * fs)
        self._fpar = np.zeros(_k.N_FPAR, np.float64)
        self._fpar[_k.Q_RAIL] = float(rail_uv)
        self._fpar[_k.Q_FLAT_EPS] = 0.0
        self._fpar[_k.Q_SEARCHBACK] = 1.66
        self._fpar[_k.Q_EMA] = 1.0 - np.exp(-1.0 / (0.5 * fs))
        self._fpar[_k.Q_SFREQ] = fs
        self._fpar[_k.Q_MIN_RR] = 0.25
        self._fpar[_k.Q_MAX_RR] = 2.5
        self._fpar[_k.Q_MIN_HEIGHT] = float(min_height_uv)
        self._ring = int(np.ceil(5.0 * fs))
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next chunk starts a new recording."""
        n_sec = self._sos.shape[0]
        self._zi = np.zeros((n_sec, 2))
        self._dbuf = np.zeros(4)
        self._mwi = np.zeros(int(self._ipar[_k.P_WIN]))
        self._raw = np.zeros(self._ring)
        self._rr = np.zeros(8, np.int64)
        self._learn_idx = np.zeros(64, np.int64)
        self._learn_val = np.zeros(64)
        self._fst = np.zeros(_k.N_FSTATE)
        self._ist = np.zeros(_k.N_ISTATE, np.int64)
        self._ist[_k.I_CAND_IDX] = -1
        self._ist[_k.I_NOISE_IDX] = -1
        self._ist[_k.I_LAST_QRS] = -1
        self._ist[_k.I_LAST_OUT] = -1
        self._ist[_k.I_DECAY_AT] = -1
        self._ist[_k.I_POLARITY] = self._ipar[_k.P_FIXED_POL]
        self._next = None
        self._was_valid = False
        #: Absolute sample indices where usable input became unusable (the detector restarts).
        self.restarts: list[int] = []
        #: Number of samples that were flagged, railed, missing or not finite.
        self.n_invalid = 0

    @property
    def next_sample(self) -> int | None:
        """Absolute index of the sample expected next (None before the first chunk)."""
        return self._next

    @fill_doc
    def push(self, x, flags=None, first_sample: int | None = None, *, _mwi_out=None) -> np.ndarray:
        """Feed the next chunk and return the R peaks confirmed in it.

        Parameters
        ----------
        x : array_like, shape (n_samples,)
            ECG samples in microvolts.
        %(sample_flags)s
        first_sample : int, optional
            Absolute index of ``x[0]``; defaults to the sample after the previous chunk (0 at
            the start). A jump forward is treated as a gap (the detector restarts).

        Returns
        -------
        ndarray of int64, shape (n_beats,)
            Absolute sample indices of the R peaks, increasing, possibly slightly before
            ``first_sample`` (beats are confirmed with a delay of about 0.2-0.3 s).
        """
        x = _as_1d("x", x)
        n = x.shape[0]
        if first_sample is None:
            first_sample = 0 if self._next is None else self._next
        first_sample = int(first_sample)
        if self._next is not None and first_sample < self._next:
            raise ValueError(
                f"first_sample {first_sample} goes back in time (expected {self._next}); "
                "call reset() to start a new recording."
            )
        valid = np.isfinite(x)
        if flags is not None:
            flags = np.asarray(flags)
            if flags.shape != x.shape:
                raise ValueError(f"flags shape {flags.shape} differs from x shape {x.shape}.")
            valid &= (np.asarray(flags, np.uint8) & BAD_FLAGS) == 0  # no copy of uint8 flags
        if not valid.all():
            x = np.where(valid, x, 0.0)
        if self._next is not None and first_sample > self._next:
            # samples never received: restart
            gap = np.zeros(1, dtype=bool)
            self._run(np.zeros(1), gap, self._next, None)
            self.n_invalid += first_sample - self._next - 1
        out = self._run(x, valid, first_sample, _mwi_out)
        self._next = first_sample + n
        return out

    def _run(self, x, valid, start, mwi_out):
        n = x.shape[0]
        out = np.empty(n // max(1, int(self._ipar[_k.P_REFRACT]) // 2) + 72, np.int64)
        if mwi_out is None:
            mwi_out = np.empty(0)
        resets = np.empty(n, np.int64)
        n_out = _k.ecg_detect(
            x,
            valid,
            start,
            self._sos,
            self._zi_unit,
            self._zi,
            self._dbuf,
            self._mwi,
            self._raw,
            self._rr,
            self._fst,
            self._ist,
            self._ipar,
            self._fpar,
            self._learn_idx,
            self._learn_val,
            out,
            resets,
            mwi_out,
        )
        self.restarts.extend(resets[: self._ist[_k.I_N_RESETS]].tolist())
        self.n_invalid += int(n - np.count_nonzero(valid & (np.abs(x) < self._fpar[_k.Q_RAIL])))
        return out[:n_out].copy()

    def flush(self) -> np.ndarray:
        """Return a beat still waiting for confirmation at the end of a recording.

        Returns
        -------
        ndarray of int64, shape (0,) or (1,)
            The last beat if one was pending, else empty. The detector state is unchanged
            otherwise; call :meth:`reset` before reusing it for another recording.
        """
        if self._next is None:
            return np.empty(0, np.int64)
        cidx = int(self._ist[_k.I_CAND_IDX])
        if (
            cidx < 0
            or self._ist[_k.I_VALID] == 0
            or self._ist[_k.I_LEARN_N] < self._ipar[_k.P_LEARN]
        ):
            return np.empty(0, np.int64)
        pk = self._fst[_k.F_CAND_VAL]
        self._ist[_k.I_CAND_IDX] = -1
        self._fst[_k.F_CAND_VAL] = 0.0
        out = np.empty(2, np.int64)
        n_out = _k._classify(
            cidx,
            pk,
            self._fst,
            self._ist,
            self._rr,
            self._ipar,
            self._fpar,
            self._raw,
            self._next - 1,
            out,
            0,
        )
        return out[:n_out].copy()


@fill_doc
def detect_r_peaks(x, sfreq: float, flags=None, **kwargs) -> np.ndarray:
    """Detect R peaks in a whole recording (offline).

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        ECG in microvolts.
    %(sfreq)s
    %(sample_flags)s
    **kwargs
        Options of :class:`RPeakDetector`.

    Returns
    -------
    ndarray of int64, shape (n_beats,)
        Sample indices of the R peaks, increasing. Identical to running
        :class:`RPeakDetector` chunk by chunk (plus :meth:`RPeakDetector.flush`).
    """
    det = RPeakDetector(sfreq, **kwargs)
    peaks = det.push(x, flags)
    return np.concatenate([peaks, det.flush()])


@fill_doc
def rr_intervals(
    peaks,
    sfreq: float,
    *,
    min_rr_s: float = 0.3,
    max_rr_s: float = 2.0,
    max_change: float = 0.3,
    breaks=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beat-to-beat intervals with a validity mask.

    Parameters
    ----------
    peaks : array_like of int, shape (n_beats,)
        R-peak sample indices, increasing.
    %(sfreq)s
    min_rr_s, max_rr_s : float
        Plausible range of an interval in seconds (defaults 0.3-2.0 s = 30-200 bpm).
    max_change : float
        An interval that differs from the median of the last five accepted ones by more than
        this fraction is rejected (a missed or an extra beat); three consecutive rejected
        intervals that agree with each other restart the reference (the rhythm changed).
    breaks : array_like of int, optional
        Sample indices where the signal was unusable (e.g. ``RPeakDetector.restarts``); an
        interval spanning one is rejected.

    Returns
    -------
    t : ndarray of float64, shape (n_beats - 1,)
        Time of the second beat of each interval, seconds.
    rr : ndarray of float64, shape (n_beats - 1,)
        Intervals in seconds.
    ok : ndarray of bool, shape (n_beats - 1,)
        True for accepted intervals.
    """
    sfreq = check_positive("sfreq", sfreq)
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.ndim != 1:
        raise ValueError(f"peaks must be 1-D, got shape {peaks.shape}.")
    if peaks.size < 2:
        e = np.empty(0)
        return e, e.copy(), np.empty(0, bool)
    if np.any(np.diff(peaks) <= 0):
        raise ValueError("peaks must be strictly increasing sample indices.")
    rr = np.diff(peaks) / sfreq
    t = peaks[1:] / sfreq
    ok = (rr >= min_rr_s) & (rr <= max_rr_s)
    if breaks is not None and len(breaks):
        b = np.sort(np.asarray(breaks, dtype=np.int64))
        # an interval (p0, p1] spans a break if some break lies in (p0, p1]
        k0 = np.searchsorted(b, peaks[:-1], side="right")
        k1 = np.searchsorted(b, peaks[1:], side="right")
        ok &= k1 == k0
    filt = _RRFilter(max_change)
    for i in range(rr.size):
        if ok[i]:
            ok[i] = filt.accept(float(rr[i]))
    return t, rr, ok


@fill_doc
def heart_rate(peaks, sfreq: float, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Beat-to-beat heart rate from accepted intervals.

    Parameters
    ----------
    peaks : array_like of int, shape (n_beats,)
        R-peak sample indices.
    %(sfreq)s
    **kwargs
        Options of :func:`rr_intervals`.

    Returns
    -------
    t : ndarray of float64, shape (n_ok,)
        Time of each beat closing an accepted interval, seconds.
    hr : ndarray of float64, shape (n_ok,)
        Instantaneous heart rate, beats per minute.
    """
    t, rr, ok = rr_intervals(peaks, sfreq, **kwargs)
    return t[ok], 60.0 / rr[ok]


@fill_doc
def rmssd(peaks, sfreq: float, **kwargs) -> float:
    """Root mean square of successive differences of accepted intervals.

    Parameters
    ----------
    peaks : array_like of int, shape (n_beats,)
        R-peak sample indices.
    %(sfreq)s
    **kwargs
        Options of :func:`rr_intervals`.

    Returns
    -------
    float
        RMSSD in milliseconds; NaN with fewer than two successive pairs of accepted intervals.
    """
    _, rr, ok = rr_intervals(peaks, sfreq, **kwargs)
    pair = ok[1:] & ok[:-1]
    if np.count_nonzero(pair) < 2:
        return float("nan")
    d = np.diff(rr)[pair] * 1000.0
    return float(np.sqrt(np.mean(d * d)))


class _RRFilter:
    """Accept an interval if it is within ``max_change`` of the median of the last 5 accepted.

    Three consecutive rejected intervals that agree with each other mean the rhythm changed:
    the reference restarts from them.
    """

    def __init__(self, max_change: float):
        self.max_change = float(max_change)
        self.recent: deque[float] = deque(maxlen=5)
        self.rejected: deque[float] = deque(maxlen=3)

    def accept(self, rr: float) -> bool:
        if not self.recent:
            self.recent.append(rr)
            return True
        ref = median(self.recent)  # = np.median of these few finite values, bit for bit
        if abs(rr - ref) <= self.max_change * ref:
            self.recent.append(rr)
            self.rejected.clear()
            return True
        self.rejected.append(rr)
        if len(self.rejected) == 3:
            med = median(self.rejected)
            if all(abs(r - med) <= self.max_change * med for r in self.rejected):
                self.recent.clear()
                self.recent.extend(self.rejected)
                self.rejected.clear()
        return False

    def clear(self) -> None:
        self.recent.clear()
        self.rejected.clear()


@fill_doc
class HeartRateTracker:
    """Streaming heart rate and RMSSD over sliding windows.

    Parameters
    ----------
    %(sfreq)s
    keep_s : float
        Seconds of beats kept (the longest window that can be asked for).
    **detector_kwargs
        Options of :class:`RPeakDetector`.

    Examples
    --------
    >>> trk = HeartRateTracker(256.0)                      # doctest: +SKIP
    >>> trk.push(ecg_chunk, flags_chunk)                   # doctest: +SKIP
    >>> trk.rate_bpm(window_s=15), trk.rmssd_ms(window_s=60)  # doctest: +SKIP
    """

    def __init__(self, sfreq: float, *, keep_s: float = 300.0, **detector_kwargs):
        self.detector = RPeakDetector(sfreq, **detector_kwargs)
        self.sfreq = self.detector.sfreq
        self.keep_s = check_positive("keep_s", keep_s)
        self._beats: deque[int] = deque()
        # accepted intervals, oldest first: closing beat (sample, increasing) and length (s)
        self._rr_beat: list[int] = []
        self._rr_s: list[float] = []
        self._filter = _RRFilter(0.3)
        self._n_restarts = 0
        self.n_beats = 0

    def push(self, x, flags=None, first_sample: int | None = None) -> np.ndarray:
        """Feed a chunk; return the new R peaks (absolute sample indices, int64)."""
        peaks = self.detector.push(x, flags, first_sample)
        restarts = self.detector.restarts
        for p in peaks:
            p = int(p)
            # an interval across a restart is not chained
            while self._n_restarts < len(restarts) and restarts[self._n_restarts] <= p:
                self._n_restarts += 1
                self._beats.clear()
                self._filter.clear()
            if self._beats:
                rr = (p - self._beats[-1]) / self.sfreq
                if 0.3 <= rr <= 2.0 and self._filter.accept(rr):
                    self._rr_beat.append(p)
                    self._rr_s.append(rr)
            self._beats.append(p)
            self.n_beats += 1
        now = self.detector.next_sample or 0
        horizon = now - int(self.keep_s * self.sfreq)
        while self._beats and self._beats[0] < horizon:
            self._beats.popleft()
        old = bisect_left(self._rr_beat, horizon)
        if old:
            del self._rr_beat[:old], self._rr_s[:old]
        return peaks

    def _window(self, window_s, now) -> slice:
        """Return the accepted intervals closing in ``[now - window_s, now]`` (a slice)."""
        if now is None:
            now = self.detector.next_sample or 0
        # the closing beats increase: the window is one run of them
        beats = self._rr_beat
        return slice(bisect_left(beats, now - window_s * self.sfreq), bisect_right(beats, now))

    def rate_bpm(self, window_s: float = 10.0, now: int | None = None) -> float:
        """Mean heart rate over the last ``window_s`` seconds, bpm (NaN without 2 intervals).

        Parameters
        ----------
        window_s : float
            Window length in seconds.
        now : int, optional
            Absolute sample index at the end of the window (default: the latest sample).

        Returns
        -------
        float
            60 / mean accepted RR interval in the window, beats per minute.
        """
        w = self._rr_s[self._window(window_s, now)]
        if len(w) < 2:
            return float("nan")
        # numpy's mean without its set-up: the same sum (add.reduce) over the same count
        return 60.0 / float(np.add.reduce(w) / len(w))

    def rmssd_ms(self, window_s: float = 60.0, now: int | None = None) -> float:
        """RMSSD over the last ``window_s`` seconds in ms (NaN without 3 consecutive intervals).

        Parameters
        ----------
        window_s : float
            Window length in seconds.
        now : int, optional
            Absolute sample index at the end of the window (default: the latest sample).

        Returns
        -------
        float
            Root mean square of successive differences of consecutive accepted intervals, ms.
        """
        w = self._window(window_s, now)
        p, r = np.array(self._rr_beat[w], np.int64), np.array(self._rr_s[w], np.float64)
        consecutive = np.abs((p[1:] - p[:-1]) / self.sfreq - r[1:]) < 1e-9
        if np.count_nonzero(consecutive) < 2:
            return float("nan")
        d = (r[1:] - r[:-1])[consecutive] * 1000.0
        return float(np.sqrt(np.add.reduce(d * d) / d.size))

    @property
    def last_beat(self) -> int | None:
        """Absolute sample index of the latest R peak (None before the first)."""
        return self._beats[-1] if self._beats else None
