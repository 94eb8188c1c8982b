"""Firmware of the simulated headset: an ADS1299-like analogue front end and packet framing.

The front end turns microvolts into signed 24-bit codes as the ADS1299 does at gain 24 with a
4.5 V reference: the input range is +-VREF/gain = +-187.5 mV and one code is
``LSB = 2 * VREF / gain / 2**24`` (0.02235 uV). Inputs beyond the range stick at the rails
(``CODE_MIN``/``CODE_MAX``), which the driver flags as saturated. Quantisation (rounding to the
nearest code) is the only change the firmware makes to an ExG signal: the driver multiplies the
codes back by ``LSB``, so a signal survives within half an LSB.

Auxiliary channels (by default those of type ``misc``: the accelerometer, in milli-g) bypass
the ADC: they travel as int16 (1 milli-g per LSB, +-32767), one value every ``aux_every`` samples
(sample-and-hold decimation: the value of the first sample of each group), which can model the
lower rate of a real headset's accelerometer. By default ``aux_every`` is 1 (every sample
travels), so the accelerometer reaches the driver changed only by its 1-mg quantisation.

Lead-off detection: the chip senses electrode impedance with a small excitation current; in the
simulation the electrode's true state is the sleeper's ground truth, so the firmware reads the
``"Lead off: <channel>"`` events of its source (onset and duration). It also reports a channel
off when its input is exactly flat (one code) over a whole packet, which a connected electrode
never is. The status is per packet: bit i of the mask is ExG channel i.

Framing goes through :func:`headset.protocol.encode_data`, where the byte layout is documented.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from dsp.validate import check_channels, check_positive

from .protocol import (
    AUX_MAX,
    AUX_MIN,
    CODE_MAX,
    CODE_MIN,
    MAX_EXG_CHANNELS,
    SEQ_MODULUS,
    encode_data,
)

LEADOFF_PREFIX = "Lead off: "


@njit(cache=True, inline="always")
def _round_clip(x, lo, hi):  # pragma: no cover - numba
    """``x`` rounded half to even, clipped to ``[lo, hi]`` (float); non-finite reads as ``hi``."""
    if not np.isfinite(x):
        return float(hi)
    x = np.rint(x)
    if x < lo:
        return float(lo)
    if x > hi:
        return float(hi)
    return x


@njit(cache=True)
def quantize_packets(data, rows, lsb, s, codes, flat):
    """Quantise the ExG rows of ``data`` into packets, and find the flat (channel, packet)s.

    The kernel of :meth:`Firmware.frame`, the same arithmetic as :meth:`Firmware.quantize`
    (divide by the LSB, non-finite -> positive rail, round half to even, clip to the rails).

    Parameters
    ----------
    data : ndarray of float64, shape (n_channels, n)
        Microvolts.
    rows : ndarray of int64, shape (C,)
        The ExG rows of ``data``, in packet order.
    lsb : float
        Microvolts per code.
    s : int
        Samples per packet (``n = n_packets * s``).
    codes : ndarray of int32, shape (n_packets, C, s)
        Receives the codes.
    flat : ndarray of bool, shape (n_packets, C)
        Receives True where a packet's channel holds one code strictly between the rails
        (needs ``s > 1``; with one sample a packet is never flat).
    """
    for c in range(rows.shape[0]):
        r = rows[c]
        for k in range(codes.shape[0]):
            first = 0
            same = s > 1
            for j in range(s):
                v = np.int32(_round_clip(data[r, k * s + j] / lsb, CODE_MIN, CODE_MAX))
                codes[k, c, j] = v
                if j == 0:
                    first = v
                elif v != first:
                    same = False
            flat[k, c] = same and CODE_MIN < first < CODE_MAX


@njit(cache=True)
def quantize_aux(data, rows, s, div, out):
    """Sample and quantise the auxiliary rows of ``data`` into packets.

    The value sent for each group of ``div`` samples is that of the group's first sample,
    rounded half to even to the 1-unit step; non-finite values read as ``AUX_MAX``; values
    stick at ``AUX_MIN``/``AUX_MAX``.

    Parameters
    ----------
    data : ndarray of float64, shape (n_channels, n)
        Samples (milli-g for the accelerometer).
    rows : ndarray of int64, shape (A,)
        The auxiliary rows of ``data``, in packet order.
    s : int
        Samples per packet (``n = n_packets * s``).
    div : int
        Samples per auxiliary value (``1 <= div <= s``).
    out : ndarray of int16, shape (n_packets, A, ceil(s / div))
        Receives the values.
    """
    for a in range(rows.shape[0]):
        r = rows[a]
        for k in range(out.shape[0]):
            for j in range(out.shape[2]):
                out[k, a, j] = np.int16(_round_clip(data[r, k * s + j * div], AUX_MIN, AUX_MAX))


class Firmware:
    """ADS1299-like front end plus framing of samples into DATA packets.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names of the source, in order.
    ch_types : sequence of str
        MNE channel types of the source.
    sfreq : float
        Sampling rate in Hz.
    samples_per_packet : int
        Samples per DATA packet (1..255); 8 at 256 Hz is a packet every 31.25 ms.
    gain : float
        Programmable gain (ADS1299: 1, 2, 4, 6, 8, 12 or 24).
    vref : float
        Reference voltage in volts.
    aux_every : int or None
        Samples per auxiliary value: 1 (default) sends every sample, so the accelerometer
        arrives unchanged but for its 1-mg quantisation; None sends one value per packet (a
        real headset's lower accelerometer rate; the driver holds it).
    aux_types : sequence of str
        Channel types sent on the auxiliary path.
    seq_start : int
        First sequence number (tests start near 65535 to exercise the wrap).
    leadoff_detection : bool
        Report lead-off status bits.
    """

    def __init__(
        self,
        ch_names: Sequence[str],
        ch_types: Sequence[str],
        sfreq: float,
        *,
        samples_per_packet: int = 8,
        gain: float = 24.0,
        vref: float = 4.5,
        aux_every: int | None = 1,
        aux_types: Sequence[str] = ("misc",),
        seq_start: int = 0,
        leadoff_detection: bool = True,
    ):
        self.ch_names, self.ch_types = check_channels(ch_names, ch_types)
        self.sfreq = check_positive("sfreq", sfreq)
        self.gain = check_positive("gain", gain)
        self.vref = check_positive("vref", vref)
        aux_set = set(aux_types)
        self.aux_idx = np.array([i for i, t in enumerate(self.ch_types) if t in aux_set], int)
        self.exg_idx = np.array([i for i, t in enumerate(self.ch_types) if t not in aux_set], int)
        if self.exg_idx.size > MAX_EXG_CHANNELS:
            raise ValueError(
                f"at most {MAX_EXG_CHANNELS} ExG channels fit a packet, got {self.exg_idx.size}."
            )
        self.samples_per_packet = samples_per_packet
        self._aux_every = aux_every
        self.seq = int(seq_start) % SEQ_MODULUS
        self.leadoff_detection = bool(leadoff_detection)
        self._leadoff: list[tuple[int, int, int]] = []  # (exg channel, start, stop) samples

    # -- configuration --------------------------------------------------------------------

    @property
    def samples_per_packet(self) -> int:
        """Samples per DATA packet."""
        return self._spp

    @samples_per_packet.setter
    def samples_per_packet(self, value: int) -> None:
        value = int(value)
        if not 1 <= value <= 255:
            raise ValueError(f"samples_per_packet must be within 1 and 255, got {value}.")
        self._spp = value

    @property
    def aux_every(self) -> int:
        """Samples per auxiliary value."""
        return self._aux_every or self._spp

    @property
    def lsb_uv(self) -> float:
        """Input-referred size of one ADC code in microvolts."""
        return 2.0 * self.vref / self.gain / 2**24 * 1e6

    @property
    def range_uv(self) -> float:
        """Input range (+-) in microvolts (187 500 uV at gain 24)."""
        return self.vref / self.gain * 1e6

    def describe(self) -> dict:
        """Stream description for the HELLO packet (JSON-serialisable)."""
        return {
            "sfreq": self.sfreq,
            "ch_names": list(self.ch_names),
            "ch_types": list(self.ch_types),
            "exg": self.exg_idx.tolist(),
            "aux": self.aux_idx.tolist(),
            "lsb_uv": self.lsb_uv,
            "aux_lsb": 1.0,
            "aux_unit": "mg",
            "gain": self.gain,
            "vref": self.vref,
            "samples_per_packet": self.samples_per_packet,
            "aux_every": self.aux_every,
        }

    # -- analogue front end ---------------------------------------------------------------

    def quantize(self, data_uv: np.ndarray) -> np.ndarray:
        """Convert microvolts to ADC codes: round to the nearest code, stick at the rails.

        Parameters
        ----------
        data_uv : ndarray of float, shape (..., n)
            Input voltages in microvolts. Non-finite values read as the positive rail
            (an open input floats there).

        Returns
        -------
        ndarray of int32, same shape
            Codes within ``CODE_MIN`` and ``CODE_MAX``.
        """
        x = np.asarray(data_uv, dtype=np.float64) / self.lsb_uv
        x = np.where(np.isfinite(x), x, CODE_MAX)
        return np.clip(np.rint(x), CODE_MIN, CODE_MAX).astype(np.int32)

    def to_uv(self, codes: np.ndarray) -> np.ndarray:
        """Convert ADC codes back to microvolts (float64)."""
        return np.asarray(codes, dtype=np.float64) * self.lsb_uv

    # -- lead-off -------------------------------------------------------------------------

    def note_event(self, onset: float, duration: float, description: str) -> None:
        """Take note of a ground-truth event; ``"Lead off: <channel>"`` sets lead-off status.

        Parameters
        ----------
        onset, duration : float
            Seconds since the session start.
        description : str
            Event text.
        """
        if not description.startswith(LEADOFF_PREFIX):
            return
        name = description[len(LEADOFF_PREFIX) :].strip()
        if name not in self.ch_names:
            return
        ch = self.ch_names.index(name)
        pos = np.flatnonzero(self.exg_idx == ch)
        if pos.size == 0:
            return
        start = int(round(onset * self.sfreq))
        stop = int(round((onset + max(duration, 0.0)) * self.sfreq))
        self._leadoff.append((int(pos[0]), start, max(stop, start + 1)))

    def _leadoff_masks(self, flat: np.ndarray, starts: np.ndarray, n_samp: int) -> np.ndarray:
        n = flat.shape[0]
        masks = np.zeros(n, dtype=np.int64)
        if not self.leadoff_detection or flat.shape[1] == 0:
            return masks
        if flat.any():
            weights = np.left_shift(1, np.arange(flat.shape[1], dtype=np.int64))
            masks |= (flat.astype(np.int64) * weights).sum(axis=1)
        if self._leadoff:
            stops = starts + n_samp
            keep = []
            for ch, a, b in self._leadoff:
                hit = (starts < b) & (stops > a)
                masks[hit] |= 1 << ch
                if b > int(stops[-1]):
                    keep.append((ch, a, b))
            self._leadoff = keep
        return masks

    # -- framing --------------------------------------------------------------------------

    def frame(
        self,
        data_uv: np.ndarray,
        first_sample: int,
        *,
        battery: int = 100,
        stim_state: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Quantise samples and frame them into DATA packets of one layout.

        Parameters
        ----------
        data_uv : ndarray of float, shape (n_channels, n)
            Samples in microvolts (auxiliary channels in their own unit, milli-g);
            ``n`` is a multiple of ``samples_per_packet`` or smaller than it (a last, short
            packet at the end of the night).
        first_sample : int
            Device sample counter of ``data_uv[:, 0]``.
        battery : int
            Battery percent reported in every packet.
        stim_state : int
            Stimulator state bits.

        Returns
        -------
        rows : ndarray of uint8, shape (n_packets, packet_size)
            The packets, one per row.
        starts : ndarray of int64, shape (n_packets,)
            Device sample counter of each packet's first sample.
        n_samp : int
            Samples per packet in this call.
        """
        data_uv = np.asarray(data_uv, dtype=np.float64)
        n_ch, n = data_uv.shape
        if n_ch != len(self.ch_names):
            raise ValueError(f"expected {len(self.ch_names)} channels, got {n_ch}.")
        s = self.samples_per_packet if n >= self.samples_per_packet else n
        if n == 0 or n % s:
            raise ValueError(
                f"frame() needs a multiple of {self.samples_per_packet} samples (or one short "
                f"packet), got {n}."
            )
        n_pk = n // s
        codes = np.empty((n_pk, self.exg_idx.size, s), dtype=np.int32)
        flat = np.empty((n_pk, self.exg_idx.size), dtype=np.bool_)
        quantize_packets(data_uv, self.exg_idx, self.lsb_uv, s, codes, flat)
        div = min(self.aux_every, s)
        aux = np.empty((n_pk, self.aux_idx.size, -(-s // div)), dtype=np.int16)
        quantize_aux(data_uv, self.aux_idx, s, div, aux)
        starts = first_sample + s * np.arange(n_pk, dtype=np.int64)
        seq = self.seq + np.arange(n_pk, dtype=np.int64)
        self.seq = int(seq[-1] + 1) % SEQ_MODULUS
        masks = self._leadoff_masks(flat, starts, s)
        rows = encode_data(
            seq,
            starts,
            masks,
            np.full(n_pk, int(battery)),
            np.full(n_pk, int(stim_state)),
            aux,
            codes,
            div,
        )
        return rows, starts, s
