#!/usr/bin/env python3
"""Write and read S3 objects with AWS's Python S3 Encryption Client
(`pip install amazon-s3-encryption-client-python`, import `s3_encryption`)
against an AWS endpoint (moto), for envseal's tests.

Usage: python3 s3ec.py ENDPOINT < ops.json

stdin is a JSON array of operations:

    {"op": "put", "bucket": "b", "key": "k", "kms_key_id": "alias/app",
     "body_b64": "...",                       # the plaintext
     "format": "v2" | "v3",                   # v2: ALG_AES_256_GCM_IV12_TAG16_NO_KDF
                                              # v3: the default, key-committing suite
     "encryption_context": {"app": "x"},      # optional
     "layout": "metadata" | "instruction"}    # optional, default metadata

    {"op": "get", "bucket": "b", "key": "k", "kms_key_id": "alias/app",
     "encryption_context": {...},             # optional
     "legacy": true}                          # optional: also read kms + CBC

    {"op": "put-legacy-cbc", "bucket": "b", "key": "k", "kms_key_id": "alias/app",
     "body_b64": "..."}                       # the plaintext

Output on stdout: a JSON array, one result per op: for put and
put-legacy-cbc {"metadata": {...}} (the envelope as stored), for get
{"body_b64": "..."} or {"error": "..."} when the client refuses to decrypt.

The Python client writes its envelope into the object's metadata only
(instruction files are read-only in 4.x: its put_object refuses that mode).
"layout": "instruction" therefore re-lays out what it wrote the way
instruction-file writers (Ruby, Go, Java) store it: the envelope moves into
KEY.instruction (a JSON object) and the object keeps only what stays with it
(V3: x-amz-c, x-amz-d, x-amz-i; V2: nothing, as Go writes it). The
ciphertext is the Python client's, and the client reads the result back
(its reader fetches KEY.instruction when the metadata has no envelope).

"put-legacy-cbc" writes what the Ruby V1 client (Aws::S3::Encryption::Client
with kms_key_id) writes, which no Python client can: KMS GenerateDataKey
(AES_256) with the context {"kms_cmk_id": KEY}, AES-256-CBC with PKCS#7
padding under a random 16-byte IV, and the V2 envelope with wrap "kms" in the
metadata (FORMATS.md §2, the vectors' ruby-v1-*). The Python client reads it
back with its legacy modes enabled ("get" with "legacy": true).
"""

import base64
import json
import os
import sys

for _name in list(os.environ):
    if _name.startswith("AWS_"):
        del os.environ[_name]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import boto3  # noqa: E402
import botocore.config  # noqa: E402
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig  # noqa: E402
from s3_encryption.materials.kms_keyring import KmsKeyring  # noqa: E402
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy  # noqa: E402

REGION = "us-east-1"
CONFIG = botocore.config.Config(
    retries={"max_attempts": 1, "mode": "standard"},
    s3={"addressing_style": "path"},
)
# V3 keeps these in the object's metadata even in instruction-file mode.
V3_OBJECT_KEYS = ("x-amz-c", "x-amz-d", "x-amz-i")


def client(endpoint, service):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CONFIG,
    )


def encryption_client(endpoint, kms_key_id, fmt, legacy=False):
    """A fresh boto3 S3 client per wrapper: the wrapper mutates it."""
    keyring = KmsKeyring(
        kms_client=client(endpoint, "kms"),
        kms_key_id=kms_key_id,
        enable_legacy_wrapping_algorithms=legacy,
    )
    if fmt == "v2":
        config = S3EncryptionClientConfig(
            keyring=keyring,
            encryption_algorithm=AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
            commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
        )
    elif fmt == "v3":
        config = S3EncryptionClientConfig(keyring=keyring)
    elif fmt == "read-any":
        # Encrypts V3, decrypts V2 and V3.
        config = S3EncryptionClientConfig(
            keyring=keyring,
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
            enable_legacy_unauthenticated_modes=legacy,
        )
    else:
        raise ValueError("format must be v2 or v3, not %r" % fmt)
    return S3EncryptionClient(wrapped_s3_client=client(endpoint, "s3"), config=config)


def put(endpoint, op):
    s3ec = encryption_client(endpoint, op["kms_key_id"], op.get("format", "v3"))
    args = {
        "Bucket": op["bucket"],
        "Key": op["key"],
        "Body": base64.b64decode(op["body_b64"]),
    }
    if op.get("encryption_context"):
        args["EncryptionContext"] = op["encryption_context"]
    s3ec.put_object(**args)
    raw = client(endpoint, "s3")
    head = raw.get_object(Bucket=op["bucket"], Key=op["key"])
    metadata = head.get("Metadata", {})
    if op.get("layout", "metadata") == "instruction":
        body = head["Body"].read()
        stays = {k: v for k, v in metadata.items() if k in V3_OBJECT_KEYS}
        moves = {k: v for k, v in metadata.items() if k not in V3_OBJECT_KEYS}
        raw.put_object(Bucket=op["bucket"], Key=op["key"], Body=body, Metadata=stays)
        raw.put_object(
            Bucket=op["bucket"],
            Key=op["key"] + ".instruction",
            Body=json.dumps(moves).encode(),
            Metadata={"x-amz-crypto-instr-file": ""},
        )
        metadata = {"object": stays, "instruction": moves}
    return {"metadata": metadata}


def put_legacy_cbc(endpoint, op):
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plaintext = base64.b64decode(op["body_b64"])
    context = {"kms_cmk_id": op["kms_key_id"]}
    key = client(endpoint, "kms").generate_data_key(
        KeyId=op["kms_key_id"], KeySpec="AES_256", EncryptionContext=context
    )
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key["Plaintext"]), modes.CBC(iv)).encryptor()
    body = encryptor.update(padded) + encryptor.finalize()
    metadata = {
        "x-amz-key-v2": base64.b64encode(key["CiphertextBlob"]).decode("ascii"),
        "x-amz-iv": base64.b64encode(iv).decode("ascii"),
        "x-amz-cek-alg": "AES/CBC/PKCS5Padding",
        "x-amz-wrap-alg": "kms",
        "x-amz-matdesc": json.dumps(context, separators=(",", ":")),
        "x-amz-unencrypted-content-length": str(len(plaintext)),
    }
    client(endpoint, "s3").put_object(
        Bucket=op["bucket"], Key=op["key"], Body=body, Metadata=metadata
    )
    return {"metadata": metadata}


def get(endpoint, op):
    s3ec = encryption_client(endpoint, op["kms_key_id"], "read-any", op.get("legacy", False))
    args = {"Bucket": op["bucket"], "Key": op["key"]}
    if op.get("encryption_context"):
        args["EncryptionContext"] = op["encryption_context"]
    try:
        response = s3ec.get_object(**args)
    except Exception as exc:  # the client's refusal is the result
        return {"error": "%s: %s" % (type(exc).__name__, exc)}
    return {"body_b64": base64.b64encode(response["Body"].read()).decode("ascii")}


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: s3ec.py ENDPOINT < ops.json\n")
        return 2
    endpoint = sys.argv[1]
    ops = json.load(sys.stdin)
    results = []
    for index, op in enumerate(ops):
        kind = op.get("op")
        try:
            if kind == "put":
                results.append(put(endpoint, op))
            elif kind == "get":
                results.append(get(endpoint, op))
            elif kind == "put-legacy-cbc":
                results.append(put_legacy_cbc(endpoint, op))
            else:
                raise ValueError("unknown op %r" % kind)
        except Exception as exc:
            sys.stderr.write("s3ec.py op %d (%s) failed: %s: %s\n" % (index, kind, type(exc).__name__, exc))
            return 1
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
