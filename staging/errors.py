"""The one exception type of the staging layer."""


class StagingError(Exception):
    """Input that cannot be staged (no usable EEG channel, too short, rate too low, ...).

    The message is one line; the command line turns it into exit code 2.
    """
