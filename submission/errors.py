"""The one exception type that user-facing entry points turn into a one-line message."""


class UserError(Exception):
    """Bad input or an unusable environment: the message says what is wrong and how to fix it.

    The command line prints ``error: <message>`` and exits with code 2; library callers get the
    exception. Nothing on disk has been touched when one is raised during validation.
    """
