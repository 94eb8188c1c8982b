"""Spectral and time-domain features per epoch and channel.

Every function takes either one epoch ``(n_channels, n_samples)`` or a whole night of epochs
``(n_epochs, n_channels, n_samples)`` (any leading shape: the last axis is time) in µV and
returns one value per row, so the same call serves the offline whole-night computation and the
incremental one (call it on each new epoch: the rows are identical). Large inputs are processed
in batches to bound memory.

Power spectral density
----------------------
``method="welch"``: :func:`scipy.signal.welch` with a Hann window of ``window_s`` seconds
(default 4 s, clipped to the epoch), 50 % overlap, constant detrend, mean of segments.
``method="multitaper"``: DPSS tapers (:func:`scipy.signal.windows.dpss`, time-half-bandwidth
``nw``, ``2 nw - 1`` tapers, eigenvalue-weighted) over the whole epoch after removing its mean:
a lower-variance estimate at a resolution of ``2 nw / epoch`` Hz, worth it for short epochs and
narrow bands (sigma, spindles). Both are one-sided densities in µV²/Hz.

Band power is the sum of PSD bins with ``low <= f < high`` times the bin width (µV²): the
integral of a rectangle rule, so a sinusoid of amplitude ``A`` inside a band gives ``A**2 / 2``
(half-open bands never count a bin twice).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import _kernels
from ._validate import check_option, check_positive
from .iir import _as_signal, sosfiltfilt

__all__ = [
    "DEFAULT_BANDS",
    "band_envelope",
    "epochs",
    "bandpower",
    "features",
    "hjorth",
    "psd",
    "spectral_edge",
    "spectral_entropy",
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
    if isinstance(bands, str) or not hasattr(bands, "__iter__"):
        raise TypeError("bands must be a sequence of (name, low, high) or (low, high) tuples.")
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


def _rows(data, min_samples: int = 1) -> tuple[np.ndarray, tuple[int, ...]]:
    x = _as_signal(data, "data")
    n = x.shape[-1]
    if n < min_samples:
        raise ValueError(f"data needs at least {min_samples} samples per row, got {n}.")
    if not np.isfinite(x).all():
        raise ValueError(
            "data contains NaN or infinite values; hold or interpolate them first (see "
            "dsp.quality for flagging bad epochs)."
        )
    lead = x.shape[:-1]
    return x.reshape(-1, n), lead


def epochs(data, sfreq, epoch_s=30.0) -> np.ndarray:
    """Cut continuous data into consecutive epochs (a view, no copy).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Continuous signals in µV.
    sfreq : float
        Sampling rate in Hz.
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


def _psd_rows(x2: np.ndarray, sfreq: float, method: str, window_s: float, nw: float):
    """PSD of every row of ``x2`` (m, n) -> freqs (f,), psd (m, f)."""
    m, n = x2.shape
    if method == "welch":
        from scipy.signal import welch as _scipy_welch

        nperseg = max(1, min(n, int(round(window_s * sfreq))))
        freqs = np.fft.rfftfreq(nperseg, 1.0 / sfreq)
        out = np.empty((m, freqs.size))
        per_row = 8 * n * 4 + 16 * freqs.size * max(1, 2 * n // nperseg)
        step = max(1, _BATCH_BYTES // per_row)
        for a in range(0, m, step):
            _, out[a : a + step] = _scipy_welch(
                x2[a : a + step], sfreq, window="hann", nperseg=nperseg, axis=-1
            )
        return freqs, out
    tap, w = _tapers(n, float(nw))
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
    return freqs, out


def psd(data, sfreq, *, method="welch", window_s=4.0, nw=4.0):
    """Power spectral density of every row.

    Parameters
    ----------
    data : array_like, shape (..., n_samples)
        Signals in µV, e.g. ``(n_channels, n)`` or ``(n_epochs, n_channels, n)``.
    sfreq : float
        Sampling rate in Hz.
    method : {"welch", "multitaper"}
        Estimator (see the module notes).
    window_s : float
        Welch segment length in seconds (clipped to the signal length).
    nw : float
        Multitaper time-half-bandwidth product (``2 nw - 1`` tapers).

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
    nw = check_positive("nw", nw)
    x2, lead = _rows(data, 2)
    freqs, p = _psd_rows(x2, sfreq, method, window_s, nw)
    return freqs, p.reshape(lead + (freqs.size,))


def _band_matrix(freqs: np.ndarray, bands) -> np.ndarray:
    df = freqs[1] - freqs[0] if freqs.size > 1 else 1.0
    mat = np.zeros((freqs.size, len(bands)))
    for j, (_, lo, hi) in enumerate(bands):
        mat[(freqs >= lo) & (freqs < hi), j] = df
    return mat


def _bandpower_from_psd(freqs, p, bands, relative):
    mat = _band_matrix(freqs, bands)
    bp = p @ mat
    if relative:
        lo = min(b[1] for b in bands)
        hi = max(b[2] for b in bands)
        total = p[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1, keepdims=True)
        total = total * (freqs[1] - freqs[0] if freqs.size > 1 else 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            bp = np.where(total > 0, bp / np.where(total > 0, total, 1.0), np.nan)
    return bp


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
    """Power in frequency bands, per row (channel, or epoch and channel).

    Parameters
    ----------
    data : array_like, shape (..., n_samples)
        ``(n_channels, n)`` for one epoch or ``(n_epochs, n_channels, n)`` for a night, in µV.
    sfreq : float
        Sampling rate in Hz.
    bands : sequence of (name, low, high) or (low, high)
        Bands in Hz, half-open ``[low, high)``. Default :data:`DEFAULT_BANDS`.
    method : {"welch", "multitaper"}
        PSD estimator.
    relative : bool
        Divide by the power between the lowest and the highest band edge (dimensionless);
        NaN for a row without power.
    window_s, nw : float
        See :func:`psd`.

    Returns
    -------
    ndarray, shape (..., n_bands)
        Band power in µV² (absolute) or fraction (relative).
    """
    sfreq = check_positive("sfreq", sfreq)
    bands = _check_bands(bands, sfreq)
    freqs, p = psd(data, sfreq, method=method, window_s=window_s, nw=nw)
    return _bandpower_from_psd(freqs, p, bands, bool(relative))


def _edge_entropy(freqs, p, fmin, fmax, edge):
    sel = (freqs >= fmin) & (freqs < fmax)
    if not sel.any():
        raise ValueError(f"no PSD bin between fmin={fmin} and fmax={fmax} Hz.")
    f = freqs[sel]
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


def spectral_edge(
    data, sfreq, edge=0.95, *, fmin=0.5, fmax=35.0, method="welch", window_s=4.0, nw=4.0
):
    """Spectral edge frequency: below it lies ``edge`` of the power in ``[fmin, fmax)``.

    Parameters
    ----------
    data : array_like, shape (..., n_samples)
        Signals in µV.
    sfreq : float
        Sampling rate in Hz.
    edge : float
        Fraction of power, in (0, 1]. Default 0.95 (SEF95).
    fmin, fmax : float
        Band considered, Hz.
    method, window_s, nw
        See :func:`psd`.

    Returns
    -------
    ndarray, shape (...)
        Frequency in Hz (to the PSD bin); NaN for a row without power.
    """
    if not 0.0 < float(edge) <= 1.0:
        raise ValueError(f"edge must be in (0, 1], got {edge}.")
    freqs, p = psd(data, sfreq, method=method, window_s=window_s, nw=nw)
    return _edge_entropy(freqs, p, fmin, fmax, float(edge))[0]


def spectral_entropy(
    data, sfreq, *, fmin=0.5, fmax=35.0, normalize=True, method="welch", window_s=4.0, nw=4.0
):
    """Shannon entropy of the normalised PSD in ``[fmin, fmax)``.

    Parameters
    ----------
    data : array_like, shape (..., n_samples)
        Signals in µV.
    sfreq : float
        Sampling rate in Hz.
    fmin, fmax : float
        Band considered, Hz.
    normalize : bool
        Divide by ``log2(n_bins)`` so that white noise gives about 1 and a pure tone about 0.
    method, window_s, nw
        See :func:`psd`.

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
    sfreq : float
        Sampling rate in Hz.
    bands : sequence of (name, low, high) or (low, high)
        Bands in Hz; a high edge at or above Nyquist makes a high-pass.
    order : int
        Butterworth order.

    Returns
    -------
    ndarray, shape (..., n_bands)
        RMS in µV.
    """
    from scipy.signal import butter

    sfreq = check_positive("sfreq", sfreq)
    bands = _check_bands(bands, sfreq)
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
    data : array_like, shape (..., n_samples)
        One epoch ``(n_channels, n)`` or a night ``(n_epochs, n_channels, n)``, µV.
    sfreq : float
        Sampling rate in Hz.
    bands : sequence
        See :func:`bandpower`.
    method, window_s, nw
        See :func:`psd`.
    fmin, fmax, edge : float
        See :func:`spectral_edge` and :func:`spectral_entropy`.

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
    df = freqs[1] - freqs[0] if freqs.size > 1 else 1.0
    return {
        "bandpower": _bandpower_from_psd(freqs, p, bands, False),
        "relative": _bandpower_from_psd(freqs, p, bands, True),
        "edge": sef,
        "entropy": ent / np.log2(nbins) if nbins > 1 else np.zeros_like(ent),
        "hjorth": hjorth(data),
        "total": p[..., (freqs >= fmin) & (freqs < fmax)].sum(axis=-1) * df,
    }
