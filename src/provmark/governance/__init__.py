"""Governance: retention policies, legal holds, archival to Parquet, erasure, backups.

Every action is itself a signed, logged provenance record (``ledger``); holds and
the archive history are read back from the log, so they are tamper-evident too.
"""

from __future__ import annotations

from .archive import (
    ArchiveAudit,
    ArchiveRef,
    ArchiveResult,
    audit_with_archives,
    create_archive,
    erase_from_archive,
    known_archives,
    restore_archive,
)
from .archive_format import ArchiveCheck, OpenedArchive, Pins, open_root, verify_in_archive
from .backup import check_backup, create_backup, restore_backup
from .holds import place_hold, release_hold
from .ledger import Hold, active_holds, record_action
from .policy import GOVERNANCE_MODEL, Policy, Rule, load_policy, parse_period, parse_policy
from .retention import Plan, apply, plan

__all__ = [
    "GOVERNANCE_MODEL",
    "ArchiveAudit",
    "ArchiveCheck",
    "ArchiveRef",
    "ArchiveResult",
    "Hold",
    "OpenedArchive",
    "Pins",
    "Plan",
    "Policy",
    "Rule",
    "active_holds",
    "apply",
    "audit_with_archives",
    "check_backup",
    "create_archive",
    "create_backup",
    "erase_from_archive",
    "known_archives",
    "load_policy",
    "open_root",
    "parse_period",
    "parse_policy",
    "place_hold",
    "plan",
    "record_action",
    "release_hold",
    "restore_archive",
    "restore_backup",
    "verify_in_archive",
]
