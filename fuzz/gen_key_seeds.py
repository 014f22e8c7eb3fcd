#!/usr/bin/env python3
"""Writes fuzz seeds that contain private keys, generated fresh with the openssl CLI.

The repository commits no private keys, so the seeds that need one (PEM keys in every
accepted and rejected encoding, a KV secret whose key matches its certificate, a PKI
exported-key response) are made at fuzz time. Usage: gen_key_seeds.py <out-dir>; writes
<out-dir>/<target>/<seed> for the targets pem, vault_kv and vault_pki.
"""
import json
import os
import subprocess
import sys
import tempfile


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read(cwd, name):
    with open(os.path.join(cwd, name), encoding="ascii") as f:
        return f.read()


def write(out, target, name, text):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "w", encoding="ascii", newline="") as f:
        f.write(text)


def envelope(data, **extra):
    body = {"request_id": "3c0b6a2e-0000-4000-8000-000000000001", "lease_id": "", "renewable": False,
            "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None, "auth": None}
    body.update(extra)
    return json.dumps(body)


def main():
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w", encoding="ascii") as f:
            f.write("[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        # Keys in every encoding parsePrivateKey accepts, and some it must refuse.
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec256.p8", cwd=d)
        openssl("ec", "-in", "ec256.p8", "-out", "ec256.sec1", cwd=d)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "ec384.p8", cwd=d)
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.p8", cwd=d)
        openssl("rsa", "-in", "rsa.p8", "-traditional", "-out", "rsa.pkcs1", cwd=d)
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa1024.p8", cwd=d)
        openssl("genpkey", "-algorithm", "ED25519", "-out", "ed25519.p8", cwd=d)
        openssl("pkcs8", "-topk8", "-in", "ec256.p8", "-v2", "aes-256-cbc", "-passout", "pass:fuzz",
                "-out", "ec256.enc", cwd=d)
        for name in ["ec256.p8", "ec256.sec1", "ec384.p8", "rsa.p8", "rsa.pkcs1", "rsa1024.p8", "ed25519.p8",
                     "ec256.enc"]:
            write(out, "pem", "key-" + name.replace(".", "-"), read(d, name))
        write(out, "pem", "two-keys", read(d, "ec256.p8") + read(d, "rsa.p8"))

        # A root and an intermediate whose key is ec256.
        openssl("req", "-x509", "-new", "-key", "ec384.p8", "-subj", "/O=fuzz/CN=Fuzz Root", "-days", "3650",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-out", "root.pem", cwd=d)
        openssl("req", "-new", "-key", "ec256.p8", "-subj", "/O=fuzz/CN=Fuzz Intermediate", "-out", "inter.csr", cwd=d)
        openssl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "ec384.p8", "-CAcreateserial",
                "-days", "365", "-extfile", ext, "-extensions", "inter", "-out", "inter.pem", cwd=d)
        root, inter, csr, key = read(d, "root.pem"), read(d, "inter.pem"), read(d, "inter.csr"), read(d, "ec256.sec1")
        write(out, "pem", "key-then-cert", key + inter)

        # KV: the happy path of the vault_kv target with a key that matches ca-cert.
        mount = envelope({"options": {"version": "2"}, "path": "secret/", "type": "kv"})
        meta = {"created_time": "2026-01-01T00:00:00Z", "custom_metadata": None, "deletion_time": "",
                "destroyed": False, "version": 3}
        fields = {"ca-cert": inter, "ca-key": key, "cert-chain": inter + root, "root-cert": root}
        write(out, "vault_kv", "v2-real-key", "\0".join([
            mount, envelope({"data": fields, "metadata": meta}), mount,
            envelope({"data": {"root-cert": root}, "metadata": dict(meta, version=2)}),
            envelope({"current_version": 3})]))

        # PKI exported-key flow: generate returns the key and CSR, sign returns its certificate.
        sign = envelope({"certificate": inter, "issuing_ca": root, "ca_chain": [inter, root]})
        issuers = envelope({"keys": ["root-1"]})
        issuer = envelope({"certificate": root, "ca_chain": [root], "issuer_id": "root-1"})
        generate = envelope({"csr": csr, "private_key": key, "private_key_type": "ec", "key_id": "k1"})
        write(out, "vault_pki", "exported-real-key",
              "\0".join([sign, issuers, issuer, generate, sign, issuers, issuer]))


if __name__ == "__main__":
    main()
