"""Physical units of exG channels: the dimension table and the one unit sanity check.

A recording stored in the wrong unit (volts labelled µV, a Raw already in µV where volts are
expected) looks like a valid file with absurd amplitudes. :func:`check_units` is the project's
one check for it: it measures a channel's amplitude, converts it to microvolts with the
declared dimension (or, for an unknown dimension, the scale among µV, mV and V that makes it
plausible), compares it with a plausible range and returns a :class:`UnitCheck`, a verdict
with the numbers and one message format. Two measures, for two kinds of reader:

- ``"level"`` (:func:`trimmed_sd`): the standard deviation with 10 % cut at each end, as
  YASA's sanity check; plausible 0.1-1000 µV (:data:`LEVEL_RANGE_UV`). Used by
  :class:`headset.replay.Replay` on the median over records spread over the file, so that a
  few records of artifact do not count.
- ``"spread"`` (:func:`robust_spread`): the robust sample-to-sample spread (MAD of the first
  differences / sqrt 2) of a few 30-s windows; only an upper bound, 5000 µV
  (:data:`SPREAD_RANGE_UV`), since slow signals have small differences. Used by
  :func:`staging.stager.score` on the signals it stages; insensitive to slow drift.

A flat channel (level below two quantisation steps, e.g. lead-off) is not a unit error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsp.validate import check_option

#: Physical dimension (lower case) -> factor to microvolts.
VOLT_SCALE = {
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "mv": 1e3,
    "millivolt": 1e3,
    "millivolts": 1e3,
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "nv": 1e-3,
}
#: Plausible trimmed standard deviation of an exG channel, µV (YASA's check).
LEVEL_RANGE_UV: tuple[float, float] = (0.1, 1000.0)
#: Plausible robust sample-to-sample spread of an exG channel, µV (upper bound only).
SPREAD_RANGE_UV: tuple[float, float] = (0.0, 5000.0)
#: Scales tried for an unknown dimension, in order: µV, mV, V (factor to µV -> name).
GUESSED_SCALES: dict[float, str] = {1.0: "µV", 1e3: "mV", 1e6: "V"}
_SPREAD_SAMPLES = 200_000  # differences used by robust_spread (bounds the cost)


def trimmed_sd(x: np.ndarray, cut: float = 0.1) -> float:
    """Return the standard deviation of ``x`` without its ``cut`` extreme fractions.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Samples (non-finite values are ignored).
    cut : float
        Fraction cut at each end of the sorted samples (0.1: 10 %).

    Returns
    -------
    float
        The trimmed SD in the unit of ``x`` (0 for fewer than two finite samples).
    """
    x = np.sort(x[np.isfinite(x)])
    k = int(cut * x.size)
    x = x[k : x.size - k] if x.size - 2 * k > 1 else x
    return float(x.std()) if x.size > 1 else 0.0


def robust_spread(x: np.ndarray) -> float:
    """Return the robust sample-to-sample spread of ``x``.

    The median absolute deviation of the first differences (of the first 200 000 finite
    samples) times 1.4826 / sqrt(2): the SD of white noise of the same differences.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Samples (non-finite values are dropped first).

    Returns
    -------
    float
        The spread in the unit of ``x`` (0 for fewer than two finite samples).
    """
    x = x[np.isfinite(x)]
    if x.size < 2:
        return 0.0
    d = np.diff(x[:_SPREAD_SAMPLES])
    return float(np.median(np.abs(d - np.median(d))) * 1.4826 / np.sqrt(2.0))


#: Measure -> (its name in messages, its function, its plausible range in µV).
_MEASURES = {
    "level": ("trimmed SD", trimmed_sd, LEVEL_RANGE_UV),
    "spread": ("sample-to-sample spread", robust_spread, SPREAD_RANGE_UV),
}


def volt_scale(dimension: str) -> float | None:
    """Return the factor from ``dimension`` to microvolts, or None if it is not a voltage.

    Parameters
    ----------
    dimension : str
        The EDF physical dimension, any case, spaces ignored (``"uV"``, ``"µV"``, ``"mV"``,
        ``"V"``, ``"nV"``...).
    """
    return VOLT_SCALE.get(dimension.lower().replace(" ", ""))


@dataclass(frozen=True)
class UnitCheck:
    """Verdict of :func:`check_units` on one channel, with its numbers.

    Attributes
    ----------
    channel : str
        The channel's name.
    dimension : str
        Its declared physical dimension (as in the file).
    measure : str
        ``"trimmed SD"`` or ``"sample-to-sample spread"``.
    value : float
        The measure in the declared dimension.
    scale : float
        Factor to µV: from the dimension, else guessed (see :attr:`source`).
    source : {"declared", "guessed", "assumed"}
        Where :attr:`scale` comes from: the dimension; the amplitude (an unknown dimension
        whose value fits one of µV, mV, V); or nothing (unknown dimension, no scale fits or
        flat: taken as µV).
    expected_uv : tuple of float
        Plausible range of the measure, µV.
    flat : bool
        The channel is flat (no unit can be judged; not an error).
    """

    channel: str
    dimension: str
    measure: str
    value: float
    scale: float
    source: str
    expected_uv: tuple[float, float]
    flat: bool

    @property
    def value_uv(self) -> float:
        """The measure in µV."""
        return self.value * self.scale

    @property
    def ok(self) -> bool:
        """True when the amplitude is plausible in µV (or the channel is flat)."""
        lo, hi = self.expected_uv
        return self.flat or lo <= self.value_uv <= hi

    @property
    def unit_name(self) -> str:
        """Name of the unit the values are taken in (``"µV"``, ``"mV"``, ``"V"``...)."""
        return GUESSED_SCALES.get(self.scale, self.dimension)

    @property
    def message(self) -> str:
        """One line naming the channel, the measured value and the expected range in µV."""
        lo, hi = self.expected_uv
        return (
            f"channel {self.channel!r}: implausible amplitude for unit {self.dimension!r} "
            f"({self.measure} {self.value_uv:.3g} µV, expected {lo:g}-{hi:g} µV): wrong units?"
        )


def check_units(
    channel: str,
    segments: np.ndarray | Sequence[np.ndarray],
    *,
    dimension: str = "uV",
    measure: str = "level",
    flat_below: float = 0.0,
) -> UnitCheck:
    """Check that a channel's amplitude is plausible for an exG signal in its unit.

    Parameters
    ----------
    channel : str
        The channel's name (for the message).
    segments : ndarray, shape (n_samples,), or sequence of them
        Samples in the declared ``dimension``. With several segments the measure is the
        median of the per-segment measures, so a few segments of artifact do not count.
    dimension : str
        The declared physical dimension; one :data:`VOLT_SCALE` does not know makes the
        check guess the scale (µV, then mV, then V) that puts the value in range.
    measure : {"level", "spread"}
        :func:`trimmed_sd` (range :data:`LEVEL_RANGE_UV`) or :func:`robust_spread` (range
        :data:`SPREAD_RANGE_UV`).
    flat_below : float
        A measured value at or below this, in the declared dimension, is flat (e.g. two
        quantisation steps): not judged. Default 0: only a measure of exactly 0 is flat.

    Returns
    -------
    UnitCheck
        The verdict: :attr:`UnitCheck.ok` and :attr:`UnitCheck.message`.
    """
    check_option("measure", measure, _MEASURES)
    name, fn, expected = _MEASURES[measure]
    parts = [segments] if isinstance(segments, np.ndarray) else list(segments)
    if not parts:
        raise ValueError(f"channel {channel!r}: no samples to check the units of.")
    value = float(np.median([fn(np.asarray(p, dtype=float)) for p in parts]))
    flat = value <= flat_below
    scale, source = volt_scale(dimension), "declared"
    if scale is None:
        lo, hi = expected
        fits = [f for f in GUESSED_SCALES if lo <= value * f <= hi]
        scale, source = (fits[0], "guessed") if fits and not flat else (1.0, "assumed")
    return UnitCheck(channel, dimension, name, value, scale, source, expected, flat)
