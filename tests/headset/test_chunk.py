"""The Chunk and its stream description (headset/chunk.py)."""

import numpy as np
import pytest
from _constants import FS

from headset.chunk import Chunk, StreamInfo, default_unit


def _chunk(data, first=0, sfreq=FS, names=("EEG C4-M1", "ACC X"), types=("eeg", "misc")):
    data = np.atleast_2d(np.asarray(data, dtype=float))
    return Chunk(data, first, sfreq, names, types, np.zeros(data.shape, np.uint8))


def test_every_chunk_carries_its_stream():
    c = _chunk(np.zeros((2, 10)))
    assert c.info == StreamInfo(FS, ("EEG C4-M1", "ACC X"), ("eeg", "misc"), ("uV", "mg"))
    assert c.info.n_channels == 2
    assert c.piece(3).info == c.info and Chunk.concatenate([c, c.piece(5)]).info == c.info
    assert _chunk(np.zeros((2, 10)), sfreq=128.0).info != c.info
    assert [default_unit(n, t) for n, t in [("ECG", "ecg"), ("ACC Y", "misc"), ("Light", "misc")]]
    assert default_unit("Light", "misc") == ""
    with pytest.raises(ValueError, match="positive finite"):
        StreamInfo(float("nan"), (), (), ())
    with pytest.raises(ValueError, match="2 channel names but 1 types"):
        StreamInfo(FS, ("a", "b"), ("eeg",), ("uV",))
    with pytest.raises(ValueError, match="1 channel names but 2 channel types"):
        StreamInfo.create(FS, ["a"], ["eeg", "eeg"])
