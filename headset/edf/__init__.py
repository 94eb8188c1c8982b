"""EDF/EDF+/BDF: the project's home for the file format.

- :mod:`.header`: the header field table (shared by the reader and the writer), the header
  parser :func:`~headset.edf.header.read_header` and the sample decoder;
- :mod:`.reader`: the fast reader that maps a file's data records into memory and converts
  only the asked channels (whole-recording scoring);
- :mod:`.units`: the physical dimensions and the one unit sanity check
  (:func:`~headset.edf.units.check_units`), used by the replay and the stager's scorer.

:mod:`headset.replay` replays a file as a live stream and :mod:`headset.recorder` writes one;
both take the header layout from :mod:`.header`.
"""
