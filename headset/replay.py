"""Replay an EDF, EDF+ or BDF file as a live source of Chunks (DESIGN sections 1, 3 and 6).

:class:`Replay` opens any EDF/EDF+/BDF/BDF+ recording, the project's own or real PSG recorded
elsewhere, and streams it through the same :class:`~headset.chunk.Chunk` interface as the
driver and the simulated sleeper (``read(n)``, iteration), at a chosen speed (``1`` = real
time, ``60``, ``"max"``).

What a replayed stream looks like
---------------------------------
- **Channels and types.** Every signal except the annotation signals, or those picked with
  ``channels``. Types come from the labels (:func:`headset.labels.infer_ch_type`):
  ``EEG ...``, ``EOG ...``, ``EMG ...``, ``ECG``/``EKG`` prefixes, then keywords
  (``E1``/``LOC``/``ROC``/``eye`` -> eog, ``chin``/``submental``/``leg`` -> emg, 10-20
  electrode names such as ``C4-M1`` -> eeg, respiration, SpO2, position, accelerometer... ->
  misc).
- **Units.** exG channels (eeg, eog, emg, ecg) are converted to microvolts from the header's
  physical dimension (``uV``/``µV``, ``mV``, ``V``, ``nV``; spaces ignored) and checked by the
  project's one unit check, :func:`headset.edf.units.check_units`, on the median over up to 60
  records spread over the file of the trimmed standard deviation (10 % cut at each end, as
  YASA's sanity check), so that a few records of artifact do not count. A channel with no or
  an unknown dimension gets the scale among µV, mV and V that puts it in 0.1-1000 µV. With
  ``check_units=True`` (the default) a declared unit whose converted level falls outside
  0.1-1000 µV is an error (a file in volts labelled µV shows 1e-5 "µV"); flat channels (level
  below two quantisation steps, e.g. lead-off) are exempt. Other channels keep their physical
  values and units.
- **Rates.** The stream has one rate: ``sfreq`` if given, else the main rate (the rate of most
  EEG channels, else of most exG channels, else of most channels; ties go to the higher rate).
  Channels at another rate are resampled to it with :func:`dsp.resample_poly` (the definition
  of ``scipy.signal.resample_poly``: polyphase FIR, zero padding at the file's ends). Chunks
  are resampled with enough context on each side that the streamed result equals resampling
  the whole channel at once (to float rounding), whatever the chunking. With
  ``resample=False`` such channels are dropped instead (and listed in :attr:`Replay.notes`).
- **Annotations** of the EDF+ annotation signal(s) arrive as
  :class:`~headset.chunk.Annotation` in the chunk whose time span reaches their onset
  (annotations before the start come with the first chunk). ``"Gap"`` and
  ``"Lead off: <channel>"`` annotations (written by :mod:`headset.recorder`) also set
  ``FLAG_GAP`` / ``FLAG_LEAD_OFF`` on the samples they cover, so a recorded session replays with
  its flags.
- **Bad files** raise :class:`~headset.errors.HeadsetError` with one line naming the file and
  the problem: missing file, not EDF/BDF, truncated header or data, no signals, no data records,
  malformed or non-finite header numbers, digital values outside the declared digital range
  ("NaN-like" values such as -32768 in a -32767..32767 file; ``on_invalid="flag"`` flags them
  ``FLAG_CORRUPT`` instead), implausible units, discontinuous EDF+D files (not supported).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from dsp.validate import check_option

from .chunk import FLAG_CORRUPT, FLAG_GAP, FLAG_LEAD_OFF, Annotation, Chunk
from .edf.header import digital_samples, edf_error, read_header, truncation_note
from .edf.units import check_units
from .errors import HeadsetError
from .labels import infer_ch_type
from .transport import parse_speed

_EXG = ("eeg", "eog", "emg", "ecg")
_TAL_RE = re.compile(rb"([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?\x14([^\x00]*?)\x14\x00")
_SCAN_BLOCK_BYTES = 16 * 1024 * 1024
_MAX_RESAMPLE_FACTOR = 1000  # largest up or down factor of the polyphase resampler


def _main_rate(rates: Sequence[float], types: Sequence[str]) -> float:
    for group in (("eeg",), _EXG, None):
        sel = [r for r, t in zip(rates, types) if group is None or t in group]
        if sel:
            values, counts = np.unique(sel, return_counts=True)
            best = counts.max()
            return float(values[counts == best].max())
    raise ValueError("no channels")  # pragma: no cover


@dataclass
class _Channel:
    index: int  # signal index in the file
    name: str
    ch_type: str
    unit: str  # unit of the streamed values
    factor: float  # physical -> streamed unit
    up: int = 1
    down: int = 1
    fast: bool = False  # read with the other channels at the stream rate

    @property
    def resampled(self) -> bool:
        return self.up != self.down


class Replay:
    """An EDF/EDF+/BDF file streamed as a live source of Chunks.

    Parameters
    ----------
    path : str or path-like
        The recording.
    speed : float or "max"
        Pacing: ``1`` streams in real time (``read`` waits until the samples it returns have
        been "recorded"), ``60`` sixty times faster, ``"max"`` (default) as fast as possible.
    chunk_size : int, optional
        Samples per chunk when iterating; default one second of samples.
    channels : sequence of str, optional
        Labels of the signals to stream, in that order; default every data signal.
    sfreq : float, optional
        Rate of the stream in Hz; default the main rate of the file (see the module notes).
    resample : bool
        Resample channels at another rate (default) or drop them.
    check_units : bool
        Raise on implausible exG amplitudes (trimmed SD outside 0.1-1000 µV after unit
        conversion). Default True.
    on_invalid : {"raise", "flag"}
        What digital values outside the declared digital range do: raise at opening (the
        whole file is scanned, in blocks) or be clipped and flagged ``FLAG_CORRUPT``.
    allow_truncated : bool
        Replay the complete records of a file cut short instead of refusing it (see
        :func:`read_header`); :attr:`notes` then says how many records are used.
    clock, sleep : callable
        Time source (seconds) and sleep function used for pacing; default
        :func:`time.monotonic` and :func:`time.sleep` (tests pass fakes).

    Attributes
    ----------
    header : EdfHeader
        The file's header.
    ch_names, ch_types, units : tuple of str
        Streamed channels, their types and the unit of their values (``"uV"`` for exG).
    sfreq : float
        Stream rate, Hz.
    n_samples : int
        Samples per channel in the whole stream.
    annotations : tuple of Annotation
        Every annotation of the file, sorted by onset (seconds from the first sample).
    notes : list of str
        What was inferred or changed (units guessed, channels resampled or dropped).
    chunk_size : int
        Samples per chunk when iterating.
    position : int
        Index of the next sample :meth:`read` returns.

    Raises
    ------
    HeadsetError
        For a bad file (one line naming the file and the problem).
    """

    def __init__(
        self,
        path,
        *,
        speed: float | str = "max",
        chunk_size: int | None = None,
        channels: Sequence[str] | None = None,
        sfreq: float | None = None,
        resample: bool = True,
        check_units: bool = True,
        on_invalid: str = "raise",
        allow_truncated: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        check_option("on_invalid", on_invalid, ("raise", "flag"))
        self.speed = parse_speed(speed) or None  # None: as fast as possible
        self.path = Path(path)
        self.header = hdr = read_header(self.path, allow_truncated=allow_truncated)
        self.notes: list[str] = []
        if hdr.missing_records:
            self.notes.append(truncation_note(hdr))
        self._clock, self._sleep = clock, sleep
        self._on_invalid = on_invalid
        rd = hdr.record_duration
        if hdr.reserved.endswith("+D"):
            self.notes.append("EDF+D file: checked to be continuous")

        data_idx = self._pick_signals(channels)
        types = [infer_ch_type(hdr.signals[i].label) for i in data_idx]
        rates = [hdr.signals[i].samples_per_record / rd for i in data_idx]
        self.sfreq = target = _main_rate(rates, types) if sfreq is None else _check_rate(sfreq)
        self._chans = chans = self._plan_channels(data_idx, types, rates, resample)
        self.n_samples = int(math.floor(hdr.n_records * rd * target + 1e-6))

        self._mm = np.memmap(
            self.path,
            dtype=np.uint8,
            mode="r",
            offset=hdr.header_bytes,
            shape=(hdr.n_records, hdr.record_bytes),
        )
        if on_invalid == "raise":
            self._scan_invalid()
        self._set_units(check_units)
        self.ch_names = tuple(c.name for c in chans)
        self.ch_types = tuple(c.ch_type for c in chans)
        self.units = tuple(c.unit for c in chans)
        self._prepare_fast()
        self.annotations = tuple(self._read_annotations())
        self._flag_intervals = self._intervals_from_annotations()
        self.chunk_size = (
            max(1, int(round(target))) if chunk_size is None else _positive_int(chunk_size)
        )
        self.position = 0
        self._next_ann = 0
        self._wall0: float | None = None
        self._pos0 = 0

    # ----------------------------------------------------------------- opening
    def _pick_signals(self, channels: Sequence[str] | None) -> list[int]:
        """Return the signal indices to stream: every data signal, or those named."""
        sigs = self.header.signals
        data_idx = list(self.header.data_signals)
        if channels is None:
            return data_idx
        labels = [sigs[i].label for i in data_idx]
        picked = []
        for name in channels:
            if name not in labels:
                raise edf_error(self.path, f"no channel {name!r} (channels: {', '.join(labels)})")
            picked.append(data_idx[labels.index(name)])
        return picked

    def _plan_channels(
        self, data_idx: list[int], types: list[str], rates: list[float], resample: bool
    ) -> list[_Channel]:
        """Return the streamed channels with their resampling ratios to :attr:`sfreq`."""
        sigs, target = self.header.signals, self.sfreq
        chans: list[_Channel] = []
        for i, t, r in zip(data_idx, types, rates):
            ratio = Fraction(target).limit_denominator(10**6) / Fraction(r).limit_denominator(10**6)
            if ratio != 1 and not resample:
                self.notes.append(f"{sigs[i].label}: dropped ({r:g} Hz, stream at {target:g} Hz)")
                continue
            if ratio != 1:
                if max(ratio.numerator, ratio.denominator) > _MAX_RESAMPLE_FACTOR:
                    raise edf_error(
                        self.path,
                        f"unsupported rate: channel {sigs[i].label!r} at {r:g} Hz cannot be "
                        f"resampled to {target:g} Hz (ratio {ratio}); pick channels or sfreq",
                    )
                self.notes.append(f"{sigs[i].label}: resampled {r:g} -> {target:g} Hz")
            chans.append(
                _Channel(
                    i, sigs[i].label, t, sigs[i].dimension, 1.0, ratio.numerator, ratio.denominator
                )
            )
        if not chans:
            raise edf_error(self.path, f"no channel at {target:g} Hz (resample=False)")
        if len({c.name for c in chans}) != len(chans):
            raise edf_error(self.path, "duplicate channel labels")
        return chans

    # --------------------------------------------------------------- low level
    def _prepare_fast(self) -> None:
        """Index arrays of the channels read in one go (those at the stream rate)."""
        hdr = self.header
        spr_stream = self.sfreq * hdr.record_duration
        rows, cols, lo, hi, gain, offset = [], [], [], [], [], []
        for i, ch in enumerate(self._chans):
            sig = hdr.signals[ch.index]
            ch.fast = not ch.resampled and sig.samples_per_record == spr_stream
            if ch.fast:
                first = sig.offset // hdr.bytes_per_sample
                rows.append(i)
                cols.append(np.arange(first, first + sig.samples_per_record))
                lo.append(sig.digital_min)
                hi.append(sig.digital_max)
                gain.append(sig.gain * ch.factor)
                offset.append(sig.physical_offset * ch.factor)

        def col(v, dtype=np.float64):
            return np.array(v, dtype)[:, None]

        self._fast = (
            np.array(rows, np.int64),
            np.array(cols, np.int64) if cols else np.zeros((0, 1), np.int64),
            col(lo, np.int32),
            col(hi, np.int32),
            col(gain),
            col(offset),
        )

    def _records(self, rec0: int, rec1: int) -> np.ndarray:
        """Every digital sample of records ``rec0 .. rec1 - 1``, int32, (n_rec, samples)."""
        return digital_samples(self._mm[rec0:rec1], self.header.bytes_per_sample)

    def _digital(self, sig_index: int, rec0: int, rec1: int) -> np.ndarray:
        """Digital samples of one signal over records ``rec0 .. rec1 - 1``, int32, 1-D."""
        s = self.header.signals[sig_index]
        bps = self.header.bytes_per_sample
        raw = self._mm[rec0:rec1, s.offset : s.offset + s.samples_per_record * bps]
        return digital_samples(raw, bps).ravel()

    def _native(self, ch: _Channel, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Values (streamed unit) and invalid mask of native samples ``a .. b - 1``."""
        s = self.header.signals[ch.index]
        spr = s.samples_per_record
        r0, r1 = a // spr, -(-b // spr)
        dig = self._digital(ch.index, r0, r1)[a - r0 * spr : b - r0 * spr]
        bad = (dig < s.digital_min) | (dig > s.digital_max)
        if bad.any():
            dig = np.clip(dig, s.digital_min, s.digital_max)
        phys = dig * s.gain + s.physical_offset
        if ch.factor != 1.0:
            phys *= ch.factor
        return phys, bad

    def _scan_invalid(self) -> None:
        """Raise if any sample of a streamed channel is outside its digital range."""
        hdr = self.header
        step = max(1, _SCAN_BLOCK_BYTES // hdr.record_bytes)
        for r0 in range(0, hdr.n_records, step):
            r1 = min(hdr.n_records, r0 + step)
            for ch in self._chans:
                s = hdr.signals[ch.index]
                dig = self._digital(ch.index, r0, r1)
                bad = (dig < s.digital_min) | (dig > s.digital_max)
                if bad.any():
                    k = int(np.flatnonzero(bad)[0])
                    t = (r0 + k // s.samples_per_record) * hdr.record_duration
                    raise edf_error(
                        self.path,
                        f"channel {s.label!r} has NaN-like digital values ({int(bad.sum())} in "
                        f"records {r0}-{r1 - 1}, first {int(dig[k])} at {t:g} s; digital range "
                        f"{s.digital_min}..{s.digital_max})",
                    )

    def _set_units(self, check: bool) -> None:
        """Convert exG channels to µV and check their amplitude (:func:`check_units`)."""
        hdr = self.header
        n_rec = hdr.n_records
        picks = np.unique(np.linspace(0, n_rec - 1, min(n_rec, 60)).astype(int))
        for ch in self._chans:
            if ch.ch_type not in _EXG:
                continue
            s = hdr.signals[ch.index]
            # the median over records of the per-record level: a few records of artifact
            # (saturation, movement) do not move it
            records = [
                np.clip(self._digital(ch.index, r, r + 1), s.digital_min, s.digital_max) * s.gain
                + s.physical_offset
                for r in picks
            ]
            verdict = check_units(
                s.label, records, dimension=s.dimension, flat_below=2 * abs(s.gain)
            )
            if check and not verdict.ok:
                raise edf_error(self.path, verdict.message)
            ch.factor, ch.unit = verdict.scale, "uV"
            if verdict.source != "declared":
                self.notes.append(
                    f"{s.label}: unit {s.dimension!r} unknown, taken as {verdict.unit_name}"
                )

    def _read_annotations(self) -> list[Annotation]:
        hdr = self.header
        idx = hdr.annotation_signals
        if not idx:
            return []
        bps = hdr.bytes_per_sample
        out: list[Annotation] = []
        offset = None
        rd = hdr.record_duration
        for r in range(hdr.n_records):
            for k, i in enumerate(idx):
                s = hdr.signals[i]
                raw = self._mm[r, s.offset : s.offset + s.samples_per_record * bps].tobytes()
                raw = raw.rstrip(b"\x00")
                if not raw:
                    continue
                for j, m in enumerate(_TAL_RE.finditer(raw + b"\x00")):
                    onset = float(m.group(1))
                    texts = m.group(3).split(b"\x14")
                    if k == 0 and j == 0 and texts == [b""]:  # time keeping TAL
                        if offset is None:
                            offset = onset
                        elif abs(onset - offset - r * rd) > 1e-6:
                            raise edf_error(
                                self.path,
                                f"discontinuous EDF+D recording (record {r} starts at "
                                f"{onset - offset:g} s, expected {r * rd:g} s): not supported",
                            )
                        continue
                    duration = float(m.group(2)) if m.group(2) else 0.0
                    for t in texts:
                        text = t.decode("utf-8", "replace").strip()
                        if text:
                            out.append(Annotation(onset, duration, text))
        if offset:
            out = [Annotation(a.onset - offset, a.duration, a.description) for a in out]
        out.sort(key=lambda a: a.onset)
        return out

    def _intervals_from_annotations(self):
        starts, stops, rows, bits = [], [], [], []
        names = list(self.ch_names)
        for a in self.annotations:
            if a.description == "Gap":
                row, bit = -1, FLAG_GAP
            elif a.description.startswith("Lead off: ") and a.description[10:] in names:
                row, bit = names.index(a.description[10:]), FLAG_LEAD_OFF
            else:
                continue
            s0 = int(round(a.onset * self.sfreq))
            s1 = max(s0 + 1, int(round((a.onset + a.duration) * self.sfreq)))
            starts.append(s0)
            stops.append(s1)
            rows.append(row)
            bits.append(bit)
        return (
            np.array(starts, np.int64),
            np.array(stops, np.int64),
            np.array(rows, np.int64),
            np.array(bits, np.uint8),
        )

    # ------------------------------------------------------------------ stream
    def _samples(self, ch: _Channel, s: int, e: int) -> tuple[np.ndarray, np.ndarray]:
        """Streamed values and invalid mask of stream samples ``s .. e - 1`` of a channel."""
        if not ch.resampled:
            return self._native(ch, s, e)
        from dsp.resample import resample_poly  # numba kernel, scipy's definition

        up, down = ch.up, ch.down
        n_native = self.header.n_records * self.header.signals[ch.index].samples_per_record
        margin = math.ceil(10 * max(up, down) / up) + 2
        a = max(0, ((s * down) // up - margin) // down * down)
        b = min(n_native, -(-(e * down) // up) + margin)
        x, bad = self._native(ch, a, b)
        y = resample_poly(x, up, down)
        k0 = s - a * up // down
        y = y[k0 : k0 + (e - s)]
        if y.size < e - s:  # past the end of a short channel
            y = np.concatenate([y, np.zeros(e - s - y.size)])
        if bad.any():
            src = np.minimum((np.arange(s, e) * down) // up - a, bad.size - 1)
            bad_out = bad[src]
        else:
            bad_out = np.zeros(e - s, bool)
        return y, bad_out

    def read(self, n: int | None = None) -> Chunk:
        """Return the next ``n`` samples of every channel.

        Parameters
        ----------
        n : int, optional
            Samples per channel; default :attr:`chunk_size`.

        Returns
        -------
        Chunk
            Data ``(n_channels, n)`` (fewer at the end of the file, 0 once :attr:`done`),
            the annotations whose onset falls before the chunk's end, and flags.
        """
        if self._mm is None:
            raise HeadsetError(f"{self.path}: the replay is closed")
        n = self.chunk_size if n is None else _positive_int(n, allow_zero=True)
        s = self.position
        e = min(self.n_samples, s + n)
        n_out = e - s
        data = np.empty((len(self._chans), n_out))
        flags = np.zeros((len(self._chans), n_out), np.uint8)
        if n_out:
            rows, cols, lo, hi, gain, offset = self._fast
            if rows.size:  # channels at the stream rate: one read for all of them
                spr = cols.shape[1]
                r0, r1 = s // spr, -(-e // spr)
                block = self._records(r0, r1)[:, cols]  # (n_rec, n_fast, spr)
                dig = block.transpose(1, 0, 2).reshape(rows.size, -1)[
                    :, s - r0 * spr : e - r0 * spr
                ]
                bad = (dig < lo) | (dig > hi)
                if bad.any():
                    dig = np.clip(dig, lo, hi)
                    flags[rows] |= np.where(bad, FLAG_CORRUPT, 0).astype(np.uint8)
                data[rows] = dig * gain + offset
            for i, ch in enumerate(self._chans):
                if not ch.fast:
                    data[i], bad = self._samples(ch, s, e)
                    if bad.any():
                        flags[i, bad] |= FLAG_CORRUPT
            st, sp, rows, bits = self._flag_intervals
            if st.size:
                hit = np.flatnonzero((st < e) & (sp > s))
                for j in hit:
                    lo, hi = max(st[j], s) - s, min(sp[j], e) - s
                    if rows[j] < 0:
                        flags[:, lo:hi] |= bits[j]
                    else:
                        flags[rows[j], lo:hi] |= bits[j]
        t_end = e / self.sfreq
        anns = []
        while self._next_ann < len(self.annotations) and (
            self.annotations[self._next_ann].onset < t_end or e >= self.n_samples
        ):
            anns.append(self.annotations[self._next_ann])
            self._next_ann += 1
        self._pace(e)
        self.position = e
        return Chunk(
            data=data,
            first_sample=s,
            sfreq=self.sfreq,
            ch_names=self.ch_names,
            ch_types=self.ch_types,
            flags=flags,
            annotations=tuple(anns),
        )

    def _pace(self, stop: int) -> None:
        if self.speed is None:
            return
        now = self._clock()
        if self._wall0 is None:
            self._wall0, self._pos0 = now, self.position
        due = self._wall0 + (stop - self._pos0) / self.sfreq / self.speed
        if due > now:
            self._sleep(due - now)

    def start(self) -> None:
        """Restart the pacing clock (the next chunk is due one chunk duration from now)."""
        self._wall0 = None

    def __iter__(self) -> Iterator[Chunk]:
        while not self.done:
            yield self.read()

    @property
    def done(self) -> bool:
        """True once every sample has been read."""
        return self.position >= self.n_samples

    @property
    def duration(self) -> float:
        """Length of the stream in seconds."""
        return self.n_samples / self.sfreq

    def read_all(self) -> Chunk:
        """Return the rest of the stream as one Chunk (no pacing), for offline use."""
        speed, self.speed = self.speed, None
        try:
            return self.read(max(self.n_samples - self.position, 0))
        finally:
            self.speed = speed

    def close(self) -> None:
        """Release the file (idempotent)."""
        self._mm = None

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Replay {self.path.name!r} {len(self.ch_names)} ch at {self.sfreq:g} Hz, "
            f"{self.duration:g} s, {len(self.annotations)} annotations>"
        )


def _check_rate(sfreq) -> float:
    if not (isinstance(sfreq, int | float) and math.isfinite(sfreq) and sfreq > 0):
        raise ValueError(f"sfreq must be a positive number, got {sfreq!r}.")
    return float(sfreq)


def _positive_int(n, allow_zero: bool = False) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"number of samples must be an int, got {type(n).__name__}.")
    if n < 0 or (n == 0 and not allow_zero):
        raise ValueError(f"number of samples must be positive, got {n}.")
    return int(n)
