"""Streaming helpers shared by the closed-loop detectors (arousal, nightmare).

- :func:`split_chunk` and :class:`ChunkBatcher`: cut long chunks into pieces, gather short ones
  into blocks;
- :class:`Framer`: overlapping frames of a multichannel stream (the one framer: spectral
  frames, EMG bins, evaluation steps; the accelerometer's and the EOG's whole seconds are cut
  inside their numba loops, :mod:`staging.closedloop._kernels`);
- :class:`EmgRms`: the chin-EMG RMS (20-100 Hz) in fixed bins, the one both detectors use;
- :func:`percentile`: numpy's linear percentile, bit for bit, at the cost of a sort (the
  inner loop takes it of a few dozen values, thousands of times a night, where numpy's set-up
  costs more than the work);
- :class:`StageInput`: the stream contract (:class:`~headset.chunk.StreamInfo`, checked by
  :func:`staging.checks.check_stream`) and the stage input every streaming detector shares.

The detectors filter the raw chunk themselves rather than take the monitor's filter bank
(:class:`dsp.filterbank.FilterBank`) output: each needs its own band (EMG 20-100 Hz, EOG
0.5-8 Hz, the QRS band of :mod:`dsp.ecg`), the bank's display chain (0.3-35 Hz EEG, a mains
notch) would remove what they measure, and they must give the same events offline (report,
benchmarks) where there is no bank.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter

from dsp.iir import SOSFilter
from dsp.validate import validate_type
from headset.chunk import Chunk, StreamInfo
from headset.stages import EPOCH_S, check_stage, check_stages

from ..checks import check_stream


def split_chunk(chunk: Chunk, max_samples: int):
    """Yield consecutive pieces of at most ``max_samples`` samples of a chunk.

    Parameters
    ----------
    chunk : Chunk
        The chunk (its annotations go with the first piece).
    max_samples : int
        Longest piece, samples.

    Yields
    ------
    Chunk
    """
    n = chunk.n_samples
    if n <= max_samples:
        yield chunk
        return
    for i in range(0, n, max_samples):
        yield chunk.piece(i, min(n, i + max_samples))


class ChunkBatcher:
    """Gather small chunks into blocks of at least ``min_samples`` (fewer Python calls).

    Live sources deliver chunks of a few dozen samples; the detectors work on half-second
    frames and five-second steps, so they process whole blocks: results do not change, the
    cost per chunk falls to an append.

    Parameters
    ----------
    min_samples : int
        Samples gathered before a block is released.
    """

    def __init__(self, min_samples: int):
        self.min_samples = int(min_samples)
        self._parts: list[Chunk] = []
        self._n = 0

    def add(self, chunk: Chunk) -> Chunk | None:
        """Add a chunk; return the gathered block once it is long enough, else None."""
        self._parts.append(chunk)
        self._n += chunk.n_samples
        if self._n < self.min_samples:
            return None
        return self.take()

    def take(self) -> Chunk | None:
        """Return whatever is gathered as one block (None if nothing)."""
        parts, self._parts, self._n = self._parts, [], 0
        return Chunk.concatenate(parts) if parts else None


class Framer:
    """Cut a multichannel stream into overlapping frames (win samples, hop apart).

    The first frame starts at the first pushed sample.

    Parameters
    ----------
    n_ch : int
        Channels (0 allowed: the frames then only count time).
    win, hop : int
        Frame length and step, samples.
    flags : bool
        Frame the per-sample flags too (False: ``push`` takes ``flags=None`` and returns None
        for them).
    """

    def __init__(self, n_ch, win, hop, flags=True):
        self.win, self.hop = win, hop
        self.buf = np.zeros((n_ch, 0))
        self.fbuf = np.zeros((n_ch, 0), dtype=np.uint8) if flags else None
        self.start = 0  # absolute index of buf[:, 0]
        self.next_frame = None  # absolute start index of the next frame (None: first push)

    def push(self, x, flags, first):
        """Append samples ``x`` and ``flags`` (n_ch, n) starting at absolute sample ``first``.

        Returns the complete frames ``(n_ch, n_frames, win)``, their flags and their absolute
        start samples (``None, None, []`` when no frame is complete yet). The frames are
        read-only views of the framer's buffer, or of ``x`` itself when nothing was left over
        from the last push (no copy: the detectors only read them, before the next push).
        """
        if self.next_frame is None:
            self.next_frame = first
        own = self.buf.shape[1] > 0  # buf: a fresh concatenation (else x itself)
        if own:
            buf = np.concatenate([self.buf, x], axis=1)
            fbuf = None if self.fbuf is None else np.concatenate([self.fbuf, flags], axis=1)
        else:  # nothing left over (frames back to back): frame x itself
            self.start = first
            buf = np.ascontiguousarray(x)
            fbuf = None if self.fbuf is None else np.ascontiguousarray(flags)
        off = self.next_frame - self.start
        n_fr = (buf.shape[1] - off - self.win) // self.hop + 1
        if n_fr <= 0:
            self._keep(buf, fbuf, 0, own)
            return None, None, np.zeros(0, np.int64)
        frames = _frames(buf, off, n_fr, self.win, self.hop)  # (n_ch, n_fr, win)
        fflags = None if fbuf is None else _frames(fbuf, off, n_fr, self.win, self.hop)
        stop = self.next_frame + n_fr * self.hop
        starts = np.arange(self.next_frame, stop, self.hop)
        self._keep(buf, fbuf, stop - self.start, own)
        self.next_frame = self.start = stop
        return frames, fflags, starts

    def _keep(self, buf, fbuf, cut, own):
        """Keep ``buf[:, cut:]`` (and the flags) for the next push; a copy unless ``own``."""
        self.buf = buf[:, cut:] if own else buf[:, cut:].copy()
        if fbuf is not None:
            self.fbuf = fbuf[:, cut:] if own else fbuf[:, cut:].copy()


def _frames(buf, off, n_fr, win, hop):
    """Return the frames ``buf[:, off + k * hop :][:, :win]`` as one read-only view.

    ``buf`` is C-contiguous; the view has shape ``(n_ch, n_fr, win)``.
    """
    s0, s1 = buf.strides
    view = np.ndarray((buf.shape[0], n_fr, win), buf.dtype, buf, off * s1, (s0, hop * s1, s1))
    view.flags.writeable = False
    return view


def percentile(a: np.ndarray, q: float) -> float:
    """Return :func:`numpy.percentile` (method ``linear``) of finite values, bit for bit.

    One sort, then numpy's interpolation between the two neighbouring order statistics
    (``a + (b - a) t``, or ``b - (b - a)(1 - t)`` when ``t >= 0.5``), without the set-up that
    makes numpy's call cost a hundred times the work on a few dozen values.

    Parameters
    ----------
    a : ndarray of float64, shape (n,)
        Finite values (n >= 1; not checked: the caller's inner loop).
    q : float
        Percentile, 0 to 100.

    Returns
    -------
    float
    """
    s = np.sort(a)
    v = (s.size - 1) * (q / 100)
    if v >= s.size - 1:
        return float(s[-1])
    k = int(v)
    t = v - k
    lo, hi = float(s[k]), float(s[k + 1])
    return hi - (hi - lo) * (1 - t) if t >= 0.5 else lo + (hi - lo) * t


class EmgRms:
    """Chin-EMG RMS of a stream: band-passed 20-100 Hz (at most 0.45 fs), over fixed bins.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    bin_s : float
        Bin length, s (rounded to whole samples).
    """

    #: Pass band, Hz (the upper edge is lowered to 0.45 fs at low rates).
    BAND_HZ = (20.0, 100.0)
    #: Butterworth order of the band-pass.
    ORDER = 4

    def __init__(self, sfreq: float, bin_s: float = 0.25):
        hi = min(self.BAND_HZ[1], 0.45 * sfreq)
        sos = butter(self.ORDER, [self.BAND_HZ[0], hi], btype="bandpass", fs=sfreq, output="sos")
        self._filt = SOSFilter(sos, 1)
        self.bin = max(1, round(bin_s * sfreq))
        self._framer = Framer(1, self.bin, self.bin)

    def push(self, x: np.ndarray, bad: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Filter the next samples; return the bins they complete.

        Parameters
        ----------
        x : ndarray, shape (n_samples,)
            Chin EMG, µV (consecutive with the last push).
        bad : ndarray of bool, shape (n_samples,)
            Unusable samples.
        first : int
            Absolute index of ``x[0]``.

        Returns
        -------
        rms : ndarray, shape (n_bins,)
            RMS of each completed bin, µV (NaN where a sample is bad).
        starts : ndarray of int64, shape (n_bins,)
            Absolute index of each bin's first sample.
        """
        y = self._filt(x[None, :])
        bins, bflags, starts = self._framer.push(y, bad[None, :], first)
        if bins is None:
            return np.zeros(0), starts
        # numpy's mean without its set-up: the same sum (add.reduce) over the same count
        rms = np.sqrt(np.add.reduce(bins[0] ** 2, axis=1) / self.bin)
        rms[bflags[0].any(axis=1)] = np.nan
        return rms, starts


class StageInput:
    """The stream contract and stage input shared by the streaming detectors.

    The stream (:class:`~headset.chunk.StreamInfo`) is given at construction or taken from the
    first chunk; :func:`staging.checks.check_stream` checks it against the subclass's
    ``consumer`` rate floor, and every later chunk against it. A subclass sets ``consumer``
    (a key of :data:`staging.checks.MIN_SFREQ`), calls :meth:`_init_input` in its constructor
    and implements ``_bind(info)`` (its channel-dependent set-up).
    """

    consumer: str

    def _init_input(self, sfreq, ch_names, ch_types) -> None:
        """Set up the stage input; bind the stream now if it is given (``sfreq`` not None)."""
        self.info: StreamInfo | None = None
        self._stages: dict[int, int] = {}
        self._next: int | None = None  # expected first sample of the next chunk
        if sfreq is not None or ch_names is not None or ch_types is not None:
            if sfreq is None or ch_names is None or ch_types is None:
                raise ValueError(
                    "give sfreq, ch_names and ch_types together, or none of them (the stream "
                    "is then taken from the first chunk)."
                )
            self._start(StreamInfo.create(sfreq, ch_names, ch_types))

    @classmethod
    def for_stream(cls, info: StreamInfo, **kwargs):
        """Return a detector for the stream ``info`` (``kwargs``: its settings)."""
        return cls(info.sfreq, info.ch_names, info.ch_types, **kwargs)

    def _start(self, info: StreamInfo) -> None:
        self.info = check_stream(self.consumer, info)
        self.sfreq, self.ch_names, self.ch_types = info.sfreq, info.ch_names, info.ch_types
        self._bind(info)

    def set_stage(self, epoch: int, stage: int) -> None:
        """Give the stage of a 30-s epoch (from the stager or a hypnogram).

        Parameters
        ----------
        epoch : int
            Epoch index (0 = first 30 s of the session).
        stage : int
            Stage code (W=0 ... R=4, -1 unscored).
        """
        self._stages[int(epoch)] = check_stage(stage)

    def set_hypnogram(self, hypnogram, first_epoch: int = 0) -> None:
        """Give the stages of many epochs at once (e.g. the true hypnogram in a test).

        Parameters
        ----------
        hypnogram : array_like of int, shape (n_epochs,)
            Stage per epoch.
        first_epoch : int
            Epoch index of ``hypnogram[0]``.
        """
        for i, s in enumerate(check_stages(np.asarray(hypnogram).ravel())):
            self._stages[int(first_epoch) + i] = int(s)

    def _check_chunk(self, chunk: Chunk, gap_hint: str = ".") -> None:
        """Raise unless ``chunk`` is a :class:`Chunk` of this stream, consecutive to the last.

        The first chunk binds the stream when it was not given at construction.

        Parameters
        ----------
        chunk : Chunk
            The pushed chunk.
        gap_hint : str
            End of the message raised when the chunk does not start where the last one ended.
        """
        validate_type("chunk", chunk, Chunk)
        if self.info is None:
            self._start(chunk.info)
        elif (chunk.sfreq, chunk.ch_names, chunk.ch_types) != (
            self.sfreq,
            self.ch_names,
            self.ch_types,
        ):  # the same stream passes without building its StreamInfo (every chunk)
            check_stream(self.consumer, chunk.info, self.info)
        if self._next is not None and chunk.first_sample != self._next:
            raise ValueError(
                f"chunk starts at sample {chunk.first_sample}, expected {self._next}{gap_hint}"
            )

    def _stage_chunk(self, chunk: Chunk, stage: int | None) -> None:
        """Give ``stage`` to every epoch ``chunk`` touches that has no stage yet.

        Parameters
        ----------
        chunk : Chunk
            The pushed chunk.
        stage : int or None
            Stage code from the caller; None leaves the stages alone.
        """
        if stage is not None and chunk.n_samples:
            e0 = int(chunk.first_sample / self.sfreq // EPOCH_S)
            e1 = int((chunk.stop_sample - 1) / self.sfreq // EPOCH_S)
            for e in range(e0, e1 + 1):
                self._stages.setdefault(e, int(stage))
