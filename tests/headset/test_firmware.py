"""Firmware: ADS1299-like quantisation, saturation, lead-off bits, framing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from headset import protocol as P
from headset.firmware import Firmware, quantize_aux, quantize_packets

NAMES = ("EEG A", "EEG B", "ACC X")
TYPES = ("eeg", "eeg", "misc")


def _fw(**kw):
    return Firmware(NAMES, TYPES, 256.0, **kw)


def _parse(rows):
    (b,) = P.StreamParser().feed(rows.tobytes()).batches
    return b


def test_front_end_constants():
    fw = _fw()
    assert fw.range_uv == pytest.approx(187_500.0)  # +-187.5 mV at gain 24
    assert fw.lsb_uv == pytest.approx(2 * 4.5 / 24 / 2**24 * 1e6)
    assert fw.range_uv / fw.lsb_uv == pytest.approx(2**23)
    assert fw.exg_idx.tolist() == [0, 1] and fw.aux_idx.tolist() == [2]


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (2, 16), elements=st.floats(-187_400.0, 187_400.0)))
def test_quantisation_within_half_an_lsb(x):
    fw = _fw()
    back = fw.to_uv(fw.quantize(x))
    assert np.all(np.abs(back - x) <= 0.5 * fw.lsb_uv * (1 + 1e-9))


def test_saturation_at_the_rails():
    fw = _fw()
    codes = fw.quantize(np.array([2e5, -2e5, 187_500.0, -187_500.0, np.nan, 0.0]))
    assert codes.tolist() == [P.CODE_MAX, P.CODE_MIN, P.CODE_MAX, P.CODE_MIN, P.CODE_MAX, 0]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.sampled_from([1, 2, 3, 8]), st.integers(0, 2**31),
       st.sampled_from([30.0, 2e5, 5e5]))  # fmt: skip
def test_packet_quantiser_kernel_matches_numpy(n_pk, s, seed, scale):
    """Codes and flat packets bit for bit as Firmware.quantize and the numpy flat test give
    them: ties, rails, NaN and infinities, flat packets in range and at the rails."""
    fw = _fw()
    rng = np.random.default_rng(seed)
    x = rng.normal(0, scale, (3, n_pk * s))
    x[0, : 2 * s] = (rng.integers(-50, 50) + 0.5) * fw.lsb_uv  # ties (x.5 codes), flat
    x[1, :s] = rng.choice([np.nan, np.inf, -np.inf, 3e5, -3e5, 12.0])  # flat at a rail or not
    x[1, rng.integers(0, n_pk * s)] = np.nan
    codes = np.empty((n_pk, 2, s), np.int32)
    flat = np.empty((n_pk, 2), bool)
    quantize_packets(x, fw.exg_idx, fw.lsb_uv, s, codes, flat)
    ref = fw.quantize(x[fw.exg_idx]).reshape(2, n_pk, s).transpose(1, 0, 2)
    assert np.array_equal(codes, ref)
    first = ref[:, :, 0]
    ref_flat = (ref == ref[:, :, :1]).all(axis=2) & (first > P.CODE_MIN) & (first < P.CODE_MAX)
    assert np.array_equal(flat, ref_flat & (s > 1))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.sampled_from([1, 2, 3, 8]), st.integers(1, 8), st.integers(0, 2**31))
def test_aux_quantiser_kernel_matches_numpy(n_pk, s, every, seed):
    """Values bit for bit as the numpy expression the kernel replaced gives them: the first
    sample of each group, ties rounded to even, NaN and infinities, clipping at the rails."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 20_000, (3, n_pk * s))
    x[2, :s] = rng.integers(-50, 50, s) + 0.5  # ties
    x[2, rng.integers(0, n_pk * s, 3)] = rng.choice([np.nan, np.inf, -np.inf, 4e4, -4e4])
    rows = np.array([2, 0])
    div = min(every, s)
    got = np.empty((n_pk, 2, -(-s // div)), np.int16)
    quantize_aux(x, rows, s, div, got)
    v = x[rows].reshape(2, n_pk, s)[:, :, ::div]
    v = np.where(np.isfinite(v), v, P.AUX_MAX)
    want = np.clip(np.rint(v), P.AUX_MIN, P.AUX_MAX).astype(np.int16).transpose(1, 0, 2)
    assert np.array_equal(got, want)


def test_frame_round_trip_through_the_parser():
    fw = _fw(seq_start=65534)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 50, (3, 32))
    x[2] = np.repeat(rng.normal(0, 300, 32 // 8), 8)  # accelerometer, mg
    rows, starts, s = fw.frame(x, 1000)
    assert s == 8 and rows.shape[0] == 4 and starts.tolist() == [1000, 1008, 1016, 1024]
    b = _parse(rows)
    assert b.seq.tolist() == [65534, 65535, 0, 1]
    assert b.counter.tolist() == starts.tolist()
    exg = b.codes.transpose(1, 0, 2).reshape(2, -1) * fw.lsb_uv
    assert np.abs(exg - x[:2]).max() <= 0.5 * fw.lsb_uv
    aux = b.aux.transpose(1, 0, 2).reshape(1, -1)
    assert np.abs(aux - x[2]).max() <= 0.5  # 1 mg steps, every sample by default


def test_lower_accelerometer_rate_holds_one_value_per_packet():
    fw = _fw(aux_every=None)
    x = np.zeros((3, 16))
    x[2] = np.arange(16) * 10.0
    b = _parse(fw.frame(x + 1.0, 0)[0])
    assert b.aux.shape == (2, 1, 1) and b.aux[:, 0, 0].tolist() == [1, 81]


def test_short_last_packet():
    fw = _fw()
    rows, starts, s = fw.frame(np.ones((3, 5)), 64)
    assert s == 5 and rows.shape[0] == 1
    assert _parse(rows).codes.shape == (1, 2, 5)
    with pytest.raises(ValueError, match="multiple"):
        fw.frame(np.ones((3, 12)), 0)
    with pytest.raises(ValueError, match="channels"):
        fw.frame(np.ones((2, 8)), 0)


def test_lead_off_bits_from_events_and_flat_inputs():
    fw = _fw()
    rng = np.random.default_rng(1)
    x = rng.normal(0, 20, (3, 64))
    fw.note_event(16 / 256, 16 / 256, "Lead off: EEG B")  # samples 16..32: packets 2 and 3
    fw.note_event(0.0, 1.0, "Lead off: ACC X")  # not an ExG channel: ignored
    fw.note_event(0.0, 1.0, "Arousal")
    x[0, 48:56] = 12.5  # flat for a whole packet: electrode off
    x[1, 56:64] = 1e6  # railed: saturation, not lead-off
    b = _parse(fw.frame(x, 0)[0])
    assert b.leadoff.tolist() == [0, 0, 2, 2, 0, 0, 1, 0]
    assert (b.codes[7, 1] == P.CODE_MAX).all()
    fw.leadoff_detection = False
    assert not _parse(fw.frame(x, 64)[0]).leadoff.any()


def test_bad_configuration():
    with pytest.raises(ValueError, match="samples_per_packet"):
        _fw(samples_per_packet=0)
    with pytest.raises(ValueError, match="names"):
        Firmware(NAMES, TYPES[:2], 256.0)
    with pytest.raises(ValueError, match="ExG"):
        Firmware([f"c{i}" for i in range(33)], ["eeg"] * 33, 256.0)
