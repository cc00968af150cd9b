"""The error type that the command line turns into a one-line message."""


class WeakdisError(Exception):
    """A user-facing error: bad input, a damaged file, a diverged trial.

    The message must name the file, key or value at fault and what was expected;
    ``weakdis`` prints it on one line (no traceback) and exits with status 1.
    """
