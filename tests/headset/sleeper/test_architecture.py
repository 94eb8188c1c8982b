"""Sleep architecture of simulated nights: DESIGN section 4 ranges and profile differences."""

import numpy as np
import pytest

from headset.sleeper import HEALTHY_TARGETS, PROFILES, Sleeper, architecture_stats
from headset.sleeper.architecture import draw_night, replan
from headset.stages import N1, N2, N3, R, W

EIGHT_H = 8 * 3600.0


def plans(profile, seeds):
    # the hypnogram of a Sleeper that has not been read yet is its whole planned night
    return [Sleeper(profile=profile, seed=s, duration_s=EIGHT_H).hypnogram for s in seeds]


@pytest.fixture(scope="module")
def healthy_stats():
    return [architecture_stats(h) for h in plans("healthy", range(1, 21))]


@pytest.mark.parametrize("key", sorted(HEALTHY_TARGETS))
def test_healthy_nights_inside_design_ranges(healthy_stats, key):
    lo, hi = HEALTHY_TARGETS[key]
    values = np.array([st[key] for st in healthy_stats])
    # every night in range, allowing one of twenty to stray by a little
    assert np.sum((values >= lo) & (values <= hi)) >= 19, values
    assert np.all((values >= 0.9 * lo) & (values <= 1.1 * hi)), values


def test_healthy_night_shape(healthy_stats):
    for st in healthy_stats:
        assert st["N3_first_third"] > 0.6  # N3 mostly early
        assert st["last_rem_min"] > st["first_rem_min"]  # REM lengthens toward morning
        assert 5 <= st["first_rem_min"] <= 12 and 20 <= st["last_rem_min"] <= 40


def test_brief_awakenings_happen(healthy_stats):
    assert np.mean([st["n_awakenings"] for st in healthy_stats]) >= 1.5


def mean_stat(profile, key, seeds=range(1, 9)):
    return np.nanmean([architecture_stats(h)[key] for h in plans(profile, seeds)])


def test_profiles_differ_as_documented():
    assert mean_stat("child", "N3_pct") > mean_stat("healthy", "N3_pct") + 4
    assert mean_stat("child", "cycle_min") < mean_stat("healthy", "cycle_min")
    assert mean_stat("insomnia", "SOL_min") >= 30
    assert mean_stat("insomnia", "WASO_min") > mean_stat("healthy", "WASO_min") + 15
    assert mean_stat("insomnia", "N1_pct") > mean_stat("healthy", "N1_pct")
    assert mean_stat("insomnia", "N3_pct") < mean_stat("healthy", "N3_pct")


def test_nightmares_in_late_rem_of_nightmare_prone_only():
    n_epochs = 960
    nm, hl = [], []
    for seed in range(10):
        p = draw_night(PROFILES["nightmare-prone"], np.random.default_rng(seed), n_epochs)
        idx = np.flatnonzero(p.nightmare)
        nm.extend(idx)
        for e in idx:
            assert p.stages[e - 1] == R and p.stages[e] == W  # REM cut by an awakening
            assert p.cycle[e] >= PROFILES["nightmare-prone"].nightmare_from_cycle
            assert 60 <= p.nightmare[e] <= 180
        h = draw_night(PROFILES["healthy"], np.random.default_rng(seed), n_epochs)
        hl.extend(np.flatnonzero(h.nightmare))
    assert len(nm) >= 10 and not hl
    assert np.median(nm) > n_epochs / 2  # late in the night


def test_replan_prefix_and_phase():
    rng = np.random.default_rng(0)
    p = replan(
        PROFILES["healthy"], rng, 200, [(W, 2), (N1, 1)], cycle=2, phase="rem", rem_epochs=10
    )
    # the resumed REM period lasts its 10 epochs, brief interruptions included
    assert list(p.stages[:4]) == [W, W, N1, R] and np.sum(p.stages[3:13] == R) >= 7
    assert p.stages.size == 200 and set(np.unique(p.stages)) <= {W, N1, N2, N3, R}
    with pytest.raises(ValueError, match="phase"):
        replan(PROFILES["healthy"], rng, 10, [], 0, "deep")


def test_short_night_still_works():
    s = Sleeper(seed=3, duration_s=3600)
    h = s.hypnogram
    assert h.size == 120 and h[0] == W and (h == N2).any()
    st = architecture_stats(h)
    assert st["TST_min"] > 0
    assert architecture_stats(np.zeros(10, dtype=int))["TST_min"] == 0
    assert N3 in h or R in h or N2 in h
