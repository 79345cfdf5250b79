"""The store's error hierarchy; the API maps each class to one HTTP status."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by the store layer."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(StoreError):
    """The object does not exist (or is not visible to the caller)."""


class AlreadyExists(StoreError):
    """An object with that name already exists."""


class Conflict(StoreError):
    """The change conflicts with the current state (e.g. a concurrent update, a final job)."""


class InvalidRequest(StoreError):
    """The request is well-formed but cannot be satisfied (e.g. a job that can never fit)."""


class InvalidTransition(Conflict):
    """A job state change that the state machine does not allow."""


class LimitExceeded(StoreError):
    """A per-user limit refuses the request (the API answers 429); ``field`` names the limit."""


class PaymentRequired(StoreError):
    """The tenant's wallet or the member's budget is exhausted (the API answers 402);
    ``balance`` is the remaining credit shown to the caller, as a decimal string."""

    def __init__(self, message: str, *, field: str, balance: str) -> None:
        super().__init__(message, field=field)
        self.balance = balance
