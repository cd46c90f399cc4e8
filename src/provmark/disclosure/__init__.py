"""What the law asks of AI outputs, per output and over a period.

:func:`disclose` (``provmark disclose FILE|ID``, ``POST /v1/disclose``) gives the EU AI
Act Art. 50(2) / California SB 942 fields of one output with where each comes from and
whether it is signed, plus the verification verdict; :func:`coverage`
(``provmark disclose --report``, ``GET /v1/disclosure/report``, the web UI's
Disclosure page) counts over a period how many outputs carry them.
"""

from .disclose import (
    FIELDS,
    SB942,
    Disclosure,
    FieldValue,
    Source,
    Verdict,
    disclose,
    disclose_bytes,
    disclose_file,
    disclose_record,
)
from .report import Coverage, coverage

__all__ = [
    "FIELDS",
    "SB942",
    "Coverage",
    "Disclosure",
    "FieldValue",
    "Source",
    "Verdict",
    "coverage",
    "disclose",
    "disclose_bytes",
    "disclose_file",
    "disclose_record",
]
