"""Crash-safe incremental EDF+ recorder (DESIGN sections 3 and 6).

The :class:`Recorder` writes a session to an EDF+C file while it happens: the header first,
then one data record per ``record_duration`` seconds (1 s by default), each record carrying
the signals as 16-bit integers and an ``EDF Annotations`` signal whose first TAL keeps the time
of the record and whose further TALs carry the annotations that became known meanwhile.

File format
-----------
The header bytes are built by :mod:`edfio` (``edfio.Edf(...).to_bytes()`` on a one-record
template), so the header layout, the EDF+ patient and recording fields and the annotation
signal description are edfio's. The recorder then appends records itself: an EDF recording
that grows during the night cannot be held in one ``edfio.Edf`` object, and this module is the
project's only EDF writer (``dreamnet simulate`` and the monitor both go through it).

Crash safety
------------
Complete records are buffered in memory and written out at least every ``flush_interval``
seconds of wall-clock time (5 s by default; also when the buffer passes 8 MiB and on
:meth:`Recorder.close`). A flush writes the records, ``fsync`` them, then rewrites the
"number of data records" field of the header to the number of records now in the file and
``fsync`` again. The header therefore never claims a record that is not on disk, and after
``kill -9`` (or a power cut) the file is a valid EDF+ file holding every record up to the last
flush: MNE and edfio open it without complaint. (Both readers infer the count from the file
size, with a warning, when the header disagrees, e.g. ``-1``; the recorder keeps them equal so
that no warning is needed.) The samples of the current, incomplete record and the records
since the last flush are lost: at most ``flush_interval + record_duration`` seconds.

Quantisation
------------
EDF stores 16-bit integers. Each channel maps the digital range -32767..32767 (symmetric, so
0 µV is exactly 0; -32768 is never written and readers may treat it as "no data") linearly
onto a physical range chosen by channel type (:data:`PHYSICAL_RANGES`):

========  ==================  ================================  ====================
type      physical range      step (resolution)                 max rounding error
========  ==================  ================================  ====================
eeg/eog   -5000..5000 µV      10000/65534 = 0.1526 µV           0.0763 µV
emg       -5000..5000 µV      0.1526 µV                         0.0763 µV
ecg       -10000..10000 µV    0.3052 µV                         0.1526 µV
misc      -8000..8000         0.2441 (unit of the channel)      0.1221
========  ==================  ================================  ====================

Values beyond the range (ADC saturation at +-187.5 mV, large movement swings) are clipped to
it and counted in :attr:`Recorder.stats` (``"clipped"`` per channel); non-finite values are
written as 0 and counted (``"nonfinite"``). Pass ``physical_range`` to choose other ranges.

Annotations
-----------
Annotations come from three places: :meth:`Recorder.annotate`, ``chunk.annotations`` (passed
through), and the chunk flags (``annotate_flags=True``): a run of samples with ``FLAG_GAP`` on
any channel becomes ``"Gap"``, a run with ``FLAG_LEAD_OFF`` on a channel becomes
``"Lead off: <channel>"``, each with its onset and duration, written when the run ends (or at
:meth:`Recorder.close`). With ``annotate_flags`` the flags are the one source of these two
kinds: ``"Gap"`` and ``"Lead off: ..."`` annotations that come with the chunks (the driver's
note at the moment a lead goes off, a simulator's ground truth) are not written again.

A TAL can carry any onset, so an annotation whose duration is only known at its end (a
``"Nightmare"``) is written in the current record with its onset in the past. Each record
has room for ``annotation_bytes`` bytes of TALs; annotations that do not fit wait for the
next record. Onsets are seconds since the session start (device sample 0); the
file starts at device sample ``first_sample``.
"""

from __future__ import annotations

import datetime
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from dsp.validate import check_option, check_positive, validate_type

from .chunk import EXG_TYPES, FLAG_GAP, FLAG_LEAD_OFF, Annotation, Chunk, default_unit
from .edf.header import FIXED_BYTES, FIXED_SPAN, SIGNAL_BYTES, SIGNAL_FIELDS
from .errors import HeadsetError

#: Physical range (min, max) of each channel type, in the channel's unit (µV for exG).
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "eeg": (-5000.0, 5000.0),
    "eog": (-5000.0, 5000.0),
    "emg": (-5000.0, 5000.0),
    "ecg": (-10000.0, 10000.0),
    "misc": (-8000.0, 8000.0),
}
#: Digital range written for every signal (symmetric: physical 0 is digital 0).
DIGITAL_RANGE: tuple[int, int] = (-32767, 32767)
#: Start of the recording when none is given: fixed, so that files are reproducible.
DEFAULT_START = datetime.datetime(2024, 1, 1, 23, 0, 0)
#: EDF+ annotation texts written from chunk flags.
GAP_TEXT = "Gap"
LEAD_OFF_PREFIX = "Lead off: "

_TRANSDUCER = {t: "AgAgCl electrode" for t in EXG_TYPES}
#: Byte span of the header's "number of data records" field (rewritten on every flush).
_N_RECORDS_SPAN = FIXED_SPAN["n_records"]
_FIELD_WIDTH = dict(SIGNAL_FIELDS)
_MAX_BUFFER_BYTES = 8 * 1024 * 1024
_TAL_FORBIDDEN = str.maketrans({"\x00": " ", "\x14": " ", "\x15": " "})


def quantisation_step(physical_range: tuple[float, float]) -> float:
    """Return the physical value of one digital step for a physical range.

    Parameters
    ----------
    physical_range : tuple of float
        ``(physical_min, physical_max)`` in the channel's unit.

    Returns
    -------
    float
        Step in the channel's unit; the rounding error of a written sample is at most half
        of it.
    """
    pmin, pmax = physical_range
    return (pmax - pmin) / (DIGITAL_RANGE[1] - DIGITAL_RANGE[0])


def _format_seconds(value: float, signed: bool) -> str:
    """Shortest decimal text that reads back as the same float (EDF+ TAL timing)."""
    text = np.format_float_positional(float(value), unique=True, trim="-", sign=signed)
    return text


def _tal(onset: float, duration: float | None, text: str) -> bytes:
    timing = _format_seconds(onset, signed=True)
    if duration is not None and duration > 0:
        timing += "\x15" + _format_seconds(duration, signed=False)
    return f"{timing}\x14{text}\x14\x00".encode()


def _check_ascii(what: str, value: str, width: int) -> None:
    """Raise ValueError unless ``value`` is printable ASCII of at most ``width`` characters."""
    if not isinstance(value, str) or not value.isascii() or not value.isprintable():
        raise ValueError(f"EDF {what} must be printable ASCII, got {value!r}.")
    if len(value) > width:
        raise ValueError(f"EDF {what} has {width} characters at most, got {value!r}.")


class Recorder:
    """Write a session to an EDF+C file incrementally, crash-safe.

    Parameters
    ----------
    path : str or path-like
        Output file (``.edf``). Its directory must exist; an existing file is replaced.
    ch_names : sequence of str
        Channel names, at most 16 characters each (EDF label field), e.g. ``"EEG C4-M1"``.
    ch_types : sequence of str
        MNE channel types (``eeg``, ``eog``, ``emg``, ``ecg``, ``misc``), one per channel.
    sfreq : float
        Sampling rate in Hz, the same for every channel; ``sfreq * record_duration`` must be
        a whole number of samples.
    physical_range : tuple of float, or sequence of tuple, or mapping, optional
        ``(min, max)`` physical range, in the channel's unit, for all channels, per channel
        (a sequence), or per channel type or name (a mapping). Default by type from
        :data:`PHYSICAL_RANGES`.
    units : sequence of str, optional
        Physical dimension of each channel as written in the header (8 characters), default
        ``"uV"`` for exG channels, ``"mg"`` (milli-g) for channels named ``ACC ...`` and ``""``
        otherwise. The data passed to :meth:`write` must be in these units.
    start : datetime.datetime, optional
        Start of the recording written in the header (whole seconds). Default
        :data:`DEFAULT_START`, fixed so that the same session gives the same bytes; pass the
        real start time for live recordings.
    patient_code, patient_name : str
        EDF+ patient identification fields (``"X"`` = unknown; spaces become ``_``).
    sex : {"X", "F", "M"}
        Patient sex.
    birthdate : datetime.date, optional
        Patient birth date.
    equipment, technician, admin_code : str
        EDF+ recording identification fields.
    prefiltering : str or sequence of str
        Prefiltering text of every channel or of each channel, e.g. ``"HP:0.3Hz LP:35Hz"``.
    first_sample : int
        Device sample index (since the session start) of the file's first sample. Default 0.
    record_duration : float
        Duration of a data record in seconds. Default 1.
    annotation_bytes : int
        Bytes reserved per record for annotation TALs (even, >= 32). Default 128: the time
        keeping TAL takes about 10 bytes and a typical annotation 30-50 bytes; an 8-h night
        spends 3.7 MB on them.
    flush_interval : float
        Wall-clock seconds between flushes to disk (at most 10 s is the guarantee of
        DESIGN 6). Default 5.
    fsync : bool
        ``fsync`` the file at each flush (default True). Without it a kill leaves the same
        file (the data are in the kernel) but a power cut may not.
    annotate_flags : bool
        Turn flag runs into ``"Gap"`` and ``"Lead off: <channel>"`` annotations, instead of
        passing through the chunks' annotations of these kinds (default True).

    Attributes
    ----------
    stats : dict
        ``records`` (records written), ``samples`` (samples per channel received),
        ``clipped`` and ``nonfinite`` (per-channel counts), ``dropped`` (duplicate samples
        ignored), ``filled`` (missing samples filled with the last value), ``padded``
        (samples added at the end to complete the last record), ``annotations`` (written),
        ``truncated_annotations`` (texts shortened to fit a record), ``flushes``.

    Notes
    -----
    Chunks must arrive in order. A chunk that starts after the expected sample leaves a hole
    that is filled with the last written value of each channel and annotated ``"Gap"``; a
    chunk that overlaps what was written has its already-written samples dropped. At
    :meth:`close` the last incomplete record is completed by repeating the last value of
    each channel (``stats["padded"]`` samples), so a file always holds whole records.
    """

    def __init__(
        self,
        path,
        ch_names: Sequence[str],
        ch_types: Sequence[str],
        sfreq: float,
        *,
        physical_range=None,
        units: Sequence[str] | None = None,
        start: datetime.datetime | None = None,
        patient_code: str = "X",
        patient_name: str = "X",
        sex: str = "X",
        birthdate: datetime.date | None = None,
        equipment: str = "dreamnet",
        technician: str = "X",
        admin_code: str = "X",
        prefiltering: str | Sequence[str] = "",
        first_sample: int = 0,
        record_duration: float = 1.0,
        annotation_bytes: int = 128,
        flush_interval: float = 5.0,
        fsync: bool = True,
        annotate_flags: bool = True,
    ):
        self.path = Path(path)
        self._set_channels(ch_names, ch_types)
        self._set_timing(sfreq, record_duration, annotation_bytes, flush_interval, first_sample)
        self.annotate_flags = bool(annotate_flags)
        self._fsync = bool(fsync)

        self.physical_ranges = self._resolve_ranges(physical_range)
        self.units = self._resolve_units(units)
        prefilters = self._resolve_prefilters(prefiltering)
        for what, v in (
            ("patient_code", patient_code),
            ("patient_name", patient_name),
            ("equipment", equipment),
            ("technician", technician),
            ("admin_code", admin_code),
        ):
            _check_ascii(what, v, 40)
        self.start = DEFAULT_START if start is None else start.replace(microsecond=0)

        pmin = np.array([r[0] for r in self.physical_ranges])
        pmax = np.array([r[1] for r in self.physical_ranges])
        dmin, dmax = DIGITAL_RANGE
        self._scale_col = ((dmax - dmin) / (pmax - pmin))[:, None]  # digital per physical unit
        self._pmin_col = pmin[:, None]

        header = self._build_header(
            prefilters,
            patient_code,
            patient_name,
            sex,
            birthdate,
            equipment,
            technician,
            admin_code,
        )
        self._init_state()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise HeadsetError(
                f"{self.path}: cannot write the recording ({exc.strerror or exc})"
            ) from None
        self._header_len = len(header)
        self._write_all(header)
        self._sync()
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------------ set-up
    def _set_channels(self, ch_names, ch_types) -> None:
        """Check and keep the channel names and types."""
        self.ch_names = tuple(str(c) for c in ch_names)
        self.ch_types = tuple(str(t) for t in ch_types)
        n_ch = len(self.ch_names)
        if n_ch == 0:
            raise ValueError("Recorder needs at least one channel.")
        if len(self.ch_types) != n_ch:
            raise ValueError(f"Recorder got {n_ch} channel names but {len(self.ch_types)} types.")
        if len(set(self.ch_names)) != n_ch:
            raise ValueError(f"Recorder channel names must be unique, got {self.ch_names}.")
        for name in self.ch_names:
            _check_ascii("channel label", name, _FIELD_WIDTH["label"])
        for t in self.ch_types:
            if t not in PHYSICAL_RANGES:
                raise ValueError(
                    f"Invalid channel type {t!r}. Allowed types are {', '.join(PHYSICAL_RANGES)}."
                )

    def _set_timing(
        self, sfreq, record_duration, annotation_bytes, flush_interval, first_sample
    ) -> None:
        """Check and keep the sampling, record and flush settings."""
        self.sfreq = check_positive("sfreq", sfreq)
        self.record_duration = check_positive("record_duration", record_duration)
        spr = Fraction(self.sfreq).limit_denominator(10**6) * Fraction(
            self.record_duration
        ).limit_denominator(10**6)
        if spr.denominator != 1:
            raise ValueError(
                f"sfreq * record_duration must be a whole number of samples, got "
                f"{self.sfreq} Hz * {self.record_duration} s."
            )
        self.samples_per_record = int(spr)
        validate_type("annotation_bytes", annotation_bytes, (int, np.integer))
        if annotation_bytes < 32 or annotation_bytes % 2:
            raise ValueError(f"annotation_bytes must be even and >= 32, got {annotation_bytes}.")
        self.annotation_bytes = int(annotation_bytes)
        self.flush_interval = check_positive("flush_interval", flush_interval)
        validate_type("first_sample", first_sample, (int, np.integer))
        self.first_sample = int(first_sample)

    def _resolve_units(self, units) -> tuple[str, ...]:
        """Physical dimension of each channel, ASCII (``µ`` written ``u``)."""
        n_ch = len(self.ch_names)
        out = (
            tuple(default_unit(n, t) for n, t in zip(self.ch_names, self.ch_types))
            if units is None
            else tuple(str(u) for u in units)
        )
        if len(out) != n_ch:
            raise ValueError(f"Recorder got {n_ch} channels but {len(out)} units.")
        out = tuple(u.replace("µ", "u").replace("μ", "u") for u in out)
        for u in out:
            _check_ascii("physical dimension", u, _FIELD_WIDTH["dimension"])
        return out

    def _resolve_prefilters(self, prefiltering) -> tuple[str, ...]:
        """Prefiltering text of each channel."""
        n_ch = len(self.ch_names)
        prefilters = (
            (prefiltering,) * n_ch if isinstance(prefiltering, str) else tuple(prefiltering)
        )
        if len(prefilters) != n_ch:
            raise ValueError(f"Recorder got {n_ch} channels but {len(prefilters)} prefilterings.")
        for pf in prefilters:
            _check_ascii("prefiltering", pf, _FIELD_WIDTH["prefiltering"])
        return prefilters

    def _init_state(self) -> None:
        """Statistics, record buffer and flag tracking of an empty recording."""
        n_ch = len(self.ch_names)
        self.stats: dict = {
            "records": 0,
            "samples": 0,
            "clipped": dict.fromkeys(self.ch_names, 0),
            "nonfinite": dict.fromkeys(self.ch_names, 0),
            "dropped": 0,
            "filled": 0,
            "padded": 0,
            "annotations": 0,
            "truncated_annotations": 0,
            "flushes": 0,
        }
        self._pending: deque[Annotation] = deque()
        self._rec_buf = np.zeros((n_ch, self.samples_per_record), np.int16)  # record in progress
        self._fill = 0  # samples in the record in progress
        self._last = np.zeros(n_ch, np.int16)
        self._next_sample = self.first_sample  # device index of the next sample expected
        self._records_buffered = 0
        self._buffer = bytearray()
        self._gap_start: int | None = None
        self._leadoff_start: list[int | None] = [None] * n_ch
        self._closed = False
        self._last_tal = b""

    def _resolve_ranges(self, physical_range) -> tuple[tuple[float, float], ...]:
        n_ch = len(self.ch_names)
        if physical_range is None:
            ranges = [PHYSICAL_RANGES[t] for t in self.ch_types]
        elif isinstance(physical_range, Mapping):
            ranges = []
            for name, t in zip(self.ch_names, self.ch_types):
                ranges.append(physical_range.get(name, physical_range.get(t, PHYSICAL_RANGES[t])))
        elif len(physical_range) == 2 and np.isscalar(physical_range[0]):
            ranges = [tuple(physical_range)] * n_ch
        else:
            ranges = list(physical_range)
            if len(ranges) != n_ch:
                raise ValueError(f"Recorder got {n_ch} channels but {len(ranges)} physical ranges.")
        out = []
        for name, r in zip(self.ch_names, ranges):
            lo, hi = (float(v) for v in r)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"physical range of {name!r} must be finite with min < max, got {r}."
                )
            for v in (lo, hi):
                if len(np.format_float_positional(v, trim="-")) > 8:
                    raise ValueError(
                        f"physical range of {name!r}: {v} does not fit the 8-character EDF field."
                    )
            out.append((lo, hi))
        return tuple(out)

    def _build_header(
        self, prefilters, patient_code, patient_name, sex, birthdate, equipment, technician, admin
    ) -> bytes:
        """Return the EDF+ header bytes, built by edfio from a one-record template."""
        import edfio

        spr = self.samples_per_record
        signals = [
            edfio.EdfSignal.from_digital(
                np.zeros(spr, np.int16),
                self.sfreq,
                label=name,
                transducer_type=_TRANSDUCER.get(t, ""),
                physical_dimension=unit,
                physical_range=rng,
                digital_range=DIGITAL_RANGE,
                prefiltering=pf,
            )
            for name, t, unit, rng, pf in zip(
                self.ch_names, self.ch_types, self.units, self.physical_ranges, prefilters
            )
        ]

        def field(v: str) -> str:
            return "_".join(str(v).split()) or "X"

        check_option("sex", sex, ("X", "F", "M"))
        patient = edfio.Patient(
            code=field(patient_code), sex=sex, birthdate=birthdate, name=field(patient_name)
        )
        recording = edfio.Recording(
            startdate=self.start.date(),
            hospital_administration_code=field(admin),
            investigator_technician_code=field(technician),
            equipment_code=field(equipment),
        )
        # A placeholder annotation sized so that edfio reserves exactly annotation_bytes per
        # record: "+0\x14\x14\x00" (5 bytes) + "+0\x14" + text + "\x14\x00" (5 + len(text)).
        placeholder = edfio.EdfAnnotation(0.0, None, "x" * (self.annotation_bytes - 10))
        edf = edfio.Edf(
            signals,
            patient=patient,
            recording=recording,
            starttime=self.start.time(),
            data_record_duration=self.record_duration,
            annotations=[placeholder],
        )
        template = edf.to_bytes()
        n_signals = len(signals) + 1
        header_len = FIXED_BYTES + SIGNAL_BYTES * n_signals
        header = bytearray(template[:header_len])
        if len(template) != header_len + self._record_bytes:  # pragma: no cover - edfio change
            raise HeadsetError("edfio built an unexpected EDF template")
        a, b = _N_RECORDS_SPAN
        header[a:b] = b"0".ljust(b - a)
        return bytes(header)

    @property
    def _record_bytes(self) -> int:
        return 2 * self.samples_per_record * len(self.ch_names) + self.annotation_bytes

    # ----------------------------------------------------------------- writing
    def annotate(self, annotation: Annotation) -> None:
        """Queue an annotation; it is written in the current record.

        Parameters
        ----------
        annotation : Annotation
            Onset in seconds since the session start (may be in the past), duration in
            seconds (0 for an instant), text.
        """
        self._check_open()
        validate_type("annotation", annotation, Annotation)
        if not np.isfinite(annotation.onset) or not (annotation.duration >= 0):
            raise ValueError(f"annotation needs a finite onset and duration >= 0: {annotation}")
        self._pending.append(annotation)

    def write(self, chunk: Chunk) -> None:
        """Append a chunk of samples (and its annotations) to the recording.

        Parameters
        ----------
        chunk : Chunk
            Data of shape ``(n_channels, n_samples)`` in the channels' units (µV for exG),
            with the recorder's channel names in the same order and its sampling rate.
        """
        self._check_open()
        validate_type("chunk", chunk, Chunk)
        if tuple(chunk.ch_names) != self.ch_names:
            raise ValueError(
                f"chunk channels {tuple(chunk.ch_names)} differ from the recorder's "
                f"{self.ch_names}."
            )
        if float(chunk.sfreq) != self.sfreq:
            raise ValueError(f"chunk sfreq {chunk.sfreq} differs from the recorder's {self.sfreq}.")
        for ann in chunk.annotations:
            if self.annotate_flags and (
                ann.description == GAP_TEXT or ann.description.startswith(LEAD_OFF_PREFIX)
            ):
                continue  # the flag runs give these, with the onset and duration of the samples
            self.annotate(ann)
        data, flags, first = chunk.data, chunk.flags, int(chunk.first_sample)
        if first < self._next_sample:  # overlap: drop what is already written
            skip = min(self._next_sample - first, data.shape[1])
            self.stats["dropped"] += skip
            data, flags, first = data[:, skip:], flags[:, skip:], first + skip
        if data.shape[1] == 0:
            self._maybe_flush()
            return
        if first > self._next_sample:  # hole: fill with the last value, annotate a gap
            hole_start = self._next_sample
            self.stats["filled"] += first - hole_start
            if not self.annotate_flags:
                self._flag_annotation(hole_start, first, GAP_TEXT)
            step = 64 * self.samples_per_record  # bounded memory whatever the hole
            while self._next_sample < first:
                n_fill = min(step, first - self._next_sample)
                fill = np.repeat(self._last[:, None], n_fill, axis=1)
                fill_flags = np.full((len(self.ch_names), n_fill), FLAG_GAP, np.uint8)
                self._append(fill, fill_flags, self._next_sample)
        self._append(self._to_digital(data), flags, first)
        self._maybe_flush()

    def _to_digital(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data, dtype=np.float64)
        dmin, dmax = DIGITAL_RANGE
        dig = (data - self._pmin_col) * self._scale_col
        dig += dmin
        np.rint(dig, out=dig)
        lo, hi = dig.min(), dig.max()
        if not (dmin <= lo and hi <= dmax):  # also true for NaN
            finite = np.isfinite(dig)
            if not finite.all():
                for name, b in zip(self.ch_names, (~finite).sum(axis=1)):
                    self.stats["nonfinite"][name] += int(b)
                zero = np.rint(-self._pmin_col * self._scale_col + dmin)  # physical 0
                dig = np.where(finite, dig, zero)
            out = (dig < dmin) | (dig > dmax)
            for name, n in zip(self.ch_names, out.sum(axis=1)):
                self.stats["clipped"][name] += int(n)
            np.clip(dig, dmin, dmax, out=dig)
        return dig.astype(np.int16)

    def _append(self, digital: np.ndarray, flags: np.ndarray, first: int) -> None:
        n = digital.shape[1]
        if self.annotate_flags and (
            self._gap_start is not None or self._n_leadoff_open or flags.any()
        ):
            self._track_flags(flags, first)
        self._last = digital[:, -1].copy()
        self._next_sample = first + n
        self.stats["samples"] += n
        spr = self.samples_per_record
        pos = 0
        if self._fill:  # complete the record in progress
            pos = min(spr - self._fill, n)
            self._rec_buf[:, self._fill : self._fill + pos] = digital[:, :pos]
            self._fill += pos
            if self._fill == spr:
                self._emit_records(self._rec_buf)
                self._fill = 0
        n_rec = (n - pos) // spr
        if n_rec:
            self._emit_records(digital[:, pos : pos + n_rec * spr])
            pos += n_rec * spr
        if pos < n:
            self._rec_buf[:, : n - pos] = digital[:, pos:]
            self._fill = n - pos

    @property
    def _n_leadoff_open(self) -> int:
        return sum(x is not None for x in self._leadoff_start)

    def _track_flags(self, flags: np.ndarray, first: int) -> None:
        """Turn runs of FLAG_GAP (any channel) and FLAG_LEAD_OFF (per channel) into annotations."""
        flags = np.asarray(flags, np.uint8)
        gap = (flags & FLAG_GAP).any(axis=0)
        self._gap_start = self._runs(gap, first, self._gap_start, GAP_TEXT)
        lead = (flags & FLAG_LEAD_OFF) != 0
        for i, name in enumerate(self.ch_names):
            self._leadoff_start[i] = self._runs(
                lead[i], first, self._leadoff_start[i], LEAD_OFF_PREFIX + name
            )

    def _runs(self, mask: np.ndarray, first: int, open_start: int | None, text: str):
        """Annotate the runs of ``mask`` that end in this chunk; return the open run's start.

        ``mask`` covers device samples ``first .. first + len(mask) - 1``; ``open_start`` is the
        start of a run that was still going at the end of the previous chunk.
        """
        if open_start is None and not mask.any():
            return None
        d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        starts = (np.flatnonzero(d == 1) + first).tolist()
        stops = (np.flatnonzero(d == -1) + first).tolist()
        if open_start is not None:
            if starts and starts[0] == first:
                starts[0] = open_start  # the open run goes on
            else:
                starts.insert(0, open_start)  # the open run ended just before this chunk
                stops.insert(0, first)
        still_open = None
        if stops and stops[-1] == first + len(mask):
            still_open = starts.pop()
            stops.pop()
        for s, e in zip(starts, stops):
            self._flag_annotation(s, e, text)
        return still_open

    def _flag_annotation(self, start: int, stop: int, text: str) -> None:
        self._pending.append(Annotation(start / self.sfreq, (stop - start) / self.sfreq, text))

    def _emit_records(self, digital: np.ndarray) -> None:
        n_ch = len(self.ch_names)
        spr = self.samples_per_record
        n_rec = digital.shape[1] // spr
        block = np.empty((n_rec, self._record_bytes), np.uint8)
        sig = digital.reshape(n_ch, n_rec, spr).transpose(1, 0, 2).astype("<i2")
        block[:, : 2 * n_ch * spr] = sig.reshape(n_rec, -1).view(np.uint8)
        block[:, 2 * n_ch * spr :] = 0
        for i in range(n_rec):
            tal = self._annotation_record(self.stats["records"] + i)
            block[i, 2 * n_ch * spr : 2 * n_ch * spr + len(tal)] = np.frombuffer(tal, np.uint8)
        self.stats["records"] += n_rec
        self._records_buffered += n_rec
        self._buffer += block.tobytes()

    def _annotation_record(self, index: int) -> bytes:
        """TAL bytes of record ``index``: time keeping, then pending annotations that fit."""
        rec_onset = float(Fraction(self.record_duration).limit_denominator(10**6) * index)
        keeping = _tal(rec_onset, None, "")
        self._last_tal = self._fill_tal(bytearray(keeping), len(keeping))
        return self._last_tal

    def _fill_tal(self, out: bytearray, keeping: int) -> bytes:
        """Append pending annotations to the TALs ``out`` of a record while they fit."""
        origin = self.first_sample / self.sfreq
        while self._pending:
            ann = self._pending[0]
            text = ann.description.translate(_TAL_FORBIDDEN)
            tal = _tal(ann.onset - origin, ann.duration, text)
            if len(out) + len(tal) > self.annotation_bytes:
                if len(out) > keeping:
                    break  # wait for the next record
                # Too long even for an otherwise empty record: shorten the text.
                excess = len(out) + len(tal) - self.annotation_bytes
                text = text.encode()[: max(len(text.encode()) - excess, 0)]
                tal = _tal(ann.onset - origin, ann.duration, text.decode("utf-8", "ignore"))
                self.stats["truncated_annotations"] += 1
            out += tal
            self._pending.popleft()
            self.stats["annotations"] += 1
        return bytes(out)

    # ---------------------------------------------------------------- flushing
    def _maybe_flush(self) -> None:
        if (
            time.monotonic() - self._last_flush >= self.flush_interval
            or len(self._buffer) >= _MAX_BUFFER_BYTES
        ):
            self.flush()

    def flush(self) -> None:
        """Write the buffered complete records to disk and update the record count.

        The records are written and synced before the header's record count is rewritten
        (and synced), so the header never counts a record that is not on disk.
        """
        self._check_open()
        if self._buffer:
            self._write_all(bytes(self._buffer))
            self._buffer.clear()
            self._sync()
            a, b = _N_RECORDS_SPAN
            count = f"{self.stats['records']:<{b - a}d}".encode()
            os.pwrite(self._fd, count, a)
            self._sync()
            self._records_buffered = 0
        self.stats["flushes"] += 1
        self._last_flush = time.monotonic()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def _sync(self) -> None:
        if self._fsync:
            os.fsync(self._fd)

    # ----------------------------------------------------------------- closing
    def close(self) -> None:
        """Close open flag runs, complete the last record, flush and close the file.

        Calling it again does nothing.
        """
        if self._closed:
            return
        try:
            if self._gap_start is not None:
                self._flag_annotation(self._gap_start, self._next_sample, GAP_TEXT)
                self._gap_start = None
            for i, name in enumerate(self.ch_names):
                if self._leadoff_start[i] is not None:
                    self._flag_annotation(
                        self._leadoff_start[i], self._next_sample, LEAD_OFF_PREFIX + name
                    )
                    self._leadoff_start[i] = None
            spr = self.samples_per_record
            n_part = self._fill
            if n_part or (self._pending and self.stats["records"] == 0):
                n_pad = spr - n_part
                self._rec_buf[:, n_part:] = self._last[:, None]
                self.stats["padded"] += n_pad
                self._emit_records(self._rec_buf)
                self._fill = 0
            self.flush()
            if self._pending and self.stats["records"]:
                # Annotations that came after the last sample: into the last record if they fit.
                tal = self._fill_tal(bytearray(self._last_tal), 0)
                offset = (
                    self._header_len
                    + (self.stats["records"] - 1) * self._record_bytes
                    + 2 * spr * len(self.ch_names)
                )
                os.pwrite(self._fd, tal, offset)
                self._sync()
            while self._pending:  # annotations that still do not fit: extra (padded) records
                self.stats["padded"] += spr
                self._emit_records(np.repeat(self._last[:, None], spr, axis=1))
            self.flush()
        finally:
            self._closed = True
            os.close(self._fd)

    def _check_open(self) -> None:
        if self._closed:
            raise HeadsetError(f"{self.path}: the recorder is closed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def duration(self) -> float:
        """Seconds of signal received so far (from the file's first sample)."""
        return (self._next_sample - self.first_sample) / self.sfreq

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Recorder {self.path.name!r} {len(self.ch_names)} ch at {self.sfreq:g} Hz, "
            f"{self.stats['records']} records, {state}>"
        )


def record_chunks(
    path,
    chunks: Iterable[Chunk],
    **kwargs,
) -> dict:
    """Record an iterable of chunks to an EDF+ file (convenience around :class:`Recorder`).

    Parameters
    ----------
    path : str or path-like
        Output file.
    chunks : iterable of Chunk
        The chunks, in order; channel names, types and rate are taken from the first one.
    **kwargs
        Passed to :class:`Recorder`.

    Returns
    -------
    dict
        The recorder's :attr:`Recorder.stats`.
    """
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        raise ValueError("record_chunks needs at least one chunk.")
    with Recorder(path, first.ch_names, first.ch_types, first.sfreq, **kwargs) as rec:
        rec.write(first)
        for chunk in it:
            rec.write(chunk)
    return rec.stats
