"""The one exception type for problems a user can cause (bad files, bad settings)."""

from __future__ import annotations


class EgbadError(Exception):
    """A plain-language problem with the user's input.

    The message is one sentence that names the file (where there is one) and what is wrong
    with it. The command line prints it and exits with code 2; the app shows it in a message
    box. Programming errors are never wrapped in this type, so they stay loud.
    """
