#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy between envseal and moto (stdlib only).

Usage:

    python3 proxy.py --upstream http://127.0.0.1:MOTOPORT [--port 0] [--host 127.0.0.1]
                     [--delay-ms N] [--seed N] [--fault SPEC]... [--config JSON] [--verbose]

The first line on stdout is the port it listens on. Point the client at it
(AWS_ENDPOINT_URL=http://127.0.0.1:PORT); seed moto directly. The proxy is a
reverse proxy: requests are forwarded unchanged (same method, path, headers and
body, so SigV4 signatures still verify), client connections are kept alive
(HTTP/1.1, Content-Length and chunked bodies, `Expect: 100-continue`), one
upstream connection per request.

Configuration (also `POST /__proxy/config` with this JSON as the body; it
replaces the whole configuration and restarts every rule's counters):

    {"delay_ms": 0,            # fixed delay each way (request and response)
     "seed": 1,                # seeds every rule's random schedule
     "faults": [
       {"kind": "throttle",    # throttle | 500 | 503 | reset | stall | truncate | corrupt
        "probability": 0.3,    # default 1.0
        "first": 5,            # only the first N requests matching the rule
        "target": "AmazonSSM.*"   # optional fnmatch pattern, see below
       }],
     "rate_limits": [          # shared token buckets, checked before "faults"
       {"target": "AmazonSSM.GetParameter*",   # fnmatch pattern(s), as for faults
        "rate": 40,            # tokens added per second
        "burst": 40            # bucket size (default: rate); starts full
       }]}

A request that matches a rate limit whose bucket is empty is answered with
the service's throttling error (as the `throttle` fault: counted under
"faults" in the stats as "throttle"); one that gets a token goes on to the
fault rules. Throttled requests take no token, as with AWS's buckets. A
request is counted against the first rate limit that matches it only.

A request's target is its `X-Amz-Target` header for JSON services
(`AmazonSSM.GetParameters`, `secretsmanager.BatchGetSecretValue`,
`TrentService.Decrypt`) and otherwise its path (`/bucket/key`, S3); a pattern
also matches `METHOD /path`. The first rule that matches and fires decides;
a rule's counter (for `first`) and its random draws only advance on
requests that match its target, in arrival order, so a schedule is
reproducible for a given seed and arrival order.

Faults:
  throttle  the service's own throttling error: HTTP 400
            `{"__type":"ThrottlingException","message":"Rate exceeded"}` for
            JSON services, HTTP 503 `<Code>SlowDown</Code>` XML for S3
  500, 503  an internal error / service unavailable in the service's format
  403html   HTTP 403 with an HTML body (a denial in no service's format)
  unknown-op  the server does not know the operation: HTTP 400
            UnknownOperationException (JSON services), 501 NotImplemented (S3)
  reset     close the connection (with RST) without answering
  stall     read the request and never answer (until the client gives up)
  slow      wait "ms" milliseconds (default 500), then forward: decides which
            of two concurrent calls is answered first
  truncate  forward, then send the response headers with the full
            Content-Length but only half of the body, and close
  corrupt   forward, then flip one bit in the middle of the response body
            (with "strip_checksums": true also drop x-amz-checksum-* headers)
  redirect  S3 says the bucket is in another region, as AWS does: only for
            requests signed for another region than the rule's "region"
            (those signed for it are forwarded); "status" 301 (default:
            `PermanentRedirect`), 307 (`TemporaryRedirect`) or 400
            (`AuthorizationHeaderMalformed`), with `x-amz-bucket-region`
            and the XML body AWS sends

`--fault` takes `KIND[:key=value,...]`, e.g. `throttle:probability=0.3` or
`503:first=4,target=AmazonSSM.GetParameters`.

Requests of query-protocol services (STS) have the target
`SERVICE.ACTION` (`sts.AssumeRole`), the service from the signature's
credential scope. `GET /__proxy/requests` lists every request as
`{"target", "region", "t"}` (the signing region, the arrival time in seconds
of a monotonic clock), with, for STS, the
`RoleArn`, `RoleSessionName` and `ExternalId` it was sent (never keys,
tokens or bodies otherwise); `POST /__proxy/reset-stats` clears it too.

`GET /__proxy/stats` returns
`{"requests": {TARGET: n}, "faults": {TARGET: {KIND: n}}, "total": n,
  "faulted": n}`; `POST /__proxy/reset-stats` clears it.
"""

import argparse
import fnmatch
import json
import random
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

FAULT_KINDS = ("throttle", "500", "503", "403html", "unknown-op", "reset", "stall", "slow", "truncate", "corrupt", "redirect")
# Kinds answered with a synthetic error response (see error_response).
ERROR_KINDS = ("throttle", "500", "503", "403html", "unknown-op")
MAX_HEADER_BYTES = 256 * 1024
STALL_POLL_SECONDS = 0.5


class ProtocolError(Exception):
    pass


class Rule:
    def __init__(self, spec, seed):
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(FAULT_KINDS)))
        self.kind = kind
        self.probability = float(spec.get("probability", 1.0))
        first = spec.get("first")
        self.first = None if first is None else int(first)
        target = spec.get("target")
        if isinstance(target, str):
            target = [target]
        self.targets = list(target) if target else None
        self.rng = random.Random("%s/%s" % (seed, spec.get("seed", "")))
        # corrupt: also drop the response's x-amz-checksum-* headers, so that
        # the client cannot catch the damage before its own decoder does.
        self.strip_checksums = bool(spec.get("strip_checksums", False))
        # slow: how long to hold the request before forwarding it.
        self.ms = int(spec.get("ms", 500))
        # redirect: where the bucket is, and how S3 says so.
        self.region = spec.get("region")
        self.status = int(spec.get("status", 301))
        if kind == "redirect" and not self.region:
            raise ValueError("a redirect rule needs a region")
        self.matched = 0

    def applies(self, labels, region):
        """matches(), and for a redirect: signed for another region."""
        if self.kind == "redirect" and region == self.region:
            return False
        return self.matches(labels)

    def matches(self, labels):
        if self.targets is None:
            return True
        return any(fnmatch.fnmatchcase(label, pattern) for pattern in self.targets for label in labels)

    def fires(self):
        """Called (under the state lock) for a request that matches."""
        self.matched += 1
        if self.first is not None and self.matched > self.first:
            return False
        if self.probability >= 1.0:
            return True
        return self.rng.random() < self.probability


class RateLimit:
    """A token bucket shared by every request that matches its targets."""

    kind = "throttle"
    strip_checksums = False

    def __init__(self, spec):
        self.rate = float(spec["rate"])
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        self.burst = float(spec.get("burst", self.rate))
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        target = spec.get("target")
        if isinstance(target, str):
            target = [target]
        self.targets = list(target) if target else None
        self.tokens = self.burst
        self.stamp = time.monotonic()

    matches = Rule.matches

    def take(self):
        """Called under the state lock: True when a token was available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.delay = 0.0
        self.rules = []
        self.limits = []
        self.config = {}
        self.reset_stats()

    def reset_stats(self):
        self.log = []
        self.requests = {}
        self.faults = {}
        self.total = 0
        self.faulted = 0

    def configure(self, config):
        seed = config.get("seed", 1)
        rules = [Rule(spec, "%s/%d" % (seed, i)) for i, spec in enumerate(config.get("faults") or [])]
        limits = [RateLimit(spec) for spec in config.get("rate_limits") or []]
        with self.lock:
            self.delay = max(0.0, float(config.get("delay_ms", 0)) / 1000.0)
            self.rules = rules
            self.limits = limits
            self.config = config

    def decide(self, target, labels, record=None):
        with self.lock:
            if record is not None:
                self.log.append(record)
            self.total += 1
            self.requests[target] = self.requests.get(target, 0) + 1
            for limit in self.limits:
                if limit.matches(labels):
                    if limit.take():
                        break
                    self.faulted += 1
                    per = self.faults.setdefault(target, {})
                    per["throttle"] = per.get("throttle", 0) + 1
                    return limit
            for rule in self.rules:
                if rule.applies(labels, record and record.get("region")) and rule.fires():
                    self.faulted += 1
                    per = self.faults.setdefault(target, {})
                    per[rule.kind] = per.get(rule.kind, 0) + 1
                    return rule
            return None

    def stats(self):
        with self.lock:
            return {
                "requests": dict(self.requests),
                "faults": {k: dict(v) for k, v in self.faults.items()},
                "total": self.total,
                "faulted": self.faulted,
                "config": self.config,
            }


STATE = State()
UPSTREAM = ("127.0.0.1", 80)
VERBOSE = False


def log(message):
    if VERBOSE:
        sys.stderr.write("proxy: %s\n" % message)
        sys.stderr.flush()


# ---------------------------------------------------------------- HTTP framing


class Reader:
    """Buffered reads from a socket; keeps the raw bytes it returns."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_head(self):
        """Bytes up to and including the blank line; None on a clean EOF."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEADER_BYTES:
                raise ProtocolError("header too large")
            if not self._fill():
                if self.buf:
                    raise ProtocolError("connection closed inside a header")
                return None
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed inside a body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_HEADER_BYTES:
                raise ProtocolError("line too long")
            if not self._fill():
                raise ProtocolError("connection closed inside a chunk")
        end = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def read_to_eof(self):
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data


def parse_head(head):
    lines = head[:-4].decode("iso-8859-1").split("\r\n")
    start = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return start, headers


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def read_chunked_raw(reader):
    """The chunked body exactly as sent (chunks, trailers) and its payload."""
    raw = b""
    payload = b""
    while True:
        line = reader.read_line()
        raw += line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the blank line
                trailer = reader.read_line()
                raw += trailer
                if trailer == b"\r\n":
                    return raw, payload
        data = reader.read_exact(size + 2)
        raw += data
        payload += data[:-2]


def read_body(reader, headers, is_response=False, no_body=False):
    """(raw bytes, payload, framed_by_close)."""
    if no_body:
        return b"", b"", False
    te = (header(headers, "Transfer-Encoding") or "").lower()
    if "chunked" in te:
        raw, payload = read_chunked_raw(reader)
        return raw, payload, False
    length = header(headers, "Content-Length")
    if length is not None:
        data = reader.read_exact(int(length))
        return data, data, False
    if is_response:
        data = reader.read_to_eof()
        return data, data, True
    return b"", b"", False


def wants_close(version, headers):
    conn = (header(headers, "Connection") or "").lower()
    if "close" in conn:
        return True
    if version == "HTTP/1.0" and "keep-alive" not in conn:
        return True
    return False


# ----------------------------------------------------------------- responses

REASONS = {
    100: "Continue",
    200: "OK",
    301: "Moved Permanently",
    307: "Temporary Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def signing_scope(headers):
    """(region, service) of a SigV4 Authorization header, or (None, None)."""
    auth = header(headers, "Authorization") or ""
    marker = "Credential="
    if marker not in auth:
        return None, None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    if len(scope) < 5:
        return None, None
    return scope[2], scope[3]


# What the request log keeps of an STS call: names, never keys or tokens.
RECORDED_PARAMS = ("Action", "RoleArn", "RoleSessionName", "ExternalId")


def redirect_response(rule, path):
    """S3's answer for a bucket in another region (as AWS sends it)."""
    bucket = path.lstrip("/").split("/", 1)[0]
    region = rule.region
    if rule.status == 400:
        code = "AuthorizationHeaderMalformed"
        message = "The authorization header is malformed; the region 'us-east-1' is wrong; expecting '%s'" % region
        extra = "<Region>%s</Region>" % region
    else:
        code = "PermanentRedirect" if rule.status == 301 else "TemporaryRedirect"
        message = (
            "The bucket you are attempting to access must be addressed using the specified endpoint. "
            "Please send all future requests to this endpoint."
        )
        extra = "<Endpoint>%s.s3.%s.amazonaws.com</Endpoint><Bucket>%s</Bucket>" % (bucket, region, bucket)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>%s</Code><Message>%s</Message>%s"
        "<RequestId>0000000000000000</RequestId><HostId>proxy</HostId></Error>" % (code, message, extra)
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("x-amz-bucket-region", region),
        ("x-amz-request-id", "0000000000000000"),
        ("x-amz-id-2", "proxy"),
    ]
    if rule.status in (301, 307):
        headers.append(("Location", "http://%s.s3.%s.amazonaws.com%s" % (bucket, region, path)))
    return rule.status, headers, body


def build_response(status, headers, body, close=False):
    out = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    for k, v in headers:
        out.append("%s: %s" % (k, v))
    out.append("Content-Length: %d" % len(body))
    out.append("Connection: %s" % ("close" if close else "keep-alive"))
    return ("\r\n".join(out) + "\r\n\r\n").encode("iso-8859-1") + body


def error_response(kind, is_json, content_type):
    """(status, headers, body) of a synthetic service error."""
    if kind == "403html":
        # A denial in no service's format, as a WAF or an egress proxy sends.
        return 403, [("Content-Type", "text/html")], b"<html><body><h1>403 Forbidden</h1></body></html>"
    if is_json:
        code, status, message = {
            "throttle": ("ThrottlingException", 400, "Rate exceeded"),
            "500": ("InternalServerError", 500, "Internal failure (injected)"),
            "503": ("ServiceUnavailable", 503, "Service unavailable (injected)"),
            "unknown-op": ("UnknownOperationException", 400, "Unknown operation (injected)"),
        }[kind]
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [
            ("Content-Type", content_type or "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000"),
            ("X-Amzn-ErrorType", code),
        ]
        return status, headers, body
    code, status, message = {
        "throttle": ("SlowDown", 503, "Please reduce your request rate."),
        "500": ("InternalError", 500, "We encountered an internal error. Please try again."),
        "503": ("ServiceUnavailable", 503, "Service is unable to handle request."),
        "unknown-op": ("NotImplemented", 501, "A header you provided implies functionality that is not implemented."),
    }[kind]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>%s</Code><Message>%s</Message>"
        "<RequestId>0000000000000000</RequestId><HostId>proxy</HostId></Error>" % (code, message)
    ).encode()
    return status, [("Content-Type", "application/xml"), ("x-amz-request-id", "0000000000000000")], body


# ------------------------------------------------------------------ handler


def reset_connection(sock):
    try:
        # SO_LINGER with a zero timeout: close() sends RST, not FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def stall(sock):
    """Never answer; return when the client closes its end."""
    sock.settimeout(STALL_POLL_SECONDS)
    while True:
        try:
            if not sock.recv(65536):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def forward(head, raw_body):
    """Sends the request upstream; returns (status, headers, payload)."""
    upstream = socket.create_connection(UPSTREAM, timeout=120)
    try:
        upstream.sendall(head + raw_body)
        reader = Reader(upstream)
        method = head.split(b" ", 1)[0].upper()
        while True:
            rhead = reader.read_head()
            if rhead is None:
                raise ProtocolError("upstream closed without answering")
            start, headers = parse_head(rhead)
            status = int(start.split(" ")[1])
            if 100 <= status < 200:
                continue  # interim (100 Continue): the final answer follows
            no_body = method == b"HEAD" or status in (204, 304)
            _raw, payload, _ = read_body(reader, headers, is_response=True, no_body=no_body)
            return status, headers, payload, no_body
    finally:
        upstream.close()


HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
}


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = Reader(sock)
        try:
            while True:
                if not self.one_request(sock, reader):
                    return
        except (ProtocolError, OSError, ValueError) as exc:
            log("connection ended: %s" % exc)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def one_request(self, sock, reader):
        """Serves one request; False when the connection is done."""
        head = reader.read_head()
        if head is None:
            return False
        start, headers = parse_head(head)
        parts = start.split(" ")
        if len(parts) != 3:
            raise ProtocolError("bad request line")
        method, target_uri, version = parts
        if (header(headers, "Expect") or "").lower() == "100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        raw_body, payload, _ = read_body(reader, headers)
        close = wants_close(version, headers)
        path = urllib.parse.urlsplit(target_uri).path or "/"

        if path.startswith("/__proxy/"):
            sock.sendall(self.control(method, path, payload, close))
            return not close

        amz_target = header(headers, "X-Amz-Target")
        is_json = amz_target is not None
        region, service = signing_scope(headers)
        record = {"region": region, "t": time.monotonic()}
        form = (header(headers, "Content-Type") or "").startswith("application/x-www-form-urlencoded")
        params = urllib.parse.parse_qs(payload.decode("utf-8", "replace")) if form and not is_json else {}
        if is_json:
            target = amz_target
            labels = [amz_target]
        elif "Action" in params and service:
            target = "%s.%s" % (service, params["Action"][0])
            labels = [target]
            for name in RECORDED_PARAMS:
                if name in params:
                    record[name] = params[name][0]
        else:
            target = "%s %s" % (method, path)
            labels = [path, target]
        record["target"] = target
        rule = STATE.decide(target, labels, record)
        kind = rule.kind if rule else None
        log("%s -> %s" % (target, kind or "forward"))
        delay = STATE.delay

        if kind == "reset":
            reset_connection(sock)
            return False
        if kind == "stall":
            stall(sock)
            return False
        if kind == "slow":
            time.sleep(rule.ms / 1000.0)
        if delay:
            time.sleep(delay)
        if kind == "redirect":
            status, rheaders, body = redirect_response(rule, path)
            sock.sendall(build_response(status, rheaders, body, close))
            return not close
        if kind in ERROR_KINDS:
            status, rheaders, body = error_response(kind, is_json, header(headers, "Content-Type"))
            if delay:
                time.sleep(delay)
            sock.sendall(build_response(status, rheaders, body, close))
            return not close

        status, rheaders, body, no_body = forward(head, raw_body)
        if delay:
            time.sleep(delay)
        kept = [(k, v) for k, v in rheaders if k.lower() not in HOP_BY_HOP]
        if no_body:
            length = header(rheaders, "Content-Length")
            out = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
            out += ["%s: %s" % kv for kv in kept]
            if length is not None:
                out.append("Content-Length: %s" % length)
            out.append("Connection: %s" % ("close" if close else "keep-alive"))
            sock.sendall(("\r\n".join(out) + "\r\n\r\n").encode("iso-8859-1"))
            return not close
        if kind == "corrupt" and rule.strip_checksums:
            kept = [(k, v) for k, v in kept if not k.lower().startswith("x-amz-checksum-")]
        if kind == "corrupt" and body:
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1:]
        if kind == "truncate":
            full = build_response(status, kept, body, close=True)
            cut = len(full) - len(body) + len(body) // 2
            sock.sendall(full[:cut])
            # Let the client read what was sent before it learns the rest
            # will never come (a FIN, not an RST).
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False
        sock.sendall(build_response(status, kept, body, close))
        return not close

    def control(self, method, path, payload, close):
        try:
            if method == "POST" and path == "/__proxy/config":
                STATE.configure(json.loads(payload.decode() or "{}"))
                return self.json_response(200, STATE.stats()["config"], close)
            if method == "GET" and path == "/__proxy/stats":
                return self.json_response(200, STATE.stats(), close)
            if method == "GET" and path == "/__proxy/requests":
                with STATE.lock:
                    log = list(STATE.log)
                return self.json_response(200, log, close)
            if method == "POST" and path == "/__proxy/reset-stats":
                with STATE.lock:
                    STATE.reset_stats()
                return self.json_response(200, {}, close)
            return self.json_response(404, {"error": "no such control endpoint"}, close)
        except (ValueError, TypeError) as exc:
            return self.json_response(400, {"error": str(exc)}, close)

    @staticmethod
    def json_response(status, value, close):
        body = json.dumps(value).encode()
        return build_response(status, [("Content-Type", "application/json")], body, close)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A fleet benchmark opens hundreds of connections at once.
    request_queue_size = 1024


def parse_fault(spec):
    kind, _, rest = spec.partition(":")
    rule = {"kind": kind}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key == "probability":
            rule[key] = float(value)
        elif key == "first":
            rule[key] = int(value)
        elif key == "target":
            rule.setdefault("target", []).append(value)
        elif key == "region":
            rule[key] = value
        elif key == "status":
            rule[key] = int(value)
        else:
            raise ValueError("unknown fault option %r" % key)
    return rule


def parse_rate_limit(spec):
    target, _, rate = spec.rpartition("=")
    if not target:
        raise ValueError("--rate-limit takes TARGET=RATE[/BURST]")
    rate, _, burst = rate.partition("/")
    limit = {"target": target, "rate": float(rate)}
    if burst:
        limit["burst"] = float(burst)
    return limit


def main():
    global UPSTREAM, VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of moto")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault", action="append", default=[], help="KIND[:key=value,...]")
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        help="TARGET=RATE[/BURST]: a shared token bucket, e.g. 'AmazonSSM.GetParameter*=40/40'",
    )
    parser.add_argument("--config", help="the whole configuration as JSON")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname:
        parser.error("--upstream must be http://HOST:PORT")
    UPSTREAM = (upstream.hostname, upstream.port or 80)
    VERBOSE = args.verbose

    config = json.loads(args.config) if args.config else {}
    config.setdefault("delay_ms", args.delay_ms)
    config.setdefault("seed", args.seed)
    config.setdefault("faults", [])
    config["faults"] = list(config["faults"]) + [parse_fault(f) for f in args.fault]
    config["rate_limits"] = list(config.get("rate_limits") or []) + [parse_rate_limit(r) for r in args.rate_limit]
    STATE.configure(config)

    server = Server((args.host, args.port), Handler)
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
