"""Independent witnesses for the log (C2SP tlog-witness, tlog-cosignature).

* :class:`Witness`: a witness's own key and state; cosigns only consistent checkpoints.
* :class:`WitnessServer` / :class:`WitnessClient`: the ``add-checkpoint`` HTTP protocol.
* :func:`witness_checkpoint` / :class:`WitnessGroup`: the log side, with a
  :class:`TrustArchive` of cosigned checkpoints.
* :class:`TrustPolicy`: verification requiring k-of-n cosignatures, timestamps and
  honouring revocations.
"""

from __future__ import annotations

from .archive import TrustArchive, archive_path
from .bundles import witnessed_bundle
from .cosignature import (
    Cosignature,
    CosignerKey,
    add_cosignatures,
    cosign,
    open_cosignatures,
    require_cosignatures,
)
from .http import WitnessClient, WitnessServer
from .policy import TrustPolicy
from .service import Witness, WitnessRefusal, WitnessState
from .submit import (
    WitnessEndpoint,
    WitnessGroup,
    WitnessReport,
    load_witnesses,
    parse_witnesses,
    witness_checkpoint,
)

__all__ = [
    "Cosignature",
    "CosignerKey",
    "TrustArchive",
    "TrustPolicy",
    "Witness",
    "WitnessClient",
    "WitnessEndpoint",
    "WitnessGroup",
    "WitnessRefusal",
    "WitnessReport",
    "WitnessServer",
    "WitnessState",
    "add_cosignatures",
    "archive_path",
    "cosign",
    "load_witnesses",
    "open_cosignatures",
    "parse_witnesses",
    "require_cosignatures",
    "witness_checkpoint",
    "witnessed_bundle",
]
