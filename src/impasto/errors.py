"""The project's own exceptions.

User errors are not bugs: anything a user can get wrong (a missing file, a mistyped layer,
an output folder that does not exist) raises one of these with a message that says what was
expected and what was found. The CLI prints that message and exits with ``exit_code``, no
traceback. Anything else is a real bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ImpastoError(Exception):
    """Base class of every error that is the user's to fix; ``exit_code`` 1 (runtime)."""

    exit_code = 1


class UsageError(ImpastoError):
    """An option or argument that cannot work: exit code 2, as for any command-line usage error."""

    exit_code = 2


class InputError(UsageError):
    """An input file that is missing, unreadable, not an image, or unusable (too small...)."""


class WeightsError(ImpastoError):
    """Pretrained weights that are missing, corrupt or cannot be fetched."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
