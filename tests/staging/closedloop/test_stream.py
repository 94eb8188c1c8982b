"""The streaming helpers the detectors share (staging/closedloop/stream.py)."""

import numpy as np
import pytest

from headset.chunk import Chunk
from staging.closedloop.stream import ChunkBatcher, Framer, StageInput, split_chunk


def test_split_then_batch_gives_the_chunk_back(sim_chunk):
    pieces = list(split_chunk(sim_chunk, 37))
    assert max(p.n_samples for p in pieces) == 37 and len(pieces) > 100
    assert pieces[0].annotations == sim_chunk.annotations
    assert not any(p.annotations for p in pieces[1:])
    batcher = ChunkBatcher(1000)
    blocks = [b for p in pieces if (b := batcher.add(p)) is not None]
    assert all(b.n_samples >= 1000 for b in blocks)
    blocks.append(batcher.take())
    assert batcher.take() is None
    whole = Chunk.concatenate(blocks)
    assert whole.first_sample == sim_chunk.first_sample and whole.ch_names == sim_chunk.ch_names
    np.testing.assert_array_equal(whole.data, sim_chunk.data)
    np.testing.assert_array_equal(whole.flags, sim_chunk.flags)
    assert whole.annotations == sim_chunk.annotations


@pytest.mark.parametrize("step", [1, 97, 384, 5000])
def test_framer_frames_are_the_stream_sliced(sim_chunk, step):
    x, flags = sim_chunk.data[:2], sim_chunk.flags[:2].copy()
    flags[1, 1000:1010] = 2
    win, hop = 384, 128
    fr = Framer(2, win, hop)
    got, got_flags, starts = [], [], []
    for i in range(0, x.shape[1], step):
        frames, fflags, s = fr.push(x[:, i : i + step], flags[:, i : i + step], i)
        if s.size:
            got.append(frames)
            got_flags.append(fflags)
            starts.extend(s.tolist())
    want = np.arange(0, x.shape[1] - win + 1, hop)
    assert starts == want.tolist()
    frames, fflags = np.concatenate(got, axis=1), np.concatenate(got_flags, axis=1)
    for k, s in enumerate(want):
        np.testing.assert_array_equal(frames[:, k], x[:, s : s + win])
        np.testing.assert_array_equal(fflags[:, k], flags[:, s : s + win])


class _Detector(StageInput):
    def __init__(self, chunk):
        self.sfreq, self.ch_names, self._stages, self._next = chunk.sfreq, chunk.ch_names, {}, None


def test_stage_input_checks_stages_and_chunks(sim_chunk):
    d = _Detector(sim_chunk)
    d.set_hypnogram([0, 2, 4], first_epoch=5)
    assert d._stages == {5: 0, 6: 2, 7: 4}
    with pytest.raises(ValueError, match="-1..4"):
        d.set_stage(0, 5)
    with pytest.raises(TypeError, match="Chunk"):
        d._check_chunk(sim_chunk.data)
    d._next = sim_chunk.first_sample + 1
    with pytest.raises(ValueError, match="expected"):
        d._check_chunk(sim_chunk)
    d._stage_chunk(sim_chunk, 3)  # 30 s from sample 0: epoch 0 only
    assert d._stages[0] == 3 and 1 not in d._stages
