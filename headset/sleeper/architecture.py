"""Sleep architecture: the planned hypnogram of a night (ultradian cycles, awakenings, nightmares).

The plan is built cycle by cycle. Each cycle is ``[N1] N2 N3 N2 R`` with the profile's cycle
length (90-110 min for a healthy adult), N3 shrinking and REM growing from cycle to cycle (so N3
sits in the first third of the night and REM periods lengthen toward morning). Real nights are
fragmented, and so is the plan (rates from the 20 expert hypnograms of Sleep-EDF SC4001-SC4092:
about 13 stage shifts per hour of sleep, N3 bouts of a few epochs, REM periods broken into 2-3
bouts, ~10 awakenings a night): N3 is broken by short N2 interludes, REM by brief N1, N2 or W
interruptions, N2 by N1 interludes; brief awakenings (W then N1) follow some REM periods and
occur at random in NREM; insomnia adds long awakenings. A REM period may hold a nightmare (profile
``nightmare_p``): it is cut where the nightmare ends and an awakening follows.

The same builder re-plans the rest of the night from any epoch after a cue (closed loop): only
epochs not yet generated change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stages import EPOCH_S, N1, N2, N3, R, W
from .profiles import Profile

#: Plan phases a (re)plan may start a cycle in.
PHASES = ("n1", "n2a", "n2b", "rem")


@dataclass
class Plan:
    """A planned stretch of night.

    Parameters
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        Stage of each epoch.
    cycle : ndarray of int16, shape (n_epochs,)
        Ultradian cycle index (0-based) of each epoch.
    nightmare : ndarray of float64, shape (n_epochs,)
        Nonzero at the first epoch after a planned nightmare: the nightmare's length in seconds
        (it ends exactly at the start of that epoch, which begins the awakening).
    """

    stages: np.ndarray
    cycle: np.ndarray
    nightmare: np.ndarray


class _Builder:
    def __init__(self, profile: Profile, rng: np.random.Generator, n_epochs: int):
        self.p = profile
        self.rng = rng
        self.n = n_epochs
        self.stages: list[int] = []
        self.cycle: list[int] = []
        self.nightmare: list[float] = []

    @property
    def full(self) -> bool:
        return len(self.stages) >= self.n

    def add(self, stage: int, count: int, cycle: int) -> None:
        count = max(int(count), 0)
        self.stages.extend([stage] * count)
        self.cycle.extend([cycle] * count)
        self.nightmare.extend([0.0] * count)

    def minutes(self, m: float) -> int:
        return max(int(round(m * 60.0 / EPOCH_S)), 0)

    def awakening(self, k: int, lo: int = 1, hi: int = 3) -> int:
        """Append a brief awakening (W then N1); return its length in epochs."""
        w = int(self.rng.integers(lo, hi + 1))
        n1 = int(self.rng.integers(1, 3))
        self.add(W, w, k)
        self.add(N1, n1, k)
        return w + n1

    def n2(self, count: int, k: int) -> None:
        """``count`` epochs of N2, some replaced by brief awakenings and N1 interludes."""
        hours = count * EPOCH_S / 3600.0
        n_wake = self.rng.poisson(self.p.awakenings_per_h * hours)
        n_n1 = int(self.p.n1_per_h * hours + self.rng.random())  # regular, unlike awakenings
        kinds = [1] * n_wake + [0] * n_n1
        cuts = self.rng.integers(0, max(count, 1), len(kinds))
        order = np.argsort(cuts, kind="stable")
        used = 0
        for i in order:
            c = int(cuts[i])
            if c > used:
                self.add(N2, c - used, k)
                used = c
            if kinds[i]:
                used += self.awakening(k, 1, 2)
            else:
                m = int(self.rng.integers(1, 3))
                self.add(N1, m, k)
                used += m
        self.add(N2, count - used, k)

    def _broken(self, stage: int, count: int, k: int, per_break: float, interlude) -> None:
        """Add ``count`` epochs of ``stage`` broken by interludes, about one per ``per_break``.

        ``interlude()`` adds one interlude and returns its length in epochs (included in the
        count).
        """
        n_breaks = self.rng.poisson(count / per_break) if count > 8 else 0
        cuts = np.sort(self.rng.integers(2, count - 2, n_breaks)) if n_breaks else []
        used = 0
        for c in cuts:
            c = int(c)
            if c <= used:
                continue
            self.add(stage, c - used, k)
            used = c + interlude()
        self.add(stage, count - used, k)

    def n3(self, count: int, k: int) -> None:
        """``count`` epochs of N3, broken by short N2 interludes (included in the count)."""

        def n2() -> int:
            m = int(self.rng.integers(1, 4))
            self.add(N2, m, k)
            return m

        self._broken(N3, count, k, 12.0, n2)

    def rem(self, count: int, k: int) -> None:
        """``count`` epochs of R, broken by brief N1, N2 or W interruptions (included)."""

        def interruption() -> int:
            kind = self.rng.random()
            if kind < 0.4:
                m = int(self.rng.integers(1, 3))
                self.add(N1, m, k)
            elif kind < 0.75:
                m = int(self.rng.integers(1, 4))
                self.add(N2, m, k)
            else:
                m = self.awakening(k, 1, 2)
            return m

        self._broken(R, count, k, 25.0, interruption)

    def rem_len(self, k: int) -> int:
        r = self.p.rem_min[min(k, len(self.p.rem_min) - 1)]
        return max(self.minutes(r * self.rng.uniform(0.85, 1.15)), 4)

    def n3_len(self, k: int) -> int:
        m = self.p.n3_min[k] if k < len(self.p.n3_min) else 0.0
        return self.minutes(m * self.rng.uniform(0.85, 1.15))

    def cycle_once(
        self,
        k: int,
        phase: str,
        rem_epochs: int | None = None,
        length: int | None = None,
        n3_epochs: int | None = None,
    ) -> None:
        """Append cycle ``k`` starting at ``phase`` (lengths in epochs; None: drawn)."""
        p, rng = self.p, self.rng
        if length is None:
            length = self.minutes(rng.uniform(*p.cycle_min))
        rem = self.rem_len(k) if rem_epochs is None else rem_epochs
        n3 = self.n3_len(k) if n3_epochs is None else n3_epochs
        n1 = rng.integers(p.onset_n1_epochs[0], p.onset_n1_epochs[1] + 1) if phase == "n1" else 0
        n2_total = max(length - rem - n3 - n1, self.minutes(12))
        split = rng.uniform(0.45, 0.65) if n3 > 0 else rng.uniform(0.6, 0.9)
        n2a = int(round(n2_total * split))
        n2b = n2_total - n2a
        if phase == "n1":
            self.add(N1, n1, k)
        if phase in ("n1", "n2a"):
            self.n2(n2a, k)
            self.n3(n3, k)
        if phase in ("n1", "n2a", "n2b"):
            self.n2(n2b, k)
            if rng.random() < 0.3:
                self.add(N1, 1, k)
        self.rem_period(k, rem)

    def fitted_night(self) -> bool:
        """Plan whole cycles that fill the remaining night; False if they cannot fit the range.

        The number of cycles is the remaining time over the mean cycle length, rounded; REM and
        N3 totals follow the profile's fractions, shared between cycles like ``rem_min`` and
        ``n3_min``.
        """
        p, rng = self.p, self.rng
        total = self.n - len(self.stages)
        mean = self.minutes(0.5 * (p.cycle_min[0] + p.cycle_min[1]))
        nc = max(int(round(total / max(mean, 1))), 1)
        if not p.cycle_min[0] <= total / nc * EPOCH_S / 60.0 <= p.cycle_min[1]:
            return False
        lengths = rng.uniform(0.9, 1.1, nc)
        bounds = np.round(np.cumsum(lengths / lengths.sum()) * total).astype(int)
        lengths = np.diff(np.concatenate([[0], bounds]))
        rem_w = np.array([p.rem_min[min(k, len(p.rem_min) - 1)] for k in range(nc)])
        n3_w = np.array([p.n3_min[k] if k < len(p.n3_min) else 0.0 for k in range(nc)])
        rem = rem_w / rem_w.sum() * p.rem_frac * total * rng.uniform(0.97, 1.03)
        n3 = n3_w / max(n3_w.sum(), 1e-9) * p.n3_frac * total * rng.uniform(0.95, 1.05)
        start = len(self.stages)
        for k in range(nc):
            phase = "n1" if k == 0 or (self.stages and self.stages[-1] == W) else "n2a"
            length = start + int(bounds[k]) - len(self.stages)  # absorbs earlier overruns
            self.cycle_once(
                k,
                phase,
                rem_epochs=max(int(round(rem[k])), 4),
                length=length,
                n3_epochs=int(round(n3[k])),
            )
        while not self.full:
            k += 1
            self.cycle_once(k, "n2a")
        return True

    def rem_period(self, k: int, rem: int) -> None:
        p, rng = self.p, self.rng
        if k >= p.nightmare_from_cycle and rem >= 10 and rng.random() < p.nightmare_p:
            end = int(rng.integers(6, rem + 1))
            duration = float(rng.uniform(60.0, 180.0))
            self.add(R, end, k)
            start = len(self.stages)
            self.add(W, rng.integers(2, 7), k)
            if start < len(self.nightmare):
                self.nightmare[start] = duration
            self.add(N1, rng.integers(1, 4), k)
            return
        self.rem(rem, k)
        if rng.random() < p.wake_after_rem_p:
            self.awakening(k, 1, 3)
        elif rng.random() < 0.4:
            self.add(N1, 1, k)

    def rest_of_night(self, k: int, phase: str, rem_epochs: int | None = None) -> None:
        self.cycle_once(k, phase, rem_epochs)
        while not self.full:
            k += 1
            first = "n1" if self.stages and self.stages[-1] == W else "n2a"
            self.cycle_once(k, first)

    def plan(self) -> Plan:
        n = self.n
        return Plan(
            stages=np.asarray(self.stages[:n], dtype=np.int8),
            cycle=np.asarray(self.cycle[:n], dtype=np.int16),
            nightmare=np.asarray(self.nightmare[:n], dtype=np.float64),
        )


def _insert_long_wakes(b: _Builder, n_sol: int) -> None:
    p, rng = b.p, b.rng
    count = int(rng.integers(p.long_wakes[0], p.long_wakes[1] + 1))
    for _ in range(count):
        candidates = [i for i in range(n_sol, min(len(b.stages), b.n)) if b.stages[i] == N2]
        if not candidates:
            return
        at = int(candidates[rng.integers(len(candidates))])
        k = b.cycle[at]
        w = b.minutes(rng.uniform(*p.long_wake_min))
        n1 = int(rng.integers(p.onset_n1_epochs[0], p.onset_n1_epochs[1] + 1))
        block = [W] * w + [N1] * n1
        b.stages[at:at] = block
        b.cycle[at:at] = [k] * len(block)
        b.nightmare[at:at] = [0.0] * len(block)


def draw_night(profile: Profile, rng: np.random.Generator, n_epochs: int) -> Plan:
    """Draw the plan of a whole night.

    Parameters
    ----------
    profile : Profile
        The sleeper's statistics.
    rng : numpy.random.Generator
        Source of randomness (seeded).
    n_epochs : int
        Number of 30-s epochs of the night.

    Returns
    -------
    Plan
        Stages, cycle index and planned nightmares per epoch, shape (n_epochs,).
    """
    b = _Builder(profile, rng, n_epochs)
    n_sol = b.minutes(rng.uniform(*profile.sol_min))
    b.add(W, n_sol, 0)
    if not b.fitted_night():
        b.rest_of_night(0, "n1")
    _insert_long_wakes(b, n_sol)
    return b.plan()


def replan(
    profile: Profile,
    rng: np.random.Generator,
    n_epochs: int,
    prefix: list[tuple[int, int]],
    cycle: int,
    phase: str,
    rem_epochs: int | None = None,
) -> Plan:
    """Plan the rest of a night from some epoch on (after a cue).

    Parameters
    ----------
    profile : Profile
        The sleeper's statistics.
    rng : numpy.random.Generator
        Source of randomness (seeded from the cue).
    n_epochs : int
        Number of epochs to plan (from the first re-planned epoch to the end of the night).
    prefix : list of (stage, count)
        Epochs forced first (e.g. an awakening).
    cycle : int
        Cycle index to continue in.
    phase : str
        Where cycle ``cycle`` resumes after the prefix: one of ``PHASES``.
    rem_epochs : int or None
        Length of the resumed REM period, epochs (default: the profile's for that cycle).

    Returns
    -------
    Plan
        The plan for the remaining ``n_epochs`` epochs.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
    b = _Builder(profile, rng, n_epochs)
    for stage, count in prefix:
        b.add(stage, count, cycle)
    if not b.full:
        b.rest_of_night(cycle, phase, rem_epochs)
    return b.plan()


def architecture_stats(hypnogram) -> dict[str, float]:
    """Summary statistics of a hypnogram, for comparison with DESIGN section 4.

    Parameters
    ----------
    hypnogram : array_like of int, shape (n_epochs,)
        One stage code per 30-s epoch (W=0, N1=1, N2=2, N3=3, R=4).

    Returns
    -------
    dict
        ``TST_min`` (total sleep time), ``SOL_min`` (lights-off to the first sleep epoch),
        ``REM_latency_min`` (sleep onset to the first R epoch), ``WASO_min``, ``N1_pct``,
        ``N2_pct``, ``N3_pct``, ``R_pct`` (percent of sleep), ``n_cycles`` (REM periods),
        ``cycle_min`` (mean interval between the ends of successive REM periods, the first
        counted from sleep onset; NaN with fewer than one complete cycle), ``first_rem_min`` and
        ``last_rem_min`` (length of the first and last REM periods), ``n_awakenings``,
        ``N3_first_third`` (fraction of N3 in the first third of the sleep period), and over the
        sleep period (first to last sleep epoch) ``SPE_pct`` (sleep-period efficiency: percent
        of it asleep) and ``shifts_per_h`` (stage changes per hour of it).
    """
    h = np.asarray(hypnogram, dtype=np.int64)
    ep_min = EPOCH_S / 60.0
    sleep = np.flatnonzero(h != W)
    out: dict[str, float] = {"TST_min": float(sleep.size * ep_min)}
    if sleep.size == 0:
        return out | {"SOL_min": float("nan")}
    onset = int(sleep[0])
    tst = sleep.size
    out["SOL_min"] = onset * ep_min
    rem = np.flatnonzero(h == R)
    out["REM_latency_min"] = float((rem[0] - onset) * ep_min) if rem.size else float("nan")
    last = int(sleep[-1])
    out["WASO_min"] = float(np.sum(h[onset : last + 1] == W) * ep_min)
    for code, name in ((N1, "N1"), (N2, "N2"), (N3, "N3"), (R, "R")):
        out[f"{name}_pct"] = float(100.0 * np.sum(h == code) / tst)
    # REM periods: R epochs separated by less than 15 min belong to the same period.
    periods: list[list[int]] = []
    for i in rem:
        if periods and i - periods[-1][1] <= 30:
            periods[-1][1] = int(i)
        else:
            periods.append([int(i), int(i)])
    out["n_cycles"] = float(len(periods))
    ends = [onset] + [p[1] + 1 for p in periods]
    complete = np.diff(ends)
    out["cycle_min"] = float(np.mean(complete) * ep_min) if complete.size else float("nan")
    if periods:
        lengths = [np.sum(h[a : b + 1] == R) * ep_min for a, b in periods]
        out["first_rem_min"] = float(lengths[0])
        out["last_rem_min"] = float(lengths[-1])
    wake = (h[onset : last + 1] == W).astype(np.int8)
    out["n_awakenings"] = float(np.sum(np.diff(np.concatenate([[0], wake])) == 1))
    out["SPE_pct"] = float(100.0 * tst / (last + 1 - onset))
    spt_h = (last + 1 - onset) * EPOCH_S / 3600.0
    out["shifts_per_h"] = float(np.sum(np.diff(h[onset : last + 1]) != 0) / spt_h)
    third = onset + (last + 1 - onset) // 3
    n3 = np.sum(h == N3)
    out["N3_first_third"] = float(np.sum(h[:third] == N3) / n3) if n3 else float("nan")
    return out


#: DESIGN section 4 ranges for a healthy adult (for tests and ``benchmarks/realism.py``).
HEALTHY_TARGETS: dict[str, tuple[float, float]] = {
    "SOL_min": (10.0, 20.0),
    "REM_latency_min": (70.0, 120.0),
    "cycle_min": (90.0, 110.0),
    "n_cycles": (4.0, 6.0),
    "N1_pct": (2.0, 5.0),
    "N2_pct": (45.0, 55.0),
    "N3_pct": (13.0, 23.0),
    "R_pct": (20.0, 25.0),
}
