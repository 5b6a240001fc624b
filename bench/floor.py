"""The harness's floor: the same API calls envseal makes for a workload, with
the same dependencies (S3 GET before its KMS Decrypt, DescribeParameters pages
one after another, everything else at once), sent by a client that costs
nothing: requests built before the clock starts, connections opened before
it, one thread per request. What remains is the proxy's delay plus moto's own
time to answer under that concurrency -- the fastest any client could be in
this harness. `envseal − floor` is envseal's own overhead.

moto does not check signatures unless IAM enforcement is on, so requests
carry an Authorization header with the right credential scope (moto routes on
the service named there) and a dummy signature.
"""

import http.client
import json
import threading
import time
import urllib.parse


def _auth(service):
    return (
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/%s/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=%s" % (service, "0" * 64)
    )


class Client:
    def __init__(self, endpoint):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port
        self.pool = []
        self.lock = threading.Lock()

    def conn(self):
        with self.lock:
            if self.pool:
                return self.pool.pop()
        c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        c.connect()
        return c

    def give_back(self, c):
        with self.lock:
            self.pool.append(c)

    def warm(self, n):
        conns = [self.conn() for _ in range(n)]
        for c in conns:
            self.give_back(c)

    def call(self, service, target, body):
        c = self.conn()
        data = json.dumps(body).encode()
        c.request(
            "POST",
            "/",
            body=data,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": target,
                "X-Amz-Date": "20260101T000000Z",
                "Authorization": _auth(service),
            },
        )
        r = c.getresponse()
        out = r.read()
        if r.status != 200:
            raise RuntimeError("%s: HTTP %d %s" % (target, r.status, out[:200]))
        self.give_back(c)
        return json.loads(out)

    def get_object(self, bucket, key):
        c = self.conn()
        c.request(
            "GET",
            "/%s/%s" % (bucket, key),
            headers={"X-Amz-Date": "20260101T000000Z", "Authorization": _auth("s3")},
        )
        r = c.getresponse()
        out = r.read()
        if r.status != 200:
            raise RuntimeError("GetObject: HTTP %d" % r.status)
        self.give_back(c)
        return out


def parallel(*jobs):
    """Runs the callables at once; returns their results."""
    results = [None] * len(jobs)
    errors = []

    def run(i, job):
        try:
            results[i] = job()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def get_parameters(cl, names):
    return lambda: cl.call("ssm", "AmazonSSM.GetParameters", {"Names": names, "WithDecryption": True})


def decrypt(cl, blob_b64):
    return lambda: cl.call("kms", "TrentService.Decrypt", {"CiphertextBlob": blob_b64})


def s3_then_kms(cl, bucket, key):
    def job():
        body = cl.get_object(bucket, key)
        # the body is base64 text already: that is the JSON protocol's blob form
        return cl.call("kms", "TrentService.Decrypt", {"CiphertextBlob": body.decode().strip()})

    return job


def describe_pipeline(cl, path):
    """DescribeParameters page after page; each page's GetParameters at once."""

    def job():
        hierarchy = path.rstrip("/") or "/"
        token = None
        threads = []
        while True:
            body = {
                "ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": [hierarchy]}],
                "MaxResults": 50,
            }
            if token:
                body["NextToken"] = token
            page = cl.call("ssm", "AmazonSSM.DescribeParameters", body)
            names = [p["Name"] for p in page.get("Parameters", [])]
            for i in range(0, len(names), 10):
                t = threading.Thread(target=get_parameters(cl, names[i : i + 10]))
                t.start()
                threads.append(t)
            token = page.get("NextToken")
            if not token:
                break
        for t in threads:
            t.join()

    return job


def by_path_pages(cl, path):
    """GetParametersByPath, page after page."""

    def job():
        token = None
        while True:
            body = {"Path": path, "Recursive": True, "WithDecryption": True, "MaxResults": 10}
            if token:
                body["NextToken"] = token
            token = cl.call("ssm", "AmazonSSM.GetParametersByPath", body).get("NextToken")
            if not token:
                break

    return job


def plan(cl, workload, data, path_strategy=describe_pipeline):
    """The job for one start of `workload`, or None when there is nothing to fetch."""
    ssm_names = sorted(v[4:] for k, v in data.items() if v.startswith("ssm:") and k != "ENVSEAL_FROM")
    secrets = sorted(v[3:] for v in data.values() if v.startswith("sm:"))
    blobs = [v[4:] for v in data.values() if v.startswith("kms:")]
    sources = [s for s in data.get("ENVSEAL_FROM", "").split(",") if s]
    jobs = [get_parameters(cl, ssm_names[i : i + 10]) for i in range(0, len(ssm_names), 10)]
    for i in range(0, len(secrets), 20):
        ids = secrets[i : i + 20]
        jobs.append(lambda ids=ids: cl.call("secretsmanager", "secretsmanager.BatchGetSecretValue",
                                            {"SecretIdList": ids}))
    jobs += [decrypt(cl, b) for b in blobs]
    for s in sources:
        if s.startswith("s3://"):
            bucket, _, key = s[5:].partition("/")
            jobs.append(s3_then_kms(cl, bucket, key))
        elif s.startswith("ssm:"):
            jobs.append(path_strategy(cl, s[4:]))
    if not jobs:
        return None
    return lambda: parallel(*jobs)


def measure(endpoint, workload, data, runs, warmup):
    """Median and min milliseconds of the workload's floor, or None. A path
    bundle can be read two ways (envseal starts both and keeps the faster,
    see src/backend/ssm.rs): its floor is the faster of the two, each alone."""
    best = None
    strategies = [describe_pipeline]
    if any(s.startswith("ssm:") for s in data.get("ENVSEAL_FROM", "").split(",")):
        strategies.append(by_path_pages)
    for strategy in strategies:
        cl = Client(endpoint)
        job = plan(cl, workload, data, strategy)
        if job is None:
            return None
        cl.warm(16)
        times = []
        for i in range(warmup + runs):
            start = time.perf_counter()
            job()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
        times.sort()
        result = (times[len(times) // 2], times[0])
        if best is None or result[0] < best[0]:
            best = result
    return best
