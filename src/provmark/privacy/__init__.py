"""Privacy: redaction on capture, field encryption, crypto-shredding, role views.

Everything here is on by default in ``provmark.open``; see ``docs/privacy.md``::

    pm = provmark.open("provmark.db")
    with pm.acting_for("alice"), pm.record(model=m, input="mail alice@example.com") as rec:
        rec.set_output("done")
    pm.get(rec.record_id).input.snapshot          # 'mail [EMAIL:5f1c...]'
    auditor = pm.view("auditor", principal="carol", reason="ticket 42")
    auditor.get(rec.record_id).input.snapshot     # 'mail alice@example.com' (read logged)
    pm.erase("alice", reason="GDPR art. 17")      # data key destroyed; records still verify
"""

from __future__ import annotations

from .base import (
    UNATTRIBUTED,
    AccessEntry,
    AccessRequest,
    Erasure,
    KeyInfo,
    Plaintext,
    Revealed,
    Status,
    Vault,
)
from .engine import ENCRYPTED_KEY, Privacy, VaultedStore, default_policy
from .errors import AccessDenied
from .vault import PostgresVault, SQLiteVault, SqlVault, vault_for
from .views import ROLES, RecordView

__all__ = [
    "ENCRYPTED_KEY",
    "ROLES",
    "UNATTRIBUTED",
    "AccessDenied",
    "AccessEntry",
    "AccessRequest",
    "Erasure",
    "KeyInfo",
    "Plaintext",
    "PostgresVault",
    "Privacy",
    "RecordView",
    "Revealed",
    "SQLiteVault",
    "SqlVault",
    "Status",
    "Vault",
    "VaultedStore",
    "default_policy",
    "vault_for",
]
