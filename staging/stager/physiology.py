"""Physiological evidence for wake, combined with the learned model's likelihoods.

A waking person has fast scalp-muscle activity (EMG leaking into every scalp lead as broadband
power above 30 Hz) that falls as soon as they sleep and stays low in every sleep stage, REM
included (AASM scoring manual: wake is scored on alpha *or* on high muscle tone, eye blinks and
reading eye movements; Rechtschaffen & Kales). At a frontal lead such as Fpz-Cz, real wake has a
sleep-like *relative* spectrum (blinks and eye movements give it a slow-wave share like N3's),
so the networks trained on the simulated sleeper call it sleep; its *absolute* 30-45 Hz power
relative to the night's, however, is far above anything the sleep stages reach (measured on the
Sleep-EDF night SC4001: wake median 2.3-2.9 robust SD above the sleep period's median, N2 and N3
below 0.3 in nine epochs of ten, REM 0.8).

The rule: with ``a`` the epoch's 30-45 Hz EEG log power in robust standard deviations above the
median of the recording's sleep period (the model input ``z_log_hi``, see
:mod:`staging.stager.features`), the probability that the rule rather than the network speaks is
``WAKE_RULE_WEIGHT * sigmoid((a - WAKE_RULE_SD) / WAKE_RULE_WIDTH)``, and what it says is "wake".
The emission likelihoods become the mixture ``(1 - pi) * lik + pi * [1, 0, 0, 0, 0]``: far above
the sleep period the network's certainty is overruled, near it (``pi`` below 0.02 at ``a <= 0``)
nothing changes. A recording sampled too slowly for the 30-45 Hz band (below 96 Hz) gets no rule.
The threshold lies above 95 % of the simulated sleeper's N2, N3 and REM epochs (95th percentile
1.0 SD online, 1.5 offline, on the 8 domain-randomised validation nights, seeds 5000-5007).
How the constants were chosen, honestly: from a small grid (weight 0.3-0.9, threshold 1.5-3 SD)
while looking at the SC4001 figures; every point of the grid met the online window-kappa target
there (0.644-0.671), so the choice adds at most a few hundredths to the SC4001 validation, and
the second real data set is the clean judge.

With a chin EMG, the rule also needs chin tone: REM's muscle atonia (AASM: chin EMG at its
lowest of the night) vetoes it, since fast EEG activity in REM is not a waking person's muscle.
Its weight is multiplied by ``sigmoid((t - ATONIA_SD) / WAKE_RULE_WIDTH)``, with ``t`` the mean
of the chin's 10-20 and 20-45 Hz log powers in robust SD relative to the sleep period
(``z_log_emg_lo``, ``z_log_emg_hi``): about 1 at the sleep period's tone, 0.12 two SD below it.

A second trigger needs no sleep period: the *shape* of the spectrum above 16 Hz. Neural EEG
falls with frequency as ``1 / f ** chi`` with an aperiodic exponent ``chi`` between about 1
and 4 at 30-45 Hz in every state, steeper with depth of sleep (Lendner et al., eLife 2020;
Bodizs et al., Sci Rep 2021: "-4 < alpha < -1"); a waking person's scalp muscle adds
broadband power that flattens it. The cue is the log10 ratio of the 30-45 Hz to the 16-30 Hz
power (raw columns ``log_hi - log_beta``), which no gain changes: a ``1 / f ** chi`` spectrum
gives -0.42 at ``chi = 2``, -0.19 at 1, -0.135 at 0.75, -0.079 at 0.5 and +0.03 for white
noise. Its evidence ramps linearly from 0 at :data:`FLAT_ZERO` (``chi = 0.75``) to 1 at
:data:`FLAT_FULL` (``chi = 0.5``): flatter than any neural spectrum. White amplifier or
electrode noise is flat as well; unlike muscle it is stationary, so the epoch's 30-45 Hz power
must also lie above the recording's floor (the :data:`FLOOR_QUANTILE` quantile of the valid
epochs so far online, of the whole recording offline): the evidence is multiplied by a ramp
from 0 at :data:`FLOOR_ZERO` to 1 at :data:`FLOOR_FULL` log10 units above it (the 30-s power
of a stationary noise scatters by about 0.02 around its median). The rule's trigger is the
larger of the two (same weight, same atonia veto). The constants come from physiology (the
exponents above; the floor margin from the scatter of a stationary noise), not from a fit;
measured on the simulated sleeper under the training's domain randomisation (the 29 of the
training and validation nights, seeds 1000-1023 and 5000-5007, sampled fast enough for the
30-45 Hz band) the evidence is above 0.5 in 0.7 % of N1, 0.6 % of N2, 0.06 % of N3 and 0.9 %
of REM epochs (4.5 % of the sleep of the worst night), which the HMM's transitions absorb
(pooled online kappa of the 32 nights 0.8768 without the trigger, 0.8767 with it). The
simulated sleeper's own wake does not flatten its spectrum (3.5 % of its wake epochs; its
daytime muscle is too weak above 16 Hz), so the simulated nights cannot show what the trigger
finds. On SC4001 (evaluation only, never used to choose the constants) it is above 0.5 in 94 %
of the wake epochs, 12 % of N1 and 2-4 % of N2, N3 and REM. The ramps are exactly 0 outside
them, so a recording without flat epochs is staged bit for bit as without this trigger.
Limitation: a waking person whose muscle stays at one level from the first epoch on looks
like a noise floor until the level drops (sleep, or a quieter moment).
"""

from __future__ import annotations

import numpy as np

from .features import COLUMN_NAMES, INPUT_NAMES

#: 30-45 Hz power (robust SD above the sleep period's median) at which the rule has half weight.
WAKE_RULE_SD = 2.0
#: Width (robust SD) of the rule's logistic ramp.
WAKE_RULE_WIDTH = 0.5
#: Largest weight of the rule in the mixture (the network keeps at least 1 - this).
WAKE_RULE_WEIGHT = 0.8

#: Chin tone (robust SD relative to the sleep period) at which the rule keeps half its weight.
ATONIA_SD = -1.0

#: log10 of 30-45 Hz over 16-30 Hz EEG power below which the spectrum shape gives no evidence
#: (a ``1 / f ** 0.75`` spectrum).
FLAT_ZERO = -0.135
#: ... and above which it gives full evidence (``1 / f ** 0.5``).
FLAT_FULL = -0.079
#: Quantile of the recording's 30-45 Hz log power taken as its floor.
FLOOR_QUANTILE = 0.02
#: log10 units of 30-45 Hz power above the floor where the evidence starts and is full.
FLOOR_ZERO, FLOOR_FULL = 0.05, 0.15

_HI = INPUT_NAMES.index("z_log_hi")
_HAS_HI = INPUT_NAMES.index("has_hi")
_TONE = [INPUT_NAMES.index("z_log_emg_lo"), INPUT_NAMES.index("z_log_emg_hi")]
_HAS_EMG = INPUT_NAMES.index("has_emg")
_LOG_HI = COLUMN_NAMES.index("log_hi")
_LOG_BETA = COLUMN_NAMES.index("log_beta")


def _ramp(x: np.ndarray, zero: float, full: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.clip((x - zero) / (full - zero), 0.0, 1.0)


def flat_spectrum_evidence(values: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Evidence for scalp muscle from the shape of the EEG spectrum above 16 Hz (module doc).

    Parameters
    ----------
    values : ndarray, shape (n_epochs, N_COLUMNS)
        Raw per-epoch features (columns :data:`~staging.stager.features.COLUMN_NAMES`).
    floor : ndarray, shape (n_epochs,)
        The recording's 30-45 Hz log10 power floor for each epoch (:class:`HighBandFloor`).

    Returns
    -------
    ndarray, shape (n_epochs,)
        In ``[0, 1]``; 0 where the 30-45 Hz or 16-30 Hz band or the floor is missing.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(COLUMN_NAMES):
        raise ValueError(
            f"values must have shape (n_epochs, {len(COLUMN_NAMES)}), got {values.shape}."
        )
    floor = np.asarray(floor, dtype=np.float64)
    if floor.shape != values.shape[:1]:
        raise ValueError(f"floor must have shape ({values.shape[0]},), got {floor.shape}.")
    hi = values[:, _LOG_HI]
    e = _ramp(hi - values[:, _LOG_BETA], FLAT_ZERO, FLAT_FULL)
    e = e * _ramp(hi - floor, FLOOR_ZERO, FLOOR_FULL)
    return np.where(np.isfinite(e), e, 0.0)


class HighBandFloor:
    """Causal floor of a recording's 30-45 Hz EEG log power (for :func:`flat_spectrum_evidence`).

    Keeps the 30-45 Hz log powers of the valid epochs so far, sorted (a few KiB for a day);
    the floor after an epoch is their :data:`FLOOR_QUANTILE` quantile (nearest rank), the
    epoch included.
    """

    def __init__(self):
        self._sorted: list[float] = []

    def push(self, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Add epochs in time order; return the floor after each, shape (n_epochs,).

        Parameters
        ----------
        values : ndarray, shape (n_epochs, N_COLUMNS)
            Raw per-epoch features.
        valid : ndarray of bool, shape (n_epochs,)
            Epochs with usable data (the others are not added).
        """
        from bisect import insort

        out = np.full(len(valid), np.nan)
        for i, (v, ok) in enumerate(zip(np.asarray(values)[:, _LOG_HI], valid)):
            if ok and np.isfinite(v):
                insort(self._sorted, float(v))
            if self._sorted:
                out[i] = self._sorted[round(FLOOR_QUANTILE * (len(self._sorted) - 1))]
        return out


def high_band_floor(values: np.ndarray, valid: np.ndarray, causal: bool) -> np.ndarray:
    """Return the 30-45 Hz log10 power floor of each epoch of a recording.

    Parameters
    ----------
    values : ndarray, shape (n_epochs, N_COLUMNS)
        Raw per-epoch features.
    valid : ndarray of bool, shape (n_epochs,)
        Epochs with usable data.
    causal : bool
        True: from the valid epochs up to each one (as :class:`HighBandFloor` live); False:
        the whole recording's (offline).

    Returns
    -------
    ndarray, shape (n_epochs,)
        NaN before the first valid epoch with a 30-45 Hz band.
    """
    if causal:
        return HighBandFloor().push(values, valid)
    hi = np.asarray(values)[np.asarray(valid), _LOG_HI]
    hi = np.sort(hi[np.isfinite(hi)])
    level = hi[round(FLOOR_QUANTILE * (hi.size - 1))] if hi.size else np.nan
    return np.full(len(valid), level)


def wake_rule_weight(inputs: np.ndarray, flat: np.ndarray | None = None) -> np.ndarray:
    """Weight of the wake rule for each epoch.

    Parameters
    ----------
    inputs : ndarray, shape (n_epochs, N_INPUTS)
        Normalised per-epoch inputs (columns :data:`~staging.stager.features.INPUT_NAMES`).
    flat : ndarray, shape (n_epochs,), optional
        Evidence of :func:`flat_spectrum_evidence`; the rule's trigger is the larger of it and
        the sleep-period trigger (None: the sleep-period trigger alone).

    Returns
    -------
    ndarray, shape (n_epochs,)
        Mixture weight in ``[0, WAKE_RULE_WEIGHT]``; 0 where the 30-45 Hz band is missing,
        small in epochs of chin atonia.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2 or inputs.shape[1] != len(INPUT_NAMES):
        raise ValueError(
            f"inputs must have shape (n_epochs, {len(INPUT_NAMES)}), got {inputs.shape}."
        )
    a = inputs[:, _HI]
    w = WAKE_RULE_WEIGHT / (1.0 + np.exp(-(a - WAKE_RULE_SD) / WAKE_RULE_WIDTH))
    if flat is not None:
        w = np.maximum(w, WAKE_RULE_WEIGHT * np.asarray(flat, dtype=np.float64))
    tone = inputs[:, _TONE].mean(1)
    gate = 1.0 / (1.0 + np.exp(-(tone - ATONIA_SD) / WAKE_RULE_WIDTH))
    w = np.where(inputs[:, _HAS_EMG] > 0.5, w * gate, w)
    return np.where(inputs[:, _HAS_HI] > 0.5, w, 0.0)


def with_wake_rule(lik: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Mix normalised emission likelihoods with the wake rule.

    Parameters
    ----------
    lik : ndarray, shape (n_epochs, 5)
        Emission likelihoods of W, N1, N2, N3, R, each row summing to 1.
    weight : ndarray, shape (n_epochs,)
        Weights from :func:`wake_rule_weight`.

    Returns
    -------
    ndarray, shape (n_epochs, 5)
        ``(1 - weight) * lik + weight * [1, 0, 0, 0, 0]`` (rows still sum to 1).
    """
    out = (1.0 - weight)[:, None] * lik
    out[:, 0] += weight
    return out
