"""Agreement, kappa and calibration error against an expert (staging/stager/evaluate.py)."""

from __future__ import annotations

import numpy as np
import pytest

from staging.stager.evaluate import agreement, expected_calibration_error, scored_window


def test_perfect_and_unscored_predictions():
    truth = np.array([0, 0, 2, 2, 3, 4, -1])
    a = agreement(truth, truth.copy())
    assert a.accuracy == 1.0 and a.kappa == pytest.approx(1.0) and a.n_epochs == 6
    pred = truth.copy()
    pred[0] = -1  # an unscored epoch counts as wrong
    b = agreement(truth, pred)
    assert b.accuracy == pytest.approx(5 / 6) and b.recall["W"] == 0.5
    assert b.confusion.sum() == 5


def test_calibration_error_of_known_cases():
    y = np.array([0, 0, 0, 0])
    sure = np.tile([1.0, 0, 0, 0, 0], (4, 1))
    assert expected_calibration_error(sure, y) == pytest.approx(0.0)
    # says 0.9 for W, right half of the time: off by 0.4
    p = np.tile([0.9, 0.1, 0, 0, 0], (4, 1))
    assert expected_calibration_error(p, np.array([0, 0, 1, 1])) == pytest.approx(0.4)


def test_scored_window_pads_thirty_minutes():
    y = np.zeros(400, dtype=int)
    y[150:200] = 2
    w = scored_window(y)
    assert (w.start, w.stop) == (90, 260)
    assert scored_window(np.zeros(10, dtype=int)) == slice(0, 0)
