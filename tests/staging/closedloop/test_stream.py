"""The streaming helpers the detectors share (staging/closedloop/stream.py)."""

import numpy as np
import pytest
from _constants import FS
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, sosfilt, sosfilt_zi

from headset.chunk import Chunk
from staging.closedloop.stream import (
    ChunkBatcher,
    EmgRms,
    Framer,
    StageInput,
    percentile,
    split_chunk,
)


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
    consumer = "arousal detection"

    def __init__(self, chunk):
        self._init_input(chunk.sfreq, chunk.ch_names, chunk.ch_types)

    def _bind(self, info):
        self.bound = info


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


@settings(max_examples=25, deadline=None)
@given(
    first=st.integers(0, 10_000),
    cuts=st.lists(st.integers(1, 400), min_size=1, max_size=8),
    win=st.integers(1, 40),
    hop=st.integers(1, 40),
)
def test_framer_gives_the_frames_of_the_whole_signal_whatever_the_chunking(first, cuts, win, hop):
    rng = np.random.default_rng(first)
    x = rng.standard_normal((2, 600))
    fr = Framer(2, win, hop)
    got, starts = [], []
    i = j = 0
    while i < x.shape[1]:
        k = cuts[j % len(cuts)]
        j += 1
        part = x[:, i : i + k].copy()
        frames, _, s = fr.push(part, np.zeros(part.shape, np.uint8), first + i)
        if frames is not None:
            got.extend(frames.transpose(1, 0, 2).copy())
        part[:] = np.nan  # the caller reuses its buffer: what the framer keeps is its own
        starts.extend(s.tolist())
        i += k
    n = (x.shape[1] - win) // hop + 1 if x.shape[1] >= win else 0
    assert starts == [first + j * hop for j in range(n)]  # the first frame at the first sample
    for j, f in enumerate(got):
        np.testing.assert_array_equal(f, x[:, j * hop : j * hop + win])


def test_emg_rms_against_scipy_and_chunk_invariant():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(int(20 * FS)) * 5.0
    bad = np.zeros(x.size, bool)
    bad[1000:1010] = True
    sos = butter(4, [20.0, 100.0], btype="bandpass", fs=FS, output="sos")
    y, _ = sosfilt(sos, x, zi=sosfilt_zi(sos) * x[0])  # the streaming filter starts steady
    n_bin = 64
    k = y.size // n_bin
    want = np.sqrt(np.mean(y[: k * n_bin].reshape(k, n_bin) ** 2, axis=1))
    want[bad[: k * n_bin].reshape(k, n_bin).any(axis=1)] = np.nan
    for sizes in ((x.size,), (1, 63, 500, 7)):
        emg = EmgRms(FS, 0.25)
        rms, starts = [], []
        i, j = 0, 0
        while i < x.size:
            n = sizes[j % len(sizes)]
            r, s = emg.push(x[i : i + n], bad[i : i + n], 500 + i)
            rms.extend(r)
            starts.extend(s)
            i, j = i + n, j + 1
        # the streaming filter against scipy's sosfilt: 1e-9 of the signal's RMS (5 µV)
        np.testing.assert_allclose(rms, want, rtol=0, atol=5e-9)
        assert starts == [500 + b * n_bin for b in range(k)]
    assert np.isnan(want[1000 // n_bin]) and np.isnan(want[1009 // n_bin])


def test_framer_frames_are_read_only_views():
    fr = Framer(1, 4, 2)
    frames, fflags, starts = fr.push(np.arange(10.0)[None], np.zeros((1, 10), np.uint8), 0)
    assert starts.tolist() == [0, 2, 4, 6]
    assert not frames.flags.writeable and not fflags.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        frames[0, 0, 0] = 1.0


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-5, 5).map(float),
        min_size=1,
        max_size=60,
    ),
    q=st.sampled_from([0.0, 5.0, 20.0, 25.0, 50.0, 62.5, 90.0, 100.0]) | st.floats(0.0, 100.0),
)
def test_percentile_is_numpy_percentile_bit_for_bit(values, q):
    a = np.asarray(values)
    assert percentile(a, q) == np.percentile(a, q)
