"""Structured errors: ``field`` and ``hint`` name what is wrong; each surface words it."""

from __future__ import annotations

import pytest

import provmark
from provmark.cli import describe, main, parser
from provmark.errors import ConfigError, ProvmarkError, RecordError, VerificationError


def test_field_and_hint_are_attributes_not_text_to_parse() -> None:
    exc = ConfigError("'2x' is neither RFC 3339 nor an age", field="since", hint="try 2d")
    assert (exc.field, exc.hint, exc.message) == (
        "since",
        "try 2d",
        "'2x' is neither RFC 3339 nor an age",
    )
    assert str(exc) == "since: '2x' is neither RFC 3339 nor an age (try 2d)"
    assert str(ConfigError("plain")) == "plain" and ConfigError("plain").field is None


def test_record_and_verification_errors_keep_their_forms() -> None:
    rec = RecordError("output.sha256", "not 64 hex digits")
    assert (rec.field, rec.reason, str(rec)) == (
        "output.sha256",
        "not 64 hex digits",
        "output.sha256: not 64 hex digits",
    )
    ver = VerificationError("inclusion_proof", "root differs", hint="re-fetch the bundle")
    assert ver.check == "inclusion_proof" and str(ver).endswith("(re-fetch the bundle)")
    assert all(issubclass(c, ProvmarkError) for c in (RecordError, VerificationError))


def test_the_cli_names_its_flag_for_a_library_parameter() -> None:
    args = parser().parse_args(["log", "--since", "2x"])
    exc = ConfigError("'2x' is neither RFC 3339 nor an age", field="since")
    assert describe(exc, args._flags) == "--since: '2x' is neither RFC 3339 nor an age"
    # a parameter the command has no flag for keeps the library's name
    assert describe(ConfigError("bad", field="queue_url"), args._flags) == "queue_url: bad"
    serve = parser().parse_args(["serve"])
    assert describe(ConfigError("bad", field="queue_url"), serve._flags) == "--queue: bad"


def test_library_errors_name_parameters_and_the_cli_its_flags(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    with provmark.open(folder / "p.db", home=folder / "home") as pm:
        with pytest.raises(ConfigError) as caught:
            pm.find(since="yesterday-ish")
        assert caught.value.field == "since" and "--" not in str(caught.value)
        with pytest.raises(ConfigError) as caught:
            pm.find(limit=0)
        assert caught.value.field == "limit"
    code = main(
        ["log", "--db", str(folder / "p.db"), "--home", str(folder / "home"), "--since", "soon"]
    )
    assert code == 2
    assert "--since: 'soon'" in capsys.readouterr().err
