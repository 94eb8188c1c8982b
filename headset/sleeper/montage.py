"""Channels the simulated sleeper can produce, and the default headset montage (DESIGN 3).

Besides the headset's own three EEG derivations, the sleeper renders the derivations of common
PSG montages (Sleep-EDF's ``Fpz-Cz`` and ``Pz-Oz``, AASM's left-side ``F3-M2``, ``C3-M2``,
``O1-M2``, and vertex-referenced ``Fz-Cz``, ``Cz-M1``), so that a stager can be trained across
montages; their physiology is in :mod:`.topography`.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Every channel the sleeper generates, in generation order: name -> MNE channel type.
CHANNELS: dict[str, str] = {
    "EEG F4-M1": "eeg",
    "EEG C4-M1": "eeg",
    "EEG O2-M1": "eeg",
    "EOG E1-M2": "eog",
    "EOG E2-M2": "eog",
    "EMG chin": "emg",
    "ECG": "ecg",
    "ACC X": "misc",
    "ACC Y": "misc",
    "ACC Z": "misc",
    "EEG Fpz-Cz": "eeg",
    "EEG Pz-Oz": "eeg",
    "EEG F3-M2": "eeg",
    "EEG C3-M2": "eeg",
    "EEG O1-M2": "eeg",
    "EEG Fz-Cz": "eeg",
    "EEG Cz-M1": "eeg",
}

#: The default headset montage (the first ten channels above, in this order). exG channels are
#: in microvolts; the accelerometer ``ACC X/Y/Z`` in milli-g, sampled slower and held.
DEFAULT_MONTAGE: tuple[str, ...] = tuple(CHANNELS)[:10]

#: Row of each channel in the sleeper's internal (full) array.
ROW: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}

#: Rows of the exG channels (everything but the accelerometer).
EXG_ROWS: tuple[int, ...] = tuple(i for i, t in enumerate(CHANNELS.values()) if t != "misc")
ACC_ROWS: tuple[int, ...] = tuple(i for i, t in enumerate(CHANNELS.values()) if t == "misc")
#: Rows of the EEG derivations.
EEG_ROWS: tuple[int, ...] = tuple(i for i, t in enumerate(CHANNELS.values()) if t == "eeg")

#: Hidden internal rows after the channels: the horizontal and vertical ocular sources (the
#: corneo-retinal dipole's movements and the blinks) that the EOG generator writes and the
#: sleeper's mixing spreads to the EOG and (frontal) EEG channels.
OCULAR_H, OCULAR_V = len(CHANNELS), len(CHANNELS) + 1
#: Rows of the internal signal buffer (channels plus hidden sources).
N_INTERNAL = len(CHANNELS) + 2


def resolve_montage(montage: Sequence[str] | None) -> tuple[str, ...]:
    """Validate a montage and return it as a tuple of channel names.

    Parameters
    ----------
    montage : sequence of str or None
        Channel names, a subset (in any order) of ``CHANNELS``; None gives ``DEFAULT_MONTAGE``.

    Returns
    -------
    tuple of str
        The channel names.

    Raises
    ------
    ValueError
        For an unknown, duplicated or empty list of channels.
    TypeError
        If ``montage`` is a plain string or not a sequence of strings.
    """
    if montage is None:
        return DEFAULT_MONTAGE
    if isinstance(montage, str) or not isinstance(montage, Sequence):
        raise TypeError(
            f"montage must be a sequence of channel names, got {type(montage).__name__}."
        )
    names = tuple(montage)
    if not names:
        raise ValueError("montage must name at least one channel.")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"montage entries must be str, got {type(name).__name__}.")
        if name not in CHANNELS:
            known = ", ".join(repr(c) for c in CHANNELS)
            raise ValueError(f"Unknown montage channel {name!r}; known channels: {known}.")
    if len(set(names)) != len(names):
        raise ValueError(f"montage lists a channel twice: {names}.")
    return names
