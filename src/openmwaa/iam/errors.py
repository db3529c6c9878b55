"""The one error the policy engine raises: a policy document that is not valid."""

from __future__ import annotations


class PolicyError(ValueError):
    """A malformed policy document (raised by the parser, never during evaluation)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
