"""EDF/EDF+/BDF headers: the field table, the parser, the sample decoder.

The one description of the header layout (:data:`FIXED_FIELDS`, :data:`SIGNAL_FIELDS`) that
the reader (:func:`read_header`, used by :mod:`headset.replay` and :mod:`headset.edf.reader`)
and the writer (:mod:`headset.recorder`) share. The fixed part is 256 bytes; then each
per-signal field is stored for every signal in turn (all labels, then all transducers...).
"""

from __future__ import annotations

import contextlib
import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HeadsetError

#: The fixed part of the header: (field, width in bytes), in file order (256 bytes in all).
FIXED_FIELDS: tuple[tuple[str, int], ...] = (
    ("version", 8),
    ("patient", 80),
    ("recording", 80),
    ("startdate", 8),
    ("starttime", 8),
    ("header_bytes", 8),
    ("reserved", 44),
    ("n_records", 8),
    ("record_duration", 8),
    ("n_signals", 4),
)
#: The per-signal fields: (field, width in bytes), in file order (256 bytes per signal).
SIGNAL_FIELDS: tuple[tuple[str, int], ...] = (
    ("label", 16),
    ("transducer", 80),
    ("dimension", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefiltering", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)


def _offsets(fields: tuple[tuple[str, int], ...]) -> dict[str, tuple[int, int]]:
    out, pos = {}, 0
    for name, width in fields:
        out[name] = (pos, pos + width)
        pos += width
    return out


#: Field -> (start, stop) byte offsets in the fixed part of the header.
FIXED_SPAN: dict[str, tuple[int, int]] = _offsets(FIXED_FIELDS)
#: Bytes of the fixed part (256) and of each signal's fields (256).
FIXED_BYTES = sum(w for _, w in FIXED_FIELDS)
SIGNAL_BYTES = sum(w for _, w in SIGNAL_FIELDS)

_MONTHS = ("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC").split()


def split_fixed(text: str) -> dict[str, str]:
    """Split the 256-character fixed header into its fields (unstripped).

    Parameters
    ----------
    text : str
        The first 256 bytes of the file, decoded as latin-1.

    Returns
    -------
    dict
        Field name (:data:`FIXED_FIELDS`) -> its text.
    """
    return {name: text[a:b] for name, (a, b) in FIXED_SPAN.items()}


def split_signals(text: str, ns: int) -> dict[str, list[str]]:
    """Split the per-signal part of the header into its fields (unstripped).

    Parameters
    ----------
    text : str
        The ``256 * ns`` bytes after the fixed header, decoded as latin-1.
    ns : int
        Number of signals.

    Returns
    -------
    dict
        Field name (:data:`SIGNAL_FIELDS`) -> one text per signal.
    """
    cols, pos = {}, 0
    for name, width in SIGNAL_FIELDS:
        cols[name] = [text[pos + i * width : pos + (i + 1) * width] for i in range(ns)]
        pos += width * ns
    return cols


@dataclass(frozen=True)
class SignalHeader:
    """Header fields of one signal of an EDF/BDF file.

    Attributes
    ----------
    label, transducer, dimension, prefiltering : str
        Text fields (stripped).
    physical_min, physical_max : float
        Physical range in ``dimension`` units.
    digital_min, digital_max : int
        Digital range.
    samples_per_record : int
        Samples of this signal in one data record.
    offset : int
        Byte offset of the signal inside a data record.
    """

    label: str
    transducer: str
    dimension: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    prefiltering: str
    samples_per_record: int
    offset: int

    @property
    def is_annotation(self) -> bool:
        """True for an ``EDF Annotations`` / ``BDF Annotations`` signal."""
        return self.label in ("EDF Annotations", "BDF Annotations")

    @property
    def gain(self) -> float:
        """Physical units per digital step."""
        return (self.physical_max - self.physical_min) / (self.digital_max - self.digital_min)

    @property
    def physical_offset(self) -> float:
        """Physical value of digital 0."""
        return self.physical_min - self.digital_min * self.gain


@dataclass(frozen=True)
class EdfHeader:
    """The parsed header of an EDF/BDF file (see :func:`read_header`).

    Attributes
    ----------
    path : Path
        The file.
    fmt : str
        ``"EDF"`` or ``"BDF"``.
    reserved : str
        The reserved field: ``"EDF+C"``, ``"EDF+D"``, ``"BDF+C"``... or ``""`` for plain EDF.
    patient, recording : str
        Local patient and recording identification.
    start : datetime.datetime or None
        Start of the recording (None when the header's date/time is unreadable).
    header_bytes : int
        Size of the header.
    n_records : int
        Complete data records used (from the header, or from the file size when the header
        says -1).
    n_records_header : int
        The header's own count (-1 while a recording is in progress).
    record_duration : float
        Seconds per data record.
    bytes_per_sample : int
        2 (EDF) or 3 (BDF).
    signals : tuple of SignalHeader
        Every signal, annotation signals included.
    """

    path: Path
    fmt: str
    reserved: str
    patient: str
    recording: str
    start: datetime.datetime | None
    header_bytes: int
    n_records: int
    n_records_header: int
    record_duration: float
    bytes_per_sample: int
    signals: tuple[SignalHeader, ...]

    @property
    def missing_records(self) -> int:
        """Data records the header declares but the file does not hold (truncated file)."""
        return max(0, self.n_records_header - self.n_records)

    @property
    def record_bytes(self) -> int:
        """Bytes per data record."""
        return sum(s.samples_per_record for s in self.signals) * self.bytes_per_sample

    @property
    def data_signals(self) -> tuple[int, ...]:
        """Indices of the signals that are not annotation signals."""
        return tuple(i for i, s in enumerate(self.signals) if not s.is_annotation)

    @property
    def annotation_signals(self) -> tuple[int, ...]:
        """Indices of the annotation signals."""
        return tuple(i for i, s in enumerate(self.signals) if s.is_annotation)


def digital_samples(raw: np.ndarray, bytes_per_sample: int) -> np.ndarray:
    """Decode little-endian EDF (16-bit) or BDF (24-bit) samples to int32.

    Parameters
    ----------
    raw : ndarray of uint8
        Bytes whose last axis holds whole samples (e.g. a slice of mapped data records).
    bytes_per_sample : {2, 3}
        2 for EDF, 3 for BDF.

    Returns
    -------
    ndarray of int32
        The digital values; the last axis has ``raw.shape[-1] // bytes_per_sample`` samples.
    """
    raw = np.ascontiguousarray(raw)
    if bytes_per_sample == 2:
        return raw.view("<i2").astype(np.int32)
    b = raw.reshape(*raw.shape[:-1], -1, 3).astype(np.int32)
    v = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    return np.where(v >= 1 << 23, v - (1 << 24), v)


def truncation_note(header: EdfHeader) -> str:
    """Return the line saying that a truncated file is used up to its last complete record."""
    return (
        f"truncated file: the {header.n_records} complete data records of the "
        f"{header.n_records_header} declared are used "
        f"({header.n_records * header.record_duration:g} s)"
    )


def edf_error(path, problem: str) -> HeadsetError:
    """Return the one-line error of a bad EDF/BDF file: ``"<path>: <problem>"``."""
    return HeadsetError(f"{path}: {problem}")


def _parse_start(date: str, time_: str, recording: str) -> datetime.datetime | None:
    try:
        d, m, y = (int(x) for x in date.split("."))
        hh, mm, ss = (int(x) for x in time_.split("."))
        year = 1900 + y if y >= 85 else 2000 + y
        fields = recording.split()
        if len(fields) > 1 and fields[0] == "Startdate":  # EDF+: full year
            parts = fields[1].split("-")
            if len(parts) == 3 and parts[1] in _MONTHS and parts[2].isdigit():
                year = int(parts[2])
        return datetime.datetime(year, m, d, hh, mm, ss)
    except ValueError:
        return None


def read_header(path, *, allow_truncated: bool = False) -> EdfHeader:
    """Read and check the header of an EDF/EDF+/BDF/BDF+ file.

    Parameters
    ----------
    path : str or path-like
        The file.
    allow_truncated : bool
        Accept a file that holds fewer complete data records than its header says (a copy
        cut short): the complete records are used (``n_records`` counts them,
        :attr:`EdfHeader.missing_records` the others). By default such a file is refused,
        with a message that says how many records are complete.

    Returns
    -------
    EdfHeader
        The parsed header.

    Raises
    ------
    HeadsetError
        With one line naming the file and the problem, for a missing or unreadable file, a
        file that is not EDF/BDF, a truncated header or truncated data, no signals, no data
        records, or malformed header fields.
    """
    path = Path(path)
    with _file_errors(path):
        size = path.stat().st_size
        with path.open("rb") as f:
            fixed = f.read(FIXED_BYTES)
            fmt, bps = _file_format(path, fixed, size)
            head = split_fixed(fixed.decode("latin-1"))
            header_bytes = _number(path, "number of bytes in header", head["header_bytes"])
            n_records_header = _number(path, "number of data records", head["n_records"])
            record_duration = _number(
                path, "duration of a data record", head["record_duration"], float
            )
            ns = _signal_count(path, head, header_bytes)
            rest = f.read(SIGNAL_BYTES * ns)
            if len(rest) < SIGNAL_BYTES * ns:
                raise edf_error(
                    path,
                    f"truncated header ({size} bytes; the header of {ns} signals "
                    f"needs {header_bytes})",
                )
    signals = _signal_headers(path, split_signals(rest.decode("latin-1"), ns), bps)
    record_bytes = sum(s.samples_per_record for s in signals) * bps
    n_records = _records_used(
        path, n_records_header, (size - header_bytes) // record_bytes, size, allow_truncated
    )
    recording = head["recording"].strip()
    header = EdfHeader(
        path=path,
        fmt=fmt,
        reserved=head["reserved"].strip(),
        patient=head["patient"].strip(),
        recording=recording,
        start=_parse_start(head["startdate"], head["starttime"], recording),
        header_bytes=header_bytes,
        n_records=n_records,
        n_records_header=n_records_header,
        record_duration=record_duration,
        bytes_per_sample=bps,
        signals=signals,
    )
    if not header.data_signals:
        raise edf_error(path, "no signals (only annotations)")
    if not record_duration > 0:
        raise edf_error(path, f"data record duration must be positive, got {record_duration}")
    if n_records == 0:
        raise edf_error(path, "no data records")
    return header


@contextlib.contextmanager
def _file_errors(path: Path):
    """Turn the OS errors of reading ``path`` into one-line :class:`HeadsetError`."""
    try:
        yield
    except FileNotFoundError:
        raise edf_error(path, "no such file") from None
    except IsADirectoryError:
        raise edf_error(path, "is a directory, not a recording") from None
    except PermissionError:
        raise edf_error(path, "permission denied") from None
    except OSError as exc:
        raise edf_error(path, f"cannot read ({exc.strerror or exc})") from None


def _file_format(path: Path, fixed: bytes, size: int) -> tuple[str, int]:
    """Return ``("EDF", 2)`` or ``("BDF", 3)`` from the version field of the fixed header."""
    if len(fixed) < FIXED_BYTES:
        if fixed[:1] not in (b"0", b"\xff"):
            raise edf_error(path, "not an EDF/BDF file (too short for a header)")
        raise edf_error(path, f"truncated header ({size} bytes; an EDF header has 256+)")
    version = fixed[:8]
    if version == b"\xffBIOSEMI":
        return "BDF", 3
    if version.strip(b" ") == b"0":
        return "EDF", 2
    raise edf_error(path, f"not an EDF/BDF file (the version field is {version[:8]!r})")


def _number(path: Path, field: str, value: str, kind=int):
    """Parse a numeric header field (``kind`` int or float; a float must be finite)."""
    try:
        v = kind(value.strip())
    except ValueError:
        raise edf_error(
            path, f"header field {field!r} is not a number: {value.strip()!r}"
        ) from None
    if kind is float and not math.isfinite(v):
        raise edf_error(path, f"header field {field!r} is not finite: {value.strip()!r}")
    return v


def _signal_count(path: Path, head: dict[str, str], header_bytes: int) -> int:
    """Return the number of signals, checked against the header's size."""
    ns = _number(path, "number of signals", head["n_signals"])
    if ns <= 0:
        raise edf_error(path, "no signals (the header declares 0)")
    need = FIXED_BYTES + SIGNAL_BYTES * ns
    if header_bytes != need:
        raise edf_error(
            path,
            f"corrupt header: {ns} signals need {need} header bytes, "
            f"the header says {header_bytes}",
        )
    return ns


def _signal_headers(path: Path, cols: dict[str, list[str]], bps: int) -> tuple[SignalHeader, ...]:
    """Parse and check every signal's fields (:func:`split_signals`); offsets in a record."""
    signals = []
    offset = 0
    for i in range(len(cols["label"])):
        label = cols["label"][i].strip()
        name = f"signal {i + 1} ({label!r})"
        pmin = _number(path, f"{name} physical minimum", cols["physical_min"][i], float)
        pmax = _number(path, f"{name} physical maximum", cols["physical_max"][i], float)
        dmin = _number(path, f"{name} digital minimum", cols["digital_min"][i])
        dmax = _number(path, f"{name} digital maximum", cols["digital_max"][i])
        spr = _number(path, f"{name} samples per record", cols["samples_per_record"][i])
        if spr <= 0:
            raise edf_error(path, f"{name} has {spr} samples per record")
        if dmax <= dmin:
            raise edf_error(path, f"{name}: digital maximum {dmax} is not above minimum {dmin}")
        if pmax == pmin:
            raise edf_error(path, f"{name}: physical minimum equals maximum ({pmin})")
        signals.append(
            SignalHeader(
                label=label,
                transducer=cols["transducer"][i].strip(),
                dimension=cols["dimension"][i].strip(),
                physical_min=pmin,
                physical_max=pmax,
                digital_min=dmin,
                digital_max=dmax,
                prefiltering=cols["prefiltering"][i].strip(),
                samples_per_record=spr,
                offset=offset,
            )
        )
        offset += spr * bps
    return tuple(signals)


def _records_used(
    path: Path, declared: int, available: int, size: int, allow_truncated: bool
) -> int:
    """Return the data records to use: the declared count, or the complete ones.

    ``declared`` is the header's count (-1 while recording), ``available`` the complete
    records the file holds; fewer than declared is refused unless ``allow_truncated``.
    """
    if declared == -1:
        return available
    if declared < 0:
        raise edf_error(path, f"header says {declared} data records")
    if available < declared and not allow_truncated:
        raise edf_error(
            path,
            f"truncated: {available} of the {declared} data records the header "
            f"declares are complete ({size} bytes); --allow-truncated uses them",
        )
    return min(available, declared)
