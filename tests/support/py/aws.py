#!/usr/bin/env python3
"""Run boto3 calls against an AWS endpoint (moto) for envseal's tests and demo.

Usage: python3 aws.py ENDPOINT < ops.json

stdin is a JSON array of operations (a single object is accepted too):

    {"service": "ssm", "method": "put_parameter",
     "args": {"Name": "/a", "Value": "x", "Type": "SecureString"},
     "region": "us-east-1",                              # optional
     "credentials": {"key": "AKIA...", "secret": "..."}, # optional, call as another IAM user
     "allow_error": true}                                # optional, see below

In args, an object {"$b64": "..."} (and nothing else) becomes bytes.

Output on stdout: a JSON array with one result per operation. Bytes and
streaming bodies become {"$b64": "..."}, datetimes ISO-8601 strings,
ResponseMetadata is dropped.

On a boto3/botocore error the script prints the failing operation and the
error on stderr and exits 1 -- unless the op has "allow_error": true, in which
case its result is {"$error": {"code": ..., "message": ..., "status": ...}} and
the remaining operations still run.
"""

import base64
import datetime
import decimal
import json
import os
import re
import sys

# The tests' own environment must not leak in: no profiles, config files,
# credential files or endpoint overrides from the machine running the tests.
for _name in list(os.environ):
    if _name.startswith("AWS_"):
        del os.environ[_name]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
from botocore.response import StreamingBody  # noqa: E402

CONFIG = botocore.config.Config(
    retries={"max_attempts": 1, "mode": "standard"},
    connect_timeout=10,
    read_timeout=60,
    s3={"addressing_style": "path"},
)


def decode_args(value):
    if isinstance(value, dict):
        if set(value) == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return {k: decode_args(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_args(v) for v in value]
    return value


def encode_result(value):
    if isinstance(value, dict):
        return {
            k: encode_result(v) for k, v in value.items() if k != "ResponseMetadata"
        }
    if isinstance(value, (list, tuple)):
        return [encode_result(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, StreamingBody):
        return {"$b64": base64.b64encode(value.read()).decode("ascii")}
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


_clients = {}


def client_for(endpoint, op):
    service = op["service"]
    region = op.get("region", "us-east-1")
    creds = op.get("credentials") or {}
    key = creds.get("key", "testing")
    secret = creds.get("secret", "testing")
    token = creds.get("token")
    cache_key = (service, region, key, secret, token)
    if cache_key not in _clients:
        _clients[cache_key] = boto3.session.Session().client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=CONFIG,
        )
    return _clients[cache_key]


def xml_field(text, tag):
    match = re.search(r"<%s>(.*?)</%s>" % (tag, tag), text, re.S)
    return match.group(1) if match else None


def error_info(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", ""))
        # moto answers IAM denials of JSON-protocol services (SSM, Secrets
        # Manager, KMS) with an XML body that botocore cannot parse: it then
        # reports the HTTP status as the code and the raw XML as the message.
        if message.lstrip().startswith("<"):
            code = xml_field(message, "Code") or code
            message = xml_field(message, "Message") or message
        return {"code": code, "message": message, "status": meta.get("HTTPStatusCode")}
    return {"code": type(exc).__name__, "message": str(exc), "status": None}


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: aws.py ENDPOINT < ops.json\n")
        return 2
    endpoint = sys.argv[1]
    ops = json.load(sys.stdin)
    if isinstance(ops, dict):
        ops = [ops]
    results = []
    for index, op in enumerate(ops):
        method = op.get("method", "")
        label = "op %d: %s.%s" % (index, op.get("service"), method)
        try:
            client = client_for(endpoint, op)
            response = getattr(client, method)(**decode_args(op.get("args") or {}))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            if op.get("allow_error"):
                results.append({"$error": error_info(exc)})
                continue
            info = error_info(exc)
            sys.stderr.write(
                "aws.py %s failed: %s (HTTP %s): %s\n"
                % (label, info["code"], info["status"], info["message"] or exc)
            )
            return 1
        except Exception as exc:  # bad method name, bad argument types...
            sys.stderr.write("aws.py %s failed: %s: %s\n" % (label, type(exc).__name__, exc))
            return 1
        results.append(encode_result(response))
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
