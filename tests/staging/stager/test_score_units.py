"""The scorer refuses signals in the wrong unit with the one unit check's message."""

from __future__ import annotations

import pytest
from _staging_sim import simulated, to_raw

from staging import score
from staging.errors import StagingError


def test_a_raw_in_microvolts_instead_of_volts_is_refused():
    data, sf, names, types, _ = simulated(n_epochs=4)
    # the values already in µV stored as if volts: every amplitude 1e6 times too large
    wrong = to_raw(data, sf, names, types, scale=1e6)
    pattern = (
        r"channel 'EEG C4-M1': implausible amplitude for unit 'uV' \(sample-to-sample spread "
        r"[0-9.e+]+ µV, expected 0-5000 µV\): wrong units\?"
    )
    with pytest.raises(StagingError, match=pattern):
        score(wrong, eeg="EEG C4-M1")
    # the right unit is scored
    assert len(score(to_raw(data, sf, names, types), eeg="EEG C4-M1")) == 4
