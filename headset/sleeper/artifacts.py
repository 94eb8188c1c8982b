"""Signal artifacts and faults of the electrodes and the amplifier (from ``FaultConfig``).

Applied inside the sleeper, each seeded from its own stream (switching faults on does not change
the physiology underneath): mains interference (50/60 Hz and its third harmonic, a different
amplitude per electrode), movement artifacts (large slow swings on every exG channel, an EMG
burst and an accelerometer jolt), electrode pops (a step on one channel decaying over 0.2-1 s),
lead-off (one electrode flat at 0 or railed at the ADC limit for 30-300 s, flagged
``FLAG_LEAD_OFF``), saturation (an input beyond +-187.5 mV clipped at the rail, flagged
``FLAG_SATURATED``) and sweat drift (slow baseline wander). Each is annotated.
Packet and transport faults belong to the device layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..chunk import FLAG_LEAD_OFF, FLAG_SATURATED, Annotation
from ..faults import FaultConfig
from ._kernels import clip_at_rail
from .montage import CHANNELS

#: ADC input range (ADS1299 at gain 24), µV.
RAIL_UV = 187_500.0
_NAMES = tuple(CHANNELS)


def _count(rng: np.random.Generator, expected: float) -> int:
    """Integer count with mean ``expected`` (floor plus a Bernoulli remainder)."""
    base = int(np.floor(expected))
    return base + int(rng.random() < expected - base)


class FaultInjector:
    """Plans and applies the signal faults of one night.

    Parameters
    ----------
    config : FaultConfig
        Which faults, how strong.
    sfreq : float
        Sampling rate, Hz.
    n_samples : int
        Length of the night, samples.
    rng : numpy.random.Generator
        Plans the night's lead-off and saturation episodes and per-channel constants.
    exg_rows : sequence of int
        Internal rows of the exG channels in the montage (faults hit only those).
    """

    def __init__(
        self,
        config: FaultConfig,
        sfreq: float,
        n_samples: int,
        rng: np.random.Generator,
        exg_rows: Sequence[int],
    ):
        self.cfg = config
        self.sfreq = sfreq
        self.n_samples = n_samples
        self.rows = tuple(exg_rows)
        self._rows = np.array(self.rows, dtype=np.int64)
        n_all = len(CHANNELS)
        self.mains_gain = rng.uniform(0.5, 1.5, n_all)
        self.mains_phase = rng.uniform(0, 2 * np.pi, n_all)
        self.drift_f = rng.uniform(0.003, 0.04, (n_all, 3))
        self.drift_ph = rng.uniform(0, 2 * np.pi, (n_all, 3))
        self.drift_a = rng.uniform(0.5, 1.0, (n_all, 3))
        self.drift_a /= self.drift_a.sum(axis=1, keepdims=True)
        self.episodes: list[tuple[int, int, int, str, float]] = []  # start, stop, row, kind, value
        if self.rows:
            for kind, count, lo, hi in (
                ("leadoff", config.leadoff, 30.0, 300.0),
                ("saturation", config.saturation, 2.0, 20.0),
            ):
                for _ in range(_count(rng, count)):
                    dur = int(rng.uniform(lo, hi) * sfreq)
                    start = int(rng.integers(0, max(n_samples - dur, 1)))
                    row = self.rows[int(rng.integers(len(self.rows)))]
                    if kind == "leadoff":
                        value = 0.0 if rng.random() < 0.5 else float(rng.choice([-1, 1]) * RAIL_UV)
                    else:
                        value = float(rng.choice([-1, 1]) * rng.uniform(1.2, 3.0) * RAIL_UV)
                    self.episodes.append((start, min(start + dur, n_samples), row, kind, value))
            self.episodes.sort()

    @property
    def per_block(self) -> bool:
        """True when :meth:`plan_block` draws (movement artifacts or pops on some channel)."""
        return bool(self.rows) and (self.cfg.movement > 0 or self.cfg.pops > 0)

    def planned_annotations(self) -> list[tuple[int, Annotation]]:
        """Annotations of the faults planned for the night, with their release samples.

        Mains interference and sweat drift last the whole night: each is one annotation at
        the session start spanning the night, so the recording says what was applied.
        """
        out = []
        night = self.n_samples / self.sfreq
        if self.cfg.mains > 0 and self.rows:
            text = f"Mains interference: {self.cfg.mains_freq:g} Hz, {self.cfg.mains:g} uV"
            out.append((0, Annotation(0.0, night, text)))
        if self.cfg.drift > 0 and self.rows:
            out.append((0, Annotation(0.0, night, f"Sweat drift: {self.cfg.drift:g} uV")))
        for start, stop, row, kind, _ in self.episodes:
            text = "Lead off" if kind == "leadoff" else "Saturation"
            ann = Annotation(
                start / self.sfreq, (stop - start) / self.sfreq, f"{text}: {_NAMES[row]}"
            )
            out.append((start, ann))
        return out

    def plan_block(
        self, start: int, n: int, rng: np.random.Generator
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int, float, float]]]:
        """Draw the movement artifacts and electrode pops starting in one block.

        Parameters
        ----------
        start : int
            First sample of the block.
        n : int
            Block length, samples.
        rng : numpy.random.Generator
            The block's fault randomness.
        rows : sequence of int, optional
            Rows the movements reach (default: the montage's exG rows, as for faults).

        Returns
        -------
        movements : list of (onset, stop)
            Movement episodes, absolute samples.
        pops : list of (onset, row, amplitude µV, time constant s)
            Electrode pops.
        """
        fs, hours = self.sfreq, n / self.sfreq / 3600.0
        movements, pops = [], []
        if self.cfg.movement > 0 and self.rows:
            for _ in range(rng.poisson(self.cfg.movement * hours)):
                on = start + int(rng.integers(n))
                movements.append((on, on + int(rng.uniform(1.0, 5.0) * fs)))
        if self.cfg.pops > 0 and self.rows:
            for _ in range(rng.poisson(self.cfg.pops * hours)):
                on = start + int(rng.integers(n))
                row = self.rows[int(rng.integers(len(self.rows)))]
                amp = float(rng.choice([-1, 1]) * rng.uniform(200.0, 1500.0))
                pops.append((on, row, amp, float(rng.uniform(0.2, 1.0))))
        return movements, pops

    def add_transients(
        self,
        buf: np.ndarray,
        start: int,
        movements: list[tuple[int, int]],
        pops: list[tuple[int, int, float, float]],
        rng: np.random.Generator,
        rows: Sequence[int] | None = None,
    ) -> list[tuple[int, Annotation]]:
        """Add movement swings and pops into the block buffer; return their annotations.

        Parameters
        ----------
        buf : ndarray, shape (n_channels, n + tail)
            Internal signal buffer, µV (modified in place).
        start : int
            First sample of the block.
        movements, pops : list
            From :meth:`plan_block`.
        rng : numpy.random.Generator
            The block's fault randomness.
        rows : sequence of int, optional
            Rows the movements reach (default: the montage's exG rows, as for faults).

        Returns
        -------
        list of (release sample, Annotation)
            ``Movement`` and ``Electrode pop: <channel>`` annotations.
        """
        fs = self.sfreq
        anns = []
        for on, stop in movements:
            m = stop - on
            t = np.arange(m) / fs
            env = np.sin(np.pi * np.arange(m) / m) ** 2
            for row in self.rows if rows is None else rows:
                wave = np.zeros(m)
                for _ in range(3):
                    f = rng.uniform(0.4, 3.0)
                    wave += rng.uniform(50.0, 250.0) * np.sin(
                        2 * np.pi * f * t + rng.uniform(0, 6.3)
                    )
                _add(buf[row], on - start, env * wave)
            anns.append((on, Annotation(on / fs, m / fs, "Movement")))
        for on, row, amp, tau in pops:
            m = int(5 * tau * fs)
            wave = amp * np.exp(-np.arange(m) / (tau * fs))
            k = max(int(0.1 * m), 1)
            wave[-k:] *= np.linspace(1.0, 0.0, k)
            _add(buf[row], on - start, wave)
            anns.append((on, Annotation(on / fs, m / fs, f"Electrode pop: {_NAMES[row]}")))
        return anns

    def apply(self, out: np.ndarray, flags: np.ndarray, start: int) -> None:
        """Apply mains, drift, lead-off and saturation to a finished block.

        Parameters
        ----------
        out : ndarray, shape (n_channels, n)
            The block's signals, µV (modified in place).
        flags : ndarray of uint8, shape (n_channels, n)
            Per-sample flags (modified in place).
        start : int
            First sample of the block.
        """
        cfg, fs = self.cfg, self.sfreq
        n = out.shape[1]
        idx = np.arange(start, start + n)
        rows = list(self.rows)
        if not rows:
            return
        if cfg.mains > 0:
            ph = 2 * np.pi * cfg.mains_freq * idx / fs
            for r in rows:
                a = cfg.mains * self.mains_gain[r]
                out[r] += a * (np.sin(ph + self.mains_phase[r]) + 0.15 * np.sin(3 * ph))
        if cfg.drift > 0:
            t = idx / fs
            for r in rows:
                arg = 2 * np.pi * self.drift_f[r][:, None] * t + self.drift_ph[r][:, None]
                out[r] += cfg.drift * (self.drift_a[r] @ np.sin(arg))
        for s0, s1, row, kind, value in self.episodes:
            a, b = max(s0, start), min(s1, start + n)
            if a >= b:
                continue
            sl = slice(a - start, b - start)
            if kind == "leadoff":
                out[row, sl] = value
                flags[row, sl] |= FLAG_LEAD_OFF
                if value != 0.0:
                    flags[row, sl] |= FLAG_SATURATED
            else:
                out[row, sl] += value
        # anything beyond the input range is clipped at the rail
        clip_at_rail(out, flags, self._rows, RAIL_UV, FLAG_SATURATED)


def _add(row: np.ndarray, offset: int, wave: np.ndarray) -> None:
    a = max(offset, 0)
    b = min(offset + wave.size, row.size)
    if b > a:
        row[a:b] += wave[a - offset : b - offset]
