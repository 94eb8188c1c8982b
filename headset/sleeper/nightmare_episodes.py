"""Nightmare episodes and the response to cues (the closed loop of DESIGN 4).

A nightmare is a REM episode of escalating sympathetic activation lasting 1-3 minutes: its
intensity rises from 0 to 1 (``((t - onset) / duration) ** 1.3``), and with it the heart rate
(up to +15-40 bpm, the subject's ``nightmare_hr``), breathing rate, chin-EMG tone and twitch
rate, alpha/beta intrusion into the EEG and the density of rapid eye movements. Left alone it
ends in an awakening (W for 1-3 minutes, then N1 and a new cycle).

Cue response model (``Sleeper.apply_cue(kind, level)``)
-------------------------------------------------------
The cue's strength is ``level`` (0-1) times a factor per kind: ``audio`` 0.7, ``vibration``
1.0, ``wake`` 1.6. What happens depends on the state at the time of the cue; the effect starts
with the next generated block (at most a few seconds later) and the plan of every epoch not yet
generated is redrawn from the cue's own seed:

* **during a nightmare** at progress ``p`` (0 at onset, 1 at the planned awakening): the
  probability to wake is ``sigmoid(6 (strength + 0.8 p) - 4.5)``. A soft cue early (audio 0.3
  in the first third: ~12 %; at mid-episode ~30 %) therefore tends to *settle* the episode: the
  activation decays over ~20 s and sleep continues in REM (65 %, ``"settled REM"``) or drops to
  N2 (``"settled N2"``). A strong cue or a late one (vibration 1.0: > 80 % at any time; audio 0.3
  near the end: ~75 %) tends to wake the sleeper (``"woke"``: arousal now, W from the next
  epoch, then N1 and the next cycle). A cue too faint to be noticed (strength below 0.1) passes
  unnoticed with probability ``1 - strength / 0.1`` (``"no effect"``: the nightmare goes on).
* **in N3**: a cue of strength >= 0.15 causes a *confusion arousal* (``"confusion arousal"``):
  alpha and EMG rise while slow waves persist for 10-40 s, then one W epoch, N1, and N2; a
  very strong one (>= 1.2) wakes (``"woke"``). Weaker cues have ``"no effect"``.
* **in N1, N2 or calm REM**: wake with probability ``sigmoid(6 strength - 4.5)``, else an
  arousal (3-12 s, no stage change) with probability ``sigmoid(6 strength - 2)``, else
  ``"no effect"``.
* **awake**: ``"already awake"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stages import N1, N2, N3, R, W

KIND_STRENGTH = {"audio": 0.7, "vibration": 1.0, "wake": 1.6}
SETTLE_TAU_S = 20.0
POST_TAU_S = 40.0  # the activation outlasts the episode (heart rate after waking)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@dataclass
class Episode:
    """A nightmare in progress.

    Parameters
    ----------
    onset : int
        First sample of the episode.
    end : int
        End of the episode, sample index (the planned awakening unless a cue changed it).
    planned_end : int or None
        End planned at onset (sets the escalation speed); defaults to ``end``.
    settle_at : int or None
        Sample from which the activation decays (after a calming cue).
    settle_level : float
        Intensity when settling began.
    announced : bool
        Its ``Nightmare`` annotation has been issued.
    """

    onset: int
    end: int
    planned_end: int | None = None
    settle_at: int | None = None
    settle_level: float = 0.0
    announced: bool = False

    def intensity(self, samples: np.ndarray, sfreq: float) -> np.ndarray:
        """Nightmare intensity (0-1) at absolute sample indices.

        Rises as ``((t - onset) / (planned end - onset)) ** 1.3``; after a calming cue it decays
        with a 20-s time constant; after the episode's end it fades with a 40-s one.

        Parameters
        ----------
        samples : ndarray of int, shape (n,)
            Sample indices.
        sfreq : float
            Sampling rate, Hz.

        Returns
        -------
        ndarray, shape (n,)
            Intensity.
        """
        t = np.minimum(samples, self.end)
        u = np.clip((t - self.onset) / max(self.planned_end - self.onset, 1), 0.0, 1.0) ** 1.3
        if self.settle_at is not None:
            decay = self.settle_level * np.exp(-(t - self.settle_at) / (SETTLE_TAU_S * sfreq))
            u = np.where(t >= self.settle_at, decay, u)
        post = np.exp(-np.maximum(samples - self.end, 0) / (POST_TAU_S * sfreq))
        return np.where(samples >= self.onset, u * post, 0.0)

    def progress(self, sample: int) -> float:
        """Fraction of the planned episode elapsed at ``sample`` (0-1)."""
        span = max(self.planned_end - self.onset, 1)
        return float(np.clip((sample - self.onset) / span, 0.0, 1.0))

    def __post_init__(self):
        if self.planned_end is None:
            self.planned_end = self.end


@dataclass
class CueResponse:
    """What a cue does.

    Parameters
    ----------
    outcome : str
        ``woke``, ``settled REM``, ``settled N2``, ``confusion arousal``, ``arousal``,
        ``no effect`` or ``already awake``.
    arousal_s : float
        Length of the arousal it triggers now, s (0 for none).
    confusion : bool
        The arousal keeps slow waves (confusion arousal out of N3).
    prefix : list of (stage, count)
        Epochs forced from the next epoch on (None: no re-plan).
    phase : str
        Where the current cycle resumes after the prefix (see ``architecture.PHASES``).
    next_cycle : bool
        Resume in the next cycle rather than the current one.
    rem_epochs : int or None
        Length of a resumed REM period, epochs.
    settle : bool
        The nightmare in progress calms down.
    """

    outcome: str
    arousal_s: float = 0.0
    confusion: bool = False
    prefix: list | None = None
    phase: str = "n2b"
    next_cycle: bool = False
    rem_epochs: int | None = None
    settle: bool = False


def _respond_nightmare(s: float, progress: float, wake_prefix: list, rng) -> CueResponse:
    """Response to a cue of strength ``s`` during a nightmare ``progress`` (0-1) of the way in."""
    if rng.random() >= s / 0.1:
        return CueResponse("no effect")
    if rng.random() < _sigmoid(6.0 * (s + 0.8 * progress) - 4.5):
        return CueResponse(
            "woke",
            arousal_s=float(rng.uniform(15, 30)),
            prefix=wake_prefix,
            phase="n2a",
            next_cycle=True,
        )
    if rng.random() < 0.65:
        return CueResponse(
            "settled REM",
            settle=True,
            prefix=[],
            phase="rem",
            rem_epochs=int(rng.integers(6, 20)),
        )
    return CueResponse(
        "settled N2",
        settle=True,
        prefix=[(N2, int(rng.integers(6, 16)))],
        phase="n2a",
        next_cycle=True,
    )


def _respond_n3(s: float, wake_prefix: list, rng) -> CueResponse:
    """Response to a cue of strength ``s`` in N3: waking, a confusion arousal or nothing."""
    if s >= 1.2:
        return CueResponse(
            "woke", arousal_s=float(rng.uniform(15, 30)), prefix=wake_prefix, phase="n2b"
        )
    if s >= 0.15:
        return CueResponse(
            "confusion arousal",
            arousal_s=float(rng.uniform(10, 40)),
            confusion=True,
            prefix=[(W, 1), (N1, int(rng.integers(1, 3)))],
            phase="n2b",
        )
    return CueResponse("no effect")


def _respond_light(s: float, stage: int, wake_prefix: list, rng) -> CueResponse:
    """Response to a cue of strength ``s`` in N1, N2 or REM (``stage``)."""
    if rng.random() < _sigmoid(6.0 * s - 4.5):
        return CueResponse(
            "woke",
            arousal_s=float(rng.uniform(15, 30)),
            prefix=wake_prefix,
            phase="n2a" if stage == R else "n2b",
            next_cycle=stage == R,
        )
    if rng.random() < _sigmoid(6.0 * s - 2.0):
        return CueResponse("arousal", arousal_s=float(rng.uniform(3, 12)))
    return CueResponse("no effect")


def respond(
    kind: str, level: float, stage: int, episode: Episode | None, sample: int, rng
) -> CueResponse:
    """Decide the response to a cue (model in the module docstring).

    Parameters
    ----------
    kind : str
        ``audio``, ``vibration`` or ``wake``.
    level : float
        Intensity, 0-1.
    stage : int
        True stage at the time of the cue.
    episode : Episode or None
        The nightmare in progress, if any.
    sample : int
        Sample index of the cue.
    rng : numpy.random.Generator
        The cue's randomness.

    Returns
    -------
    CueResponse
        The outcome and its effect on the plan.
    """
    s = level * KIND_STRENGTH[kind]
    if level <= 0.0:
        return CueResponse("no effect")
    wake_prefix = [(W, int(rng.integers(2, 5))), (N1, int(rng.integers(1, 3)))]
    if episode is not None and episode.settle_at is None:
        return _respond_nightmare(s, episode.progress(sample), wake_prefix, rng)
    if stage == W:
        return CueResponse("already awake")
    if stage == N3:
        return _respond_n3(s, wake_prefix, rng)
    if stage in (N1, N2, R):
        return _respond_light(s, stage, wake_prefix, rng)
    return CueResponse("no effect")
