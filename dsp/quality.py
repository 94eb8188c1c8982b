"""Signal quality per channel and epoch: flat line, saturation, lead-off, mains, movement.

:func:`epoch_quality` works on raw (unfiltered) epochs in µV and returns a bit mask per epoch
and channel plus the measurements behind it. Thresholds (:class:`QualityThresholds`, all in
µV unless stated):

============================  ==========================  ======================================
flag                          criterion                   default
============================  ==========================  ======================================
``FLAT``                      SD < ``flat_sd_uv``, or the  0.5 µV; 50 % of the epoch
                              same value repeated for
                              ``flat_run`` of the epoch
``SATURATED``                 ``|x| >= rail_uv`` on at     187 000 µV (ADS1299 +-187.5 mV at gain
                              least ``saturated_fraction`` 24); 0.1 % of samples; or the device's
                              of the samples                ``FLAG_SATURATED``
``LEAD_OFF``                  the device's                 1 % of samples flagged; 50 % railed
                              ``FLAG_LEAD_OFF`` on
                              ``leadoff_fraction`` of the
                              samples, or railed on
                              ``leadoff_railed_fraction``
``MAINS``                     RMS of the mains line        5 µV (EEG/EOG/EMG), 20 µV (ECG)
                              (+-1 Hz) > ``mains_rms_uv``
``MOVEMENT``                  peak-to-peak after linear    EEG 500 / EOG 1000 / EMG 1000 / ECG
                              detrend > ``movement_ptp``   8000 µV; HF RMS EEG 20 / EOG 30 µV
                              or RMS above 30 Hz (mains
                              +-2 Hz excluded) > ``hf_rms``
``NONFINITE``                 any NaN or infinity         -
============================  ==========================  ======================================

``MAINS`` and ``MOVEMENT`` are assessed only on channels that are not flat, saturated or
lead-off (their spectra and amplitudes would be meaningless). Channels of another type
(``misc``: accelerometer, ...) only get ``NONFINITE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _kernels
from .docs import fill_doc
from .flags import FLAG_LEAD_OFF, FLAG_SATURATED
from .spectral import welch_psd
from .validate import as_signal, check_ch_types, check_option, check_positive

__all__ = [
    "FLAT",
    "LEAD_OFF",
    "MAINS",
    "MOVEMENT",
    "NONFINITE",
    "SATURATED",
    "EpochQuality",
    "QualityThresholds",
    "describe",
    "epoch_quality",
]

FLAT = np.uint8(1)
SATURATED = np.uint8(2)
LEAD_OFF = np.uint8(4)
MAINS = np.uint8(8)
MOVEMENT = np.uint8(16)
NONFINITE = np.uint8(32)

_NAMES = {
    int(FLAT): "flat",
    int(SATURATED): "saturated",
    int(LEAD_OFF): "lead-off",
    int(MAINS): "mains",
    int(MOVEMENT): "movement",
    int(NONFINITE): "non-finite",
}

_TYPES = ("eeg", "eog", "emg", "ecg")


def _per_type(**kw):
    return field(default_factory=lambda: dict(kw))


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of :func:`epoch_quality` (µV unless stated; see the module table).

    Parameters
    ----------
    flat_sd_uv : float
        Standard deviation below which a channel is flat (µV).
    flat_run : float
        Fraction of the epoch over which one repeated value makes it flat.
    rail_uv : float
        Absolute value counted as railed (µV).
    saturated_fraction : float
        Fraction of railed samples that flags saturation.
    leadoff_fraction : float
        Fraction of device lead-off-flagged samples that flags lead-off.
    leadoff_railed_fraction : float
        Fraction of railed samples that flags lead-off (an electrode sitting at the rail).
    mains_rms_uv : dict
        Per channel type, RMS of the mains line above which ``MAINS`` is set (µV).
    movement_ptp_uv : dict
        Per channel type, detrended peak-to-peak above which ``MOVEMENT`` is set (µV).
    hf_rms_uv : dict
        Per channel type, RMS above 30 Hz above which ``MOVEMENT`` is set (µV); absent type:
        not used (EMG and ECG have their own high-frequency content).
    """

    flat_sd_uv: float = 0.5
    flat_run: float = 0.5
    rail_uv: float = 187_000.0
    saturated_fraction: float = 0.001
    leadoff_fraction: float = 0.01
    leadoff_railed_fraction: float = 0.5
    mains_rms_uv: dict = _per_type(eeg=5.0, eog=5.0, emg=5.0, ecg=20.0)
    movement_ptp_uv: dict = _per_type(eeg=500.0, eog=1000.0, emg=1000.0, ecg=8000.0)
    hf_rms_uv: dict = _per_type(eeg=20.0, eog=30.0)


@dataclass(frozen=True)
class EpochQuality:
    """Result of :func:`epoch_quality`; every array has shape ``(..., n_channels)``.

    Attributes
    ----------
    flags : ndarray of uint8
        Bitwise OR of ``FLAT``, ``SATURATED``, ``LEAD_OFF``, ``MAINS``, ``MOVEMENT``,
        ``NONFINITE``.
    sd : ndarray
        Standard deviation of the finite samples, µV.
    ptp : ndarray
        Peak-to-peak after removing a linear trend, µV.
    railed : ndarray
        Fraction of samples at or beyond the rail.
    mains_rms : ndarray
        RMS of the mains line (+-1 Hz), µV.
    hf_rms : ndarray
        RMS between 30 Hz and 0.45 x sfreq without the mains lines, µV.
    nonfinite : ndarray
        Fraction of non-finite samples.
    """

    flags: np.ndarray
    sd: np.ndarray
    ptp: np.ndarray
    railed: np.ndarray
    mains_rms: np.ndarray
    hf_rms: np.ndarray
    nonfinite: np.ndarray

    @property
    def good(self) -> np.ndarray:
        """True where no flag is set."""
        return self.flags == 0


def describe(bits) -> list[str]:
    """Names of the flags set in ``bits`` (e.g. ``["flat", "lead-off"]``)."""
    b = int(bits)
    return [name for bit, name in _NAMES.items() if b & bit]


def _line_rms(spec_pow, freqs, lo, hi):
    sel = (freqs >= lo) & (freqs <= hi)
    return np.sqrt(spec_pow[..., sel].sum(axis=-1))


@fill_doc
def epoch_quality(
    data,
    sfreq,
    ch_types=None,
    *,
    mains=50.0,
    flags=None,
    thresholds: QualityThresholds | None = None,
) -> EpochQuality:
    """Quality flags per epoch and channel of raw signals.

    Parameters
    ----------
    data : array_like, shape (n_channels, n_samples) or (n_epochs, n_channels, n_samples)
        Raw epochs in µV (NaN allowed: flagged ``NONFINITE`` and ignored by the measurements).
    %(sfreq)s
    ch_types : sequence of str or None
        Type of each channel (``eeg``, ``eog``, ``emg``, ``ecg``; others get only
        ``NONFINITE``); None: all ``eeg``.
    %(mains)s
    %(sample_flags)s
    thresholds : QualityThresholds or None
        Thresholds; None uses the defaults.

    Returns
    -------
    EpochQuality
        Flags and measurements, shape ``(n_channels,)`` or ``(n_epochs, n_channels)``.
    """
    sfreq = check_positive("sfreq", sfreq)
    check_option("mains", mains, (50.0, 60.0, None))
    th = QualityThresholds() if thresholds is None else thresholds
    x = as_signal(data, "data")
    if x.ndim not in (2, 3):
        raise ValueError(
            "data must be (n_channels, n_samples) or (n_epochs, n_channels, n_samples), got "
            f"shape {x.shape}."
        )
    n = x.shape[-1]
    if n < 8:
        raise ValueError(f"an epoch needs at least 8 samples, got {n}.")
    n_ch = x.shape[-2]
    ch_types = ("eeg",) * n_ch if ch_types is None else check_ch_types(ch_types, n_ch)
    types = [t.lower() for t in ch_types]
    lead = x.shape[:-1]
    x2 = np.ascontiguousarray(x.reshape(-1, n), dtype=np.float64)
    m = x2.shape[0]

    stats = np.empty((m, 6))
    _kernels.amplitude_stats(x2, float(th.rail_uv), stats)
    sd, _, railed, run, nonfin, _ = stats.T

    finite = np.isfinite(x2)
    xc = np.where(finite, x2, 0.0)
    if not finite.all():  # fill non-finite samples with the row mean of the finite ones
        cnt = np.maximum(finite.sum(axis=1, keepdims=True), 1)
        mean = xc.sum(axis=1, keepdims=True) / cnt
        xc = np.where(finite, x2, mean)
    t = np.arange(n) - (n - 1) / 2.0
    xd = xc - xc.mean(axis=1, keepdims=True)
    xd -= ((xd @ t) / (t @ t))[:, np.newaxis] * t  # remove the least-squares line
    ptp = xd.max(axis=-1) - xd.min(axis=-1)
    # one Hann-windowed periodogram of the detrended epoch; density times bin width is the
    # power per bin (µV²), which sums to the variance (Parseval)
    freqs, pw = welch_psd(xd, sfreq, n, noverlap=0, window=np.hanning(n), detrend=False)
    pw *= freqs[1] - freqs[0]
    if mains is not None:
        mains_rms = _line_rms(pw, freqs, mains - 1.0, mains + 1.0)
    else:
        mains_rms = np.zeros(m)
    hf_sel = (freqs >= 30.0) & (freqs <= 0.45 * sfreq)
    if mains is not None:
        k = 1
        while k * mains <= sfreq / 2:
            hf_sel &= np.abs(freqs - k * mains) > 2.0
            k += 1
    hf_rms = np.sqrt(pw[:, hf_sel].sum(axis=-1)) if hf_sel.any() else np.zeros(m)

    tcol = np.tile(np.array(types, dtype=object), m // n_ch)
    out = np.zeros(m, dtype=np.uint8)
    out[nonfin > 0] |= NONFINITE
    if flags is not None:
        fl = np.asarray(flags)
        if fl.shape != x.shape:
            raise ValueError(f"flags must have the shape of data {x.shape}, got {fl.shape}.")
        fl = fl.reshape(-1, n).astype(np.uint8, copy=False)
        dev_lo = (fl & FLAG_LEAD_OFF).astype(bool).mean(axis=1)
        dev_sat = (fl & FLAG_SATURATED).astype(bool).any(axis=1)
    else:
        dev_lo = np.zeros(m)
        dev_sat = np.zeros(m, dtype=bool)
    flat = (sd < th.flat_sd_uv) | (run >= th.flat_run)
    sat = (railed >= th.saturated_fraction) | dev_sat
    lo = (dev_lo >= th.leadoff_fraction) | (railed >= th.leadoff_railed_fraction)
    for t in _TYPES:
        rows = tcol == t
        if not rows.any():
            continue
        bits = np.zeros(m, dtype=np.uint8)
        bits[flat] |= FLAT
        bits[sat] |= SATURATED
        bits[lo] |= LEAD_OFF
        # mains and movement are measured on physiological amplitudes only: a flat, clipped
        # or disconnected channel would give meaningless spectra and peak-to-peak values
        usable = ~(flat | sat | lo)
        if mains is not None and t in th.mains_rms_uv:
            bits[usable & (mains_rms > th.mains_rms_uv[t])] |= MAINS
        mov = np.zeros(m, dtype=bool)
        if t in th.movement_ptp_uv:
            mov |= ptp > th.movement_ptp_uv[t]
        if t in th.hf_rms_uv:
            mov |= hf_rms > th.hf_rms_uv[t]
        bits[usable & mov] |= MOVEMENT
        out[rows] |= bits[rows]
    return EpochQuality(
        flags=out.reshape(lead),
        sd=sd.reshape(lead),
        ptp=ptp.reshape(lead),
        railed=railed.reshape(lead),
        mains_rms=mains_rms.reshape(lead),
        hf_rms=hf_rms.reshape(lead),
        nonfinite=nonfin.reshape(lead),
    )
