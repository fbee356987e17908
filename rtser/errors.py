class RtserError(Exception):
    """A problem the user can fix; the CLI prints its message as one line and exits with status 2."""


class RtserWarning(UserWarning):
    """Something the user should know about the input; the CLI prints it as one line on stderr."""
