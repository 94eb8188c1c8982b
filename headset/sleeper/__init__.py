"""The simulated sleeper (DESIGN section 4): architecture, subject, signals, nightmares, faults.

>>> from headset.sleeper import Sleeper
>>> s = Sleeper(profile="healthy", seed=7, duration_s=60.0)
>>> chunk = s.read(256)

Modules, one job each: :mod:`.profiles` (kinds of sleepers), :mod:`.subject` (the seeded
person), :mod:`.architecture` (the night's plan and its statistics), :mod:`.noise` (seamless
coloured noise), :mod:`.waveforms` (transient templates), :mod:`.eeg`, :mod:`.eog`, :mod:`.emg`,
:mod:`.heart`, :mod:`.accel` (the channels), :mod:`.topography` (EEG sites and derivations),
:mod:`.nightmare` (episodes and the cue response model), :mod:`.artifacts` (signal faults),
:mod:`.sleeper` (the streaming ``Sleeper``).
"""

from .architecture import HEALTHY_TARGETS, architecture_stats
from .montage import CHANNELS, DEFAULT_MONTAGE
from .profiles import PROFILES, Profile
from .sleeper import Sleeper
from .subject import Subject

#: Version of the generator's output: bumped whenever the same seed gives a different night
#: (recorded fixtures name it and must be regenerated when it changes).
GENERATOR_VERSION = "sleeper-5"

__all__ = [
    "CHANNELS",
    "GENERATOR_VERSION",
    "DEFAULT_MONTAGE",
    "HEALTHY_TARGETS",
    "PROFILES",
    "Profile",
    "Sleeper",
    "Subject",
    "architecture_stats",
]
