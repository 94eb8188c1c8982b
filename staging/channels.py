"""Choose the EEG, EOG and EMG channels to stage from, by name (and MNE type).

Names are compared case-insensitively after removing a type prefix (``EEG``, ``EOG``, ``EMG``)
and splitting off a reference (``C4-M1``, ``C4:A1``, ``C4/A1``, ``C4`` all mean electrode C4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from headset.labels import infer_ch_type

from .errors import StagingError

#: EEG electrodes in order of preference (central first, as AASM recommends).
EEG_PREFERENCE = (
    "C4",
    "C3",
    "CZ",
    "F4",
    "F3",
    "FZ",
    "FPZ",
    "FP2",
    "FP1",
    "FCZ",
    "CPZ",
    "C2",
    "C1",
    "C6",
    "C5",
    "F2",
    "F1",
    "PZ",
    "P4",
    "P3",
    "O2",
    "O1",
    "OZ",
)
#: Left / right anterior tibialis: leg EMG labels in many PSG montages.
_LIMB_TOKENS = {"LAT", "RAT"}
_EOG_LEFT = ("E1", "LOC", "EOG1", "EOGL", "LEOG", "L", "LEFT", "EOG-L", "EOG_L")
_EOG_RIGHT = ("E2", "ROC", "EOG2", "EOGR", "REOG", "R", "RIGHT", "EOG-R", "EOG_R")
_CENTRAL = re.compile(r"^C([1-9]|Z)$")  # C3, C4, Cz, ... (10-20/10-10 names)
_OCCIPITAL = re.compile(r"^O([1-9]|Z)$")
_TYPE_PREFIX = re.compile(r"^(EEG|EOG|EMG|ECG|EKG)[\s_:]+", re.IGNORECASE)
_NOT_EEG = re.compile(
    r"(EOG|EMG|ECG|EKG|CHIN|RESP|SAO2|SPO2|PLETH|THOR|ABD|FLOW|SNORE|LEG|TEMP|PULSE|HR|"
    r"POSITION|PRESS|CANNULA|EVENT|STATUS|MARKER|ACC|LIGHT|OX|BODY)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ChannelSelection:
    """The channels chosen for staging.

    Attributes
    ----------
    eeg : int
        Index of the EEG channel.
    eog : tuple of int
        Zero, one or two EOG channels (left first).
    emg : int or None
        Index of the chin EMG channel.
    names : tuple of str
        All channel names of the source.
    emg_ref : int or None
        Second chin electrode: the EMG used is ``emg - emg_ref`` (bipolar), which removes the
        EEG and ECG that two referential chin channels share.
    """

    eeg: int
    eog: tuple[int, ...]
    emg: int | None
    names: tuple[str, ...]
    emg_ref: int | None = None

    @property
    def indices(self) -> list[int]:
        """Return the EEG, EOG..., EMG (and EMG reference) indices in this order."""
        out = [self.eeg, *self.eog]
        if self.emg is not None:
            out.append(self.emg)
            if self.emg_ref is not None:
                out.append(self.emg_ref)
        return out

    def describe(self) -> dict[str, str | list[str] | None]:
        """Return the channel names by role (for reports and metadata)."""
        emg = None if self.emg is None else self.names[self.emg]
        if emg is not None and self.emg_ref is not None:
            emg = f"{emg} - {self.names[self.emg_ref]}"
        return {"eeg": self.names[self.eeg], "eog": [self.names[i] for i in self.eog], "emg": emg}


def split_name(name: str) -> tuple[str, str, str]:
    """Split a channel name into (type prefix, electrode, reference), upper case.

    Parameters
    ----------
    name : str
        E.g. ``"EEG C4-M1"``, ``"C3:A2"``, ``"EOG E1-M2"``, ``"EMG chin"``.

    Returns
    -------
    tuple of str
        ``("EEG", "C4", "M1")``; missing parts are ``""``.
    """
    text = name.strip()
    m = _TYPE_PREFIX.match(text)
    prefix = m.group(1).upper() if m else ""
    rest = text[m.end() :] if m else text
    parts = re.split(r"\s*[-:/]\s*", rest.strip().upper(), maxsplit=1)
    electrode = parts[0].replace(" ", "")
    ref = parts[1].replace(" ", "") if len(parts) > 1 else ""
    return prefix, electrode, ref


def _find(name: str, names: tuple[str, ...], role: str) -> int:
    want = name.strip().lower()
    for i, n in enumerate(names):
        if n.strip().lower() == want:
            return i
    # "C4-M1" matches "EEG C4-M1"
    wp = split_name(name)[1:]
    hits = [i for i, n in enumerate(names) if split_name(n)[1:] == wp]
    if len(hits) == 1:
        return hits[0]
    raise StagingError(
        f"unknown {role} channel {name!r}; available channels: {', '.join(names) or 'none'}"
    )


def _kind(name: str, ch_type: str | None) -> str:
    """Guess the role of a channel: "eeg", "eog", "emg" or "other".

    Without a type, the type is read from the name as for an EDF label
    (:func:`headset.labels.infer_ch_type`); the rules below then refine it by name.
    """
    if ch_type is None:
        ch_type = infer_ch_type(name)
    prefix, electrode, _ = split_name(name)
    upper = name.upper()
    if prefix == "EOG" or (ch_type == "eog"):
        return "eog"
    if prefix == "EMG" or ch_type == "emg" or "CHIN" in upper or "SUBMENT" in upper:
        return "emg"
    if prefix in ("ECG", "EKG") or ch_type in ("ecg", "misc", "stim", "resp", "bio", "syst"):
        return "other"
    if electrode in _EOG_LEFT[:4] + _EOG_RIGHT[:4] or "EOG" in upper:
        return "eog"
    if prefix == "EEG":
        return "eeg" if not _NOT_EEG.search(electrode) else "other"
    if _NOT_EEG.search(upper):
        return "other"
    return "eeg" if ch_type in (None, "eeg") else "other"


def eeg_candidates(names: tuple[str, ...], ch_types: tuple[str, ...] | None = None) -> list[int]:
    """Return the indices of plausible EEG channels, best first (C4, C3, Cz, F4, ...)."""
    types = ch_types or (None,) * len(names)
    ranked = []
    for i, (n, t) in enumerate(zip(names, types)):
        if _kind(n, t) != "eeg":
            continue
        _, electrode, ref = split_name(n)
        rank = EEG_PREFERENCE.index(electrode) if electrode in EEG_PREFERENCE else 100
        # prefer a mastoid/ear reference, then a named reference, then none
        ref_rank = 0 if ref[:1] in ("M", "A") else (1 if ref else 2)
        ranked.append((rank, ref_rank, i))
    return [i for *_, i in sorted(ranked)]


def eog_candidates(names: tuple[str, ...], ch_types: tuple[str, ...] | None = None) -> list[int]:
    """Return the indices of EOG channels: left first, then right, then others."""
    types = ch_types or (None,) * len(names)
    ranked = []
    for i, (n, t) in enumerate(zip(names, types)):
        if _kind(n, t) != "eog":
            continue
        _, electrode, _ = split_name(n)
        side = 0 if electrode in _EOG_LEFT else (1 if electrode in _EOG_RIGHT else 2)
        ranked.append((side, i))
    return [i for _, i in sorted(ranked)]


def emg_candidates(names: tuple[str, ...], ch_types: tuple[str, ...] | None = None) -> list[int]:
    """Return the indices of chin EMG channels, chin/submental named ones first."""
    types = ch_types or (None,) * len(names)
    ranked = []
    for i, (n, t) in enumerate(zip(names, types)):
        if _kind(n, t) != "emg":
            continue
        upper = n.upper()
        if any(w in upper for w in ("LEG", "TIB", "ARM")) or _LIMB_TOKENS & set(
            re.split(r"[^A-Z0-9]+", upper)
        ):
            continue  # limb EMG (legs: periodic limb movements), never the chin
        ranked.append((0 if ("CHIN" in upper or "SUBMENT" in upper) else 1, i))
    return [i for _, i in sorted(ranked)]


def pick_channels(names, ch_types, kind: str) -> list[int]:
    """Return the channels of one MNE type for the event detectors, best first.

    Parameters
    ----------
    names, ch_types : sequence of str
        Channel names and MNE types.
    kind : {"eeg", "emg", "eog", "ecg"}
        The type wanted.

    Returns
    -------
    list of int
        For EEG: up to two channels, the best central (C3, C4, Cz...) and the best occipital
        (O1, O2, Oz) electrode when present (an arousal's alpha shows best occipitally), ranked as
        :func:`eeg_candidates` ranks them; for other types: every channel of that type.
    """
    names = tuple(str(n) for n in names)
    types = tuple(ch_types)
    typed = [i for i, t in enumerate(types) if t == kind]
    if kind != "eeg":
        return typed
    ranked = [i for i in eeg_candidates(names, types) if i in typed]
    ranked += [i for i in typed if i not in ranked]
    electrode = {i: split_name(names[i])[1] for i in ranked}
    out = []
    for site in _CENTRAL, _OCCIPITAL:
        hit = next((i for i in ranked if site.match(electrode[i])), None)
        if hit is not None:
            out.append(hit)
    out += [i for i in ranked if i not in out][: max(0, 2 - len(out))]
    return out


def select_channels(
    names,
    ch_types=None,
    eeg: str | None = None,
    eog: str | list[str] | None = None,
    emg: str | None = None,
    exclude: frozenset[int] = frozenset(),
) -> ChannelSelection:
    """Pick the channels to stage from.

    Parameters
    ----------
    names : sequence of str
        Channel names of the source.
    ch_types : sequence of str, optional
        MNE channel types (help when names are ambiguous).
    eeg : str, optional
        EEG channel name; None chooses automatically (C4, C3, Cz, F4, F3, Fz, Fpz, ...).
    eog : str or list of str, optional
        One or two EOG channel names (comma-separated string or list); ``"none"`` uses no EOG;
        None chooses automatically.
    emg : str, optional
        Chin EMG channel name, or two chin electrodes ``"Chin1,Chin2"`` (their difference is
        used); ``"none"`` uses no EMG; None chooses automatically (two referential chin channels
        such as ``EMG1``/``EMG2`` become one bipolar derivation).
    exclude : frozenset of int
        Channel indices not to choose automatically (found flat).

    Returns
    -------
    ChannelSelection
    """
    names = tuple(str(n) for n in names)
    types = tuple(ch_types) if ch_types is not None else None
    if eeg is not None:
        i_eeg = _find(eeg, names, "EEG")
    else:
        cands = [i for i in eeg_candidates(names, types) if i not in exclude]
        if not cands:
            raise StagingError(
                "no usable EEG channel (looked for C4, C3, Cz, F4, F3, Fz, Fpz, ... with or "
                f"without a reference); channels: {', '.join(names) or 'none'}"
            )
        i_eeg = cands[0]
    if isinstance(eog, str) and eog.strip().lower() == "none":
        i_eog: tuple[int, ...] = ()
    elif eog is not None:
        wanted = [e for e in (eog.split(",") if isinstance(eog, str) else eog) if e.strip()]
        if not 1 <= len(wanted) <= 2:
            raise StagingError(f"give one or two EOG channels, got {len(wanted)}")
        i_eog = tuple(_find(e, names, "EOG") for e in wanted)
    else:
        i_eog = tuple(i for i in eog_candidates(names, types) if i not in exclude)[:2]
    i_ref = None
    if isinstance(emg, str) and emg.strip().lower() == "none":
        i_emg = None
    elif emg is not None:
        wanted = [e for e in emg.split(",") if e.strip()]
        if not 1 <= len(wanted) <= 2:
            raise StagingError(f"give one EMG channel or two chin electrodes, got {emg!r}")
        i_emg = _find(wanted[0], names, "EMG")
        i_ref = _find(wanted[1], names, "EMG") if len(wanted) == 2 else None
    else:
        c = [i for i in emg_candidates(names, types) if i not in exclude]
        i_emg = c[0] if c else None
        if i_emg is not None:
            i_ref = _chin_partner(i_emg, c[1:], names)
    return ChannelSelection(i_eeg, i_eog, i_emg, names, i_ref)


def _chin_partner(first: int, others: list[int], names: tuple[str, ...]) -> int | None:
    """Find a second chin electrode on the same reference (``Chin1``/``Chin2``)."""
    _, e0, r0 = split_name(names[first])
    base0 = e0.rstrip("0123456789")
    for i in others:
        _, e, r = split_name(names[i])
        if r == r0 and e != e0 and e.rstrip("0123456789") == base0 and base0 != e0:
            return i
    return None
