"""Fixtures shared by the whole test suite: seeded simulated sleepers and chunks.

The tests mirror the packages (``tests/dsp``, ``tests/headset``, ``tests/staging/<room>``);
constants they share (the headset's rate ``FS``, the repository paths) live in
``tests/_constants.py``, the stage codes in :mod:`headset.stages`. This file's directory is on
``sys.path`` (pytest's default import mode), so every test file can import the helpers next to
it (``_constants``, ``_bdf``, ``_events_synth``, ``_staging_sim``).
"""

import pytest
from _constants import FS

from headset.chunk import Chunk
from headset.sleeper import Sleeper


@pytest.fixture
def make_sleeper():
    """Return a factory of seeded simulated sleepers at the headset's rate.

    ``make_sleeper(seed, **kw)`` is ``Sleeper(seed=seed, sfreq=FS, **kw)`` (profile healthy
    unless given): the same seed gives the same night, bit for bit.
    """

    def make(seed: int = 0, **kw) -> Sleeper:
        kw.setdefault("sfreq", FS)
        return Sleeper(seed=seed, **kw)

    return make


@pytest.fixture(scope="session")
def sim_chunk() -> Chunk:
    """One seeded 30-s chunk (healthy sleeper, seed 0, default montage, ``FS``); do not modify."""
    return Sleeper(seed=0, duration_s=30.0, sfreq=FS).read(int(30 * FS))


@pytest.fixture
def dreamnet(capsys):
    """Return ``run(argv) -> (exit code, stdout, stderr)``: ``dreamnet`` run in this process."""
    from staging.cli import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
