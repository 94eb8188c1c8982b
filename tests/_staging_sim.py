"""Shared simulated recordings for the staging tests (cached per test process)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from headset.stages import N1, N2, N3, R, W

#: A 60-min forced hypnogram that visits every stage (120 epochs).
FORCED = np.array(
    [W] * 10
    + [N1] * 4
    + [N2] * 16
    + [N3] * 20
    + [N2] * 10
    + [R] * 16
    + [N1] * 2
    + [N2] * 12
    + [N3] * 8
    + [N2] * 6
    + [R] * 10
    + [W] * 6,
    dtype=np.int8,
)
MONTAGE = ("EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EOG E1-M2", "EOG E2-M2", "EMG chin")


@lru_cache(maxsize=8)
def simulated(seed: int = 90001, sfreq: float = 128.0, n_epochs: int = 120):
    """Return (data µV (n_ch, n), sfreq, ch_names, ch_types, true stages) of a forced night."""
    from headset.sleeper import Sleeper

    s = Sleeper(
        profile="healthy",
        seed=seed,
        sfreq=sfreq,
        montage=MONTAGE,
        hypnogram=FORCED[:n_epochs],
    )
    chunk = s.read(s.n_samples)
    data = chunk.data.copy()
    data.setflags(write=False)
    return data, float(chunk.sfreq), chunk.ch_names, chunk.ch_types, FORCED[:n_epochs].copy()


def to_raw(data, sfreq, ch_names, ch_types, scale: float = 1.0):
    """An mne RawArray (volts) of µV data."""
    import mne

    info = mne.create_info(list(ch_names), sfreq, list(ch_types))
    return mne.io.RawArray(np.asarray(data) * scale * 1e-6, info, verbose="error")


def kappa(y_true, y_pred) -> float:
    """Cohen's kappa over scored epochs."""
    from staging.stager.evaluate import cohen_kappa

    return cohen_kappa(np.asarray(y_true), np.asarray(y_pred))
