"""Score a whole recording (a file or an ``mne.io.Raw``) into a hypnogram.

:func:`score` is the Python API behind ``dreamnet score``: it picks the channels by name,
reads them in blocks (recordings of any length, 50-1000+ Hz), computes the epoch features and
stages them with the offline model (or, with ``mode="online"``, reproduces what the live stager
would have said at the end of each epoch).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsp.validate import check_option
from headset.edf.units import check_units
from headset.stages import EPOCH_S, STAGE_NAMES, UNSCORED, stage_name

from ..channels import ChannelSelection, select_channels
from ..errors import StagingError
from .features import MIN_SFREQ, EpochFeatures, continuous_features, epoch_length
from .model import StagingModel, resolve_model
from .offline import stage_epochs

#: Columns of the hypnogram CSV (DESIGN section 3).
CSV_COLUMNS = ("epoch", "onset_s", "stage", "confidence", "p_W", "p_N1", "p_N2", "p_N3", "p_R")
_BLOCK_EPOCHS = 240  # epochs read at once at <= 256 Hz (2 h), fewer above: bounds memory


class StagingWarning(UserWarning):
    """Scoring went ahead but part of the recording could not be staged."""


@dataclass
class Hypnogram:
    """Staging result of one recording.

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        0-4 (W, N1, N2, N3, R) or -1 (``?``).
    probs : ndarray, shape (n_epochs, 5)
        Probabilities of W, N1, N2, N3, R.
    confidence : ndarray, shape (n_epochs,)
        Probability of the chosen stage (0 for ``?``).
    onset_s : ndarray, shape (n_epochs,)
        Start of each epoch in seconds from the recording start.
    mode : str
        ``"offline"`` or ``"online"``.
    channels : dict
        Channel names used by role (``eeg``, ``eog``, ``emg``).
    sfreq : float
        Sampling rate of the source (Hz).
    source : str
        File name or ``"<Raw>"``.
    warnings : list of str
        Problems met while scoring (unscored epochs, out of distribution, ...).
    ignored : list of str
        Channels of a kind the stager uses that were left out, each with the reason.
    modality : str
        The networks used: ``"eeg"``, ``"eeg+eog"``, ``"eeg+emg"`` or ``"eeg+eog+emg"``.
    distance : float
        Distance of the recording's features from the model's training recordings
        (:meth:`~staging.stager.model.StagingModel.distance`).
    ood_threshold : float
        The model's threshold for ``distance``: beyond it the recording is out of distribution.
    model : str
        Name of the model used.
    """

    stages: np.ndarray
    probs: np.ndarray
    confidence: np.ndarray
    onset_s: np.ndarray
    mode: str
    channels: dict
    sfreq: float
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    modality: str = "eeg"
    distance: float = float("nan")
    ood_threshold: float = float("inf")
    model: str = ""

    @property
    def out_of_distribution(self) -> bool:
        """True when the recording lies farther from the training data than the model knows."""
        return bool(self.distance > self.ood_threshold)

    def channel_line(self) -> str:
        """One line: the channels used, the networks, and the channels ignored and why."""
        ch = self.channels
        used = [f"EEG {ch['eeg']!r}"]
        used += [f"EOG {e!r}" for e in ch.get("eog") or []]
        if ch.get("emg"):
            used.append(f"EMG {ch['emg']!r}")
        line = f"channels: {', '.join(used)} (networks {self.modality})"
        if self.ignored:
            line += "; ignored: " + "; ".join(self.ignored)
        return line

    def __len__(self) -> int:
        return int(self.stages.size)

    @property
    def stage_names(self) -> list[str]:
        """Stage of each epoch as text (``W``, ``N1``, ``N2``, ``N3``, ``R``, ``?``)."""
        return [stage_name(s) for s in self.stages]

    def to_csv(self, path: str | Path) -> Path:
        """Write the hypnogram CSV: ``epoch,onset_s,stage,confidence,p_W,...,p_R``.

        Parameters
        ----------
        path : str or Path
            Output file (its directory must exist).

        Returns
        -------
        Path
            The file written.
        """
        path = Path(path)
        lines = [",".join(CSV_COLUMNS)]
        for k in range(len(self)):
            p = self.probs[k]
            lines.append(
                f"{k},{self.onset_s[k]:.3f},{stage_name(self.stages[k])},"
                f"{self.confidence[k]:.4f}," + ",".join(f"{v:.4f}" for v in p)
            )
        path.write_text("\n".join(lines) + "\n")
        return path

    def summary(self) -> dict[str, float]:
        """Minutes per stage (``?`` included)."""
        out = {
            name: float(np.sum(self.stages == i)) * EPOCH_S / 60
            for i, name in enumerate(STAGE_NAMES)
        }
        out["?"] = float(np.sum(self.stages == UNSCORED)) * EPOCH_S / 60
        return out


class _RawSource:
    """An ``mne.io.Raw`` seen as channels in µV at one rate."""

    def __init__(self, raw, name: str):
        self.raw = raw
        self.name = name
        self.ch_names = tuple(raw.ch_names)
        self.ch_types = tuple(raw.get_channel_types())
        self.notes: list[str] = []

    def sfreq_of(self, picks) -> float:
        return float(self.raw.info["sfreq"])

    def native_sfreq_of(self, pick: int) -> float:
        """Rate the channel was recorded at (MNE resamples mixed-rate EDF channels)."""
        extras = getattr(self.raw, "_raw_extras", None) or [{}]
        n_samps, rec = extras[0].get("n_samps"), extras[0].get("record_length")
        if n_samps is not None and rec is not None and len(n_samps) == len(self.ch_names):
            return float(n_samps[pick]) / float(rec[0] if np.ndim(rec) else rec)
        return float(self.raw.info["sfreq"])

    def n_times_of(self, pick: int) -> int:
        return int(self.raw.n_times)

    def read_uv(self, picks: list[int], start: int, stop: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = self.raw.get_data(picks=picks, start=start, stop=stop)
        return data * 1e6


class _EdfSource:
    """An EDF or BDF file read directly (see :mod:`headset.edf.reader`)."""

    def __init__(self, edf, name: str):
        from headset.edf.header import truncation_note

        self.edf = edf
        self.name = name
        self.ch_names = edf.ch_names
        self.ch_types = None
        self.notes = [truncation_note(edf.header)] if edf.header.missing_records else []

    def sfreq_of(self, picks) -> float | None:
        return self.edf.sfreq_of(list(picks))

    def native_sfreq_of(self, pick: int) -> float:
        return float(self.edf.sfreq_of([pick]))

    def n_times_of(self, pick: int) -> int:
        return self.edf.n_times(pick)

    def read_uv(self, picks: list[int], start: int, stop: int) -> np.ndarray:
        return self.edf.read_uv(picks, start, stop)


def _check_path(raw_or_path) -> Path:
    if not isinstance(raw_or_path, str | Path):
        raise TypeError(
            f"score() expects a file path or an mne.io.Raw, got {type(raw_or_path).__name__}."
        )
    path = Path(raw_or_path)
    if not path.exists():
        raise StagingError(f"{path}: no such file")
    if path.is_dir():
        raise StagingError(f"{path}: is a directory, not a recording")
    return path


def open_recording(raw_or_path, fast: bool = True, allow_truncated: bool = False):
    """Return a source for a Raw or a file (EDF/BDF read directly when possible, else by MNE).

    A truncated EDF/BDF file is refused unless ``allow_truncated`` (then its complete records
    are read, and the source's ``notes`` say so).
    """
    if not isinstance(raw_or_path, str | Path):
        import mne

        if isinstance(raw_or_path, mne.io.BaseRaw):
            return _RawSource(raw_or_path, "<Raw>")
    path = _check_path(raw_or_path)
    if fast and path.suffix.lower() in (".edf", ".bdf"):
        from headset.edf.reader import open_edf

        edf = open_edf(path, allow_truncated)
        if edf is not None:
            return _EdfSource(edf, path.name)
    import mne

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix.lower() == ".bdf":
                raw = mne.io.read_raw_bdf(path, preload=False, verbose="error")
            elif path.suffix.lower() in (".edf", ".rec"):
                raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
            else:
                raw = mne.io.read_raw(path, preload=False, verbose="error")
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input, one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StagingError(f"{path}: cannot read recording: {msg}") from None
    return _RawSource(raw, path.name)


def _check_signal(src, idx: int) -> str | None:
    """Problem with a channel (flat, all NaN, wrong units), or None if it looks usable."""
    sf = src.sfreq_of([idx])
    n_times = src.n_times_of(idx)
    # look at a few 30-s windows spread over the recording (cheap for lazy files)
    n = min(n_times, int(30 * sf))
    starts = np.linspace(0, max(n_times - n, 0), num=min(8, max(1, n_times // max(n, 1))))
    x = np.concatenate([src.read_uv([idx], int(s), int(s) + n)[0] for s in starts])
    name = src.ch_names[idx]
    if not np.isfinite(x).any():
        return f"channel {name!r} contains no finite samples"
    if np.nanstd(x) < 0.05:
        return f"channel {name!r} is flat"
    units = check_units(name, x, measure="spread")
    return None if units.ok else units.message


def recording_features(src, sel: ChannelSelection, n_epochs: int, sf: float) -> EpochFeatures:
    """Return the epoch features of the selected signals, read in blocks of a few hours.

    Parameters
    ----------
    src : source
        What :func:`open_recording` returned.
    sel : ChannelSelection
        The chosen signals (:func:`select_signals`).
    n_epochs : int
        Epochs to compute (30 s each).
    sf : float
        Sampling rate of the selected signals, Hz.

    Returns
    -------
    EpochFeatures
        One row per epoch.
    """
    n_per = epoch_length(sf)
    parts = []
    picks = sel.indices
    n_eog = len(sel.eog)
    block = max(16, int(_BLOCK_EPOCHS * 256.0 / max(sf, 256.0)))
    for e0 in range(0, n_epochs, block):
        e1 = min(e0 + block, n_epochs)
        start = int(round(e0 * EPOCH_S * sf))
        stop = int(round((e1 - 1) * EPOCH_S * sf)) + n_per
        data = src.read_uv(picks, start, stop)
        eog = data[1 : 1 + n_eog] if n_eog else None
        emg = data[1 + n_eog] if sel.emg is not None else None
        if sel.emg_ref is not None:
            emg = emg - data[2 + n_eog]
        f = continuous_features(data[0], sf, eog=eog, emg=emg)
        parts.append(f.take(slice(0, e1 - e0)))
    return EpochFeatures.concatenate(parts)


def select_signals(
    src, eeg, eog, emg, where: str, notes: list[str], ignored: list[str] | None = None
) -> ChannelSelection:
    """Choose channels, skipping unusable ones when choosing automatically.

    EOG and EMG channels recorded below :data:`MIN_SFREQ` (e.g. Sleep-EDF's 1-Hz EMG envelope)
    are left out and listed in ``ignored`` with the reason: their features cannot be computed.
    """
    ignored = [] if ignored is None else ignored
    names, types = src.ch_names, src.ch_types
    excluded: set[int] = set()
    while True:
        sel = select_channels(names, types, eeg=eeg, eog=eog, emg=emg, exclude=frozenset(excluded))
        problem = _check_signal(src, sel.eeg)
        if problem is None:
            break
        if eeg is not None:
            raise StagingError(f"{where}{problem}")
        notes.append(f"skipped EEG {problem}")
        excluded.add(sel.eeg)
    # EOG/EMG recorded too slowly, flat or garbage are dropped (scoring goes on without them)
    slow = {}
    for i in (*sel.eog, sel.emg, sel.emg_ref):
        if i is not None and src.native_sfreq_of(i) < MIN_SFREQ:
            slow[i] = src.native_sfreq_of(i)
            ignored.append(
                f"{names[i]!r} ({slow[i]:g} Hz, below the {MIN_SFREQ:g} Hz its features need)"
            )
    eog_ok = tuple(i for i in sel.eog if i not in slow and _check_signal(src, i) is None)
    emg_ok, ref_ok = sel.emg, sel.emg_ref
    for i in (sel.emg, sel.emg_ref):
        if i is not None and (i in slow or _check_signal(src, i) is not None):
            emg_ok, ref_ok = None, None
    for i in set(sel.eog) - set(eog_ok) | ({sel.emg, sel.emg_ref} - {emg_ok, ref_ok} - {None}):
        if i in slow:
            continue
        notes.append(f"ignored unusable channel {names[i]!r}")
    return ChannelSelection(sel.eeg, eog_ok, emg_ok, names, ref_ok)


def score(
    raw_or_path,
    eeg: str | None = None,
    eog: str | list[str] | None = None,
    emg: str | None = None,
    mode: str = "offline",
    model: StagingModel | str | Path | None = None,
    allow_truncated: bool = False,
) -> Hypnogram:
    """Stage a recording into 30-s epochs.

    Parameters
    ----------
    raw_or_path : str or Path or mne.io.Raw
        EDF/BDF (or any file MNE reads) or a Raw object (signals in volts, as MNE keeps them).
    eeg : str, optional
        EEG channel name; None picks C4, C3, Cz, F4, F3, Fz, Fpz... by name (any reference).
    eog : str or list of str, optional
        One or two EOG channels (``"E1-M2,E2-M2"``); ``"none"`` for no EOG; None picks by name.
    emg : str, optional
        Chin EMG channel, or two chin electrodes ``"Chin1,Chin2"`` (bipolar); ``"none"`` for no
        EMG; None picks by name.
    mode : {"offline", "online"}
        ``"offline"`` uses the whole recording (two-sided context, whole-night scaling);
        ``"online"`` gives what the live stager would have said at the end of each epoch.
    model : StagingModel or str or Path, optional
        Model to use (None: the shipped model).
    allow_truncated : bool
        Score the complete data records of an EDF/BDF file cut short (a warning says how
        many) instead of refusing it.

    Returns
    -------
    Hypnogram
        Stages, probabilities and confidence per epoch; ``to_csv()`` writes the DESIGN CSV.

    Raises
    ------
    StagingError
        No usable EEG channel, unknown channel name, rate below 50 Hz, shorter than one epoch,
        unreadable file, no scorable epoch at all.

    Warns
    -----
    StagingWarning
        When some epochs could not be scored (they are ``?`` in the result).
    """
    check_option("mode", mode, ("offline", "online"))
    model = resolve_model(model)
    src = open_recording(raw_or_path, allow_truncated=allow_truncated)
    source = src.name
    where = f"{source}: " if source != "<Raw>" else ""
    notes: list[str] = list(src.notes)
    ignored: list[str] = []
    sel = select_signals(src, eeg, eog, emg, where, notes, ignored)
    sf = src.sfreq_of(sel.indices)
    if sf is None:  # channels at different rates: let MNE bring them to one rate
        notes = list(src.notes)
        src = open_recording(raw_or_path, fast=False)
        ignored = []
        sel = select_signals(src, eeg, eog, emg, where, notes, ignored)
        sf = src.sfreq_of(sel.indices)
    if not np.isfinite(sf) or sf < MIN_SFREQ:
        raise StagingError(f"{where}sampling rate {sf:g} Hz is below the {MIN_SFREQ:g} Hz needed")
    n_times = src.n_times_of(sel.eeg)
    n_epochs = int(np.floor(n_times / (EPOCH_S * sf) + 1e-9))
    while n_epochs > 0 and int(round((n_epochs - 1) * EPOCH_S * sf)) + epoch_length(sf) > n_times:
        n_epochs -= 1
    if n_epochs < 1:
        raise StagingError(
            f"{where}recording is {n_times / sf:.1f} s long, shorter than one {EPOCH_S:g}-s epoch"
        )
    names = src.ch_names
    feats = recording_features(src, sel, n_epochs, sf)
    if not feats.valid.any():
        raise StagingError(
            f"{where}no epoch of EEG channel {names[sel.eeg]!r} is usable "
            "(flat, NaN or flagged throughout)"
        )
    staged = stage_epochs(feats, model, mode)
    n_bad = int(np.sum(~feats.valid))
    if n_bad:
        notes.append(
            f"{n_bad} of {n_epochs} epochs could not be scored (NaN, flat or bad EEG) "
            "and are marked '?'"
        )
    if staged.out_of_distribution:
        notes.append(
            f"the recording's features lie outside what the model was trained on (distance "
            f"{staged.distance:.2f} > {staged.ood_threshold:.2f}): treat the stages with caution"
        )
    for note in notes:
        warnings.warn(f"{where}{note}", StagingWarning, stacklevel=2)
    onset = np.round(np.arange(n_epochs) * EPOCH_S * sf) / sf
    return Hypnogram(
        stages=staged.stages,
        probs=staged.probs,
        confidence=staged.confidence,
        onset_s=onset,
        mode=mode,
        channels=sel.describe(),
        sfreq=sf,
        source=source,
        warnings=[f"{where}{n}" for n in notes],
        ignored=ignored,
        modality=staged.modality,
        distance=staged.distance,
        ood_threshold=staged.ood_threshold,
        model=str(model.meta.get("name", "")),
    )


__all__ = ["CSV_COLUMNS", "Hypnogram", "StagingWarning", "score"]
