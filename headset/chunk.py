"""The Chunk: the unit of data that flows from every source into the DSP path (DESIGN 3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# Per-sample flag bits (``Chunk.flags``), defined once in dsp.flags and re-exported here.
from dsp.flags import BAD_FLAGS, FLAG_CORRUPT, FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED

__all__ = [
    "BAD_FLAGS",
    "FLAG_CORRUPT",
    "FLAG_GAP",
    "FLAG_LEAD_OFF",
    "FLAG_SATURATED",
    "Annotation",
    "Chunk",
]


@dataclass(frozen=True)
class Annotation:
    """One timed event (EDF+ annotation).

    Parameters
    ----------
    onset : float
        Seconds since the session start.
    duration : float
        Seconds (0 for an instant).
    description : str
        Text, e.g. ``"Sleep stage N2"``, ``"Nightmare"``, ``"Gap"``.
    """

    onset: float
    duration: float
    description: str


#: MNE channel types of the body's electrical signals (microvolts in a Chunk).
EXG_TYPES = ("eeg", "eog", "emg", "ecg")


def default_unit(name: str, ch_type: str) -> str:
    """Return the unit of a channel's samples in a :class:`Chunk` (the Chunk contract).

    Parameters
    ----------
    name : str
        Channel name.
    ch_type : str
        MNE channel type.

    Returns
    -------
    str
        ``"uV"`` for EEG, EOG, EMG and ECG, ``"mg"`` (milli-g) for an accelerometer
        (a name starting with ``ACC``), ``""`` for anything else.
    """
    if ch_type in EXG_TYPES:
        return "uV"
    if name.upper().startswith("ACC"):
        return "mg"
    return ""


@dataclass(frozen=True)
class StreamInfo:
    """What a stream of chunks is: its rate and channels (the same for every chunk of it).

    Every consumer of a stream (stager, detectors, monitor) takes it from the first chunk
    (:attr:`Chunk.info`) and checks each later chunk against it.

    Parameters
    ----------
    sfreq : float
        Sampling rate, Hz (positive, finite).
    ch_names : tuple of str
        Channel names.
    ch_types : tuple of str
        MNE channel types, one per name.
    units : tuple of str
        Unit of each channel's samples (:func:`default_unit`).
    """

    sfreq: float
    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    units: tuple[str, ...]

    def __post_init__(self):
        if not (isinstance(self.sfreq, float) and np.isfinite(self.sfreq) and self.sfreq > 0):
            raise ValueError(
                f"StreamInfo sfreq must be a positive finite float, got {self.sfreq!r}."
            )
        n = len(self.ch_names)
        if len(self.ch_types) != n or len(self.units) != n:
            raise ValueError(
                f"StreamInfo has {n} channel names but {len(self.ch_types)} types and "
                f"{len(self.units)} units."
            )

    @classmethod
    def create(cls, sfreq: float, ch_names: Sequence[str], ch_types: Sequence[str]) -> StreamInfo:
        """Return the description of a stream of these channels, units by :func:`default_unit`.

        Parameters
        ----------
        sfreq : float
            Sampling rate, Hz.
        ch_names, ch_types : sequence of str
            Channel names and MNE types.

        Returns
        -------
        StreamInfo
        """
        names, types = tuple(ch_names), tuple(ch_types)
        if len(names) != len(types):
            raise ValueError(f"{len(names)} channel names but {len(types)} channel types.")
        units = tuple(default_unit(n, t) for n, t in zip(names, types))
        return cls(float(sfreq), names, types, units)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.ch_names)


@dataclass(frozen=True)
class Chunk:
    """A block of consecutive samples from a source.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Signals in microvolts (float64). ECG in microvolts too; accelerometer channels, where
        present, in milli-g.
    first_sample : int
        Device sample index of ``data[:, 0]`` since the session start.
    sfreq : float
        Sampling rate in Hz.
    ch_names : tuple of str
        Channel names, e.g. ``("EEG F4-M1", ...)``.
    ch_types : tuple of str
        MNE channel types (``eeg``, ``eog``, ``emg``, ``ecg``, ``misc``).
    flags : ndarray of uint8, shape (n_channels, n_samples)
        Bitwise OR of ``FLAG_GAP``, ``FLAG_LEAD_OFF``, ``FLAG_SATURATED``, ``FLAG_CORRUPT``
        (:mod:`dsp.flags`).
    annotations : tuple of Annotation
        Events that became known while this chunk was produced (ground truth of a simulator,
        annotations of a replayed file, gaps and lead-off seen by the driver).
    """

    data: np.ndarray
    first_sample: int
    sfreq: float
    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    flags: np.ndarray
    annotations: tuple[Annotation, ...] = field(default=())

    def __post_init__(self):
        if self.data.ndim != 2:
            raise ValueError(
                f"Chunk data must be 2-D (n_channels, n_samples), got shape {self.data.shape}."
            )
        if len(self.ch_names) != self.data.shape[0] or len(self.ch_types) != self.data.shape[0]:
            raise ValueError(
                f"Chunk has {self.data.shape[0]} channels but {len(self.ch_names)} names and "
                f"{len(self.ch_types)} types."
            )
        if self.flags.shape != self.data.shape:
            raise ValueError(
                f"Chunk flags shape {self.flags.shape} differs from data shape {self.data.shape}."
            )

    @cached_property
    def info(self) -> StreamInfo:
        """The description of the stream this chunk belongs to (rate, channels, units)."""
        return StreamInfo.create(self.sfreq, self.ch_names, self.ch_types)

    @property
    def n_samples(self) -> int:
        """Number of samples in the chunk."""
        return self.data.shape[1]

    @property
    def t0(self) -> float:
        """Time of the first sample in seconds since the session start."""
        return self.first_sample / self.sfreq

    @property
    def stop_sample(self) -> int:
        """Device sample index one past the last sample."""
        return self.first_sample + self.data.shape[1]

    def piece(self, start: int, stop: int | None = None) -> Chunk:
        """Return samples ``start:stop`` of this chunk as a chunk (views, no copy).

        Parameters
        ----------
        start, stop : int
            Indices into this chunk (``stop`` None: to the end), ``0 <= start <= stop``.

        Returns
        -------
        Chunk
            Its ``first_sample`` is ``self.first_sample + start``; the annotations go with
            the piece that starts at 0, so cutting a chunk never repeats or loses one.
        """
        return Chunk(
            self.data[:, start:stop],
            self.first_sample + start,
            self.sfreq,
            self.ch_names,
            self.ch_types,
            self.flags[:, start:stop],
            self.annotations if start == 0 else (),
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Chunk]) -> Chunk:
        """Join consecutive chunks of the same channels into one.

        Parameters
        ----------
        parts : sequence of Chunk
            At least one chunk, each starting where the previous one stops.

        Returns
        -------
        Chunk
            The samples of all parts (the only part itself when there is one), the
            annotations of all parts in order.
        """
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        return cls(
            np.concatenate([p.data for p in parts], axis=1),
            first.first_sample,
            first.sfreq,
            first.ch_names,
            first.ch_types,
            np.concatenate([p.flags for p in parts], axis=1),
            tuple(a for p in parts for a in p.annotations),
        )
