"""The headset's standard filter chain, one band-pass (+ mains notches) per channel type.

| type | pass band (Hz) | why |
|---|---|---|
| ``eeg`` | 0.3 - 35 | AASM scoring band for EEG |
| ``eog`` | 0.3 - 10 | slow and rapid eye movements |
| ``emg`` | 10 - 100 | chin tone; upper edge clamped to 0.45 x sfreq |
| ``ecg`` | 0.5 - 40 | QRS and heart rate |
| other (``misc``, accelerometer, ...) | passed through unchanged | |

Each band-pass is a Butterworth of order 4 (scipy ``butter(4, band, "bandpass")``: 4 sections),
followed by an ``iirnotch`` (Q = 30) at the mains frequency and at every harmonic that falls
in or near the pass band (up to 1.25 x its upper edge) and below 0.45 x sfreq (EMG at 256 Hz:
50 and 100 Hz). All channels run in one numba call (the shorter
cascades are padded with identity sections), with the state carried between chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .docs import fill_doc
from .iir import SOSFilter, sosfiltfilt
from .validate import check_ch_types, check_int, check_option, check_positive

__all__ = ["DEFAULT_BANDS", "FilterBank", "design_chain"]

#: Pass band (Hz) per channel type; ``None`` for an edge means no high-/low-pass.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "eeg": (0.3, 35.0),
    "eog": (0.3, 10.0),
    "emg": (10.0, 100.0),
    "ecg": (0.5, 40.0),
}

_IDENTITY = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
_MAX_FRACTION = 0.45  # highest usable edge, as a fraction of sfreq (0.9 x Nyquist)


@fill_doc
def design_chain(band, sfreq, mains=50.0, *, order=4, notch_q=30.0) -> np.ndarray:
    """Design the band-pass + notch cascade of one channel type.

    Parameters
    ----------
    band : tuple of float or None
        ``(low, high)`` pass band in Hz; None gives an empty cascade (pass-through).
    %(sfreq)s
    %(mains)s
    order : int
        Butterworth order (``order`` sections for a band-pass).
    notch_q : float
        Quality factor of the notches.

    Returns
    -------
    ndarray, shape (n_sections, 6)
        Second-order sections (possibly 0 rows).
    """
    from scipy.signal import butter, iirnotch, tf2sos  # lazy: keeps `import dsp` light

    sfreq = check_positive("sfreq", sfreq)
    check_option("mains", mains, (50.0, 60.0, None))
    if band is None:
        return np.empty((0, 6))
    lo, hi = (float(v) for v in band)
    top = _MAX_FRACTION * sfreq
    hi = min(hi, top)
    if not 0.0 < lo < hi:
        raise ValueError(
            f"band {band} Hz is not usable at sfreq={sfreq:g} Hz (need 0 < low < high, and "
            f"high is clamped to {top:g} Hz)."
        )
    sections = [butter(order, [lo, hi], btype="bandpass", fs=sfreq, output="sos")]
    if mains is not None:
        k = 1
        while k * mains < top:
            f = k * mains
            if k == 1 or lo < f <= 1.25 * hi:
                sections.append(tf2sos(*iirnotch(f, notch_q, fs=sfreq)))
            k += 1
    return np.vstack(sections)


@fill_doc
class FilterBank(SOSFilter):
    """Streaming filter bank applying the standard chain of each channel's type.

    ``y = bank(data)`` filters a ``(n_channels, n)`` chunk in µV in one numba call and keeps
    the state for the next chunk. It is an :class:`~dsp.iir.SOSFilter` with one cascade per
    channel, so it shares its behaviour: steady-state start at each channel's first finite
    sample, non-finite samples held (counted in :attr:`held`), ``reset()``, ``out=``, and the
    same output whatever the chunking, bit for bit. :attr:`sos` has shape ``(n_channels,
    n_sections, 6)`` (identity-padded).

    Parameters
    ----------
    %(ch_types)s
        A type without a chain (``misc``, ...) is passed through unchanged.
    %(sfreq)s
    %(mains)s
    bands : mapping of str to (float, float), optional
        Overrides of :data:`DEFAULT_BANDS` per type (Hz).
    order : int
        Butterworth order of the band-passes.
    notch_q : float
        Quality factor of the notches.
    """

    def __init__(
        self,
        ch_types: Sequence[str],
        sfreq: float,
        mains: float | None = 50.0,
        *,
        bands: Mapping[str, tuple[float, float]] | None = None,
        order: int = 4,
        notch_q: float = 30.0,
    ):
        self.ch_types = check_ch_types(ch_types)
        self.sfreq = check_positive("sfreq", sfreq)
        check_option("mains", mains, (50.0, 60.0, None))
        self.mains = None if mains is None else float(mains)
        order = check_int("order", order, low=1, high=10)
        self.bands = dict(DEFAULT_BANDS)
        if bands is not None:
            for key, val in bands.items():
                self.bands[str(key).lower()] = None if val is None else tuple(val)
        chains: dict[str, np.ndarray] = {}
        for t in sorted(set(self.ch_types)):
            band = self.bands.get(t.lower())
            chains[t] = design_chain(band, self.sfreq, self.mains, order=order, notch_q=notch_q)
        self.chains = chains
        ns = max(1, max(c.shape[0] for c in chains.values()))
        per = np.tile(_IDENTITY, (len(self.ch_types), ns, 1))
        for i, t in enumerate(self.ch_types):
            c = chains[t]
            per[i, : c.shape[0]] = c
        super().__init__(per, len(self.ch_types))

    def filtfilt(self, data) -> np.ndarray:
        """Apply the same chains offline with zero phase (forward-backward).

        Parameters
        ----------
        data : array_like, shape (n_channels, n_samples)
            A whole recording in µV (longer than the default pad length, ~45 samples).

        Returns
        -------
        ndarray of float64, shape (n_channels, n_samples)
            Filtered data; pass-through channels are copied unchanged.
        """
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[0] != len(self.ch_types):
            raise ValueError(
                f"data must have shape ({len(self.ch_types)}, n_samples), got {data.shape}."
            )
        out = np.array(data, dtype=np.float64)
        for t, sos in self.chains.items():
            rows = [i for i, ct in enumerate(self.ch_types) if ct == t]
            if sos.shape[0]:
                out[rows] = sosfiltfilt(sos, data[rows])
        return out

    def __repr__(self) -> str:
        kinds = ", ".join(f"{t}: {c.shape[0]} sections" for t, c in self.chains.items())
        return f"<FilterBank | {len(self.ch_types)} channels at {self.sfreq:g} Hz ({kinds})>"
