"""provmark: signed, tamper-evident, verifiable provenance for AI-generated content.

import provmark

with provmark.open("provmark.db") as pm:
    @pm.capture(model=provmark.Model("acme/summarizer", version="3.2"))
    def summarize(text: str, *, temperature: float = 0.2) -> str: ...

    summary = summarize(article)
    pm.verify(summary)   # Verified(...) or VerificationError naming the failed check
"""

from ._version import __version__
from .bundle import load_bundle, verify_bundle
from .capture.core import Recording
from .capture.model import Model
from .client import Provmark, open
from .crypto.keys import PublicKey, Signer
from .crypto.keystore import EnvKeyStore, FileKeyStore, KeyStore
from .errors import (
    CaptureError,
    ConfigError,
    KeyStoreError,
    NotFoundError,
    ProvmarkError,
    RecordError,
    SchemaVersionError,
    StoreError,
    VerificationError,
)
from .protocol import ProvenanceClient
from .record import SCHEMA_VERSION, Record
from .store.base import Page, Store, StoredCheckpoint
from .verify import Check, Verified

__all__ = [
    "SCHEMA_VERSION",
    "CaptureError",
    "Check",
    "ConfigError",
    "EnvKeyStore",
    "FileKeyStore",
    "KeyStore",
    "KeyStoreError",
    "Model",
    "NotFoundError",
    "Page",
    "ProvenanceClient",
    "Provmark",
    "ProvmarkError",
    "PublicKey",
    "Record",
    "RecordError",
    "Recording",
    "SchemaVersionError",
    "Signer",
    "Store",
    "StoreError",
    "StoredCheckpoint",
    "VerificationError",
    "Verified",
    "__version__",
    "load_bundle",
    "open",
    "verify_bundle",
]
