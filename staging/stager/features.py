"""Per-epoch sleep-staging features and their per-recording normalisation.

Every 30-s epoch of each channel is brought to a common internal rate of 100 Hz by exact
band-limited (FFT) resampling of the epoch on its own, so that a feature never depends on the
recording's sampling rate (50-1000 Hz), on its length, or on any sample outside the epoch; bands
above 47% of the original rate are *missing* (NaN) rather than wrong. From the 100-Hz epoch the
features are:

* EEG: log band powers (delta 0.5-2 and 2-4 Hz, theta 4-8, alpha 8-12, sigma 12-16, beta 16-30,
  total 0.5-30, high 30-45), relative powers, power ratios, spectral entropy, spectral edge (50%,
  95%), Hjorth mobility and complexity (from spectral moments), zero-crossing rate, amplitude
  percentiles, spindle density, slow-wave amplitude and coverage;
* EOG (one or two channels): low-frequency power, E1/E2 correlation (eye movements are anti-phase,
  EEG leaking into the EOG is in phase), slope statistics and rapid-eye-movement density;
* EMG: tone (log power 10-20 and 20-45 Hz) and phasic twitch index.

Absolute amplitudes differ between people, montages and amplifiers, so amplitude-dependent
features ("amp" columns) enter the model only after per-recording robust scaling (median and
inter-quartile range), and amplitude-invariant ones ("inv" columns) also enter as they are.
:class:`RunningNormalizer` scales with statistics of the past epochs only (online mode; during a
burn-in of about :data:`BURN_IN_EPOCHS` epochs the statistics are blended with population priors
stored in the model); :func:`normalize_offline` uses the recording's sleep period
(:func:`sleep_period`: the whole recording, unless it holds hours of daytime wake). Both
produce the same vector layout (:data:`INPUT_NAMES`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from dsp.spectral import band_power, band_slice, welch_psd
from headset.stages import EPOCH_S

from ._kernels import insert_ranked, ranked_quartiles

#: Bump when the values of the features change (invalidates cached training features).
FEATURE_VERSION = 1
#: Internal sampling rate (Hz) of every epoch after resampling.
INTERNAL_SFREQ = 100.0
#: Samples of one epoch at the internal rate.
EPOCH_SAMPLES = int(EPOCH_S * INTERNAL_SFREQ)
#: Lowest accepted sampling rate (Hz).
MIN_SFREQ = 50.0
#: Epochs over which online normalisation blends its running statistics with the priors.
BURN_IN_EPOCHS = 10
#: Fraction of bad (gap, lead-off, saturated, NaN) samples above which an epoch is not scored.
MAX_BAD_FRACTION = 0.5
#: A channel whose robust standard deviation in an epoch is below this (µV) is flat.
FLAT_UV = 0.2

_NYQ_FRACTION = 0.47  # usable part of the original band (anti-alias filters roll off above)
_KEEP_HZ = 47.0  # highest frequency kept at the internal rate
_SEG = 400  # Welch segment: 4 s at 100 Hz
_STEP = 200
_NSEG = (EPOCH_SAMPLES - _SEG) // _STEP + 1
_HANN = np.hanning(_SEG + 2)[1:-1]  # the Welch window (Hann without its zero end points)
_FINE_FREQS = np.arange(EPOCH_SAMPLES // 2 + 1) / EPOCH_S

#: Top slow waves kept per epoch for the recording-relative coverage features.
N_SLOW_WAVES = 24
_EM_WIN = 50  # eye-movement slope windows: 0.5 s
_SP_WIN = 25  # spindle windows: 0.25 s

EEG_BANDS = {
    "delta1": (0.5, 2.0),
    "delta2": (2.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "sigma": (12.0, 16.0),
    "beta": (16.0, 30.0),
}

#: Raw per-epoch feature columns: (name, kind) with kind "amp" (amplitude-dependent: used only
#: after per-recording scaling) or "inv" (amplitude-invariant: used raw and scaled).
COLUMNS: tuple[tuple[str, str], ...] = (
    *((f"log_{b}", "amp") for b in EEG_BANDS),
    ("log_total", "amp"),
    ("log_hi", "amp"),
    *((f"rel_{b}", "inv") for b in EEG_BANDS),
    ("lr_delta_beta", "inv"),
    ("lr_theta_alpha", "inv"),
    ("lr_slow_fast", "inv"),
    ("lr_sigma_alpha", "inv"),
    ("entropy", "inv"),
    ("sef50", "inv"),
    ("sef95", "inv"),
    ("mobility", "inv"),
    ("complexity", "inv"),
    ("zero_cross", "inv"),
    ("log_iqr", "amp"),
    ("peakiness", "inv"),
    ("spindle_frac", "inv"),
    ("spindle_rate", "inv"),
    ("log_sw_p2p", "amp"),
    ("log_eog_low", "amp"),
    ("log_eog_mid", "amp"),
    ("lr_eog_eeg", "amp"),
    ("eog_corr", "inv"),
    ("log_em_med", "amp"),
    ("log_em_max", "amp"),
    ("log_emg_lo", "amp"),
    ("log_emg_hi", "amp"),
    ("emg_phasic", "inv"),
)
COLUMN_NAMES = tuple(n for n, _ in COLUMNS)
N_COLUMNS = len(COLUMNS)
_COL = {n: i for i, n in enumerate(COLUMN_NAMES)}
INV_COLUMNS = np.array([i for i, (_, k) in enumerate(COLUMNS) if k == "inv"])

#: Features computed at normalisation time from per-epoch event amplitudes and a
#: recording-relative threshold (slow-wave coverage, rapid-eye-movement density).
_SW_FACTORS = (2.5, 4.0)  # x recording median RMS of the 0.5-30 Hz EEG
_EM_FACTORS = (4.0, 8.0)  # x recording median EOG slope
DEFERRED_NAMES = (
    *(f"sw_cover_{f:g}" for f in _SW_FACTORS),
    *(f"em_density_{f:g}" for f in _EM_FACTORS),
)
INDICATOR_NAMES = ("has_eog", "has_eog2", "has_emg", "has_beta", "has_hi")

#: Names of the model-input vector of one epoch (before the context window is added).
INPUT_NAMES = (
    *(f"z_{n}" for n in COLUMN_NAMES),
    *(f"raw_{COLUMN_NAMES[i]}" for i in INV_COLUMNS),
    *DEFERRED_NAMES,
    *INDICATOR_NAMES,
)
N_INPUTS = len(INPUT_NAMES)

#: Signal each raw column is computed from.
_EOG_COLUMNS = ("log_eog_low", "log_eog_mid", "lr_eog_eeg", "eog_corr", "log_em_med", "log_em_max")
_EMG_COLUMNS = ("log_emg_lo", "log_emg_hi", "emg_phasic")
COLUMN_SIGNAL = {
    n: "eog" if n in _EOG_COLUMNS else ("emg" if n in _EMG_COLUMNS else "eeg") for n in COLUMN_NAMES
}
#: Inputs never given to a network: the E1/E2 correlation exists only with two EOG channels
#: (most clinical montages and Sleep-EDF have one), and the modality indicators, which are
#: replaced by one network per modality (a missing signal is never imputed as a value).
_NOT_MODEL_INPUTS = ("z_eog_corr", "raw_eog_corr", "has_eog", "has_eog2", "has_emg")
#: The signal combinations a recording can hold, each with its own networks.
MODALITIES = ("eeg", "eeg+eog", "eeg+emg", "eeg+eog+emg")


def _input_signal(name: str) -> str:
    if name in INDICATOR_NAMES:
        return "eeg"  # has_beta / has_hi: which EEG bands the sampling rate allows
    if name.startswith("sw_cover"):
        return "eeg"
    if name.startswith("em_density"):
        return "eog"
    return COLUMN_SIGNAL[name.split("_", 1)[1]]


def modality_inputs(modality: str) -> np.ndarray:
    """Return the indices into :data:`INPUT_NAMES` that the networks of a modality see.

    Parameters
    ----------
    modality : str
        One of :data:`MODALITIES` (``"eeg"``, ``"eeg+eog"``, ``"eeg+emg"``, ``"eeg+eog+emg"``).

    Returns
    -------
    ndarray of int
        Column indices, in :data:`INPUT_NAMES` order.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}.")
    signals = set(modality.split("+"))
    return np.array(
        [
            i
            for i, n in enumerate(INPUT_NAMES)
            if n not in _NOT_MODEL_INPUTS and _input_signal(n) in signals
        ]
    )


def modality_name(has_eog: bool, has_emg: bool) -> str:
    """Return the modality (one of :data:`MODALITIES`) of EEG with or without EOG and EMG."""
    return "eeg" + ("+eog" if has_eog else "") + ("+emg" if has_emg else "")


def modality_of(indicators: np.ndarray) -> str:
    """Return the modality of a recording from its indicators (:data:`INDICATOR_NAMES`)."""
    ind = dict(zip(INDICATOR_NAMES, np.asarray(indicators) > 0.5))
    return modality_name(ind["has_eog"], ind["has_emg"])


@dataclass
class EpochFeatures:
    """Raw (not yet normalised) features of consecutive epochs of one recording.

    Attributes
    ----------
    values : ndarray, shape (n_epochs, N_COLUMNS)
        One row per epoch, columns :data:`COLUMN_NAMES`; NaN where a feature is missing (no such
        channel, band above the original Nyquist, bad data on that channel).
    valid : ndarray of bool, shape (n_epochs,)
        False for epochs that cannot be scored (too much bad EEG, flat EEG).
    sw_p2p : ndarray, shape (n_epochs, N_SLOW_WAVES)
        Peak-to-peak amplitudes (µV) of the largest 0.3-2 Hz waves of each epoch, zero-padded.
    sw_dur : ndarray, shape (n_epochs, N_SLOW_WAVES)
        Their durations (s).
    em_slopes : ndarray, shape (n_epochs, 60)
        Largest absolute EOG slope (µV/s) in each 0.5-s window, sorted in decreasing order
        (NaN without EOG).
    indicators : ndarray, shape (len(INDICATOR_NAMES),)
        1.0/0.0 for has EOG, two EOG channels, EMG, the beta band, the 30-45 Hz band.
    """

    values: np.ndarray
    valid: np.ndarray
    sw_p2p: np.ndarray
    sw_dur: np.ndarray
    em_slopes: np.ndarray
    indicators: np.ndarray

    @property
    def n_epochs(self) -> int:
        """Number of epochs."""
        return self.values.shape[0]

    @classmethod
    def concatenate(cls, parts: list[EpochFeatures]) -> EpochFeatures:
        """Join the features of consecutive blocks of epochs of one recording."""
        if not parts:
            raise ValueError("Cannot concatenate an empty list of EpochFeatures.")
        return cls(
            values=np.concatenate([p.values for p in parts]),
            valid=np.concatenate([p.valid for p in parts]),
            sw_p2p=np.concatenate([p.sw_p2p for p in parts]),
            sw_dur=np.concatenate([p.sw_dur for p in parts]),
            em_slopes=np.concatenate([p.em_slopes for p in parts]),
            indicators=parts[0].indicators.copy(),
        )

    def take(self, sl) -> EpochFeatures:
        """Return the features of a subset of epochs (slice or index array)."""
        return EpochFeatures(
            self.values[sl],
            self.valid[sl],
            self.sw_p2p[sl],
            self.sw_dur[sl],
            self.em_slopes[sl],
            self.indicators.copy(),
        )


def epoch_length(sfreq: float) -> int:
    """Return the number of samples of one 30-s epoch at ``sfreq`` (Hz), rounded."""
    return int(round(EPOCH_S * sfreq))


def epoch_starts(n_epochs: int, sfreq: float) -> np.ndarray:
    """Return the first sample index of each epoch (epochs aligned to the recording start).

    Parameters
    ----------
    n_epochs : int
        Number of epochs.
    sfreq : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray of int64, shape (n_epochs,)
        ``round(k * 30 * sfreq)``.
    """
    return np.round(np.arange(n_epochs) * EPOCH_S * sfreq).astype(np.int64)


def _ramp(n: int) -> np.ndarray:
    """Centred ramp of length n."""
    return np.arange(n) - (n - 1) / 2.0


def _to_internal(x: np.ndarray, bad: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Detrend each epoch on its good samples and return its spectrum at the internal rate.

    Returns the one-sided spectrum (n, 1501) scaled so that ``irfft(Y, 3000)`` is the epoch at
    100 Hz (band-limited to 47 Hz or 47% of ``sfreq``), and the flat indicator (RMS of the kept
    band below :data:`FLAT_UV`). Bad samples are replaced by the trend line before the transform.
    """
    n_ep, n = x.shape
    rows_bad = bad.any(-1)
    if rows_bad.any():
        t = _ramp(n)
        x = x.copy()
        xb, gb = x[rows_bad], ~bad[rows_bad]
        ng = np.maximum(gb.sum(-1), 1)
        mean = np.where(gb, xb, 0.0).sum(-1) / ng
        tm = np.where(gb, t, 0.0).sum(-1) / ng
        tc = np.where(gb, t[None, :] - tm[:, None], 0.0)
        xcb = np.where(gb, xb - mean[:, None], 0.0)
        slope = (xcb * tc).sum(-1) / np.maximum((tc * tc).sum(-1), 1e-12)
        x[rows_bad] = np.where(gb, xcb - slope[:, None] * tc, 0.0)
    spec = np.fft.rfft(x, axis=-1)
    # the mean goes with the DC bin; a slow drift leaks a negligible 1/f tail below 0.5 Hz
    keep_hz = min(_KEEP_HZ, _NYQ_FRACTION * sfreq)
    nk = min(int(np.ceil(keep_hz * n / sfreq)), spec.shape[-1], EPOCH_SAMPLES // 2)
    out = np.zeros((n_ep, EPOCH_SAMPLES // 2 + 1), dtype=np.complex128)
    out[:, 1:nk] = spec[:, 1:nk]
    out[:, 1:nk] *= EPOCH_SAMPLES / n
    rms = np.sqrt(2.0 * np.sum(np.abs(out[:, 1:nk]) ** 2, -1)) / EPOCH_SAMPLES
    flat = rms < FLAT_UV
    return out, flat


def _seg_bad_fraction(bad: np.ndarray) -> np.ndarray:
    """Fraction of bad samples in each Welch segment, shape (n_ep, _NSEG)."""
    n_ep, n = bad.shape
    if not bad.any():
        return np.zeros((n_ep, _NSEG))
    cs = np.zeros((n_ep, n + 1))
    np.cumsum(bad, axis=-1, out=cs[:, 1:])
    scale = n / EPOCH_SAMPLES
    b0 = np.round(np.arange(_NSEG) * _STEP * scale).astype(int)
    b1 = np.round((np.arange(_NSEG) * _STEP + _SEG) * scale).astype(int)
    return (cs[:, b1] - cs[:, b0]) / np.maximum(b1 - b0, 1)


def _runs(mask: np.ndarray, min_len: int, max_len: int) -> np.ndarray:
    """Count runs of True of length in [min_len, max_len] per row of a 2-D mask."""
    n_ep = mask.shape[0]
    padded = np.zeros((n_ep, mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=-1)
    rs, cs = np.nonzero(d == 1)
    re, ce = np.nonzero(d == -1)
    length = ce - cs  # starts and ends pair up in row-major order
    ok = (length >= min_len) & (length <= max_len)
    return np.bincount(rs[ok], minlength=n_ep).astype(np.float64)


def _slow_waves(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k waves (between down-going zero crossings) of 0.3-2 Hz epochs by peak-to-peak."""
    n_ep, n = d.shape
    neg = d < 0
    dc = ~neg[:, :-1] & neg[:, 1:]
    r, c = np.nonzero(dc)
    p2p_out = np.zeros((n_ep, k))
    dur_out = np.zeros((n_ep, k))
    if r.size < 2:
        return p2p_out, dur_out
    same = r[1:] == r[:-1]
    start = r[:-1] * n + c[:-1] + 1
    stop = r[1:] * n + c[1:] + 1
    dur = (c[1:] - c[:-1]) / INTERNAL_SFREQ
    ok = same & (dur >= 0.4) & (dur <= 2.5)
    if not ok.any():
        return p2p_out, dur_out
    start, stop, dur, row = start[ok], stop[ok], dur[ok], r[:-1][ok]
    flat = d.ravel()
    idx = np.empty(2 * start.size, dtype=np.int64)
    idx[0::2] = start
    idx[1::2] = stop
    if idx[-1] >= flat.size:  # reduceat needs indices inside the array
        flat = np.append(flat, 0.0)
    p2p = np.maximum.reduceat(flat, idx)[0::2] - np.minimum.reduceat(flat, idx)[0::2]
    order = np.lexsort((-p2p, row))
    row, p2p, dur = row[order], p2p[order], dur[order]
    rank = np.arange(row.size) - np.searchsorted(row, row, side="left")
    keep = rank < k
    p2p_out[row[keep], rank[keep]] = p2p[keep]
    dur_out[row[keep], rank[keep]] = dur[keep]
    return p2p_out, dur_out


def _fine_power(spec: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Band power (µV², up to a constant) from a 30-s periodogram."""
    m = band_slice(_FINE_FREQS, lo, hi)
    return 2.0 * np.sum(np.abs(spec[:, m]) ** 2, axis=-1) / EPOCH_SAMPLES**2


def _irfft_band(spec: np.ndarray, lo: float, hi: float) -> np.ndarray:
    m = band_slice(_FINE_FREQS, lo, hi)
    out = np.zeros_like(spec)
    out[:, m] = spec[:, m]
    return np.fft.irfft(out, n=EPOCH_SAMPLES, axis=-1)


def _bad_mask(x: np.ndarray, bad: np.ndarray | None) -> np.ndarray:
    finite = np.isfinite(x)
    return ~finite if bad is None else (bad.astype(bool) | ~finite)


def _log10(x):
    return np.log10(np.maximum(x, 1e-12))


def _quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Nearest-rank quantiles along the last axis (one partition for all)."""
    n = x.shape[-1]
    ks = [int(round(q * (n - 1))) for q in qs]
    part = np.partition(x, ks, axis=-1)
    return [part[..., k] for k in ks]


def epoch_features(
    eeg: np.ndarray,
    sfreq: float,
    eog: np.ndarray | None = None,
    emg: np.ndarray | None = None,
    eeg_bad: np.ndarray | None = None,
    eog_bad: np.ndarray | None = None,
    emg_bad: np.ndarray | None = None,
) -> EpochFeatures:
    """Compute the raw features of whole epochs.

    Each epoch is processed on its own (no sample outside it is used), so the result for an
    epoch is the same in a live stream and in a whole-recording pass.

    Parameters
    ----------
    eeg : ndarray, shape (n_epochs, n_per_epoch)
        One EEG channel in µV, cut into 30-s epochs (``n_per_epoch = round(30 * sfreq)``).
    sfreq : float
        Sampling rate in Hz (>= 50).
    eog : ndarray, shape (n_epochs, n_eog, n_per_epoch), optional
        One or two EOG channels (E1, E2) in µV.
    emg : ndarray, shape (n_epochs, n_per_epoch), optional
        Chin EMG in µV.
    eeg_bad, eog_bad, emg_bad : ndarray of bool, optional
        Same shapes as the signals: True for samples that are not trustworthy (gap, lead-off,
        saturation). Non-finite samples are always bad.

    Returns
    -------
    EpochFeatures
        The raw feature table.
    """
    if sfreq < MIN_SFREQ:
        raise ValueError(f"sfreq must be at least {MIN_SFREQ:g} Hz, got {sfreq:g} Hz.")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _epoch_features(eeg, sfreq, eog, emg, eeg_bad, eog_bad, emg_bad)


def _epoch_features(eeg, sfreq, eog, emg, eeg_bad, eog_bad, emg_bad) -> EpochFeatures:
    eeg = np.asarray(eeg, dtype=np.float64)
    if eeg.ndim != 2:
        raise ValueError(f"eeg must be 2-D (n_epochs, n_per_epoch), got shape {eeg.shape}.")
    n_ep = eeg.shape[0]
    vals = np.full((n_ep, N_COLUMNS), np.nan)
    band_limit = _NYQ_FRACTION * sfreq
    has_beta = band_limit >= 30.0
    has_hi = band_limit >= 45.0

    bad = _bad_mask(eeg, eeg_bad)
    bad_frac = bad.mean(-1)
    spec, flat = _to_internal(eeg, bad, sfreq)
    y = np.fft.irfft(spec, n=EPOCH_SAMPLES, axis=-1)
    seg_ok = _seg_bad_fraction(bad) < 0.1
    # Welch over the good 4-s segments (50 % overlap); a row without one is NaN
    freqs, psd = welch_psd(y, INTERNAL_SFREQ, _SEG, window=_HANN, weights=seg_ok)
    valid = (bad_frac <= MAX_BAD_FRACTION) & (seg_ok.sum(-1) >= 4) & ~flat
    _eeg_band_features(vals, freqs, psd)
    _eeg_spectrum_shape(vals, freqs, psd)
    sw_p2p, sw_dur = _eeg_waveform_features(vals, spec)
    if not has_beta:
        for c in ("log_beta", "rel_beta", "lr_delta_beta", "lr_slow_fast"):
            vals[:, _COL[c]] = np.nan
    if not has_hi:
        vals[:, _COL["log_hi"]] = np.nan
    n_eog, em_slopes = _eog_features(vals, eog, eog_bad, spec, sfreq)
    if emg is not None:
        _emg_features(vals, emg, emg_bad, eeg.shape, sfreq, band_limit, has_hi)

    vals[~np.isfinite(vals)] = np.nan
    vals[~valid] = np.nan
    sw_p2p[~valid] = 0.0
    sw_dur[~valid] = 0.0
    indicators = np.array(
        [n_eog > 0, n_eog == 2, emg is not None, has_beta, has_hi], dtype=np.float64
    )
    return EpochFeatures(vals, valid, sw_p2p, sw_dur, em_slopes, indicators)


def _eeg_band_features(vals: np.ndarray, freqs: np.ndarray, psd: np.ndarray) -> None:
    """Fill the EEG band powers, relative powers and log ratios into ``vals`` (in place)."""
    bp = dict(zip(EEG_BANDS, band_power(psd, freqs, EEG_BANDS).T))
    total, hi_pow = band_power(psd, freqs, [(0.5, 30.0), (30.0, 45.0)]).T
    for name in EEG_BANDS:
        vals[:, _COL[f"log_{name}"]] = _log10(bp[name])
        vals[:, _COL[f"rel_{name}"]] = bp[name] / total
    vals[:, _COL["log_total"]] = _log10(total)
    vals[:, _COL["log_hi"]] = _log10(hi_pow)
    delta = bp["delta1"] + bp["delta2"]
    vals[:, _COL["lr_delta_beta"]] = _log10(delta) - _log10(bp["beta"])
    vals[:, _COL["lr_theta_alpha"]] = _log10(bp["theta"]) - _log10(bp["alpha"])
    vals[:, _COL["lr_slow_fast"]] = _log10(delta + bp["theta"]) - _log10(bp["alpha"] + bp["beta"])
    vals[:, _COL["lr_sigma_alpha"]] = _log10(bp["sigma"]) - _log10(bp["alpha"])


def _eeg_spectrum_shape(vals: np.ndarray, freqs: np.ndarray, psd: np.ndarray) -> None:
    """Fill spectral entropy, edge frequencies and Hjorth parameters (0.5-30 Hz) into ``vals``."""
    tot_m = band_slice(freqs, 0.5, 30.0)
    p = psd[:, tot_m]
    f = freqs[tot_m]
    with np.errstate(invalid="ignore", divide="ignore"):
        pn = p / p.sum(-1, keepdims=True)
        ent = -np.sum(np.where(pn > 0, pn * np.log(np.maximum(pn, 1e-300)), 0.0), -1)
        vals[:, _COL["entropy"]] = ent / np.log(p.shape[-1])
        cum = np.cumsum(pn, -1)
        vals[:, _COL["sef50"]] = f[np.minimum(np.argmax(cum >= 0.5, -1), f.size - 1)]
        vals[:, _COL["sef95"]] = f[np.minimum(np.argmax(cum >= 0.95, -1), f.size - 1)]
        w2 = (2 * np.pi * f) ** 2
        m0 = p.sum(-1)
        m2 = (p * w2).sum(-1)
        m4 = (p * w2 * w2).sum(-1)
        mob = np.sqrt(m2 / m0)
        vals[:, _COL["mobility"]] = mob / (2 * np.pi)
        vals[:, _COL["complexity"]] = np.sqrt(m4 / m2) / mob


def _eeg_waveform_features(vals: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill the time-domain EEG features (amplitude, spindles, slow waves) into ``vals``.

    Returns the slow-wave peak-to-peak amplitudes and durations of :func:`_slow_waves`.
    """
    n_ep = spec.shape[0]
    bb = _irfft_band(spec, 0.5, 30.0)
    sgn = bb >= 0
    vals[:, _COL["zero_cross"]] = np.count_nonzero(sgn[:, 1:] != sgn[:, :-1], -1) / EPOCH_S
    absbb = np.abs(bb)
    q = _quantiles(bb, (0.25, 0.75))
    vals[:, _COL["log_iqr"]] = _log10(q[1] - q[0])
    qa = _quantiles(absbb, (0.5, 0.99))
    vals[:, _COL["peakiness"]] = _log10(qa[1]) - _log10(qa[0])
    # spindles: 0.25-s windows where sigma (11-16 Hz) carries a large share of the power
    sig = _irfft_band(spec, 11.0, 16.0)
    nwin = EPOCH_SAMPLES // _SP_WIN
    sw_pow = (sig**2).reshape(n_ep, nwin, _SP_WIN).mean(-1)
    bb_pow = (bb**2).reshape(n_ep, nwin, _SP_WIN).mean(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(bb_pow > 0, sw_pow / bb_pow, 0.0)
    sp = rel > 0.3
    vals[:, _COL["spindle_frac"]] = sp.mean(-1)
    vals[:, _COL["spindle_rate"]] = _runs(sp, 2, 8) * (60.0 / EPOCH_S)
    # slow waves
    d = _irfft_band(spec, 0.3, 2.0)
    sw_p2p, sw_dur = _slow_waves(d, N_SLOW_WAVES)
    vals[:, _COL["log_sw_p2p"]] = _log10(sw_p2p[:, 2] + 1.0)
    return sw_p2p, sw_dur


def _eog_features(vals, eog, eog_bad, eeg_spec, sfreq) -> tuple[int, np.ndarray]:
    """Fill the EOG features into ``vals``; return the EOG channel count and the sorted slopes."""
    n_ep = vals.shape[0]
    em_slopes = np.full((n_ep, EPOCH_SAMPLES // _EM_WIN), np.nan)
    if eog is None:
        return 0, em_slopes
    eog = np.asarray(eog, dtype=np.float64)
    if eog.ndim == 2:
        eog = eog[:, None, :]
    n_eog = eog.shape[1]
    if eog.shape[0] != n_ep or n_eog not in (1, 2):
        raise ValueError(f"eog must have shape (n_epochs, 1 or 2, n_per_epoch), got {eog.shape}.")
    ebad_all = _bad_mask(eog, eog_bad)
    specs, ok = [], np.ones(n_ep, dtype=bool)
    for i in range(n_eog):
        s_i, flat_i = _to_internal(eog[:, i], ebad_all[:, i], sfreq)
        specs.append(s_i)
        ok &= ~flat_i & (ebad_all[:, i].mean(-1) <= MAX_BAD_FRACTION)
    es = specs[0] - specs[1] if n_eog == 2 else specs[0]
    low = _fine_power(es, 0.3, 2.0)
    vals[:, _COL["log_eog_low"]] = _log10(low)
    vals[:, _COL["log_eog_mid"]] = _log10(_fine_power(es, 2.0, 5.0))
    vals[:, _COL["lr_eog_eeg"]] = _log10(low) - _log10(_fine_power(eeg_spec, 0.3, 2.0))
    if n_eog == 2:
        m = band_slice(_FINE_FREQS, 0.3, 5.0)
        a, b = specs[0][:, m], specs[1][:, m]
        num = np.real(np.sum(a * np.conj(b), -1))
        den = np.sqrt(np.sum(np.abs(a) ** 2, -1) * np.sum(np.abs(b) ** 2, -1))
        with np.errstate(invalid="ignore", divide="ignore"):
            vals[:, _COL["eog_corr"]] = num / den
    eo = _irfft_band(es, 0.3, 5.0)
    slope = np.abs(np.diff(eo, axis=-1, append=eo[:, -1:])) * INTERNAL_SFREQ
    em = slope.reshape(n_ep, -1, _EM_WIN).max(-1)
    em_slopes = -np.sort(-em, axis=-1)
    vals[:, _COL["log_em_med"]] = _log10(em_slopes[:, em_slopes.shape[1] // 2])
    vals[:, _COL["log_em_max"]] = _log10(em_slopes[:, 2])
    eog_cols = [
        _COL[c]
        for c in ("log_eog_low", "log_eog_mid", "lr_eog_eeg", "eog_corr")
        + ("log_em_med", "log_em_max")
    ]
    vals[np.ix_(~ok, eog_cols)] = np.nan
    em_slopes[~ok] = np.nan
    return n_eog, em_slopes


def _emg_features(vals, emg, emg_bad, eeg_shape, sfreq, band_limit, has_hi) -> None:
    """Fill the chin-EMG features into ``vals`` (in place)."""
    emg = np.asarray(emg, dtype=np.float64)
    if emg.shape != eeg_shape:
        raise ValueError(f"emg shape {emg.shape} differs from eeg shape {eeg_shape}.")
    n_ep = vals.shape[0]
    mbad = _bad_mask(emg, emg_bad)
    ms, mflat = _to_internal(emg, mbad, sfreq)
    ok = ~mflat & (mbad.mean(-1) <= MAX_BAD_FRACTION)
    vals[:, _COL["log_emg_lo"]] = _log10(_fine_power(ms, 10.0, 20.0))
    if has_hi:
        vals[:, _COL["log_emg_hi"]] = _log10(_fine_power(ms, 20.0, 45.0))
    e = _irfft_band(ms, 10.0, min(45.0, band_limit))
    rms = np.sqrt((e**2).reshape(n_ep, 30, -1).mean(-1))
    rms.sort(axis=-1)
    vals[:, _COL["emg_phasic"]] = _log10(rms[:, 28]) - _log10(rms[:, 15])
    for c in ("log_emg_lo", "log_emg_hi", "emg_phasic"):
        vals[~ok, _COL[c]] = np.nan


def continuous_features(
    eeg: np.ndarray,
    sfreq: float,
    eog: np.ndarray | None = None,
    emg: np.ndarray | None = None,
    eeg_bad: np.ndarray | None = None,
    eog_bad: np.ndarray | None = None,
    emg_bad: np.ndarray | None = None,
    block: int = 120,
) -> EpochFeatures:
    """Cut continuous signals into 30-s epochs and compute their raw features.

    A trailing partial epoch is ignored.

    Parameters
    ----------
    eeg : ndarray, shape (n_samples,)
        EEG in µV.
    sfreq : float
        Sampling rate in Hz.
    eog : ndarray, shape (n_eog, n_samples) or (n_samples,), optional
        EOG channel(s) in µV.
    emg : ndarray, shape (n_samples,), optional
        Chin EMG in µV.
    eeg_bad, eog_bad, emg_bad : ndarray of bool, optional
        Bad-sample masks of the same shapes.
    block : int
        Epochs processed at once (bounds the working memory).

    Returns
    -------
    EpochFeatures
        One row per whole epoch.
    """
    eeg = np.asarray(eeg, dtype=np.float64)
    if eog is not None:
        eog = np.atleast_2d(np.asarray(eog, dtype=np.float64))
    n_per = epoch_length(sfreq)
    n_ep = int(np.floor(eeg.shape[-1] / (EPOCH_S * sfreq) + 1e-9))
    while n_ep > 0 and epoch_starts(n_ep, sfreq)[-1] + n_per > eeg.shape[-1]:
        n_ep -= 1
    if n_ep < 1:
        raise ValueError(
            f"recording is shorter than one {EPOCH_S:g}-s epoch "
            f"({eeg.shape[-1] / sfreq:.1f} s at {sfreq:g} Hz)."
        )
    starts = epoch_starts(n_ep, sfreq)
    regular = bool(np.all(starts == np.arange(n_ep) * n_per))
    parts = []
    for b0 in range(0, n_ep, block):
        b1 = min(b0 + block, n_ep)
        idx = starts[b0:b1, None] + np.arange(n_per)[None, :]

        def cut(a, idx=idx, b0=b0, b1=b1):
            if a is None:
                return None
            if regular:  # a view, no copy
                seg = a[..., b0 * n_per : b1 * n_per].reshape(*a.shape[:-1], b1 - b0, n_per)
                return seg if a.ndim == 1 else np.moveaxis(seg, 0, 1)
            return a[..., idx] if a.ndim == 1 else np.moveaxis(a[:, idx], 0, 1)

        parts.append(
            epoch_features(
                cut(eeg),
                sfreq,
                eog=cut(eog),
                emg=cut(emg),
                eeg_bad=cut(eeg_bad),
                eog_bad=None if eog_bad is None else cut(np.atleast_2d(eog_bad)),
                emg_bad=cut(emg_bad),
            )
        )
    return EpochFeatures.concatenate(parts)


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormPrior:
    """Population statistics used by the normalisation (stored in the model).

    Attributes
    ----------
    median : ndarray, shape (N_COLUMNS,)
        Typical per-recording median of each raw column (used for "inv" columns during burn-in).
    scale : ndarray, shape (N_COLUMNS,)
        Typical per-recording robust scale (IQR / 1.349) of each raw column.
    raw_mean, raw_std : ndarray, shape (n_inv + n_deferred,)
        Population mean and SD of the raw amplitude-invariant and deferred features.
    """

    median: np.ndarray
    scale: np.ndarray
    raw_mean: np.ndarray
    raw_std: np.ndarray

    @classmethod
    def neutral(cls) -> NormPrior:
        """Return a prior that changes nothing (used before a model is trained)."""
        n_raw = INV_COLUMNS.size + len(DEFERRED_NAMES)
        return cls(np.zeros(N_COLUMNS), np.ones(N_COLUMNS), np.zeros(n_raw), np.ones(n_raw))


def _rank_index(p: float, n: np.ndarray) -> np.ndarray:
    return np.round(p * (np.maximum(n, 1) - 1)).astype(np.int64)


def robust_stats(
    rows: np.ndarray, prior: NormPrior, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust scale of each column, blended with the prior during burn-in.

    Parameters
    ----------
    rows : ndarray, shape (n_rows, N_COLUMNS)
        Raw features of the epochs that make the statistics.
    prior : NormPrior
        Population statistics.
    keep : ndarray of bool, shape (n_rows,), optional
        The rows that count (default: all). Non-finite values never count.

    Returns
    -------
    med, scale : ndarray, shape (N_COLUMNS,)
        See :func:`stats_from_quartiles`.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if keep is not None:
        rows = rows[np.asarray(keep, dtype=bool)]
    ok = np.isfinite(rows)
    n = ok.sum(axis=0)
    s = np.sort(np.where(ok, rows, np.inf), axis=0)  # each column's finite values first
    if s.shape[0] == 0:
        s = np.full((1, rows.shape[1]), np.inf)
    q = np.take_along_axis(s, np.stack([_rank_index(p, n) for p in (0.25, 0.5, 0.75)]), axis=0)
    return stats_from_quartiles(q, n, prior)


def stats_from_quartiles(q: np.ndarray, n: np.ndarray, prior: NormPrior):
    """Median and robust scale of each column from its quartiles, blended with the prior.

    Parameters
    ----------
    q : ndarray, shape (3, N_COLUMNS)
        Nearest-rank 25th, 50th and 75th percentiles of each column's finite values.
    n : ndarray of int, shape (N_COLUMNS,)
        Finite values per column.
    prior : NormPrior
        Population statistics.

    Returns
    -------
    med, scale : ndarray, shape (N_COLUMNS,)
        Median and (IQR / 1.349), weighted ``n / (n + BURN_IN_EPOCHS)`` against the prior
        (burn-in; ``scale`` at least a tenth of the prior's, and the median of the columns
        that are not amplitude-invariant the recording's own).
    """
    q25, q50, q75 = q
    have = n > 0
    q50 = np.where(have, q50, prior.median)
    with np.errstate(invalid="ignore"):
        spread = q75 - q25
    run_scale = np.where(have, spread / 1.349, prior.scale)
    w = n / (n + BURN_IN_EPOCHS)
    scale = w * run_scale + (1 - w) * prior.scale
    scale = np.maximum(scale, 0.1 * prior.scale + 1e-6)
    med = q50.copy()
    inv = INV_COLUMNS
    med[inv] = w[inv] * q50[inv] + (1 - w[inv]) * prior.median[inv]
    return med, scale


def deferred_columns(f: EpochFeatures, med: np.ndarray) -> np.ndarray:
    """Recording-relative slow-wave coverage and eye-movement density, shape (n, 4)."""
    out = np.zeros((f.n_epochs, len(DEFERRED_NAMES)))
    ref_rms = 10.0 ** (med[_COL["log_total"]] / 2.0)
    for j, fac in enumerate(_SW_FACTORS):
        cover = np.sum(np.where(f.sw_p2p > fac * ref_rms, f.sw_dur, 0.0), -1) / EPOCH_S
        out[:, j] = np.minimum(cover, 1.0)
    ref_em = 10.0 ** med[_COL["log_em_med"]]
    k = len(_SW_FACTORS)
    for j, fac in enumerate(_EM_FACTORS):
        if np.isfinite(ref_em):
            with np.errstate(invalid="ignore"):
                out[:, k + j] = np.sum(f.em_slopes > fac * ref_em, -1) * (60.0 / EPOCH_S)
        else:
            out[:, k + j] = np.nan
    out[~f.valid] = np.nan
    return out


def _assemble(f: EpochFeatures, med, scale, deferred, prior: NormPrior) -> np.ndarray:
    """Model-input rows (n, N_INPUTS) from raw rows and normalisation statistics."""
    with np.errstate(invalid="ignore"):
        z = np.clip((f.values - med) / scale, -5.0, 5.0)
        raw = np.concatenate([f.values[:, INV_COLUMNS], deferred], axis=1)
        raw = np.clip((raw - prior.raw_mean) / prior.raw_std, -5.0, 5.0)
    ind = np.broadcast_to(f.indicators, (f.n_epochs, f.indicators.size))
    out = np.concatenate([z, raw, ind], axis=1)
    out[~np.isfinite(out)] = 0.0
    return out


#: Recordings shorter than this (epochs, 2 h) are scaled with all their epochs.
SLEEP_PERIOD_MIN_EPOCHS = 240
#: Epochs of wake kept on each side of the estimated sleep period (30 min, as the scored window).
SLEEP_PERIOD_MARGIN = 60
#: Epochs between two online re-estimates of the sleep period (:class:`RunningNormalizer`).
PERIOD_UPDATE_EPOCHS = 10
_ACTIVITY_SMOOTH = 21  # epochs (10.5 min) of the running median of the activity
_ACTIVITY_COLUMNS = ("log_hi", "log_eog_low", "log_emg_hi")  # muscle, eyes, chin tone


def sleep_period(f: EpochFeatures) -> slice:
    """Estimate the in-bed sleep period of a long recording from its muscle and eye activity.

    A recording of a day and a night (Sleep-EDF's last 22 h, 16 of them awake) has its
    per-recording statistics dominated by wake; the statistics of the night itself are what the
    models expect. Waking people have fast scalp-muscle activity, eye movements and chin tone
    that fall for as long as they sleep (AASM). The activity of an epoch is the mean, over the
    signals present (30-45 Hz EEG power, 0.3-2 Hz EOG power, 20-45 Hz chin EMG power; 16-30 Hz
    EEG power when none of these is available), of its log power relative to the recording's
    median; after a running median over 10.5 min, an epoch is quiet below the midpoint of the
    5th and 95th percentiles. The period runs from the first to the last quiet epoch, widened
    by :data:`SLEEP_PERIOD_MARGIN` epochs on each side.

    Parameters
    ----------
    f : EpochFeatures
        Raw features of the whole recording.

    Returns
    -------
    slice
        Epochs of the period; the whole recording when it is shorter than
        :data:`SLEEP_PERIOD_MIN_EPOCHS` or has too few valid epochs.
    """
    whole = slice(0, f.n_epochs)
    if f.n_epochs < SLEEP_PERIOD_MIN_EPOCHS or f.valid.sum() < SLEEP_PERIOD_MIN_EPOCHS // 2:
        return whole
    from scipy.ndimage import median_filter

    good = f.values[f.valid]
    cols = [_COL[c] for c in _ACTIVITY_COLUMNS if np.isfinite(good[:, _COL[c]]).mean() > 0.5]
    cols = cols or [_COL["log_beta"]]
    v = f.values[:, cols]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no activity estimate
        act = np.nanmean(v - np.nanmedian(v[f.valid], axis=0), axis=1)
    ok = f.valid & np.isfinite(act)
    if ok.sum() < SLEEP_PERIOD_MIN_EPOCHS // 2:
        return whole
    act = median_filter(np.where(ok, act, np.median(act[ok])), _ACTIVITY_SMOOTH, mode="nearest")
    lo, hi = np.percentile(act, [5.0, 95.0])
    quiet = np.flatnonzero(act < (lo + hi) / 2.0)
    if quiet.size == 0:
        return whole
    return slice(
        max(int(quiet[0]) - SLEEP_PERIOD_MARGIN, 0),
        min(int(quiet[-1]) + 1 + SLEEP_PERIOD_MARGIN, f.n_epochs),
    )


def normalize_offline(f: EpochFeatures, prior: NormPrior) -> np.ndarray:
    """Scale features with the statistics of the recording's sleep period (offline mode).

    The statistics come from the epochs of :func:`sleep_period` (the whole recording unless it
    holds long stretches of daytime activity) and scale every epoch.

    Parameters
    ----------
    f : EpochFeatures
        Raw features of the whole recording.
    prior : NormPrior
        Population statistics from the model.

    Returns
    -------
    ndarray, shape (n_epochs, N_INPUTS)
        Model inputs (columns :data:`INPUT_NAMES`); rows of invalid epochs are meaningless.
    """
    period = f.take(sleep_period(f))
    med, scale = robust_stats(period.values[period.valid], prior)
    return _assemble(f, med, scale, deferred_columns(f, med), prior)


class GrowingRows:
    """Rows appended one at a time to a preallocated array that grows by whole blocks.

    A compact history: one array of ``dtype`` instead of a list of small arrays or tuples
    (about 100 bytes of Python objects each). The unused tail is at most ``block`` rows; the
    shape of a row is that of the first row appended.

    Parameters
    ----------
    dtype : numpy dtype
        Element type of the rows (a structured dtype stores records).
    block : int
        Rows added at each growth (at least 1).
    """

    def __init__(self, dtype, block: int):
        if int(block) < 1:
            raise ValueError(f"block must be at least 1 row, got {block}.")
        self._block = int(block)
        self._a = np.empty(0, dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, row) -> None:
        """Add one row (anything assignable to a row of ``dtype``; same shape every time)."""
        if self._n == self._a.shape[0]:
            shape = self._a.shape[1:] if self._n else np.asarray(row, self._a.dtype).shape
            grown = np.empty((self._n + self._block, *shape), self._a.dtype)
            if self._n:
                grown[: self._n] = self._a
            self._a = grown
        self._a[self._n] = row
        self._n += 1

    def clear(self) -> None:
        """Forget every row (the storage is released)."""
        self._a = np.empty(0, self._a.dtype)
        self._n = 0

    @property
    def values(self) -> np.ndarray:
        """The rows so far, shape ``(len(self), *row_shape)`` (a view: do not keep it)."""
        return self._a[: self._n]


class RunningNormalizer:
    """Causal per-recording robust scaling: each epoch is scaled with the epochs up to it.

    Keeps the past raw rows (float64) and, per column, the indices of the rows sorted by value
    (uint16, uint32 past 65,536 epochs), both grown in blocks of 10 min: ``N_COLUMNS * 10``
    bytes an epoch, about 43 KiB an hour. An epoch is inserted by a binary search and a shift
    per column (:func:`~staging.stager._kernels.insert_ranked`); its quartiles are read at their
    ranks. For the first epochs the statistics are blended with the population prior (weight
    ``n / (n + BURN_IN_EPOCHS)`` on the recording's own statistics). From
    :data:`SLEEP_PERIOD_MIN_EPOCHS` epochs on, every :data:`PERIOD_UPDATE_EPOCHS` epochs, the
    sleep period of the epochs so far is estimated (:func:`sleep_period`); once it starts after
    hours of daytime activity, the statistics come from the period's epochs (the night so far
    and its margin) instead of the whole past.

    Parameters
    ----------
    prior : NormPrior
        Population statistics from the model.
    """

    def __init__(self, prior: NormPrior):
        self.prior = prior
        self._block = int(600 / EPOCH_S)  # epochs of 10 min
        self.reset()

    def reset(self) -> None:
        """Forget the recording's history."""
        self._values = GrowingRows(np.float64, self._block)  # every raw row
        self._valid = GrowingRows(bool, self._block)
        self._order = np.zeros((N_COLUMNS, 0), dtype=np.uint16)  # rows by value, per column
        self._counts = np.zeros(N_COLUMNS, dtype=np.int64)
        self._period_stats = None  # statistics of the sleep period so far, or None

    def _update_period(self) -> None:
        """Re-estimate the sleep period of the epochs so far (:func:`sleep_period`).

        Once the history holds daytime activity before a quiet stretch (the period starts after
        the first epoch), the period's statistics replace those of all past epochs.
        """
        values, valid = self._values.values, self._valid.values
        empty = np.zeros((values.shape[0], 0))
        hist = EpochFeatures(values, valid, empty, empty, empty, np.zeros(len(INDICATOR_NAMES)))
        p = sleep_period(hist)
        if p.start == 0:
            self._period_stats = None
            return
        self._period_stats = robust_stats(values[p], self.prior, valid[p])

    def _insert(self, row: int) -> None:
        """Put row ``row`` of the history into each column's order.

        The order grows by a block, and its row indices widen to uint32 past 65,535.
        """
        order = self._order
        wide = row >= 2**16
        if int(self._counts.max()) >= order.shape[1] or (wide and order.dtype == np.uint16):
            grown = np.zeros(
                (N_COLUMNS, order.shape[1] + self._block), np.uint32 if wide else np.uint16
            )
            grown[:, : order.shape[1]] = order
            self._order = grown
        insert_ranked(self._order, self._counts, self._values.values, row)

    def push(self, f: EpochFeatures) -> np.ndarray:
        """Add epochs in time order and return their model inputs.

        Parameters
        ----------
        f : EpochFeatures
            Raw features of the next epoch(s).

        Returns
        -------
        ndarray, shape (f.n_epochs, N_INPUTS)
            Each row scaled with the statistics of the valid epochs up to and including it.
        """
        out = np.zeros((f.n_epochs, N_INPUTS))
        for i in range(f.n_epochs):
            self._values.append(f.values[i])
            self._valid.append(bool(f.valid[i]))
            n = len(self._values)
            if f.valid[i]:
                self._insert(n - 1)
            if n >= SLEEP_PERIOD_MIN_EPOCHS and n % PERIOD_UPDATE_EPOCHS == 0:
                self._update_period()
            if self._period_stats is not None:
                med, scale = self._period_stats
            else:
                q = ranked_quartiles(self._order, self._counts, self._values.values)
                med, scale = stats_from_quartiles(q, self._counts, self.prior)
            fi = f.take(slice(i, i + 1))
            out[i] = _assemble(fi, med, scale, deferred_columns(fi, med), self.prior)[0]
        return out


def normalize_online(f: EpochFeatures, prior: NormPrior) -> np.ndarray:
    """Scale features causally, as :class:`RunningNormalizer` does live (online mode).

    Parameters
    ----------
    f : EpochFeatures
        Raw features of consecutive epochs from the recording start.
    prior : NormPrior
        Population statistics from the model.

    Returns
    -------
    ndarray, shape (n_epochs, N_INPUTS)
        Model inputs, row ``k`` computed from epochs ``0..k`` only.
    """
    return RunningNormalizer(prior).push(f)
