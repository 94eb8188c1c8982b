"""The one unit sanity check of exG channels: headset.edf.units."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import median_abs_deviation, trimboth

from headset.edf.units import (
    LEVEL_RANGE_UV,
    SPREAD_RANGE_UV,
    check_units,
    robust_spread,
    trimmed_sd,
    volt_scale,
)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 400),
    seed=st.integers(0, 2**16),
    cut=st.sampled_from([0.0, 0.1, 0.25]),
)
def test_trimmed_sd_is_scipys_trimboth_then_std(n, seed, cut):
    x = np.random.default_rng(seed).standard_t(3, n) * 40.0
    expected = np.std(trimboth(np.sort(x), cut)) if n - 2 * int(cut * n) > 1 else np.std(x)
    assert trimmed_sd(x, cut) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_robust_spread_is_scipys_mad_of_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 25.0, 50_000)
    d = np.diff(x)
    # scale="normal" is 1 / Phi^-1(3/4) = 1.482602..., the module's 1.4826 to 2e-6 relative
    expected = median_abs_deviation(d, scale="normal") / np.sqrt(2)
    assert robust_spread(x) == pytest.approx(expected, rel=1e-5)
    assert robust_spread(x) == pytest.approx(25.0, rel=0.03)  # white noise: its SD
    assert robust_spread(np.array([np.nan, 1.0])) == 0.0
    assert trimmed_sd(np.array([3.0])) == 0.0


def test_volt_scale():
    assert volt_scale("uV") == volt_scale("µV") == volt_scale("u V") == 1.0
    assert volt_scale("MV") == 1e3 and volt_scale("V") == 1e6 and volt_scale("nV") == 1e-3
    assert volt_scale("degC") is None and volt_scale("") is None


def test_level_check_declared_units():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 30.0, 7680)
    good = check_units("EEG C4", x, dimension="uV")
    assert good.ok and good.source == "declared" and good.scale == 1.0
    assert good.value_uv == pytest.approx(trimmed_sd(x))
    assert check_units("EEG C4", x / 1e3, dimension="mV").ok
    # volts labelled as microvolts: 3e-5 "µV" is no EEG
    bad = check_units("EEG C4", x * 1e-6, dimension="uV")
    assert not bad.ok and not bad.flat
    lo, hi = LEVEL_RANGE_UV
    assert bad.message == (
        f"channel 'EEG C4': implausible amplitude for unit 'uV' "
        f"(trimmed SD {bad.value_uv:.3g} µV, expected {lo:g}-{hi:g} µV): wrong units?"
    )
    # the same in millivolts labelled as volts: too large
    assert not check_units("EEG C4", x / 1e3, dimension="V").ok


def test_level_check_guesses_unknown_units():
    x = np.random.default_rng(3).normal(0, 30.0, 7680)
    for factor, name in ((1.0, "µV"), (1e3, "mV"), (1e6, "V")):
        v = check_units("EEG C4", x / factor, dimension="")
        assert v.ok and v.source == "guessed" and v.scale == factor and v.unit_name == name
    # no scale fits: taken as µV and refused
    v = check_units("EEG C4", x * 1e6, dimension="counts")
    assert not v.ok and v.source == "assumed" and v.scale == 1.0
    assert "'EEG C4'" in v.message and "unit 'counts'" in v.message


def test_flat_channels_are_not_unit_errors():
    steps = np.zeros(2560)
    steps[::7] = 0.3  # below two quantisation steps of 0.3
    v = check_units("EEG O2", steps, dimension="uV", flat_below=0.6)
    assert v.flat and v.ok
    assert not check_units("EEG O2", steps, dimension="uV").ok  # not flat: below 0.1 µV
    assert check_units("EEG O2", np.zeros(100), dimension="foo").source == "assumed"


def test_segments_take_the_median():
    rng = np.random.default_rng(4)
    calm = [rng.normal(0, 30.0, 256) for _ in range(9)]
    artifact = [rng.normal(0, 1e6, 256) for _ in range(3)]
    assert check_units("EEG C4", calm + artifact).ok  # a few bad records do not count
    assert not check_units("EEG C4", calm[:2] + artifact).ok
    with pytest.raises(ValueError, match="no samples"):
        check_units("EEG C4", [])


def test_spread_check_ignores_slow_drift_and_catches_wrong_units():
    rng = np.random.default_rng(5)
    t = np.arange(30 * 256) / 256
    drift = 5e4 * np.sin(2 * np.pi * 0.01 * t) + rng.normal(0, 20.0, t.size)
    assert not check_units("EEG C4", drift).ok  # the level sees the drift
    spread = check_units("EEG C4", drift, measure="spread")
    assert spread.ok and spread.expected_uv == SPREAD_RANGE_UV
    volts_read_as_uv = check_units("EEG C4", rng.normal(0, 30.0, t.size) * 1e6, measure="spread")
    assert not volts_read_as_uv.ok
    assert "sample-to-sample spread" in volts_read_as_uv.message
    with pytest.raises(ValueError, match="'measure' parameter"):
        check_units("EEG C4", drift, measure="rms")
