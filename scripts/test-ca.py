"""A throwaway certificate authority for the bench: the local endpoint is served over HTTPS, as
AWS's are, and the functions trust it the way Lambda's trust store would trust AWS's.

    .venv/bin/python scripts/test-ca.py DIR

writes DIR/server.pem and DIR/server.key (for 127.0.0.1 and localhost, signed by the test
CA) and DIR/bundle.pem: this machine's whole CA bundle with the test CA appended, so loading
the trust store costs what loading Lambda's (about 150 roots) costs. Uses `cryptography`,
which moto already installs in the virtualenv.
"""

import datetime
import ipaddress
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]


def main(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    # RSA 2048, as the certificates of AWS's endpoints ("Amazon RSA 2048 M0x").
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "additional-factors bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (out / "server.pem").write_bytes(server.public_bytes(pem))
    (out / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    system = next((pathlib.Path(p) for p in SYSTEM_BUNDLES if pathlib.Path(p).exists()), None)
    roots = system.read_bytes() if system else b""
    (out / "bundle.pem").write_bytes(roots + b"\n" + ca.public_bytes(pem))
    count = roots.count(b"BEGIN CERTIFICATE") + 1
    print(f"test CA: {count} roots in {out / 'bundle.pem'}")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
