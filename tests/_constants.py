"""Constants the test files share: import them from here, never redefine them per file."""

from pathlib import Path

#: The headset's sampling rate (the default of the simulated sleeper and device), Hz.
FS = 256.0
#: The repository's root (``tests/`` is one level below).
REPO = Path(__file__).resolve().parents[1]
#: The shared data folder next to the repository (real recordings; tests skip when absent).
SHARED_DATA = REPO.parent / "shared" / "data"
