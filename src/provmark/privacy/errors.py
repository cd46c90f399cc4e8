"""Errors of the privacy layer (all derive from :class:`~provmark.errors.ProvmarkError`)."""

from __future__ import annotations

from ..errors import ProvmarkError


class AccessDenied(ProvmarkError, PermissionError):
    """A role asked for something it may not do (``ingest`` reading, a developer
    asking for decrypted data, ...). ``role`` and ``action`` say which."""

    def __init__(self, role: str, action: str, detail: str = "") -> None:
        self.role = role
        self.action = action
        text = f"role {role!r} may not {action}"
        super().__init__(f"{text}: {detail}" if detail else text)
