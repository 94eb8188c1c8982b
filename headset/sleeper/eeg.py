"""EEG generator: every EEG derivation of the montage, with the AASM signatures of each stage.

The EEG is a smooth aperiodic background plus rhythms and transients on top of it (DESIGN 4):

- Aperiodic activity ``level / f^x`` (the sum of three power-law bases, ``x`` = 1, 2, 3, mixed to
  the stage's exponent): the exponent steepens from wake (the subject's ``ap_exponent``, about
  1.6) through N1 and REM to N2 and N3 (about 2.7), as fitted over 1-40 Hz by Lendner et al.
  (eLife 2020) and Schneider et al. (Front. Neuroinform. 2022).
- Slow-wave activity (a broad low-frequency component peaking below 1 Hz, frontal): N2 and N3,
  scaled by the homeostatic pressure.
- Theta (drowsiness and REM, central), alpha (occipital-parietal: eyes-closed wake, waxing and
  waning with a slow random envelope, vanishing with the eyes open; weaker in REM), beta (eyes-open
  wake, arousals, hyperarousal) and scalp-muscle activity (broadband above ~15 Hz, frontalis and
  temporalis: wake, more with the eyes open, least in REM).
- Transients with their own topography, jittered from event to event (slow waves are local,
  Nir et al. 2011): sleep spindles (fast centro-parietal, slow frontal; N2, fewer in N3),
  K-complexes (frontal, N2), vertex sharp waves (N1) and sawtooth bursts (REM).

Each derivation is the difference of its two sites (:mod:`.topography`), so a bipolar lead
between nearby sites carries less of a widespread rhythm. The eyes reach the EEG through the
sleeper's mixing of the ocular sources (:mod:`.eog`). Rhythm spectra are smooth bumps on the
background, with no band edges: the spectrum has no notches between bands.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..stages import N1, N2, N3, R, W
from . import waveforms as wf
from ._kernels import column_means, mix_eeg
from .context import BlockContext
from .montage import CHANNELS, EEG_ROWS
from .noise import BankGenerator, band_psd, bump_psd, powerlaw_psd, slow_psd
from .profiles import Profile
from .subject import Subject
from .topography import difference_matrix, field_modes, site_vector

#: Per-stage (W, N1, N2, N3, R) aperiodic PSD at 1 Hz (µV^2/Hz, at a site of gain 1) and
#: exponent offset from the subject's wake exponent.
AP_LEVEL = np.array([30.0, 40.0, 90.0, 160.0, 30.0])
AP_STEEPER = np.array([0.0, 0.25, 0.6, 1.1, 0.35])

#: Upper edge of the aperiodic background, Hz (steep but smooth: fewer noise bins to draw).
AP_TOP = 48.0
#: Components: the aperiodic background, then the rhythms.
C_AP, C_SLOW, C_THETA, C_ALPHA, C_BETA, C_MUSCLE = range(6)
#: Per-stage RMS (µV at a site of gain 1, before subject scaling) of slow-wave activity, theta,
#: alpha (eyes closed), beta and scalp muscle.
RHYTHM_RMS = np.array(
    [
        # slow theta alpha beta muscle
        [0.0, 3.0, 9.0, 2.0, 2.5],  # W
        [4.5, 6.5, 2.5, 1.2, 1.2],  # N1
        [10.0, 5.0, 1.0, 0.8, 0.8],  # N2
        [36.0, 4.5, 0.8, 0.7, 0.7],  # N3
        [3.0, 5.0, 3.0, 1.2, 0.3],  # R
    ]
)

#: Per component: site gains and the correlation length of its field, cm.
FIELDS: tuple[tuple[np.ndarray, float], ...] = (
    # aperiodic background: everywhere; the mastoid is a nearly inactive reference
    (site_vector(Fpz=0.9, Fz=1.0, F=1.0, Cz=1.05, C=1.0, Pz=1.0, Oz=0.9, O=0.9, M=0.45), 7.0),
    # slow-wave activity: frontal maximum
    (site_vector(Fpz=0.9, Fz=1.0, F=1.0, Cz=0.9, C=0.8, Pz=0.65, Oz=0.45, O=0.45, M=0.25), 8.0),
    # theta: central
    (site_vector(Fpz=0.6, Fz=0.9, F=0.8, Cz=1.0, C=0.85, Pz=0.8, Oz=0.55, O=0.55, M=0.2), 7.0),
    # alpha: occipital-parietal
    (site_vector(Fpz=0.12, Fz=0.2, F=0.2, Cz=0.4, C=0.35, Pz=0.75, Oz=1.0, O=1.0, M=0.3), 5.0),
    # beta: fronto-central
    (site_vector(Fpz=0.9, Fz=1.0, F=1.0, Cz=0.9, C=0.9, Pz=0.8, Oz=0.7, O=0.7, M=0.4), 5.0),
    # scalp muscle: frontalis at the forehead, temporalis and neck near mastoids and occiput
    (site_vector(Fpz=1.0, Fz=0.4, F=0.5, Cz=0.1, C=0.25, Pz=0.1, Oz=0.35, O=0.35, M=0.8), 3.0),
)

#: Site gains of the transients.
FAST_SPINDLE = site_vector(Fpz=0.25, Fz=0.55, F=0.45, Cz=1.0, C=0.9, Pz=0.55, Oz=0.2, O=0.2, M=0.1)
SLOW_SPINDLE = site_vector(Fpz=0.6, Fz=1.0, F=0.9, Cz=0.6, C=0.5, Pz=0.3, Oz=0.1, O=0.1, M=0.1)
K_COMPLEX = site_vector(Fpz=0.85, Fz=1.0, F=0.95, Cz=0.85, C=0.75, Pz=0.55, Oz=0.35, O=0.35, M=0.1)
VERTEX = site_vector(Fpz=0.3, Fz=0.7, F=0.5, Cz=1.0, C=0.7, Pz=0.6, Oz=0.2, O=0.2, M=0.1)
SAWTOOTH = site_vector(Fpz=0.5, Fz=0.8, F=0.7, Cz=1.0, C=0.8, Pz=0.6, Oz=0.3, O=0.3, M=0.1)
#: Event-to-event log-normal jitter of a transient's site gains (sd of the log).
TOPO_JITTER = 0.3

#: The EEG derivations, in internal row order.
NAMES: tuple[str, ...] = tuple(name for i, name in enumerate(CHANNELS) if i in EEG_ROWS)


class EEGGenerator(BankGenerator):
    """Streams every EEG derivation of ``CHANNELS`` block by block.

    Parameters
    ----------
    subject : Subject
        The person.
    profile : Profile
        The kind of sleeper.
    sfreq, n, overlap
        As :class:`~headset.sleeper.noise.BankGenerator`.
    rows : sequence of int, optional
        Internal rows (of ``EEG_ROWS``) to render; default all. The randomness drawn does not
        depend on it, so a derivation's signal is the same whichever others are rendered.
    """

    def __init__(
        self,
        subject: Subject,
        profile: Profile,
        sfreq: float,
        n: int,
        overlap: int,
        rows: Sequence[int] | None = None,
    ):
        rows = EEG_ROWS if rows is None else tuple(rows)
        if not set(rows) <= set(EEG_ROWS):
            raise ValueError(f"rows must be EEG rows {EEG_ROWS}, got {rows}.")
        #: derivations rendered: their index in NAMES and their internal row
        self.keep = np.array([EEG_ROWS.index(r) for r in rows], dtype=np.int64)
        self.rows = np.array(rows, dtype=np.int64)
        self.p = profile
        self.diff = difference_matrix(NAMES)
        # float32 loadings, applied to spectra viewed as interleaved (re, im) float32: a real
        # matrix product, far cheaper than a complex one; only the rendered derivations' rows
        # (each row of a matrix product is its own sums: the same whichever rows are computed)
        load = [field_modes(self.diff, g, length).astype(np.float32) for g, length in FIELDS]
        self.load = [np.ascontiguousarray(m[self.keep]) for m in load]
        sizes = [m.shape[1] for m in load]
        self.slices = [slice(a, a + k) for a, k in zip(np.cumsum([0] + sizes[:-1]), sizes)]
        super().__init__(subject, sfreq, n, overlap)
        freqs = self.bank.freqs(sfreq, n, overlap)
        scale2 = subject.eeg_scale**2
        #: aperiodic PSD of each stage on the bank's grid, µV^2/Hz
        self.ap_psd = np.stack(
            [
                AP_LEVEL[st] * scale2 * powerlaw_psd(freqs, subject.ap_exponent + AP_STEEPER[st])
                for st in range(5)
            ]
        )
        # stage gain table of the rhythms (5 stages, components; column C_AP unused), µV RMS
        g = np.zeros((5, len(FIELDS)))
        g[:, 1:] = RHYTHM_RMS
        g[:, C_SLOW] *= subject.sw_gain
        g[:, C_ALPHA] *= subject.alpha_gain
        g[:, C_BETA] *= profile.beta_scale
        g[:, C_MUSCLE] *= subject.emg_tone / 12.0
        self.gain = g * subject.eeg_scale
        self.alpha_w = self.gain[W, C_ALPHA]
        self.beta_w = self.gain[W, C_BETA]
        self.muscle_w = self.gain[W, C_MUSCLE]

    def noise_psd(self, freqs: np.ndarray) -> np.ndarray:
        """Return the PSD of the field modes of each component, then of the alpha envelope.

        The aperiodic modes are white (unit PSD) up to ``AP_TOP`` (above it the scalp EEG is
        muscle and noise): :meth:`generate` shapes them block by block to the stage's power
        law. The rhythms have unit variance.
        """
        s = self.s
        hi = min(150.0, 0.45 * self.sfreq)
        shapes = [
            1.0 / (1.0 + (freqs / AP_TOP) ** 24),
            slow_psd(freqs, 0.8),
            bump_psd(freqs, s.theta_freq, 1.3),
            bump_psd(freqs, s.alpha_freq, 0.7),
            band_psd(freqs, 14.0, 30.0, order=2),
            band_psd(freqs, 18.0, hi, order=1),
        ]
        rows = [shapes[c] for c, sl in enumerate(self.slices) for _ in range(sl.stop - sl.start)]
        rows.append(band_psd(freqs, 0.05, 0.3, order=2))
        return np.stack(rows)

    def generate(self, ctx: BlockContext, buf: np.ndarray) -> None:
        """Add the EEG of one block into the EEG rows of ``buf``.

        The field modes are mixed into the derivations in the frequency domain, in three groups
        rendered separately: the background (the aperiodic spectrum of the block's mean stage
        mix, slow waves, theta), alpha, and the high-frequency group (beta and scalp muscle in
        the block's mean ratio); each group then follows its per-sample gain (stage ramps,
        arousals, eyes open). See :meth:`~headset.sleeper.noise.BankGenerator.generate`.
        """
        z = self.bank.spectra(ctx.rng)
        z[self.slices[C_AP]] *= np.sqrt(ctx.stage_mean(self.ap_psd)).astype(np.float32)
        g = ctx.stage_rate(self.gain)  # (n, components)
        g[:, C_SLOW] *= ctx.homeostasis
        gm = column_means(g).astype(np.float32)  # single precision, like the spectra
        gm[C_AP] = 1.0
        zr = z.view(np.float32)

        def modes(c):  # the component's field modes at the rendered derivations
            return self.load[c] @ zr[self.slices[c]]

        def fold(components):
            return sum(gm[c] * modes(c) for c in components)

        mixed = [fold([C_AP, C_SLOW, C_THETA]), modes(C_ALPHA), fold([C_BETA, C_MUSCLE]), zr[-1:]]
        x = self.bank.render(np.concatenate(mixed, dtype=np.float32).view(np.complex64))
        # alpha waxes and wanes (log-normal envelope of mean 1) and vanishes with the eyes open;
        # beta and muscle rise with arousals, nightmares, open eyes, movement and (up and about)
        # posture, facial expression, talking and chewing: see mix_eeg
        mix_eeg(
            x,
            np.exp(0.45 * x[-1] - 0.1),
            g[:, C_ALPHA],
            g[:, C_BETA],
            g[:, C_MUSCLE],
            ctx.arousal,
            ctx.nightmare,
            ctx.eyes_open,
            ctx.movement,
            ctx.daytime,
            ctx.talk,
            self.alpha_w,
            self.beta_w,
            self.muscle_w,
            float(gm[C_BETA] + gm[C_MUSCLE]),
            self.rows,
            buf,
        )
        self._events(ctx, buf)

    def _add(self, buf: np.ndarray, i: int, topo: np.ndarray, wave: np.ndarray, rng) -> None:
        """Add a transient with site gains ``topo`` (jittered) at sample ``i`` of ``buf``."""
        coef = self.diff @ (topo * np.exp(rng.normal(0.0, TOPO_JITTER, topo.size)))
        for c, row in zip(self.keep, self.rows):
            wf.add_at(buf[row], i, coef[c] * wave)

    def _events(self, ctx: BlockContext, buf: np.ndarray) -> None:
        s, rng, fs = self.s, ctx.rng, self.sfreq
        scale = s.eeg_scale
        calm = 1.0 - np.maximum(ctx.arousal, ctx.nightmare)
        w = ctx.w
        # (an event whose rate is zero throughout the block draws nothing: its rate is not built)
        # spindles: N2 (and some in N3)
        if ctx.in_mix(N1, N2, N3):
            rate = s.spindle_density * (w[:, N2] + 0.35 * w[:, N3] + 0.05 * w[:, N1]) * calm
            for i in ctx.event_onsets(rate):
                self._spindle(buf, int(i), rng, scale)
        # K-complexes: N2, often followed by a spindle
        if ctx.in_mix(N2, N3):
            rate = s.kc_rate * (w[:, N2] + 0.2 * w[:, N3]) * calm
            for i in ctx.event_onsets(rate):
                amp = s.kc_amp * np.exp(rng.normal(0.0, 0.15)) * scale / self.p.eeg_scale
                amp *= np.sqrt(s.sw_gain)
                kc = wf.k_complex(fs, amp, rng.uniform(0.9, 1.2))
                self._add(buf, int(i), K_COMPLEX, kc, rng)
                if rng.random() < 0.4:
                    self._spindle(buf, int(i) + int(0.7 * fs), rng, scale)
        # vertex sharp waves: N1
        if ctx.in_mix(N1):
            rate = 3.0 * w[:, N1] * calm
            for i in ctx.event_onsets(rate):
                vertex = wf.vertex_wave(fs, rng.uniform(40.0, 90.0) * scale)
                self._add(buf, int(i), VERTEX, vertex, rng)
        # sawtooth bursts: REM
        if ctx.in_mix(R):
            rate = 2.5 * w[:, R]
            for i in ctx.event_onsets(rate):
                saw = wf.sawtooth_burst(
                    fs,
                    rng.uniform(2.5, 4.5),
                    rng.uniform(1.0, 4.0),
                    rng.uniform(12.0, 30.0) * scale,
                )
                self._add(buf, int(i), SAWTOOTH, saw, rng)

    def _spindle(self, buf: np.ndarray, i: int, rng: np.random.Generator, scale: float) -> None:
        """One spindle: fast and centro-parietal, or (40 %) slower by ~1.5 Hz and frontal."""
        s, fs = self.s, self.sfreq
        dur = rng.uniform(0.6, 1.8)
        amp = s.spindle_amp * np.exp(rng.normal(0.0, 0.25)) * scale
        freq = s.spindle_freq + rng.normal(0.0, 0.3)
        slow = rng.random() < 0.4
        if slow:
            freq -= 1.5
        wave = wf.spindle(fs, freq, dur, amp, rng.uniform(0, 2 * np.pi))
        self._add(buf, i, SLOW_SPINDLE if slow else FAST_SPINDLE, wave, rng)
