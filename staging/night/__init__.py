"""After the night: statistics, recommendations and the morning report of a finished recording.

- :mod:`.stats`: sleep statistics from a hypnogram and alert outcomes;
- :mod:`.recommend`: recommendations from one night and its history;
- :mod:`.report`: the morning report (stages, events, signal quality, interventions, heart
  rate, JSON), in named steps; :mod:`.report_figures` draws its figures on a clock-time axis and
  :mod:`.report_page` renders its page from the jinja2 template ``templates/report.html``;
- :mod:`.archive`: the same for an archive of nights, on dask.distributed
  (``dreamnet score DIR``).
"""
