"""The ward: one technician, many beds (``dreamnet ward``); see :mod:`.app`."""

#: Most beds one ward follows (``--beds``, ``--bed``, a beds file).
MAX_BEDS = 256
#: Most worker processes of a ward (``--workers``).
MAX_WORKERS = 64
