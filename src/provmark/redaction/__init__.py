"""PII and secret redaction for provenance records.

Redaction runs *before* signing and is deterministic: the same input, policy and
HMAC key always give the same bytes, so records stay verifiable and equal values
stay matchable (``[EMAIL:<first 16 hex of HMAC-SHA-256(key, normalized value)>]``)
without being reversible.

Text that already looks like a placeholder of a known kind (``[EMAIL]``,
``[CARD:0123456789abcdef]``) or like a whole-value hash (``hmac-sha256:<hex>``) is
treated as already redacted; this is what makes redaction idempotent.

Quick use::

    from provmark.redaction import Policy, Redactor

    r = Redactor(Policy.from_dict({"fields": {"params.api_key": "drop"}}), key)
    r.redact_text("mail me at jo@example.com").text   # 'mail me at [EMAIL:3c1d...]'
    r.redact_document(record_dict).doc
"""

from __future__ import annotations

from provmark.redaction._checks import iban_ok, luhn_ok, shannon_entropy
from provmark.redaction._types import Detector, Finding, normalize
from provmark.redaction.detectors import (
    BUILTIN_DETECTORS,
    CardDetector,
    CustomRegex,
    EmailDetector,
    EntropyDetector,
    IbanDetector,
    IpDetector,
    PhoneDetector,
    SecretDetector,
    default_detectors,
    us_ssn,
)
from provmark.redaction.policy import Action, Mode, Policy
from provmark.redaction.redactor import (
    HMAC_PREFIX,
    MASKED,
    EncryptionItem,
    RedactedDocument,
    RedactedSpan,
    Redaction,
    Redactor,
)

__all__ = [
    "BUILTIN_DETECTORS",
    "HMAC_PREFIX",
    "MASKED",
    "Action",
    "CardDetector",
    "CustomRegex",
    "Detector",
    "EmailDetector",
    "EncryptionItem",
    "EntropyDetector",
    "Finding",
    "IbanDetector",
    "IpDetector",
    "Mode",
    "PhoneDetector",
    "Policy",
    "RedactedDocument",
    "RedactedSpan",
    "Redaction",
    "Redactor",
    "SecretDetector",
    "default_detectors",
    "iban_ok",
    "luhn_ok",
    "normalize",
    "shannon_entropy",
    "us_ssn",
]
