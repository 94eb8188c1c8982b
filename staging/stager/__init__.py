"""The sleep stager: epoch features, the stored models, online and offline staging, training.

``staging.stager.score`` stages a whole recording; :class:`staging.stager.online.OnlineStager`
stages a live stream epoch by epoch; ``staging.stager.train`` builds the shipped models.
"""
