"""The one exception type for problems a user can cause (bad files, bad settings)."""

from __future__ import annotations


class EgbadError(Exception):
    """A plain-language problem with the user's input.

    The message is one sentence that names the file (where there is one) and what is wrong
    with it. The command line prints it and exits with code 2; the app shows it in a message
    box. Programming errors are never wrapped in this type, so they stay loud.
    """


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type's name where it has none), for a sentence."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:limit]
