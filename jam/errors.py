"""The one user-facing error type.

Anything the user can fix (bad port name, missing model, malformed MIDI or YAML, no MIDI
system) is raised as :class:`JamError`. The CLI prints its message on one line to stderr
and exits with code 2; it never shows a traceback for it (unless ``--debug``).
"""


class JamError(Exception):
    """A problem the user can fix. ``str(err)`` says what is wrong and what to do."""

    exit_code = 2
