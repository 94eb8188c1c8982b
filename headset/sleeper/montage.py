"""Channels the simulated sleeper can produce, and the default headset montage (DESIGN 3)."""

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
}

#: The default headset montage (all channels above, in this order). exG channels are in
#: microvolts; the accelerometer ``ACC X/Y/Z`` in milli-g, sampled slower and held.
DEFAULT_MONTAGE: tuple[str, ...] = tuple(CHANNELS)

#: Row of each channel in the sleeper's internal (full) array.
ROW: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}

#: Rows of the exG channels (everything but the accelerometer).
EXG_ROWS: tuple[int, ...] = tuple(i for i, t in enumerate(CHANNELS.values()) if t != "misc")
ACC_ROWS: tuple[int, ...] = tuple(i for i, t in enumerate(CHANNELS.values()) if t == "misc")


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
