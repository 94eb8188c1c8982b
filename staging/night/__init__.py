"""After the night: statistics, recommendations and the morning report of a finished recording.

- :mod:`.stats`: sleep statistics from a hypnogram and alert outcomes;
- :mod:`.recommend`: recommendations from one night and its history;
- :mod:`.report`: the morning report (stages, events, heart rate, figures, JSON, HTML);
- :mod:`.archive`: the same for an archive of nights, on dask.distributed
  (``dreamnet score DIR``).
"""
