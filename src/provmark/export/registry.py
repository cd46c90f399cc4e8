"""Which exporter serves which format: each module is imported only when its format is
asked for (in-toto needs nothing beyond the core; PROV and OpenLineage need extras)."""

from __future__ import annotations

from ..crypto.keys import Signer
from ..errors import ConfigError
from .base import FORMATS, Exporter, Resolve

__all__ = ["get_exporter", "registry"]


def registry(
    *,
    signer: Signer | None = None,
    resolve: Resolve | None = None,
    namespace: str = "provmark",
) -> dict[str, Exporter]:
    """Every exporter, configured: ``signer`` signs in-toto envelopes,
    ``resolve`` finds parents for PROV, ``namespace`` is the OpenLineage job namespace."""
    names = [f for f in FORMATS if f != "in-toto" or signer is not None]
    return {f: _build(f, signer, resolve, namespace) for f in names}


def get_exporter(
    fmt: str,
    *,
    signer: Signer | None = None,
    resolve: Resolve | None = None,
    namespace: str = "provmark",
) -> Exporter:
    """The exporter for ``fmt``; :class:`ConfigError` for an unknown format.

    Only the module of that format is imported, so in-toto (which needs nothing beyond
    the core) works where the optional PROV or OpenLineage libraries are not installed."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "in-toto" and signer is None:
        raise ConfigError("the in-toto format signs envelopes: give a signer")
    return _build(fmt, signer, resolve, namespace)


def _build(fmt: str, signer: Signer | None, resolve: Resolve | None, namespace: str) -> Exporter:
    if fmt == "in-toto":
        from .intoto import InTotoExporter

        assert signer is not None
        return InTotoExporter(signer)
    if fmt == "openlineage":
        from .openlineage import OpenLineageExporter

        return OpenLineageExporter(namespace=namespace)
    from .w3c_prov import ProvExporter

    return ProvExporter(fmt, resolve=resolve)
