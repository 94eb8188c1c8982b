"""Online stager (staging/online.py) and the model file (staging/model.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _staging_sim import kappa, simulated

from headset.chunk import FLAG_LEAD_OFF, Chunk
from staging.errors import StagingError
from staging.stager.features import MODALITIES, continuous_features
from staging.stager.model import CONTEXT, MODEL_DIR, StagingModel, default_model, stack_context
from staging.stager.offline import stage_epochs
from staging.stager.online import OnlineStager


def _chunks(data, sfreq, names, types, size, flags=None, start=0, stop=None):
    stop = data.shape[1] if stop is None else stop
    for i in range(start, stop, size):
        j = min(i + size, stop)
        fl = np.zeros((data.shape[0], j - i), np.uint8) if flags is None else flags[:, i:j]
        yield Chunk(data[:, i:j], i, sfreq, names, types, fl)


def _run(stager, chunks):
    out = []
    for c in chunks:
        out += stager.push(c)
    return out


@pytest.fixture(scope="module")
def night():
    return simulated()


@pytest.mark.parametrize("name", ["dreamnet_stager", "simulated-only"])
def test_model_files_load_without_pickle(name):
    npz = MODEL_DIR / f"{name}.npz"
    with np.load(npz, allow_pickle=False) as z:
        assert all(z[k].dtype.kind == "f" for k in z.files)
    meta = json.loads((MODEL_DIR / f"{name}.json").read_text())
    assert meta["trained_on"]["simulated_nights"] > 0
    assert meta["name"] == name
    assert npz.stat().st_size < 2_000_000
    m = StagingModel.load(name)
    assert np.allclose(m.transition.sum(1), 1)
    assert set(m.nets) == {f"{mode}/{k}" for mode in CONTEXT for k in MODALITIES}
    assert 0.2 < m.temperature["online"] < 10 and np.isfinite(m.ood_threshold)


def test_simulated_only_model_saw_no_real_recording():
    meta = StagingModel.load("simulated-only").meta
    assert meta["trained_on"]["edf"] == []
    assert all(r["name"].startswith("sim:") for r in meta["trained_on"]["recordings"])


def test_model_roundtrip(tmp_path):
    m = default_model()
    m.save(tmp_path / "copy")
    m2 = StagingModel.load(tmp_path / "copy.npz")
    for key in m.nets:
        x = np.random.default_rng(0).standard_normal((6, m2.nets[key].w1.shape[0]))
        assert np.allclose(m.nets[key].predict_proba(x), m2.nets[key].predict_proba(x))
    assert m2.temperature == m.temperature
    (tmp_path / "copy.json").write_text("{}")
    with pytest.raises(StagingError, match="another feature set"):
        StagingModel.load(tmp_path / "copy")


def test_stack_context_edges():
    x = np.arange(8.0).reshape(4, 2)
    valid = np.array([True, False, True, True])
    s = stack_context(x, valid, (-1, 0, 1))
    assert s.shape == (4, 6)
    assert s[0].tolist() == [0, 1, 0, 1, 0, 1]  # no past, invalid future -> itself
    assert s[2].tolist() == [4, 5, 4, 5, 6, 7]  # invalid past -> itself


def test_forward_backward_ends_like_forward():
    m = default_model()
    lik = np.random.default_rng(1).dirichlet(np.ones(5), size=20)
    valid = np.ones(20, dtype=bool)
    valid[5] = False
    fw = m.forward(lik, valid)
    fb = m.forward_backward(lik, valid)
    assert np.allclose(fw[-1], fb[-1])
    assert np.allclose(fw.sum(1), 1) and np.allclose(fb.sum(1), 1)


def test_online_accuracy_chunking_and_no_lookahead(night):
    data, sf, names, types, truth = night
    a = _run(OnlineStager(), _chunks(data, sf, names, types, 128))
    assert [e.epoch for e in a] == list(range(truth.size))
    assert a[1].onset_s == 30.0
    stages = np.array([e.stage for e in a])
    assert kappa(truth, stages) > 0.6, stages
    # chunk-size invariance: bit-identical estimates
    b = _run(OnlineStager(), _chunks(data, sf, names, types, 997))
    assert all(np.array_equal(x.probs, y.probs) and x.stage == y.stage for x, y in zip(a, b))
    # no look-ahead: stopping the stream early changes nothing before the stop
    stop = int(50 * 30 * sf) + 77
    c = _run(OnlineStager(), _chunks(data, sf, names, types, 500, stop=stop))
    assert len(c) == 50
    assert all(np.array_equal(x.probs, y.probs) for x, y in zip(a, c))
    # same as the whole-recording online pass
    f = continuous_features(
        data[names.index("EEG C4-M1")],
        sf,
        eog=data[[names.index("EOG E1-M2"), names.index("EOG E2-M2")]],
        emg=data[names.index("EMG chin")],
    )
    batch = stage_epochs(f, mode="online")
    assert np.allclose(batch.probs, np.array([e.probs for e in a]), atol=1e-9)
    # offline is about as good and agrees mostly (scaled with the whole night, the first N1
    # epochs after wake keep wake's 30-45 Hz power, far above the night's: the wake rule of
    # staging.stager.physiology calls three of them W)
    off = stage_epochs(f, mode="offline")
    assert kappa(truth, off.stages) >= kappa(truth, stages) - 0.03
    assert np.mean(off.stages == stages) > 0.75


def test_gaps_flags_and_nan_give_unscored_epochs(night):
    data, sf, names, types, truth = night
    n = int(30 * sf)
    flags = np.zeros(data.shape, np.uint8)
    eeg = names.index("EEG C4-M1")
    flags[eeg, 10 * n : 11 * n] = FLAG_LEAD_OFF  # epoch 10 lead-off
    bad = data.copy()
    bad[eeg, 12 * n + 5 : 13 * n] = np.nan  # epoch 12 NaN
    chunks = [c for c in _chunks(bad, sf, names, types, 256, flags=flags, stop=20 * n)]
    chunks = [c for c in chunks if not (14 * n <= c.first_sample < 15 * n + 300)]  # gap
    est = _run(OnlineStager(), chunks)
    assert len(est) == 20
    assert [e.epoch for e in est if e.stage == -1] == [10, 12, 14]
    unscored = [e for e in est if e.stage == -1]
    assert all(e.confidence == 0 and np.isclose(e.probs.sum(), 1) for e in unscored)
    assert all(e.stage >= 0 for e in est if e.epoch not in (10, 12, 14))


def test_duplicate_chunks_are_ignored(night):
    data, sf, names, types, _ = night
    n = int(30 * sf)
    chunks = list(_chunks(data, sf, names, types, 300, stop=4 * n))
    ref = _run(OnlineStager(), chunks)
    doubled = []
    for c in chunks:
        doubled += [c, c]
    got = _run(OnlineStager(), doubled)
    assert len(got) == 4
    assert all(np.array_equal(x.probs, y.probs) for x, y in zip(ref, got))


def test_online_bad_input(night):
    data, sf, names, types, _ = night
    chunk = next(_chunks(data, sf, names, types, 100))
    with pytest.raises(StagingError, match="below the 50 Hz"):
        OnlineStager(sfreq=40.0)
    with pytest.raises(StagingError, match="unknown EEG channel 'C9'"):
        OnlineStager(eeg="C9").push(chunk)
    no_eeg = Chunk(data[3:5, :100], 0, sf, names[3:5], types[3:5], np.zeros((2, 100), np.uint8))
    with pytest.raises(StagingError, match="no usable EEG channel"):
        OnlineStager().push(no_eeg)
    with pytest.raises(TypeError):
        OnlineStager().push(data)


def test_context_offsets_are_causal_online():
    assert max(CONTEXT["online"]) == 0
