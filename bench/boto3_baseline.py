#!/usr/bin/env python3
"""What people do today: a boto3 entrypoint script (the benchmark's baseline).

Usage: boto3_baseline.py CMD [ARGS...]

Reads the same environment envseal would (per-variable `ssm:`, `sm:`, `kms:`
and `s3://` references, and bundles in ENVSEAL_FROM), fetches every value the
usual way -- one call per name, sequentially: get_parameter, get_secret_value,
kms decrypt, get_object then kms decrypt of its base64 body, the
get_parameters_by_path paginator for a path -- then execs CMD with the values
in its environment. It is a generous baseline: no temp .env file, no shell.
"""

import base64
import json
import os
import sys

import boto3


def main():
    env = dict(os.environ)
    clients = {}

    def client(name):
        if name not in clients:
            clients[name] = boto3.client(name)
        return clients[name]

    def s3_document(ref):
        bucket, _, key = ref[len("s3://"):].partition("/")
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        plain = client("kms").decrypt(CiphertextBlob=base64.b64decode(body))["Plaintext"]
        return json.loads(plain)

    out = {k: v for k, v in env.items() if not k.startswith("ENVSEAL_")}
    for source in filter(None, env.get("ENVSEAL_FROM", "").replace("\n", ",").split(",")):
        if source.startswith("ssm:"):
            path = source[len("ssm:"):]
            pages = client("ssm").get_paginator("get_parameters_by_path").paginate(
                Path=path, Recursive=True, WithDecryption=True
            )
            for page in pages:
                for p in page["Parameters"]:
                    name = p["Name"][len(path):].upper().replace("/", "_").replace("-", "_")
                    out[name] = p["Value"]
        elif source.startswith("s3://"):
            for k, v in s3_document(source).items():
                out[k.upper()] = v if isinstance(v, str) else json.dumps(v)
    for name, value in env.items():
        if name.startswith("ENVSEAL_"):
            continue
        if value.startswith("ssm:"):
            out[name] = client("ssm").get_parameter(Name=value[4:], WithDecryption=True)[
                "Parameter"
            ]["Value"]
        elif value.startswith("sm:"):
            out[name] = client("secretsmanager").get_secret_value(SecretId=value[3:])[
                "SecretString"
            ]
        elif value.startswith("kms:"):
            blob = base64.b64decode(value[4:])
            out[name] = client("kms").decrypt(CiphertextBlob=blob)["Plaintext"].decode()
        elif value.startswith("s3://"):
            out[name] = json.dumps(s3_document(value))
    os.execve(sys.argv[1], sys.argv[1:], out)


if __name__ == "__main__":
    main()
