"""Credentials in URIs are hidden before anything is printed, logged or written into a report."""

from __future__ import annotations

import logging

import pytest

from fer_xai.redact import RedactingFormatter, redact, redact_uri


@pytest.mark.parametrize("uri, shown", [
    ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
    ("postgresql+psycopg2://user:secret@host:5432/db?sslmode=require",
     "postgresql+psycopg2://user:***@host:5432/db?sslmode=require"),
    ("mysql://user:p%40ss@host/db", "mysql://user:***@host/db"),  # '@' encoded in the password
    ("http://user:p@ss@host/x", "http://user:***@host/x"),  # unencoded '@': the last one ends the userinfo
    ("postgresql://user:se/cret@host/db", "postgresql://user:***@host/db"),  # unencoded '/': SQLAlchemy accepts it
    ("http://user:secret@[::1]:5000/api", "http://user:***@[::1]:5000/api"),
    ("postgresql://user:a&b;c@host/db", "postgresql://user:***@host/db"),  # sub-delimiters are valid there
    ("s3://bucket/key?versionId=3&X-Amz-Credential=AKIA&X-Amz-Signature=abc",
     "s3://bucket/key?versionId=3&X-Amz-Credential=***&X-Amz-Signature=***"),
    ("https://host/x?page=2&token=abc&access_key=k&api-key=q#access_token=zzz",
     "https://host/x?page=2&token=***&access_key=***&api-key=***#access_token=***"),
    ("postgresql://u:secret@h/db?password=secret&application_name=fer",
     "postgresql://u:***@h/db?password=***&application_name=fer"),
])
def test_redact_uri_hides_passwords_and_tokens(uri, shown):
    assert redact_uri(uri) == shown


@pytest.mark.parametrize("uri", [
    "postgresql://user@host/db",  # user only
    "postgresql://host:5432/db",
    "postgresql://user:@host/db",  # empty password: nothing to hide
    "http://[::1]:5000/api",
    "sqlite:////abs/path/mlflow.db",
    "sqlite:///relative.db",
    "file:///C:/data/a@b.png",  # no authority: an '@' in a path is no userinfo
    "https://host/users/@me?page=2",
    "models:/fer-silnet@fold3",
    "not a uri: just words",
    "",
])
def test_redact_uri_leaves_uris_without_credentials_alone(uri):
    assert redact_uri(uri) == uri


def test_redact_walks_nested_params_and_finds_uris_inside_text():
    params = {
        "tune": {"storage": "postgresql://u:secret@h/db", "trials": 3, "pruner": None},
        "uris": ["mysql://a:secret@b/c", ("sqlite:///x.db",)],
        "note": "cannot open 'postgresql://u:secret@h/db': refused; see <td>http://u:secret@h/</td>",
        "flag": True,
    }
    out = redact(params)
    assert out == {
        "tune": {"storage": "postgresql://u:***@h/db", "trials": 3, "pruner": None},
        "uris": ["mysql://a:***@b/c", ("sqlite:///x.db",)],
        "note": "cannot open 'postgresql://u:***@h/db': refused; see <td>http://u:***@h/</td>",
        "flag": True,
    }
    assert params["tune"]["storage"] == "postgresql://u:secret@h/db"  # the input is not modified


def test_redacting_formatter_hides_arguments_and_tracebacks():
    fmt = RedactingFormatter("%(levelname)s %(message)s")
    try:
        raise ConnectionError("could not reach postgresql://u:secret@h/db")
    except ConnectionError as exc:
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "store %s: %s",
                                   ("http://u:secret@h:5000", exc), exc_info=(type(exc), exc, exc.__traceback__))
    text = fmt.format(record)
    assert "secret" not in text
    assert "store http://u:***@h:5000: could not reach postgresql://u:***@h/db" in text
    assert "Traceback" in text


def test_optuna_storage_errors_hide_credentials(tmp_path):
    """The storage URL and the driver's error about it both reach the user's terminal."""
    from fer_xai.tuning.study import TuneError, open_study

    bad = f"sqlite://tuner:secret@//{tmp_path}/optuna.db?password=secret"  # SQLite takes no userinfo
    with pytest.raises(TuneError) as err:
        open_study(bad, "s", {}, None)
    message = str(err.value)
    assert "cannot open Optuna storage sqlite://tuner:***@" in message and "password=***" in message
    assert "secret" not in message


def test_profile_diff_hides_storage_passwords(project):
    from click.testing import CliRunner

    from fer_xai.cli import main

    (project / "params.yaml").write_text("tune: {storage: 'postgresql://tuner:old-secret@db/optuna'}\n")
    (project / "profiles").mkdir()
    (project / "profiles" / "shared.yaml").write_text(
        "description: shared study\nset:\n  tune.storage: 'postgresql://tuner:new-secret@db/optuna'\n")
    res = CliRunner().invoke(main, ["profile", "diff", "shared"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "postgresql://tuner:***@db/optuna" in res.output and "secret" not in res.output
