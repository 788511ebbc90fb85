"""Development TLS certificates and SuperNode authentication keys.

The certificate authority made here is for trying fedkg on one machine or a test network:
its private key sits next to the certificates. A production coordinator brings a server
certificate from its own PKI and points the configuration at it.

SuperNode keys are ECDSA on NIST P-384 in OpenSSH format, what `flwr supernode register`
and `flower-supernode --auth-supernode-private-key` expect. The private key never leaves
the institution; the coordinator only registers the public half.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fl_server.deploy.errors import DeployError

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeyFiles:
    private: Path
    public: Path
    fingerprint: str  # SHA-256 of the OpenSSH public key line, to compare out of band


def write_private(path: Path, data: bytes) -> None:
    """Owner-only from the first byte and atomic: a crash leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_dev_certificates(
    out_dir: Path,
    names: Iterable[str] = DEFAULT_NAMES,
    *,
    days: int = 365,
    force: bool = False,
) -> CertFiles:
    """A development CA and a server certificate signed by it, valid for `names`.

    `names` are the host names and IP addresses institutions use to reach the SuperLink;
    every one must be in the certificate or their TLS check fails.
    """
    out_dir = Path(out_dir).expanduser()
    files = CertFiles(
        out_dir / CA_CERT, out_dir / CA_KEY, out_dir / SERVER_CERT, out_dir / SERVER_KEY
    )
    existing = [p for p in (files.ca_cert, files.server_cert) if p.exists()]
    if existing and not force:
        raise DeployError(
            f"{existing[0]} already exists; institutions trust its CA: pass --force to replace "
            "it (and send them the new ca.crt) or pick another --out"
        )
    names = list(names)
    if not names:
        raise DeployError("a server certificate needs at least one host name or IP address")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedkg development CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA384())
    )
    write_private(files.ca_key, _key_pem(ca_key))
    write_private(files.server_key, _key_pem(server_key))
    _write_public(files.ca_cert, _pem(ca_cert))
    _write_public(files.server_cert, _pem(server_cert))
    return files


def certificate_names(cert_path: Path) -> list[str]:
    """The host names and addresses a certificate is valid for."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise DeployError(f"{cert_path} is not a PEM certificate ({exc})") from None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    ]


def public_key_fingerprint(public_line: bytes) -> str:
    """SHA-256 of an OpenSSH public key's blob, as `ssh-keygen -l` prints it (hex here)."""
    parts = public_line.split()
    if len(parts) < 2:
        raise DeployError("not an OpenSSH public key line")
    import base64

    return hashlib.sha256(base64.b64decode(parts[1])).hexdigest()


def generate_node_keys(out_dir: Path, name: str = "node", *, force: bool = False) -> NodeKeyFiles:
    """The SuperNode's authentication key pair: `name` (private, 0600) and `name.pub`."""
    out_dir = Path(out_dir).expanduser()
    private_path, public_path = out_dir / name, out_dir / f"{name}.pub"
    if private_path.exists() and not force:
        raise DeployError(
            f"{private_path} already exists; the coordinator registered its public key: "
            "keep it, or pass --force and register the new key"
        )
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    write_private(private_path, private)
    _write_public(public_path, public + b"\n")
    return NodeKeyFiles(private_path, public_path, public_key_fingerprint(public))


def read_public_key(path: Path) -> bytes:
    """An OpenSSH public key file, checked to be what SuperNode authentication accepts."""
    try:
        line = Path(path).expanduser().read_bytes().strip()
    except OSError as exc:
        raise DeployError(f"cannot read the node's public key {path} ({exc.strerror})") from None
    try:
        key = serialization.load_ssh_public_key(line)
    except (ValueError, TypeError) as exc:
        raise DeployError(
            f"{path} is not an OpenSSH public key ({exc}); use the .pub file `fl-client init` wrote"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise DeployError(
            f"{path} holds a {type(key).__name__}; SuperNode authentication needs an ECDSA "
            "key on a NIST curve (`fl-client init` makes one)"
        )
    return line
