"""The sleeper's float32 normal draws equal numpy's bit for bit and leave the generator in step."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headset.sleeper._normal import standard_normal_f32


def pair(seed, *key):
    """Two generators in the same state."""
    return (np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key)) for _ in range(2))


def same_bits(a, b):
    return a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_many_blocks_equal_numpy():
    """Millions of draws: the rare wedge and tail branches are taken thousands of times."""
    for k in range(60):
        a, b = pair(3, 2, k)
        assert same_bits(
            standard_normal_f32(a, 81_966), b.standard_normal(81_966, dtype=np.float32)
        )


def test_wedge_test_in_double_precision():
    """Draw 73,115 of this block is accepted only when the wedge test runs in double precision,
    as numpy runs it (numba's own port of the ziggurat runs it in single precision)."""
    a, b = pair(0, 2, 56)
    want = b.standard_normal(73_120, dtype=np.float32)
    got = standard_normal_f32(a, 73_120)
    assert got[73_115] == want[73_115] and same_bits(got, want)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(0, 300), min_size=1, max_size=6))
def test_generator_stays_in_step(seed, sizes):
    """Interleaved with numpy's own draws (which use the buffered 32-bit half or not)."""
    a, b = pair(seed)
    for n in sizes:
        assert same_bits(standard_normal_f32(a, n), b.standard_normal(n, dtype=np.float32))
        assert (
            a.integers(0, 2**32, 3, dtype=np.uint32).tolist()
            == b.integers(0, 2**32, 3, dtype=np.uint32).tolist()
        )
        assert a.random() == b.random()
    assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize("bitgen", [np.random.Philox, np.random.SFC64, np.random.PCG64DXSM])
def test_other_bit_generators_draw_through_numpy(bitgen):
    a, b = np.random.Generator(bitgen(5)), np.random.Generator(bitgen(5))
    assert same_bits(standard_normal_f32(a, 1000), b.standard_normal(1000, dtype=np.float32))
