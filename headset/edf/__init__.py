"""EDF/EDF+/BDF: the project's home for reading and writing recordings on disk.

:mod:`.reader` maps a file's data records into memory and converts only the asked channels
(whole-recording scoring); :mod:`headset.replay` replays a file as a live stream and
:mod:`headset.recorder` writes one.
"""
