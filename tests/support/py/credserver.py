#!/usr/bin/env python3
"""A local credentials endpoint for envseal's credential-chain tests (stdlib only).

Usage: python3 credserver.py [--port 0]

The first line on stdout is the port it listens on (127.0.0.1). It serves
three shapes, all from one configuration:

  GET /container/...              ECS task role / EKS Pod Identity
      (AWS_CONTAINER_CREDENTIALS_FULL_URI). With "authorization" configured,
      the `Authorization` header must equal it (EKS Pod Identity: the
      content of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE); otherwise 401.
      With "container_status" other than 200, answers that status.
      200: {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}.
  GET /federation/credentials?account_id=A&role_name=R
      the IAM Identity Center portal's GetRoleCredentials
      (AWS_ENDPOINT_URL_SSO). The `x-amz-sso_bearer_token` header must
      equal "sso_token", and A/R must equal "sso_account"/"sso_role";
      otherwise 401 UnauthorizedException / 403 ForbiddenException.
      200: {"roleCredentials": {"accessKeyId", "secretAccessKey",
      "sessionToken", "expiration" (ms)}}.
  POST /__cred/config             replaces the configuration (JSON body):
      {"credentials": {"AccessKeyId", "SecretAccessKey", "Token"?},
       "authorization": null | "...", "container_status": 200,
       "sso_token": "...", "sso_account": "...", "sso_role": "..."}
  GET /__cred/requests            what it was asked, in order:
      [{"method", "path" (without the query), "shape": "container" | "sso" |
        "other", "auth": "none" | "ok" | "wrong", "status"}]
      ("auth" is about the Authorization header for the container shape and
      x-amz-sso_bearer_token for the SSO shape; no header value is kept).

Secrets are configured over HTTP, never on the command line.
"""

import argparse
import datetime
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONFIG = {"credentials": None, "authorization": None, "container_status": 200}
REQUESTS = []


def expiration_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the request log is /__cred/requests
        pass

    def answer(self, status, body, content_type="application/json", error_type=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if error_type:  # as the IAM Identity Center portal names its errors
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, shape, auth, status):
        with LOCK:
            REQUESTS.append(
                {
                    "method": self.command,
                    "path": urllib.parse.urlsplit(self.path).path,
                    "shape": shape,
                    "auth": auth,
                    "status": status,
                }
            )

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/__cred/config":
            try:
                config = json.loads(body or b"{}")
            except ValueError as e:
                self.answer(400, {"error": f"config is not JSON: {e}"})
                return
            with LOCK:
                CONFIG.clear()
                CONFIG.update({"authorization": None, "container_status": 200})
                CONFIG.update(config)
                REQUESTS.clear()
            self.answer(200, {"status": "ok"})
            return
        self.record("other", "none", 404)
        self.answer(404, {"message": "not found"})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        with LOCK:
            config = dict(CONFIG)
        if url.path == "/__cred/requests":
            with LOCK:
                self.answer(200, list(REQUESTS))
            return
        if url.path.startswith("/container/"):
            self.container(config)
            return
        if url.path == "/federation/credentials":
            self.sso(config, urllib.parse.parse_qs(url.query))
            return
        self.record("other", "none", 404)
        self.answer(404, {"message": "not found"})

    def container(self, config):
        expected = config.get("authorization")
        given = self.headers.get("Authorization")
        auth = "none" if given is None else ("ok" if given == expected else "wrong")
        status = int(config.get("container_status") or 200)
        if status != 200:
            self.record("container", auth, status)
            self.answer(status, {"Code": "InternalError", "Message": "configured failure"})
            return
        if expected is not None and auth != "ok":
            self.record("container", auth, 401)
            self.answer(401, {"Code": "AccessDenied", "Message": "missing or wrong authorization token"})
            return
        creds = config.get("credentials")
        if not creds:
            self.record("container", auth, 404)
            self.answer(404, {"Code": "NotFound", "Message": "no credentials configured"})
            return
        self.record("container", auth, 200)
        self.answer(
            200,
            {
                "AccessKeyId": creds["AccessKeyId"],
                "SecretAccessKey": creds["SecretAccessKey"],
                "Token": creds.get("Token", ""),
                "Expiration": expiration_in(3600),
            },
        )

    def sso(self, config, query):
        given = self.headers.get("x-amz-sso_bearer_token")
        expected = config.get("sso_token")
        auth = "none" if given is None else ("ok" if given == expected else "wrong")
        if auth != "ok":
            self.record("sso", auth, 401)
            self.answer(
                401,
                {"message": "Session token not found or invalid"},
                error_type="UnauthorizedException",
            )
            return
        account = (query.get("account_id") or [""])[0]
        role = (query.get("role_name") or [""])[0]
        if account != config.get("sso_account") or role != config.get("sso_role"):
            self.record("sso", auth, 403)
            self.answer(403, {"message": "No access"}, error_type="ForbiddenException")
            return
        creds = config.get("credentials")
        if not creds:
            self.record("sso", auth, 404)
            self.answer(404, {"message": "no credentials configured"})
            return
        role_credentials = {
            "accessKeyId": creds["AccessKeyId"],
            "secretAccessKey": creds["SecretAccessKey"],
            "expiration": int((time.time() + 3600) * 1000),
        }
        if creds.get("Token"):
            role_credentials["sessionToken"] = creds["Token"]
        self.record("sso", auth, 200)
        self.answer(200, {"roleCredentials": role_credentials})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
