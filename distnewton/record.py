"""Compatibility: :class:`Result` and :class:`Outcome` live in :mod:`distnewton.io.record`."""

from .io.record import FIELDS, History, Outcome, Result  # noqa: F401
