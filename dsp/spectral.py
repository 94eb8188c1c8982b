"""The spectral engine: Welch and multitaper PSDs, band powers, and features built on them.

Every spectrum in dreamnet comes from here (the stager's features, the signal-quality flags,
and, after the issue 13 follow-up, the detectors, the report and the monitor view). The engine
is three functions:

* :func:`welch_psd` -- Welch's average of windowed periodograms, scipy's
  :func:`scipy.signal.welch` definition (one-sided density in µV²/Hz, constant detrend per
  segment, DC and Nyquist bins not doubled), plus what scipy lacks: a weight per segment (the
  stager averages only the segments free of bad samples) and any window array.
* :func:`multitaper_psd` -- DPSS tapers (:func:`scipy.signal.windows.dpss`,
  time-half-bandwidth ``nw``, ``2 nw - 1`` tapers, eigenvalue-weighted) over the whole row
  after removing its mean: a lower-variance estimate at a resolution of ``2 nw / duration``
  Hz, worth it for short epochs and narrow bands (sigma, spindles).
* :func:`band_power` -- the integral of a PSD over half-open bands ``[low, high)`` by the
  rectangle rule (sum of the bins times the bin width, µV²), absolute or relative to the
  span of the bands; :func:`band_slice` gives the bins of one band.

:class:`Periodogram` is :func:`welch_psd` with one segment per row followed by
:func:`band_power`, with the window, scale and band bins set up once: the streaming detectors
take thousands of short periodograms a night, and it gives the same bits without the checks
of every call.

A sinusoid of amplitude ``A`` inside a band gives ``A**2 / 2``; half-open bands never count a
bin twice. Every function takes any leading shape (the last axis is time, or frequency), so
the same call serves one epoch ``(n_channels, n_samples)``, a whole night
``(n_epochs, n_channels, n_samples)`` and the incremental computation (call it on each new
epoch: the rows are identical). Large inputs are processed in batches of rows to bound memory.

On top of the engine: :func:`psd` and :func:`bandpower` (from the signal, by method),
:func:`spectral_edge`, :func:`spectral_entropy`, :func:`features` (all of them from one PSD),
:func:`hjorth` (time domain, numba) and :func:`band_envelope` (band-passed RMS).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _kernels
from .docs import fill_doc
from .iir import sosfiltfilt
from .validate import as_signal, check_int, check_option, check_positive

__all__ = [
    "DEFAULT_BANDS",
    "Periodogram",
    "band_envelope",
    "band_power",
    "band_slice",
    "bandpower",
    "epochs",
    "features",
    "hjorth",
    "multitaper_psd",
    "psd",
    "spectral_edge",
    "spectral_entropy",
    "welch_psd",
]

#: (name, low Hz, high Hz) as in YASA.
DEFAULT_BANDS: tuple[tuple[str, float, float], ...] = (
    ("delta", 0.5, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 12.0),
    ("sigma", 12.0, 16.0),
    ("beta", 16.0, 30.0),
    ("gamma", 30.0, 40.0),
)

_BATCH_BYTES = 64 * 2**20  # working memory of one PSD batch


def _check_bands(bands, sfreq: float) -> tuple[tuple[str, float, float], ...]:
    if isinstance(bands, Mapping):
        bands = [(name, *edges) for name, edges in bands.items()]
    if isinstance(bands, str) or not hasattr(bands, "__iter__"):
        raise TypeError(
            "bands must be a mapping {name: (low, high)} or a sequence of (name, low, high) "
            f"or (low, high) tuples, got {bands!r}."
        )
    out = []
    for i, b in enumerate(bands):
        b = tuple(b)
        if len(b) == 2:
            b = (f"band{i}", *b)
        if len(b) != 3:
            raise ValueError(f"band {b!r} must be (name, low, high) or (low, high).")
        name, lo, hi = str(b[0]), float(b[1]), float(b[2])
        if not 0.0 <= lo < hi:
            raise ValueError(f"band {name!r} must have 0 <= low < high, got ({lo}, {hi}) Hz.")
        if lo >= sfreq / 2:
            raise ValueError(
                f"band {name!r} starts at {lo} Hz, above the Nyquist frequency {sfreq / 2} Hz."
            )
        out.append((name, lo, hi))
    if not out:
        raise ValueError("bands is empty.")
    return tuple(out)


def _rows(data, min_samples: int = 1, finite: bool = True) -> tuple[np.ndarray, tuple[int, ...]]:
    x = as_signal(data, "data")
    n = x.shape[-1]
    if n < min_samples:
        raise ValueError(f"data needs at least {min_samples} samples per row, got {n}.")
    if finite and not np.isfinite(x).all():
        raise ValueError(
            "data contains NaN or infinite values; hold or interpolate them first (see "
            "dsp.quality for flagging bad epochs)."
        )
    lead = x.shape[:-1]
    return x.reshape(-1, n), lead


@fill_doc
def epochs(data, sfreq, epoch_s=30.0) -> np.ndarray:
    """Cut continuous data into consecutive epochs (a view, no copy).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Continuous signals in µV.
    %(sfreq)s
    epoch_s : float
        Epoch length in seconds (default 30, aligned to the first sample). The samples of an
        incomplete last epoch are dropped.

    Returns
    -------
    ndarray, shape (n_epochs, n_channels, n_per_epoch)
        View of ``data``.
    """
    sfreq = check_positive("sfreq", sfreq)
    epoch_s = check_positive("epoch_s", epoch_s)
    x = np.asarray(data)
    if x.ndim != 2:
        raise ValueError(f"data must be 2-D (n_channels, n_samples), got shape {x.shape}.")
    per = int(round(epoch_s * sfreq))
    n_ep = x.shape[1] // per
    return x[:, : n_ep * per].reshape(x.shape[0], n_ep, per).transpose(1, 0, 2)


def _window(window, nperseg: int) -> np.ndarray:
    if isinstance(window, str | tuple):
        from scipy.signal import get_window

        return get_window(window, nperseg)  # periodic, as scipy.signal.welch
    win = as_signal(window, "window").astype(np.float64)
    if win.shape != (nperseg,):
        raise ValueError(f"window must have shape ({nperseg},) (nperseg), got {win.shape}.")
    if not np.isfinite(win).all() or not (win**2).sum() > 0:
        raise ValueError("window must be finite and not all zero.")
    return win


@fill_doc
def welch_psd(data, sfreq, nperseg, *, noverlap=None, window="hann", detrend=True, weights=None):
    """Welch power spectral density of every row (scipy's definition, segment weights).

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    nperseg : int
        Samples per segment, 2 to ``n_samples``.
    noverlap : int or None
        Samples shared by consecutive segments, 0 to ``nperseg - 1``; None: ``nperseg // 2``.
        Segments start at 0 and every ``nperseg - noverlap`` samples; samples after the last
        whole segment are not used (as scipy).
    window : str, tuple or array_like, shape (nperseg,)
        Window name for :func:`scipy.signal.get_window` (periodic; default ``"hann"``) or the
        window itself.
    detrend : bool
        Remove each segment's mean before windowing (scipy's ``detrend="constant"``, the
        default); False: no detrending.
    weights : array_like, shape (..., n_segments), optional
        Non-negative weight of each segment of each row (e.g. 0 for a segment with bad
        samples), broadcast against the leading shape of ``data``; None: the plain mean.
        A row whose weights sum to 0 gets NaN.

    Returns
    -------
    freqs : ndarray, shape (nperseg // 2 + 1,)
        Frequencies in Hz.
    psd : ndarray, shape (..., nperseg // 2 + 1)
        One-sided PSD in µV²/Hz (DC and, for even ``nperseg``, Nyquist not doubled); equal to
        ``scipy.signal.welch(data, sfreq, window, nperseg, noverlap)`` to rounding. A
        non-finite sample makes its row NaN (as scipy; :func:`psd` refuses them instead).
    """
    sfreq = check_positive("sfreq", sfreq)
    x2, lead = _rows(data, 2, finite=False)
    n = x2.shape[1]
    nperseg = check_int("nperseg", nperseg, low=2, high=n)
    noverlap = nperseg // 2 if noverlap is None else check_int("noverlap", noverlap, 0, nperseg - 1)
    win = _window(window, nperseg)
    step = nperseg - noverlap
    nseg = (n - nperseg) // step + 1
    if weights is None:
        w = np.ones((x2.shape[0], nseg))
    else:
        w = as_signal(weights, "weights").astype(np.float64)
        if w.shape[-1:] != (nseg,):
            raise ValueError(
                f"weights must have {nseg} segments on the last axis, got shape {w.shape}."
            )
        if not (np.isfinite(w) & (w >= 0)).all():
            raise ValueError("weights must be finite and non-negative.")
        w = np.broadcast_to(w, lead + (nseg,)).reshape(-1, nseg)
    freqs = np.fft.rfftfreq(nperseg, 1.0 / sfreq)
    scale = 2.0 / (sfreq * np.sum(win**2))
    out = np.empty((x2.shape[0], freqs.size))
    step_rows = max(1, _BATCH_BYTES // (nseg * (16 * nperseg + 16 * freqs.size)))
    for a in range(0, x2.shape[0], step_rows):
        # (rows, nseg, nperseg) views, time contiguous: every reduction below runs along a
        # row's own samples, so a row's bits never depend on the other rows of the batch
        segs = sliding_window_view(x2[a : a + step_rows], nperseg, axis=-1)[:, ::step][:, :nseg]
        if detrend:
            segs = segs - segs.mean(-1, keepdims=True)
        p = _power(segs, win)
        wb = w[a : a + step_rows]
        # the weighted mean, summed segment after segment (no einsum: its order of summation
        # depends on the batch)
        acc = p[:, 0] * wb[:, :1]
        for s in range(1, nseg):
            acc += p[:, s] * wb[:, s : s + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a : a + step_rows] = acc / wb.sum(-1)[:, None] * scale
    _one_sided(out, nperseg)
    return freqs, out.reshape(lead + (freqs.size,))


def _power(segs, win, bins=slice(None)) -> np.ndarray:
    """Squared magnitude of the rFFT of every windowed segment (last axis), unscaled.

    ``bins`` (a slice of the frequency axis) keeps only those bins: the same bits, less work.
    """
    return np.abs(np.fft.rfft(segs * win, axis=-1)[..., bins]) ** 2


def _one_sided(out, nperseg: int, bins=slice(None)) -> None:
    """Halve the DC bin and, for even ``nperseg``, the Nyquist bin (no mirror image).

    ``out`` holds the bins ``bins`` (a slice with ``0 <= start <= stop``, or all of them).
    """
    lo, hi, _ = bins.indices(nperseg // 2 + 1)
    if hi > lo:
        if lo == 0:
            out[..., 0] *= 0.5
        if nperseg % 2 == 0 and hi == nperseg // 2 + 1:
            out[..., -1] *= 0.5


class Periodogram:
    """Periodograms of fixed-length segments and their band powers, set up once.

    The streaming detectors take one windowed periodogram per frame, thousands of times a
    night: this is :func:`welch_psd` with one segment per row (``noverlap=0``, no detrend)
    followed by :func:`band_power`, bit for bit, with the window, the scale and the band bins
    checked and computed at construction instead of at every call.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz.
    nperseg : int
        Samples per segment (at least 2).
    bands : mapping or sequence
        Bands as for :func:`band_power` (``{name: (low, high)}`` or ``(name, low, high)``).
    window : str, tuple or array_like, shape (nperseg,)
        Window, as for :func:`welch_psd` (default ``"hann"``, periodic).

    Attributes
    ----------
    freqs : ndarray, shape (nperseg // 2 + 1,)
        Frequencies of the PSD bins, Hz.
    bands : tuple of (str, float, float)
        The checked bands.
    """

    def __init__(self, sfreq, nperseg, bands, window="hann"):
        self.sfreq = check_positive("sfreq", sfreq)
        self.nperseg = check_int("nperseg", nperseg, low=2)
        self.win = _window(window, self.nperseg)
        self.freqs = np.fft.rfftfreq(self.nperseg, 1.0 / self.sfreq)
        self.bands = _check_bands(bands, self.sfreq)
        self._scale = 2.0 / (self.sfreq * np.sum(self.win**2))
        self._df = _bin_width(self.freqs)
        slices = [band_slice(self.freqs, lo, hi) for _, lo, hi in self.bands]
        # band_power needs the bins from the lowest band edge to the highest only
        lo, hi = min(sl.start for sl in slices), max(sl.stop for sl in slices)
        self._span = slice(lo, max(lo, hi))
        self._span_slices = [slice(sl.start - lo, sl.stop - lo) for sl in slices]

    def psd(self, segs: np.ndarray) -> np.ndarray:
        """One-sided PSD of every segment, µV²/Hz.

        Parameters
        ----------
        segs : ndarray of float64, shape (..., nperseg)
            Segments in µV (not checked: the caller's inner loop).

        Returns
        -------
        ndarray, shape (..., nperseg // 2 + 1)
            Equal to ``welch_psd(segs, sfreq, nperseg, noverlap=0, window=window,
            detrend=False)[1]``.
        """
        out = _power(segs, self.win) * self._scale
        _one_sided(out, self.nperseg)
        return out

    def band_power(self, segs: np.ndarray) -> np.ndarray:
        """Power of every segment in every band, µV².

        Parameters
        ----------
        segs : ndarray of float64, shape (..., nperseg)
            Segments in µV.

        Returns
        -------
        ndarray, shape (..., n_bands)
            Equal to ``band_power(self.psd(segs), self.freqs, self.bands)``.
        """
        # psd's steps on the bins of the bands only (the same bits, element by element)
        p = _power(segs, self.win, self._span) * self._scale
        _one_sided(p, self.nperseg, self._span)
        return _band_sums(p, self._span_slices, self._df)


def _band_sums(p, slices, df) -> np.ndarray:
    """Sum of the PSD bins of each band times the bin width: (..., n_freqs) -> (..., n_bands)."""
    out = np.empty(p.shape[:-1] + (len(slices),))
    for j, sl in enumerate(slices):
        out[..., j] = p[..., sl].sum(-1) * df
    return out


@lru_cache(maxsize=16)
def _tapers(n: int, nw: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal.windows import dpss

    k = max(1, int(2 * nw) - 1)
    tap, ratios = dpss(n, nw, Kmax=k, return_ratios=True)
    tap = np.ascontiguousarray(tap)
    w = ratios / ratios.sum()
    tap.setflags(write=False)
    w.setflags(write=False)
    return tap, w


@fill_doc
def multitaper_psd(data, sfreq, *, nw=4.0):
    """Multitaper power spectral density of every row (whole row, DPSS tapers).

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    %(nw)s

    Returns
    -------
    freqs : ndarray, shape (n_samples // 2 + 1,)
        Frequencies in Hz.
    psd : ndarray, shape (..., n_samples // 2 + 1)
        One-sided PSD in µV²/Hz, the eigenvalue-weighted mean of the tapered periodograms.
    """
    sfreq = check_positive("sfreq", sfreq)
    nw = check_positive("nw", nw)
    x2, lead = _rows(data, 2)
    m, n = x2.shape
    tap, w = _tapers(n, nw)
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    out = np.empty((m, freqs.size))
    scale = np.full(freqs.size, 2.0 / sfreq)
    scale[0] = 1.0 / sfreq
    if n % 2 == 0:
        scale[-1] = 1.0 / sfreq
    per_row = 16 * freqs.size * tap.shape[0] + 8 * n * tap.shape[0]
    step = max(1, _BATCH_BYTES // per_row)
    for a in range(0, m, step):
        xb = x2[a : a + step]
        xb = xb - xb.mean(axis=-1, keepdims=True)
        spec = np.fft.rfft(xb[:, np.newaxis, :] * tap[np.newaxis], axis=-1)
        p = spec.real**2 + spec.imag**2  # (b, k, f)
        out[a : a + step] = np.einsum("bkf,k->bf", p, w) * scale
    return freqs, out.reshape(lead + (freqs.size,))


def _bin_width(freqs) -> float:
    freqs = np.asarray(freqs, dtype=np.float64)
    if freqs.ndim != 1 or freqs.size < 2 or freqs[0] != 0.0 or not freqs[1] > 0:
        raise ValueError(
            "freqs must be the evenly spaced frequencies of a PSD from 0 Hz (at least 2), got "
            f"shape {freqs.shape}."
        )
    return float(freqs[1] - freqs[0])


def band_slice(freqs, low: float, high: float) -> slice:
    """Return the bins of an evenly spaced frequency axis with ``low <= f < high``.

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies from 0 Hz in equal steps (``np.fft.rfftfreq``).
    low, high : float
        Band edges in Hz (an edge within 1e-9 bin of a bin counts as on it).

    Returns
    -------
    slice
        Indices into the frequency axis.
    """
    df = _bin_width(freqs)
    n = len(freqs)
    lo = min(n, int(np.ceil(low / df - 1e-9)))
    return slice(lo, max(lo, min(n, int(np.ceil(high / df - 1e-9)))))


@fill_doc
def band_power(psd, freqs, bands, *, relative=False) -> np.ndarray:
    """Power in frequency bands from a PSD: the sum of the bins in each band times their width.

    Parameters
    ----------
    %(psd_freqs)s
    %(bands)s
    relative : bool
        Divide by the power between the lowest and the highest band edge (dimensionless);
        NaN for a row without power.

    Returns
    -------
    ndarray, shape (..., n_bands)
        Band power in µV² (absolute) or fraction (relative), in the order of ``bands``.
    """
    p = as_signal(psd, "psd")
    df = _bin_width(freqs)
    if p.shape[-1] != len(freqs):
        raise ValueError(f"psd has {p.shape[-1]} bins on its last axis but freqs {len(freqs)}.")
    bands = _check_bands(bands, 2.0 * float(freqs[-1]) + df)
    out = _band_sums(p, [band_slice(freqs, lo, hi) for _, lo, hi in bands], df)
    if relative:
        lo = min(b[1] for b in bands)
        hi = max(b[2] for b in bands)
        total = p[..., band_slice(freqs, lo, hi)].sum(-1, keepdims=True) * df
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(total > 0, out / np.where(total > 0, total, 1.0), np.nan)
    return out


@fill_doc
def psd(data, sfreq, *, method="welch", window_s=4.0, nw=4.0):
    """Power spectral density of every row, by method.

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    %(method)s
    %(window_s)s
    %(nw)s

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
        Frequencies in Hz.
    psd : ndarray, shape (..., n_freqs)
        One-sided PSD in µV²/Hz.
    """
    sfreq = check_positive("sfreq", sfreq)
    check_option("method", method, ("welch", "multitaper"))
    window_s = check_positive("window_s", window_s)
    x2, lead = _rows(data, 2)
    if method == "multitaper":
        freqs, p = multitaper_psd(x2, sfreq, nw=nw)
    else:
        n = x2.shape[1]
        freqs, p = welch_psd(x2, sfreq, max(2, min(n, int(round(window_s * sfreq)))))
    return freqs, p.reshape(lead + (freqs.size,))


@fill_doc
def bandpower(
    data,
    sfreq,
    bands=DEFAULT_BANDS,
    *,
    method="welch",
    relative=False,
    window_s=4.0,
    nw=4.0,
):
    """Power in frequency bands of every row (channel, or epoch and channel).

    :func:`psd` then :func:`band_power`.

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    %(bands)s
        Default :data:`DEFAULT_BANDS`.
    %(method)s
    relative : bool
        Divide by the power between the lowest and the highest band edge (dimensionless);
        NaN for a row without power.
    %(window_s)s
    %(nw)s

    Returns
    -------
    ndarray, shape (..., n_bands)
        Band power in µV² (absolute) or fraction (relative).
    """
    sfreq = check_positive("sfreq", sfreq)
    bands = _check_bands(bands, sfreq)
    freqs, p = psd(data, sfreq, method=method, window_s=window_s, nw=nw)
    return band_power(p, freqs, bands, relative=bool(relative))


def _edge_entropy(freqs, p, fmin, fmax, edge):
    sel = band_slice(freqs, fmin, fmax)
    f = freqs[sel]
    if not f.size:
        raise ValueError(f"no PSD bin between fmin={fmin} and fmax={fmax} Hz.")
    q = p[..., sel]
    tot = q.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pn = q / tot
        cum = np.cumsum(pn, axis=-1)
        idx = np.minimum((cum < edge).sum(axis=-1), f.size - 1)
        sef = np.where(tot[..., 0] > 0, f[idx], np.nan)
        logs = np.where(pn > 0, np.log2(np.where(pn > 0, pn, 1.0)), 0.0)
        ent = -(pn * logs).sum(axis=-1)
        ent = np.where(tot[..., 0] > 0, ent, np.nan)
    return sef, ent, f.size


@fill_doc
def spectral_edge(
    data, sfreq, edge=0.95, *, fmin=0.5, fmax=35.0, method="welch", window_s=4.0, nw=4.0
):
    """Spectral edge frequency: below it lies ``edge`` of the power in ``[fmin, fmax)``.

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    edge : float
        Fraction of power, in (0, 1]. Default 0.95 (SEF95).
    fmin, fmax : float
        Band considered, Hz.
    %(method)s
    %(window_s)s
    %(nw)s

    Returns
    -------
    ndarray, shape (...)
        Frequency in Hz (to the PSD bin); NaN for a row without power.
    """
    if not 0.0 < float(edge) <= 1.0:
        raise ValueError(f"edge must be in (0, 1], got {edge}.")
    freqs, p = psd(data, sfreq, method=method, window_s=window_s, nw=nw)
    return _edge_entropy(freqs, p, fmin, fmax, float(edge))[0]


@fill_doc
def spectral_entropy(
    data, sfreq, *, fmin=0.5, fmax=35.0, normalize=True, method="welch", window_s=4.0, nw=4.0
):
    """Shannon entropy of the normalised PSD in ``[fmin, fmax)``.

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    fmin, fmax : float
        Band considered, Hz.
    normalize : bool
        Divide by ``log2(n_bins)`` so that white noise gives about 1 and a pure tone about 0.
    %(method)s
    %(window_s)s
    %(nw)s

    Returns
    -------
    ndarray, shape (...)
        Entropy in bits (or normalised, dimensionless); NaN for a row without power.
    """
    freqs, p = psd(data, sfreq, method=method, window_s=window_s, nw=nw)
    _, ent, nbins = _edge_entropy(freqs, p, fmin, fmax, 0.95)
    if normalize:
        ent = ent / np.log2(nbins) if nbins > 1 else np.zeros_like(ent)
    return ent


def hjorth(data):
    """Hjorth parameters of every row.

    Parameters
    ----------
    data : array_like, shape (..., n_samples)
        Signals in µV, at least 3 samples.

    Returns
    -------
    ndarray, shape (..., 3)
        Activity (variance, µV²), mobility ``sqrt(var(dx) / var(x))`` (per sample,
        dimensionless; multiply by ``sfreq`` for Hz) and complexity ``mobility(dx) /
        mobility(x)``; mobility and complexity are NaN for a constant row.
    """
    x2, lead = _rows(data, 3)
    out = np.empty((x2.shape[0], 3))
    _kernels.hjorth(np.ascontiguousarray(x2, dtype=np.float64), out)
    return out.reshape(lead + (3,))


@fill_doc
def band_envelope(data, sfreq, bands=DEFAULT_BANDS, *, order=4):
    """RMS amplitude of each band-passed row (the band's envelope level), in µV.

    Each row is filtered with a zero-phase Butterworth band-pass (:func:`dsp.sosfiltfilt`,
    ``order`` sections, odd padding) and its root mean square is taken. For a stationary
    signal this is close to ``sqrt(bandpower)``; unlike the PSD it reacts to short bursts
    (spindles, arousals) in proportion to their energy.

    Parameters
    ----------
    data : array_like, shape (..., n_samples)
        Signals in µV (longer than the filter padding, ``6 * order + 3`` samples).
    %(sfreq)s
    %(bands)s
        A high edge at or above Nyquist makes a high-pass.
    order : int
        Butterworth order, 1 to 10.

    Returns
    -------
    ndarray, shape (..., n_bands)
        RMS in µV.
    """
    from scipy.signal import butter

    sfreq = check_positive("sfreq", sfreq)
    bands = _check_bands(bands, sfreq)
    order = check_int("order", order, low=1, high=10)
    x2, lead = _rows(data, 1)
    out = np.empty((x2.shape[0], len(bands)))
    nyq = sfreq / 2
    for j, (_, lo, hi) in enumerate(bands):
        if hi >= nyq:
            sos = butter(order, lo, btype="highpass", fs=sfreq, output="sos")
        elif lo <= 0:
            sos = butter(order, hi, btype="lowpass", fs=sfreq, output="sos")
        else:
            sos = butter(order, [lo, hi], btype="bandpass", fs=sfreq, output="sos")
        y = sosfiltfilt(sos, x2, axis=-1)
        out[:, j] = np.sqrt(np.mean(y * y, axis=-1))
    return out.reshape(lead + (len(bands),))


@fill_doc
def features(
    data,
    sfreq,
    bands=DEFAULT_BANDS,
    *,
    method="welch",
    fmin=0.5,
    fmax=35.0,
    edge=0.95,
    window_s=4.0,
    nw=4.0,
) -> dict[str, np.ndarray]:
    """All spectral features from one PSD computation.

    Parameters
    ----------
    %(data_rows)s
    %(sfreq)s
    %(bands)s
        Default :data:`DEFAULT_BANDS`.
    %(method)s
    fmin, fmax, edge : float
        See :func:`spectral_edge` and :func:`spectral_entropy`.
    %(window_s)s
    %(nw)s

    Returns
    -------
    dict of str to ndarray
        ``"bandpower"`` (..., n_bands) µV², ``"relative"`` (..., n_bands), ``"edge"`` (...) Hz,
        ``"entropy"`` (...) normalised, ``"hjorth"`` (..., 3), ``"total"`` (...) µV² between
        ``fmin`` and ``fmax``.
    """
    sfreq = check_positive("sfreq", sfreq)
    bands = _check_bands(bands, sfreq)
    freqs, p = psd(data, sfreq, method=method, window_s=window_s, nw=nw)
    sef, ent, nbins = _edge_entropy(freqs, p, fmin, fmax, float(edge))
    return {
        "bandpower": band_power(p, freqs, bands),
        "relative": band_power(p, freqs, bands, relative=True),
        "edge": sef,
        "entropy": ent / np.log2(nbins) if nbins > 1 else np.zeros_like(ent),
        "hjorth": hjorth(data),
        "total": band_power(p, freqs, [(fmin, fmax)])[..., 0],
    }
