"""The one exception type of the device and file-format layer."""


class HeadsetError(Exception):
    """A device, transport or file-format problem (bad EDF, lost device, refused command).

    The message is one line that names the problem (and the file, where there is one);
    the command line turns it into exit code 2.
    """
