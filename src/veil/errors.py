"""The one exception type programs turn into a single line and a non-zero exit.

Library code raises `VeilError` (or a subclass) for anything a user can fix: bad input,
wrong network, a refused signature. Programs print `str(error)` alone, so the message must
name the record and the problem. Anything else is a bug and keeps its traceback.
"""


class VeilError(Exception):
    """A problem the user can act on; the message names the record and what is wrong."""

    exit_code: int = 1


class InputError(VeilError):
    """A file, argument or request body that cannot be used as given."""

    exit_code = 2


class ChainError(VeilError):
    """The chain refused or could not be reached (reverted transaction, wrong chain id)."""

    exit_code = 3
