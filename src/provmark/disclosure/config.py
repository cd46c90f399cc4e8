"""The store-wide disclosure settings: the provider name every record carries.

California SB 942 asks for the covered provider's name in every latent disclosure.
Rather than repeat it in each ``Model(provider=...)``, a deployment names it once:

1. ``provmark.open(..., provider="Acme Corp")``, else
2. ``$PROVMARK_PROVIDER``, else
3. ``provider = "Acme Corp"`` in ``$PROVMARK_HOME/config.toml``.

A model's own ``provider`` always wins. The name is written into ``model.provider``
when the record is captured, so it is signed with the record.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError

CONFIG_FILE = "config.toml"
PROVIDER_ENV = "PROVMARK_PROVIDER"


def read_config(home: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``config.toml`` of ``home`` (default ``$PROVMARK_HOME`` or ``~/.provmark``); {} if none."""
    from ..crypto.keystore import default_home

    path = (Path(home) if home is not None else default_home()) / CONFIG_FILE
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML ({exc})") from None
    return data


def default_provider(
    given: str | None = None, home: str | os.PathLike[str] | None = None
) -> str | None:
    """The provider records get when their model names none (see the module doc)."""
    if given:
        return given
    if os.environ.get(PROVIDER_ENV):
        return os.environ[PROVIDER_ENV]
    value = read_config(home).get("provider")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{CONFIG_FILE}: provider must be a non-empty string")
    return value
