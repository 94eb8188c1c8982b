"""Chin-EMG generator: tonic muscle tone by stage, phasic twitches in REM, bursts on arousal.

Tone is highest in wake, lower in N1-N3 and lowest in REM (atonia); REM carries phasic twitches
shorter than 0.25 s, denser in a nightmare; an arousal out of REM raises the tone for its whole
length (AASM: >= 1 s); body movements give large bursts.
"""

from __future__ import annotations

import numpy as np

from ..stages import N2, R
from . import waveforms as wf
from .context import BlockContext
from .noise import BankGenerator, band_psd
from .subject import Subject

ROW = 5
#: Tone (RMS, fraction of the subject's relaxed-wake tone) in W, N1, N2, N3, R.
TONE = np.array([1.0, 0.45, 0.38, 0.33, 0.1])


class EMGGenerator(BankGenerator):
    """Streams the chin EMG block by block.

    Parameters as :class:`~headset.sleeper.noise.BankGenerator`.
    """

    def __init__(self, subject: Subject, sfreq: float, n: int, overlap: int):
        super().__init__(subject, sfreq, n, overlap)
        self.tone = TONE * subject.emg_tone

    def noise_psd(self, freqs: np.ndarray) -> np.ndarray:
        """One stream: the 15-120 Hz EMG band (see :meth:`BankGenerator.noise_psd`)."""
        hi = min(120.0, 0.42 * self.sfreq)
        return band_psd(freqs, 15.0, hi, order=2)[None, :]

    def generate(self, ctx: BlockContext, buf: np.ndarray) -> None:
        """Add the chin EMG of one block into ``buf[ROW]``.

        See :meth:`~headset.sleeper.noise.BankGenerator.generate`.
        """
        s, rng, fs, n = self.s, ctx.rng, self.sfreq, ctx.n
        x = self.bank.block(rng)[0]
        tone = ctx.stage_rate(self.tone)
        tone = tone + s.emg_tone * (0.9 * ctx.arousal + 0.3 * ctx.nightmare + 3.0 * ctx.movement)
        tone = tone + s.emg_tone * (0.5 * ctx.daytime + ctx.talk)  # up and about: talking, chewing
        buf[ROW, :n] += tone * x
        if not ctx.in_mix(R, N2):  # twitches: REM (denser in a nightmare), a few in N2
            return
        rate = 6.0 * ctx.w[:, R] * (1.0 + 4.0 * ctx.nightmare) + 0.5 * ctx.w[:, N2]
        for i in ctx.event_onsets(rate):
            dur = rng.uniform(0.05, 0.25)
            m = max(int(dur * fs), 4)
            env = np.sin(np.pi * np.arange(m) / m) ** 2
            burst = np.diff(rng.standard_normal(m + 1)) / np.sqrt(2.0)
            amp = s.emg_tone * rng.uniform(0.8, 2.5)
            wf.add_at(buf[ROW], int(i), amp * env * burst)
