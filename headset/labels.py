"""The type of a signal from its label (EDF labels, channel names of foreign recordings).

One parser serves the EDF reader (:mod:`headset.replay`) and the staging channel choice
(:mod:`staging.channels`); it needs nothing but :mod:`re`, so importing it costs nothing.
"""

from __future__ import annotations

import re

__all__ = ["infer_ch_type"]

_EOG_WORDS = {"EOG", "LOC", "ROC", "E1", "E2", "HEOG", "VEOG", "EOGL", "EOGR", "EYE"}
_EMG_WORDS = {"EMG", "CHIN", "SUBMENTAL", "LEG", "LAT", "RAT", "TIB", "MENTALIS"}
_ECG_WORDS = {"ECG", "EKG"}
_MISC_WORDS = (
    "ACC",
    "RESP",
    "FLOW",
    "THOR",
    "ABD",
    "SPO2",
    "SAO2",
    "PLETH",
    "PULSE",
    "POS",
    "TEMP",
    "LIGHT",
    "SNORE",
    "PRES",
    "MARKER",
    "EVENT",
    "CO2",
    "OX",
    "HR",
    "SUM",
    "BATT",
)
_ELECTRODE_RE = re.compile(r"^(FP|AF|F|FC|FT|C|CP|T|TP|P|PO|O|A|M|I|CB)(\d{1,2}|Z)$")


def infer_ch_type(label: str) -> str:
    """Guess the MNE channel type of a signal from its label.

    Parameters
    ----------
    label : str
        The EDF signal label, e.g. ``"EEG C4-M1"``, ``"EOG E1-M2"``, ``"Resp oro-nasal"``.

    Returns
    -------
    str
        ``eeg``, ``eog``, ``emg``, ``ecg`` or ``misc``.
    """
    up = label.upper().strip()
    for prefix, kind in (("EEG", "eeg"), ("EOG", "eog"), ("EMG", "emg"), ("ECG", "ecg")):
        if up.startswith(prefix):
            return kind
    if up.startswith("EKG"):
        return "ecg"
    tokens = [t for t in re.split(r"[^A-Z0-9]+", up) if t]
    if any(t in _ECG_WORDS for t in tokens):
        return "ecg"
    if any(t in _EOG_WORDS for t in tokens):
        return "eog"
    if any(t in _EMG_WORDS or t.startswith("CHIN") for t in tokens):
        return "emg"
    if any(t.startswith(w) for t in tokens for w in _MISC_WORDS):
        return "misc"
    if tokens and _ELECTRODE_RE.match(tokens[0]):
        return "eeg"
    return "misc"
