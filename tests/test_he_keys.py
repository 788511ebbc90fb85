"""The key ceremony: files, permissions, fingerprints, refusing the wrong context."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from fl_client.cli_keys import keys_app
from privacy.he import (
    PUBLIC_FILE,
    SECRET_FILE,
    EncryptedSum,
    HEFingerprintError,
    HEKeyError,
    HEParams,
    HEParamsError,
    PublicContext,
    decrypt_average,
    encrypt_update,
    generate_keys,
    load_public_context,
    load_secret_context,
    read_context_info,
    require_fingerprint,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ceremony_writes_two_owner_only_files_with_one_fingerprint(tmp_path: Path) -> None:
    files = generate_keys(tmp_path / "keys")
    assert (files.secret.name, files.public.name) == (SECRET_FILE, PUBLIC_FILE)
    assert mode(files.secret) == 0o600 and mode(files.public) == 0o600
    assert not list((tmp_path / "keys").glob(".*tmp"))
    secret, public = load_secret_context(files.secret), load_public_context(files.public)
    assert secret.fingerprint == public.fingerprint == files.fingerprint
    assert read_context_info(files.public).kind == "public"
    assert read_context_info(files.secret).kind == "secret"


def test_public_file_holds_no_key_material(tmp_path: Path) -> None:
    files = generate_keys(tmp_path)
    doc = json.loads(files.public.read_text())
    assert "secret-key" not in doc and doc["kind"] == "public"
    secret_doc = json.loads(files.secret.read_text())
    assert set(secret_doc) - set(doc) == {"secret-key"}
    public = load_public_context(files.public)
    assert isinstance(public, PublicContext) and not public.has_secret_key
    assert not hasattr(public, "secret_key") and not hasattr(public, "decryptor")


def test_public_context_cannot_be_loaded_to_decrypt(tmp_path: Path) -> None:
    files = generate_keys(tmp_path)
    with pytest.raises(HEKeyError, match="without the secret key"):
        load_secret_context(files.public)


def test_coordinator_refuses_the_secret_file(tmp_path: Path) -> None:
    files = generate_keys(tmp_path)
    with pytest.raises(HEKeyError, match="holds the federation's secret key"):
        load_public_context(files.secret)


def test_foreign_key_cannot_read_the_aggregate(tmp_path: Path) -> None:
    ours = load_secret_context(generate_keys(tmp_path / "a").secret)
    theirs = load_secret_context(generate_keys(tmp_path / "b").secret)
    assert ours.fingerprint != theirs.fingerprint
    with pytest.raises(HEFingerprintError, match="same key ceremony"):
        require_fingerprint(ours.fingerprint, theirs.fingerprint, "the coordinator")
    total = EncryptedSum(ours.public(), 64, cohort=1)
    total.add(total.load(encrypt_update(ours, np.full(64, 3.0), 500, cohort=1)))
    chunks = total.to_bytes()
    assert np.allclose(decrypt_average(ours, chunks, 64, cohort=1).values, 3.0, atol=1e-5)
    try:
        wrong = decrypt_average(theirs, chunks, 64, cohort=1).values
    except ValueError:
        return  # a random total weight may decrypt to <= 0: refused outright
    assert not np.allclose(wrong, 3.0, atol=1e-2)


def test_existing_keys_are_kept_unless_forced(tmp_path: Path) -> None:
    first = generate_keys(tmp_path)
    before = first.secret.read_bytes()
    with pytest.raises(HEKeyError, match="--force"):
        generate_keys(tmp_path)
    assert first.secret.read_bytes() == before
    second = generate_keys(tmp_path, force=True)
    assert second.fingerprint != first.fingerprint
    assert load_secret_context(second.secret).fingerprint == second.fingerprint


def test_loading_is_cached_per_file(tmp_path: Path) -> None:
    files = generate_keys(tmp_path)
    assert load_secret_context(files.secret) is load_secret_context(files.secret)
    assert load_public_context(files.public) is load_public_context(files.public)
    generate_keys(tmp_path, force=True)
    assert load_public_context(files.public).fingerprint != files.fingerprint


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    files = generate_keys(tmp_path)
    os.chmod(files.secret, 0o644)
    with pytest.raises(HEKeyError, match="chmod 600"):
        load_secret_context(files.secret)


def test_edited_parameters_break_the_fingerprint(tmp_path: Path) -> None:
    files = generate_keys(tmp_path)
    doc = json.loads(files.public.read_text())
    doc["params"]["max_weight"] = 10
    files.public.write_text(json.dumps(doc))
    with pytest.raises(HEKeyError, match="edited or corrupted"):
        load_public_context(files.public)


def test_swapped_secret_key_is_detected(tmp_path: Path) -> None:
    a, b = generate_keys(tmp_path / "a"), generate_keys(tmp_path / "b")
    doc = json.loads(a.secret.read_text())
    doc["secret-key"] = json.loads(b.secret.read_text())["secret-key"]
    a.secret.write_text(json.dumps(doc))
    with pytest.raises(HEKeyError, match="does not match its key id"):
        load_secret_context(a.secret)


@pytest.mark.parametrize("content", ["", "{}", "not json", '{"format": "other"}'])
def test_garbage_files_get_a_one_line_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ctx.json"
    path.write_text(content)
    with pytest.raises(HEKeyError, match="not a fedkg HE context file"):
        load_public_context(path)


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(HEKeyError, match="keys generate"):
        load_public_context(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poly_modulus_degree": 2048, "coeff_modulus_bits": (30, 30)},  # 60 > 54 bits
        {"poly_modulus_degree": 4096, "coeff_modulus_bits": (60, 50)},  # 110 > 109 bits
        {"poly_modulus_degree": 3000},
        {"max_abs_value": 0.0},
    ],
)
def test_insecure_or_invalid_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(HEParamsError):
        HEParams(**kwargs)


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(keys_app, name="keys")
    return app


def test_cli_generates_and_shows_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ceremony"
    result = runner.invoke(cli(), ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fingerprint = load_public_context(out / PUBLIC_FILE).fingerprint
    assert fingerprint in result.output
    shown = runner.invoke(cli(), ["keys", "show", str(out / SECRET_FILE)])
    assert shown.exit_code == 0 and fingerprint in shown.output and "secret" in shown.output


def test_cli_refuses_to_overwrite_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli(), ["keys", "generate", "--out", str(tmp_path)])
    result = runner.invoke(cli(), ["keys", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "already exists" in result.output and "Traceback" not in result.output


def test_cli_help_describes_the_ceremony() -> None:
    result = CliRunner().invoke(cli(), ["keys", "generate", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "key custodian" in text and "out of band" in text
    assert "never through the coordinator" in text
