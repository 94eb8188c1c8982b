"""Natural-sleep recommendations, each with its threshold, guideline and measured number.

Nothing is recommended without a measured reason: a rule whose inputs were not measured is
listed in ``not_evaluated`` with what was missing, never guessed; recordings shorter than
``MIN_TIB_MIN`` (3 h in bed) do not count as nights. Every statement says how many nights it
rests on and the measured values. The rules are small functions, one per row of :data:`RULES`
(a rule returns a :class:`Recommendation` or None, and says through its :class:`RuleInput` why
it passed or could not be evaluated). The rules, their triggers and sources:

- ``sleep_duration``: mean TST below the range for age, over the nights whose recording did not
  stop during sleep (their TST is only a lower bound). AASM consensus (Paruthi et al.,
  J Clin Sleep Med 2016) for 4 months to 18 years; AASM/SRS (Watson et al., Sleep 2015) for
  18-60; NSF (Hirshkowitz et al., Sleep Health 2015) for 61 and over.
- ``sleep_efficiency``: mean SE < 85 %. NSF sleep quality recommendations (Ohayon et al.,
  Sleep Health 2017).
- ``sleep_latency``: mean SOL > 30 min. Quantitative insomnia criteria (Lichstein et al.,
  Behav Res Ther 2003); AASM insomnia guideline (Schutte-Rodin et al., J Clin Sleep Med 2008).
- ``waso``: mean WASO > 30 min. Same sources as ``sleep_latency``.
- ``regularity``: SD of the sleep-onset clock time > 60 min over >= 3 nights. NSF consensus on
  sleep regularity (Sletten et al., Sleep Health 2023); the 60-min threshold is dreamnet's
  operational choice (the consensus gives no number).
- ``nightmares``: nights on which a nightmare alert was followed by waking, at least once a
  week, over at least ``NIGHTMARE_MIN_NIGHTS`` (7) recorded nights. ICSD-3 / DSM-5 severity
  (moderate: >= 1 per week); AASM position paper on nightmare disorder (Morgenthaler et al.,
  J Clin Sleep Med 2018). A detector alert is not a nightmare: an alert that settled without
  waking does not count, and fewer than 7 nights give no weekly rate (one night is never
  scaled up to a week); the alerts are then listed as ``not_evaluated`` with their counts.
- ``late_immersive``: an immersive session ending < 60 min before lights off. AASM healthy
  sleep habits (no electronic devices before bed); AAP (screens off 1 h before bedtime for
  children).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import numpy as np

from .stats import SleepStats

#: (age from, age to (exclusive), min hours, max hours, source) of sleep per 24 h.
DURATION_FOR_AGE: tuple[tuple[float, float, float, float, str], ...] = (
    (0.33, 1.0, 12.0, 16.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (1.0, 3.0, 11.0, 14.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (3.0, 6.0, 10.0, 13.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (6.0, 13.0, 9.0, 12.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (13.0, 18.0, 8.0, 10.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (18.0, 61.0, 7.0, float("inf"), "AASM/SRS consensus, Watson et al., Sleep 2015"),
    (61.0, 65.0, 7.0, 9.0, "NSF, Hirshkowitz et al., Sleep Health 2015"),
    (65.0, 130.0, 7.0, 8.0, "NSF, Hirshkowitz et al., Sleep Health 2015"),
)

SE_MIN_PCT = 85.0
SOL_MAX_MIN = 30.0
WASO_MAX_MIN = 30.0
REGULARITY_SD_MAX_MIN = 60.0
REGULARITY_MIN_NIGHTS = 3
NIGHTMARE_NIGHTS_PER_WEEK = 1.0
#: Nights needed before nightmare frequency is stated as a weekly rate.
NIGHTMARE_MIN_NIGHTS = 7
IMMERSIVE_GAP_MIN = 60.0
#: Nights with less time in bed do not measure a night's sleep: they are left out.
MIN_TIB_MIN = 180.0

_SRC_QUALITY = "NSF sleep quality recommendations, Ohayon et al., Sleep Health 2017"
_SRC_INSOMNIA = (
    "Lichstein et al., Behav Res Ther 2003 (quantitative insomnia criteria); "
    "AASM guideline, Schutte-Rodin et al., J Clin Sleep Med 2008"
)
_SRC_REGULAR = "NSF consensus on sleep regularity, Sletten et al., Sleep Health 2023"
_SRC_NIGHTMARE = (
    "ICSD-3 / DSM-5 nightmare disorder severity (>= 1 per week: moderate); AASM position "
    "paper, Morgenthaler et al., J Clin Sleep Med 2018 (image rehearsal therapy)"
)
_SRC_SCREENS = (
    "AASM healthy sleep habits (no electronic devices before bed); American Academy of "
    "Pediatrics (screens off 1 h before bedtime for children)"
)


@dataclass
class NightRecord:
    """What was measured on one night.

    Parameters
    ----------
    stats : SleepStats
        The night's statistics (:func:`staging.night.stats.sleep_statistics`).
    lights_off : datetime, optional
        Clock time of the recording start (lights off).
    immersive_end : sequence of datetime
        End times of immersive sessions (VR, games) in the evening before this night.

    The night's nightmare alerts and whether each was followed by waking are in ``stats``
    (``n_nightmare_alerts``, ``nightmare_outcomes``).
    """

    stats: SleepStats
    lights_off: datetime | None = None
    immersive_end: Sequence[datetime] = field(default_factory=tuple)

    @property
    def alerts_with_waking(self) -> int:
        """Nightmare alerts of the night followed by waking (outcome ``awakening``)."""
        return int(self.stats.nightmare_outcomes.get("awakening", 0))

    @property
    def sleep_onset(self) -> datetime | None:
        """Clock time of sleep onset, or None when lights off or sleep onset is unknown."""
        if self.lights_off is None or not np.isfinite(self.stats.sol_min):
            return None
        return self.lights_off + timedelta(minutes=self.stats.sol_min)


@dataclass(frozen=True)
class Recommendation:
    """One recommendation, with the measurement that triggered it.

    Attributes
    ----------
    rule : str
        Rule identifier (``sleep_duration``, ``sleep_efficiency``, ...).
    title : str
        One-line finding.
    advice : str
        What to do.
    measured : str
        The measured number(s) that triggered the rule, in words.
    threshold : str
        The rule's threshold.
    guideline : str
        Where the threshold comes from.
    value : float
        The measured value compared with the threshold.
    nights : int
        Nights the measurement is based on.
    """

    rule: str
    title: str
    advice: str
    measured: str
    threshold: str
    guideline: str
    value: float
    nights: int

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        d = asdict(self)
        d["value"] = round(float(self.value), 2)
        return d


@dataclass
class RecommendationResult:
    """Recommendations and the rules that could not be evaluated.

    Attributes
    ----------
    recommendations : list of Recommendation
        Triggered rules, most important first.
    not_evaluated : dict of str to str
        Rule -> what was missing.
    passed : dict of str to str
        Rule -> the measurement that was within the threshold.
    """

    recommendations: list[Recommendation]
    not_evaluated: dict[str, str]
    passed: dict[str, str]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return {
            "recommendations": [r.to_dict() for r in self.recommendations],
            "not_evaluated": dict(self.not_evaluated),
            "passed": dict(self.passed),
        }


def duration_range_for_age(age_years: float) -> tuple[float, float, str]:
    """Recommended hours of sleep per 24 h for an age.

    Parameters
    ----------
    age_years : float
        Age in years (at least 4 months = 0.33).

    Returns
    -------
    (min_h, max_h, source) : tuple of float, float, str
        The range in hours (max may be inf) and its guideline.
    """
    a = float(age_years)
    if not np.isfinite(a):
        raise ValueError(f"age_years must be a finite number, got {age_years!r}.")
    for lo, hi, mn, mx, src in DURATION_FOR_AGE:
        if lo <= a < hi:
            return mn, mx, src
    raise ValueError(f"age_years must be between 0.33 (4 months) and 130, got {age_years!r}.")


def _fmt_nights(n):
    return "1 night" if n == 1 else f"{n} nights"


@dataclass
class RuleInput:
    """What every rule reads, and where it says why it passed or could not be evaluated.

    Parameters
    ----------
    nights : list of NightRecord
        The nights that count (at least ``MIN_TIB_MIN`` in bed), oldest first; not empty.
    age_years : float, optional
        Age of the sleeper.
    """

    nights: list[NightRecord]
    age_years: float | None = None
    #: rule -> the measurement that was within the threshold.
    passed: dict[str, str] = field(default_factory=dict)
    #: rule -> what was missing.
    not_evaluated: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of nights."""
        return len(self.nights)


def sleep_duration(inp: RuleInput) -> Recommendation | None:
    """Flag a mean total sleep time below the recommended range for the age."""
    if inp.age_years is None:
        inp.not_evaluated["sleep_duration"] = "age not given"
        return None
    mn, mx, src = duration_range_for_age(inp.age_years)
    age = inp.age_years
    whole = [r for r in inp.nights if not r.stats.ended_asleep]
    if not whole:
        inp.not_evaluated["sleep_duration"] = (
            f"the recording ended during sleep on {_fmt_nights(inp.n)}: the total sleep time "
            "measured is a lower bound"
        )
        return None
    tst_h = float(np.mean([r.stats.tst_min for r in whole])) / 60.0
    rng_txt = f"{mn:g}-{mx:g} h" if np.isfinite(mx) else f">= {mn:g} h"
    measured = f"mean total sleep time {tst_h:.1f} h over {_fmt_nights(len(whole))}"
    if len(whole) < inp.n:
        measured += f" ({inp.n - len(whole)} recording(s) that ended during sleep left out)"
    if tst_h >= mn:
        inp.passed["sleep_duration"] = measured
        return None
    return Recommendation(
        "sleep_duration",
        f"Sleep duration below the recommended {rng_txt} for age {age:g}",
        "Move bedtime earlier or wake later to give more time for sleep; keep the schedule the "
        "same on all days (for children, naps count toward the total).",
        measured,
        f"< {mn:g} h per 24 h at age {age:g}",
        src,
        tst_h,
        len(whole),
    )


def _mean_rule(rule, attr, limit, above, unit, title, advice, source):
    """Return a rule: the mean of one statistic over the nights against a limit.

    Parameters
    ----------
    rule : str
        The rule's name.
    attr : str
        The :class:`~staging.night.stats.SleepStats` attribute.
    limit : float
        The threshold, in ``unit``.
    above : bool
        True: a mean above ``limit`` triggers; False: below.
    unit : str
        Unit of the statistic.
    title, advice, source : str
        The recommendation's finding, advice and guideline.
    """
    threshold = f"{'>' if above else '<'} {limit:g} {unit}"

    def check(inp: RuleInput) -> Recommendation | None:
        vals = [v for v in (getattr(r.stats, attr) for r in inp.nights) if np.isfinite(v)]
        if not vals:
            inp.not_evaluated[rule] = "no sleep recorded"
            return None
        mean = float(np.mean(vals))
        n_bad = sum((v > limit) if above else (v < limit) for v in vals)
        measured = f"mean {mean:.0f} {unit} over {_fmt_nights(len(vals))}"
        if len(vals) > 1:
            measured += f" ({n_bad} of {len(vals)} nights beyond the threshold)"
        if (mean > limit) if above else (mean < limit):
            return Recommendation(rule, title, advice, measured, threshold, source, mean, len(vals))
        inp.passed[rule] = measured
        return None

    check.__name__ = check.__qualname__ = rule
    check.__doc__ = f"Flag a mean {attr} {threshold} over the nights."
    return check


sleep_efficiency = _mean_rule(
    "sleep_efficiency", "se_pct", SE_MIN_PCT, False, "%",
    "Low sleep efficiency: much of the time in bed is spent awake",
    "Go to bed only when sleepy, get up if unable to sleep for about 20 minutes, and keep the "
    "time in bed close to the time actually slept (stimulus control / sleep restriction as "
    "used in CBT-I).",
    _SRC_QUALITY,
)  # fmt: skip
sleep_latency = _mean_rule(
    "sleep_latency", "sol_min", SOL_MAX_MIN, True, "min",
    "Long time to fall asleep",
    "Keep a wind-down routine without screens, avoid caffeine after midday, and go to bed when "
    "sleepy; a persistent pattern is worth discussing with a sleep clinician.",
    _SRC_INSOMNIA,
)  # fmt: skip
waso = _mean_rule(
    "waso", "waso_min", WASO_MAX_MIN, True, "min",
    "Long wake periods after falling asleep",
    "Keep the bedroom dark, quiet and cool, limit fluids and alcohol in the evening; a "
    "persistent pattern is worth discussing with a sleep clinician.",
    _SRC_INSOMNIA,
)  # fmt: skip


def regularity(inp: RuleInput) -> Recommendation | None:
    """Flag an SD of the sleep-onset clock time above ``REGULARITY_SD_MAX_MIN`` (>= 3 nights)."""
    onsets = [r.sleep_onset for r in inp.nights if r.sleep_onset is not None]
    if len(onsets) < REGULARITY_MIN_NIGHTS:
        inp.not_evaluated["regularity"] = (
            f"needs sleep-onset clock times on >= {REGULARITY_MIN_NIGHTS} nights, "
            f"have {len(onsets)}"
        )
        return None
    # minutes relative to noon so that 23:30 and 00:30 are an hour apart
    mins = np.array([((o.hour - 12) % 24) * 60 + o.minute + o.second / 60 for o in onsets])
    sd = float(np.std(mins, ddof=1))
    measured = f"SD of sleep-onset time {sd:.0f} min over {_fmt_nights(len(onsets))}"
    if sd <= REGULARITY_SD_MAX_MIN:
        inp.passed["regularity"] = measured
        return None
    return Recommendation(
        "regularity",
        "Irregular sleep timing across nights",
        "Go to bed and get up at the same times every day, weekends included.",
        measured,
        f"SD > {REGULARITY_SD_MAX_MIN:g} min over >= {REGULARITY_MIN_NIGHTS} nights",
        _SRC_REGULAR,
        sd,
        len(onsets),
    )


def nightmares(inp: RuleInput) -> Recommendation | None:
    """Flag nights with an alert followed by waking, >= 1 a week over >= 7 recorded nights."""
    n_alerts = sum(r.stats.n_nightmare_alerts for r in inp.nights)
    woke = sum(r.alerts_with_waking for r in inp.nights)
    nights_woke = sum(1 for r in inp.nights if r.alerts_with_waking > 0)
    measured = (
        f"{n_alerts} alert(s) of the nightmare detector over {_fmt_nights(inp.n)} ({woke} "
        f"followed by waking within 3 min, {n_alerts - woke} settled); nights with an alert "
        f"followed by waking: {nights_woke} of {inp.n}"
    )
    if inp.n < NIGHTMARE_MIN_NIGHTS:
        inp.not_evaluated["nightmares"] = (
            f"{measured}; a weekly frequency needs >= {NIGHTMARE_MIN_NIGHTS} recorded nights, "
            f"have {inp.n}"
        )
        return None
    per_week = nights_woke / inp.n * 7.0
    measured += f" (= {per_week:.1f} per 7 nights)"
    if per_week < NIGHTMARE_NIGHTS_PER_WEEK:
        inp.passed["nightmares"] = measured
        return None
    return Recommendation(
        "nightmares",
        "Repeated nightmare alerts followed by waking",
        "Discuss with a clinician whether these are nightmares (the detector's alerts are not a "
        "diagnosis): image rehearsal therapy is the recommended first treatment for nightmare "
        "disorder; keep a regular schedule and a calm bedtime routine.",
        measured,
        f">= {NIGHTMARE_NIGHTS_PER_WEEK:g} night per 7 with an alert followed by waking, over "
        f">= {NIGHTMARE_MIN_NIGHTS} nights",
        _SRC_NIGHTMARE,
        per_week,
        inp.n,
    )


def late_immersive(inp: RuleInput) -> Recommendation | None:
    """Flag an immersive session ending less than ``IMMERSIVE_GAP_MIN`` before lights off."""
    known = [r for r in inp.nights if r.lights_off is not None]
    if not any(r.immersive_end for r in known):
        have = "no lights-off time" if not known else "no immersive session logged"
        inp.not_evaluated["late_immersive"] = have
        return None
    gaps = []
    for r in known:
        for end in r.immersive_end:
            gap = (r.lights_off - end).total_seconds() / 60.0
            if -5.0 <= gap < 24 * 60:  # ended before (or just at) lights off
                gaps.append(gap)
    late = [g for g in gaps if g < IMMERSIVE_GAP_MIN]
    measured = (
        f"{len(late)} of {len(gaps)} immersive session(s) ended < {IMMERSIVE_GAP_MIN:g} min "
        f"before lights off, over {_fmt_nights(len(known))}"
    )
    if not late:
        inp.passed["late_immersive"] = measured
        return None
    return Recommendation(
        "late_immersive",
        "Immersive sessions late in the evening",
        f"End immersive sessions (VR, games) at least {IMMERSIVE_GAP_MIN:g} minutes before "
        "lights off and keep the last hour calm.",
        f"{measured} (closest {min(late):.0f} min)",
        f"session end < {IMMERSIVE_GAP_MIN:g} min before lights off",
        _SRC_SCREENS,
        float(min(late)),
        len(known),
    )


#: The rules, most important first (the order of the recommendations).
RULES: tuple[Callable[[RuleInput], Recommendation | None], ...] = (
    nightmares,
    sleep_duration,
    sleep_efficiency,
    sleep_latency,
    waso,
    regularity,
    late_immersive,
)


def recommend(
    nights: Sequence[NightRecord | SleepStats], age_years: float | None = None
) -> RecommendationResult:
    """Evaluate every rule of :data:`RULES` on the measured nights.

    Parameters
    ----------
    nights : sequence of NightRecord or SleepStats
        One entry per recorded night (oldest first); bare ``SleepStats`` carry no clock times.
    age_years : float, optional
        Age of the sleeper; without it the duration rule is not evaluated.

    Returns
    -------
    RecommendationResult
        Triggered recommendations (each citing its measured number, its number of nights and
        its guideline), rules that passed, and rules not evaluated with the reason.
    """
    if not len(nights):
        raise ValueError("recommend needs at least one night.")
    records = [n if isinstance(n, NightRecord) else NightRecord(n) for n in nights]
    for r in records:
        if not isinstance(r.stats, SleepStats):
            raise TypeError(f"stats must be SleepStats, got {type(r.stats).__name__}.")
    if age_years is not None:
        duration_range_for_age(age_years)  # checks the age even when no night counts
    inp = RuleInput([r for r in records if r.stats.tib_min >= MIN_TIB_MIN], age_years)
    short = [r for r in records if not r.stats.tib_min >= MIN_TIB_MIN]
    if short:
        inp.not_evaluated["short_recordings"] = (
            f"{len(short)} recording(s) shorter than {MIN_TIB_MIN / 60:g} h in bed left out "
            f"(shortest {min(r.stats.tib_min for r in short):.0f} min)"
        )
    found = []
    for rule in RULES:
        if not inp.nights:
            inp.not_evaluated[rule.__name__] = (
                f"no recording of at least {MIN_TIB_MIN / 60:g} h in bed"
            )
        elif (rec := rule(inp)) is not None:
            found.append(rec)
    return RecommendationResult(found, inp.not_evaluated, inp.passed)
