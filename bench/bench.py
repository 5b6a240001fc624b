#!/usr/bin/env python3
"""envseal's startup benchmark (run it through bench/run.sh).

Starts moto and the delay proxy (tests/support/py/proxy.py), seeds the
workloads, and for each one measures time-to-exec of `/bin/true` (spawn to
exit, so it includes /bin/true itself, like the baseline row) over N runs
after a warm-up: median, min, p90, max; API calls per start (counted by the
proxy); CPU time; peak RSS (GNU time's %M: the child's ru_maxrss, which on
Linux covers the process before and after execve). The same workloads are run with a
boto3 script and, when the AWS CLI is installed, a shell loop over it.

Only python3 with boto3 and moto[server] is needed (the test suite's needs).
"""

import argparse
import base64
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import floor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The tests' fault-injecting proxy, shared on purpose: the benchmark's network
# (delay, request counts, the fleet's shared rate limit) is the same model the
# fault tests are written against, so a change to it shows in both.
PROXY = os.path.join(ROOT, "tests", "support", "py", "proxy.py")
REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Workloads: name, description, target(rtt_ms, true_ms) -> ms or None, target API calls.
WORKLOADS = [
    ("none", "no references", lambda rtt, t: t + 2, 0),
    ("ssm30", "30 SSM per-variable refs", lambda rtt, t: rtt + 10, 3),
    ("path30", "SSM path bundle, 30 params", lambda rtt, t: 2 * rtt + 10, None),
    ("path100", "SSM path bundle, 100 params", lambda rtt, t: 3 * rtt + 10, None),
    ("s3kms", "S3 base64(KMS) JSON document", lambda rtt, t: 2 * rtt + 10, 2),
    ("mixed", "30 SSM + 10 SM + S3 doc + 5 kms:", lambda rtt, t: 2 * rtt + 15, None),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


class Servers:
    """moto (optionally with AWS-like DescribeParameters paging) behind the proxy."""

    def __init__(self, delay_ms, describe_page=None):
        self.procs = []
        port = free_port()
        cmd = [sys.executable, os.path.join(HERE, "moto_server.py")]
        if describe_page:
            cmd += ["--describe-page", str(describe_page)]
        cmd += ["-H", "127.0.0.1", "-p", str(port)]
        self.moto_log = tempfile.TemporaryFile()
        self.procs.append(
            subprocess.Popen(cmd, stdout=self.moto_log, stderr=self.moto_log, start_new_session=True)
        )
        self.moto = "http://127.0.0.1:%d" % port
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.moto + "/moto-api/", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or self.procs[0].poll() is not None:
                    self.moto_log.seek(0)
                    raise SystemExit("moto did not start:\n" + self.moto_log.read().decode()[-4000:])
                time.sleep(0.1)
        proxy = subprocess.Popen(
            [sys.executable, PROXY, "--upstream", self.moto, "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.procs.append(proxy)
        self.proxy = "http://127.0.0.1:%d" % int(proxy.stdout.readline())

    def reset_stats(self):
        req = urllib.request.Request(self.proxy + "/__proxy/reset-stats", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stats(self):
        return json.loads(urllib.request.urlopen(self.proxy + "/__proxy/stats", timeout=5).read())

    def client(self, service):
        import boto3
        import botocore.config

        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def seed(servers):
    """Creates every workload's data; returns {workload: {VAR: value}}."""
    ssm = servers.client("ssm")
    sm = servers.client("secretsmanager")
    kms = servers.client("kms")
    s3 = servers.client("s3")
    key = kms.create_key(Description="envseal bench")["KeyMetadata"]["KeyId"]

    def put(name, i):
        ssm.put_parameter(Name=name, Value="value-%03d-%s" % (i, "x" * 24), Type="SecureString")

    per_var = {}
    for i in range(30):
        put("/bench/vars/p%02d" % i, i)
        per_var["VAR_%02d" % i] = "ssm:/bench/vars/p%02d" % i
    for n in (30, 100):
        for i in range(n):
            put("/bench/path%d/db/k%03d" % (n, i), i)
    doc = {"key_%02d" % i: "document-value-%02d-%s" % (i, "y" * 20) for i in range(30)}
    doc["port"] = 5432
    blob = kms.encrypt(KeyId=key, Plaintext=json.dumps(doc).encode())["CiphertextBlob"]
    s3.create_bucket(Bucket="bench-cfg")
    s3.put_object(Bucket="bench-cfg", Key="app/prod.json", Body=base64.b64encode(blob))
    secrets = {}
    for i in range(10):
        sm.create_secret(Name="bench/s%02d" % i, SecretString="secret-%02d-%s" % (i, "z" * 30))
        secrets["SM_%02d" % i] = "sm:bench/s%02d" % i
    inline = {}
    for i in range(5):
        b = kms.encrypt(KeyId=key, Plaintext=b"inline-%d-%s" % (i, b"w" * 20))["CiphertextBlob"]
        inline["KMS_%d" % i] = "kms:" + base64.b64encode(b).decode()
    plain = {"APP_MODE": "production", "LOG_LEVEL": "info"}
    mixed = dict(per_var, **secrets, **inline, ENVSEAL_FROM="s3://bench-cfg/app/prod.json")
    return {
        "none": dict(plain),
        "ssm30": dict(plain, **per_var),
        "path30": dict(plain, ENVSEAL_FROM="ssm:/bench/path30/"),
        "path100": dict(plain, ENVSEAL_FROM="ssm:/bench/path100/"),
        "s3kms": dict(plain, ENVSEAL_FROM="s3://bench-cfg/app/prod.json"),
        "mixed": dict(plain, **mixed),
    }


def run_once(argv, env, servers, errfile):
    """(seconds, API calls, peak RSS KiB, exit status)."""
    if servers:
        servers.reset_stats()
    errfile.seek(0)
    errfile.truncate()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, errfile.fileno(), 2),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, rusage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    calls = servers.stats()["total"] if servers else 0
    cpu = rusage.ru_utime + rusage.ru_stime
    return elapsed, calls, rusage.ru_maxrss, cpu, os.waitstatus_to_exitcode(status)


TIME = "/usr/bin/time"


def peak_rss(argv, env, errfile, runs=3):
    """Peak RSS in KiB, through GNU time (its own RSS is small). Not taken
    from the timed runs: posix_spawn is a vfork, and Linux carries the
    parent's (this Python's) RSS into the child's ru_maxrss across execve."""
    if not os.access(TIME, os.X_OK):
        return None
    peak = 0
    out = tempfile.NamedTemporaryFile()
    for _ in range(runs):
        run_once([TIME, "-f", "%M", "-o", out.name] + argv, env, None, errfile)
        with open(out.name) as f:
            peak = max(peak, int(f.read().split()[-1]))
    return peak


def measure(label, argv, env, servers, runs, warmup, rss_runs=3):
    errfile = tempfile.TemporaryFile()
    times, calls, rss, cpu = [], [], [], []
    for i in range(warmup + runs):
        t, c, m, u, code = run_once(argv, env, servers, errfile)
        if code != 0:
            errfile.seek(0)
            raise SystemExit(
                "%s: exit %d:\n%s" % (label, code, errfile.read().decode(errors="replace")[-3000:])
            )
        if i >= warmup:
            times.append(t * 1000)
            calls.append(c)
            rss.append(m)
            cpu.append(u * 1000)
    peak = peak_rss(argv, env, errfile, rss_runs)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {
        "median": statistics.median(times),
        "min": times[0],
        "p90": p90,
        "max": times[-1],
        "calls": statistics.median(calls),
        "calls_range": (min(calls), max(calls)),
        "rss_kib": peak,
        "cpu_ms": statistics.median(cpu),
        "runs": runs,
    }


def fmt_calls(r):
    lo, hi = r["calls_range"]
    return "%d" % lo if lo == hi else "%d–%d" % (lo, hi)


def row(workload, tool, r, target=None, target_calls=None, floor_ms=None):
    met = ""
    if target is not None:
        ok = r["median"] <= target and (target_calls is None or r["calls_range"][1] <= target_calls)
        met = "%s ≤ %.0f ms%s" % (
            "yes" if ok else "**no**",
            target,
            "" if target_calls is None else ", %d calls" % target_calls,
        )
    return "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %.1f | %.1f | %s |" % (
        workload,
        tool,
        r["median"],
        r["min"],
        r["p90"],
        r["max"],
        "" if floor_ms is None else "%+.1f" % (r["median"] - floor_ms),
        fmt_calls(r),
        r["cpu_ms"],
        r["rss_kib"] / 1024 if r["rss_kib"] else float("nan"),
        met,
    )


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


LOADAVG = ""


def main():
    global LOADAVG
    LOADAVG = " ".join(open("/proc/loadavg").read().split()[:3])
    ap = argparse.ArgumentParser()
    ap.add_argument("--envseal", required=True)
    ap.add_argument("--static", default="", help="a second envseal binary to time and report the size of (e.g. a static-pie build)")
    ap.add_argument("--rtt", type=float, default=50.0)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--shell-runs", type=int, default=2, help="0: skip the aws CLI loop")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--no-boto3", action="store_true")
    ap.add_argument("--no-shell", action="store_true")
    ap.add_argument("--no-aws-paging", action="store_true",
                    help="skip the path rows against moto with DescribeParameters paged like AWS")
    ap.add_argument("--results", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra variable for envseal's environment (repeatable)")
    args = ap.parse_args()

    only = set(filter(None, args.only.split(",")))
    workloads = [w for w in WORKLOADS if not only or w[0] in only]
    envseal = os.path.abspath(args.envseal)
    static = os.path.abspath(args.static) if args.static else None
    home = tempfile.mkdtemp(prefix="envseal-bench-home-")
    try:
        run_all(args, workloads, envseal, static, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_all(args, workloads, envseal, static, home):
    aws_cli = None if args.no_shell else shutil.which("aws")
    if aws_cli and "/shims/" in aws_cli:  # pyenv: skip the shim's own startup
        real = subprocess.run(["pyenv", "which", "aws"], capture_output=True, text=True).stdout.strip()
        aws_cli = real or aws_cli
    rows = []
    notes = []

    true_r = measure("/bin/true", ["/bin/true"], {}, None, args.runs, args.warmup)
    rows.append(row("—", "`/bin/true` alone", true_r))
    floor_row = "| %s | floor: same calls, no client cost | %.1f | %.1f | | | | | | | |"
    log("/bin/true alone: %.1f ms" % true_r["median"])

    groups = [(None, workloads)]
    if not args.no_aws_paging and any(w[0].startswith("path") for w in workloads):
        groups.append((50, [w for w in workloads if w[0].startswith("path")]))
    for describe_page, group in groups:
        servers = Servers(args.rtt / 2, describe_page)
        try:
            envs = seed(servers)
            base = {
                "PATH": "/usr/bin:/bin",
                "HOME": home,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": servers.proxy,
                **CREDS,
            }
            for name, desc, target, target_calls in group:
                env = dict(base, **envs[name])
                envseal_env = dict(env, **dict(kv.split("=", 1) for kv in args.env))
                label = desc if describe_page is None else desc + " (Describe paged at %d)" % describe_page
                r = measure(name, [envseal, "exec", "--", "/bin/true"], envseal_env, servers, args.runs, args.warmup)
                t = target(args.rtt, true_r["median"])
                fl = floor.measure(servers.proxy, name, envs[name], args.runs, args.warmup)
                # The floor of "no references" is running /bin/true.
                floor_ms = fl[0] + true_r["median"] if fl else true_r["median"]
                rows.append(row(label, "envseal", r, t, target_calls, floor_ms))
                log("%s: envseal %.1f ms, %s calls" % (label, r["median"], fmt_calls(r)))
                if static:
                    rs = measure(name, [static, "exec", "--", "/bin/true"], envseal_env, servers,
                                 args.runs, args.warmup)
                    rows.append(row(label, "envseal, --static binary", rs, t, target_calls, floor_ms))
                    log("%s: envseal static %.1f ms" % (label, rs["median"]))
                if fl:
                    rows.append(floor_row % (label, fl[0], fl[1]))
                if describe_page is not None:
                    continue
                if not args.no_boto3:
                    b = measure(name + "/boto3", [sys.executable, os.path.join(HERE, "boto3_baseline.py"), "/bin/true"],
                                env, servers, args.runs, args.warmup)
                    rows.append(row(label, "boto3 script (×%.1f)" % (b["median"] / r["median"]), b))
                    log("%s: boto3 %.1f ms" % (label, b["median"]))
                if aws_cli and args.shell_runs > 0 and name != "none":
                    s = measure(name + "/shell", ["/bin/sh", os.path.join(HERE, "shell_baseline.sh"), "/bin/true"],
                                dict(env, AWS_CLI=aws_cli), servers, args.shell_runs, 0, 1)
                    rows.append(row(label, "aws CLI loop (×%.1f)" % (s["median"] / r["median"]), s))
                    log("%s: aws CLI loop %.1f ms" % (label, s["median"]))
        finally:
            servers.stop()
    if args.no_shell:
        notes.append("aws CLI loop skipped (--no-shell).")
    elif args.shell_runs <= 0:
        notes.append("aws CLI loop skipped (--shell-runs 0).")
    elif not aws_cli:
        notes.append("aws CLI loop skipped: no `aws` on PATH.")
    else:
        ver = subprocess.run([aws_cli, "--version"], capture_output=True, text=True)
        notes.append("aws CLI loop: %s, %d runs, no warm-up (each CLI call is a Python start)."
                     % ((ver.stdout or ver.stderr).strip(), args.shell_runs))

    sizes = []
    for label, path in (("envseal (--envseal)", envseal), ("second binary (--static)", static)):
        size = file_size(path) if path else None
        if size:
            stripped = subprocess.run(["file", path], capture_output=True, text=True).stdout
            sizes.append("| %s | `%s` | %.2f MB (%d bytes)%s |" % (
                label, os.path.relpath(path, ROOT), size / 1e6, size,
                "" if "not stripped" not in stripped else " — not stripped"))
    import boto3

    header = [
        "# envseal startup benchmark",
        "",
        "- load average before the run: %s (other work on the machine skews the times; min is the least disturbed)" % LOADAVG,
        "- date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "- machine: %d × %s, %s, Linux %s" % (os.cpu_count(), cpu_model(), platform.machine(), platform.release()),
        "- network: moto %s behind tests/support/py/proxy.py with %.0f ms each way (RTT %.0f ms)"
        % (__import__("moto").__version__, args.rtt / 2, args.rtt),
        "- runs: %d after %d warm-up; time = spawn to exit of `/bin/true`; CPU = user+sys of the child; peak RSS = max of 3 extra runs under /usr/bin/time -f %%M"
        % (args.runs, args.warmup),
        "- boto3 %s, Python %s" % (boto3.__version__, platform.python_version()),
        "",
        "| workload | tool | median ms | min | p90 | max | over floor | API calls | CPU ms | peak RSS MB | target (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines = header + rows + [""]
    if sizes:
        lines += ["| binary | path | size |", "|---|---|---|"] + sizes + [""]
    lines += ["- " + n for n in notes]
    lines += [
        "- floor: the same API calls with the same dependencies, sent by a client with no cost of its "
        "own (bench/floor.py); it is the proxy's delay plus moto's time to answer (for a path bundle, the "
        "faster of DescribeParameters+GetParameters and GetParametersByPath, each alone). over floor = "
        "envseal median − (floor median + `/bin/true` alone).",
        "- \"Describe paged at 50\": moto patched (bench/moto_server.py) to honour DescribeParameters "
        "MaxResults up to 50 as AWS does; stock moto pages it at 10.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.results, "w") as f:
        f.write(text)
    log("written to %s" % args.results)


if __name__ == "__main__":
    main()
