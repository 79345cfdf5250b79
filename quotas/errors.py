"""Errors raised by the quota model."""


class QuotaError(Exception):
    """Base class for invalid quota configuration or arguments."""


class QuotaTreeError(QuotaError):
    """The cohort tree is malformed: unknown parent, a cycle, or duplicate names."""
