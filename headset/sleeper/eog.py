"""EOG generator: the eyes' movements, seen at E1-M2, E2-M2 and the frontal EEG.

E1 sits below the left outer canthus, E2 above the right one. The generator writes two hidden
sources: the horizontal movements of the corneo-retinal dipole (saccades, slow rolling and rapid
eye movements) and the vertical ones (blinks, and the vertical part of saccades, which go in any
direction). The sleeper's mixing spreads them with :func:`ocular_gains`: a horizontal movement
appears with opposite signs on E1 and E2 (anti-phase), a blink mostly on E2; the frontal EEG
sites pick them up too, the frontopolar site most (Plöchl et al. 2012), so a frontal lead in
wake carries blinks and saccades, slow rolling eye movements in N1 and rapid eye movements in
REM. Frontal EEG reaches both EOG electrodes in phase (also in the sleeper's mixing).

Wake: blinks (the subject's ``blink_rate`` with the eyes open), saccades, and with the eyes closed
fewer, smaller movements and the odd blink; N1: slow rolling eye movements (> 0.5 s deflections);
REM: bursts of rapid eye movements (< 0.5 s rise, 50-325 µV), denser in a nightmare; N2/N3:
none.
"""

from __future__ import annotations

import numpy as np

from ..stages import N1, R, W
from . import waveforms as wf
from .context import BlockContext
from .montage import CHANNELS, OCULAR_H, OCULAR_V
from .noise import BankGenerator, powerlaw_psd
from .topography import difference_matrix, site_vector

ROWS = (3, 4)
#: Gain of a (rightward-positive) eye movement and of a blink on E1 and E2.
MOVE_GAIN = np.array([-1.0, 0.9])
BLINK_GAIN = np.array([-0.45, 1.0])
#: Gain of the horizontal and vertical ocular sources at each EEG site (fractions of the EOG).
SITE_MOVE = site_vector(F3=-0.1, F4=0.1, C3=-0.04, C4=0.04, M1=-0.12, M2=0.12)
#: Saccades per minute of eyes-open wake (awake in bed: fewer than free viewing's 120-180).
SACCADES_OPEN_PER_MIN = 80.0
#: Saccades per minute added while up and about (reading, watching, talking: about 2 a second).
SACCADES_DAYTIME_EXTRA_PER_MIN = 30.0
SITE_BLINK = site_vector(Fpz=0.85, Fz=0.3, F=0.28, Cz=0.08, C=0.06, Pz=0.02, M=0.03)


def ocular_gains(name: str) -> tuple[float, float]:
    """Gains of the horizontal and vertical ocular sources on a channel.

    Parameters
    ----------
    name : str
        A channel of ``CHANNELS``.

    Returns
    -------
    tuple of float
        ``(horizontal, vertical)``: the EOG channels' own gains, the difference of the site
        gains for an EEG derivation, zero for the other channels.
    """
    if name in CHANNELS and CHANNELS[name] == "eog":
        k = ROWS.index(list(CHANNELS).index(name))
        return float(MOVE_GAIN[k]), float(BLINK_GAIN[k])
    if name in CHANNELS and CHANNELS[name] == "eeg":
        d = difference_matrix([name])[0]
        return float(d @ SITE_MOVE), float(d @ SITE_BLINK)
    return 0.0, 0.0


class EOGGenerator(BankGenerator):
    """Streams the ocular sources and the EOG electrodes' own noise block by block.

    Parameters as :class:`~headset.sleeper.noise.BankGenerator`.
    """

    def noise_psd(self, freqs: np.ndarray) -> np.ndarray:
        """Two streams, E1 and E2: ``1/f^1.2`` (see :meth:`BankGenerator.noise_psd`)."""
        return np.tile(2.0 * powerlaw_psd(freqs, 1.2), (2, 1))

    def generate(self, ctx: BlockContext, buf: np.ndarray) -> None:
        """Add one block: electrode noise into ``ROWS``, eye movements into the ocular rows.

        Horizontal movements go to the hidden row ``OCULAR_H``, blinks and vertical movements
        to ``OCULAR_V``.

        See :meth:`~headset.sleeper.noise.BankGenerator.generate`.
        """
        s, rng, fs, n = self.s, ctx.rng, self.sfreq, ctx.n
        x = self.bank.block(rng)
        buf[ROWS[0], :n] += x[0]
        buf[ROWS[1], :n] += x[1]
        g = s.eog_gain
        move = np.zeros(n + ctx.tail)
        vertical = np.zeros(n + ctx.tail)
        w, eo, a = ctx.w, ctx.eyes_open, ctx.arousal
        wake = w[:, W]
        # (an event whose rate is zero throughout the block draws nothing: its rate is not built)
        awake, aroused = ctx.in_mix(W), bool(a.any())
        # blinks: eyes open, arousals
        if awake or aroused:
            rate = s.blink_rate * wake * eo + 1.5 * wake * (1 - eo) + 8.0 * a
            for i in ctx.event_onsets(rate):
                wf.add_at(vertical, int(i), wf.blink(fs, rng.uniform(100.0, 250.0) * g))
        # saccades in any direction: with the eyes open a waking person looks around about every
        # second (free viewing: 2-3 saccades a second), far fewer with them closed (and arousals)
        if awake or aroused or ctx.daytime.any():
            rate = wake * (SACCADES_OPEN_PER_MIN * eo + 6.0 * (1 - eo)) + 6.0 * a
            rate = rate + SACCADES_DAYTIME_EXTRA_PER_MIN * ctx.daytime
            for i in ctx.event_onsets(rate):
                amp = rng.uniform(30.0, 150.0) * g
                mv = wf.eye_movement(fs, amp, rng.uniform(0.03, 0.07), 0.7, rng.uniform(0.2, 1.0))
                angle = rng.uniform(0.0, 2.0 * np.pi)
                wf.add_at(move, int(i), np.cos(angle) * mv)
                wf.add_at(vertical, int(i), np.sin(angle) * mv)
        # slow rolling eye movements: drowsy wake and N1
        if awake or ctx.in_mix(N1):
            rate = 6.0 * w[:, N1] + 1.5 * wake * (1 - eo)
            for i in ctx.event_onsets(rate):
                amp = rng.choice([-1.0, 1.0]) * rng.uniform(40.0, 110.0) * g
                wf.add_at(move, int(i), wf.rolling_eye_movement(fs, amp, rng.uniform(1.0, 4.0)))
        # rapid eye movements in bursts: REM (denser in a nightmare)
        if ctx.in_mix(R):
            self._rem_bursts(ctx, move)
        buf[OCULAR_H] += move
        buf[OCULAR_V] += vertical

    def _rem_bursts(self, ctx: BlockContext, move: np.ndarray) -> None:
        """Add bursts of rapid eye movements (REM; denser in a nightmare) into ``move``."""
        s, rng, fs, n, g = self.s, ctx.rng, self.sfreq, ctx.n, self.s.eog_gain
        rate = s.rem_density / 2.5 * ctx.w[:, R] * (1.0 + 3.0 * ctx.nightmare)
        for i in ctx.event_onsets(rate):
            t = int(i)
            sign = rng.choice([-1.0, 1.0])
            for _ in range(int(rng.integers(1, 5))):
                amp = sign * rng.uniform(50.0, 250.0) * g
                mv = wf.eye_movement(fs, amp, rng.uniform(0.06, 0.2), 0.6, rng.uniform(0.05, 0.4))
                wf.add_at(move, t, mv)
                t += int(rng.uniform(0.3, 1.0) * fs)
                if rng.random() < 0.6:
                    sign = -sign
                if t >= n + ctx.tail - int(3.5 * fs):
                    break
