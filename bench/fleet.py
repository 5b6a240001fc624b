#!/usr/bin/env python3
"""Fleet start benchmark: N `envseal exec` starts at once against a shared rate.

    python3 bench/fleet.py [--starts 200] [--refs 30] [--rate 40] [--burst 40]
                           [--envseal target/release/envseal] [--env NAME=VALUE]...
                           [-- ENVSEAL_ARGS...]

moto (stock) runs behind tests/support/py/proxy.py, which enforces one token
bucket shared by every SSM GetParameter/GetParameters/GetParametersByPath
request (`--rate` per second, `--burst`; above it the proxy answers
ThrottlingException, as SSM does above its default 40 requests/s) and one for
the Secrets Manager read actions (`--sm-rate`, default 50). REFS SecureString
parameters are seeded; then STARTS processes of

    envseal exec [ENVSEAL_ARGS...] -- /bin/true

are spawned as fast as possible, each with REFS per-variable `ssm:`
references. Printed: failed starts (and the distinct reasons), the time of the
last start (the moment the last process exits, from the first spawn) against
the floor (STARTS x calls per start / rate), throttled answers per successful
call, calls per start, and the peak total RSS of the live envseal processes
(sampled every 50 ms from /proc). Needs python3 with boto3 and moto[server].
"""

import argparse
import collections
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench import CREDS, REGION, Servers, log  # noqa: E402

SSM_TARGET = "AmazonSSM.GetParameter*"
SM_TARGET = ["secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue"]


def configure(servers, rate, burst, sm_rate):
    import json
    import urllib.request

    config = {
        "rate_limits": [
            {"target": SSM_TARGET, "rate": rate, "burst": burst},
            {"target": SM_TARGET, "rate": sm_rate, "burst": sm_rate},
        ]
    }
    req = urllib.request.Request(
        servers.proxy + "/__proxy/config",
        data=json.dumps(config).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=5).read()


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=200)
    parser.add_argument("--refs", type=int, default=30)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--burst", type=float, default=40.0)
    parser.add_argument("--sm-rate", type=float, default=50.0)
    parser.add_argument("--envseal", default=os.path.join(ROOT, "target", "release", "envseal"))
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every start")
    parser.add_argument("--label", default="", help="a name for this run in the summary line")
    parser.add_argument("envseal_args", nargs="*", help="after --: arguments of envseal exec")
    args = parser.parse_args()
    if not os.access(args.envseal, os.X_OK):
        raise SystemExit("bench/fleet.py: no envseal at %s (cargo build --release)" % args.envseal)

    servers = Servers(delay_ms=0)
    try:
        ssm = servers.client("ssm")
        for i in range(args.refs):
            ssm.put_parameter(
                Name="/fleet/p%02d" % i, Value="fleet-value-%02d" % i, Type="SecureString", Overwrite=True
            )
        configure(servers, args.rate, args.burst, args.sm_rate)
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_ENDPOINT_URL": servers.proxy,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(CREDS)
        for i in range(args.refs):
            env["P%02d" % i] = "ssm:/fleet/p%02d" % i
        for item in args.env:
            name, _, value = item.partition("=")
            env[name] = value
        calls_per_start = math.ceil(args.refs / 10)
        floor_s = args.starts * calls_per_start / args.rate
        cmd = [args.envseal, "exec"] + args.envseal_args + ["--", "/bin/true"]
        log("%d starts of %s, %d SSM refs each, %g req/s (burst %g); floor %.1f s"
            % (args.starts, " ".join(cmd[1:]), args.refs, args.rate, args.burst, floor_s))
        servers.reset_stats()

        procs = []
        ends = {}
        errors = collections.Counter()
        lock = threading.Lock()
        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                with lock:
                    live = [p.pid for p in procs if p.pid not in ends]
                total = sum(rss_kib(pid) for pid in live)
                peak[0] = max(peak[0], total)
                time.sleep(0.05)

        def reap(p):
            _, err = p.communicate()
            t = time.monotonic()
            with lock:
                ends[p.pid] = (t, p.returncode)
                if p.returncode != 0:
                    lines = [l for l in err.decode(errors="replace").splitlines() if l.startswith("envseal: P")]
                    reason = lines[0].split(": ", 3)[-1] if lines else err.decode(errors="replace").strip()[-200:]
                    errors[reason] += 1

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        waiters = []
        t0 = time.monotonic()
        for _ in range(args.starts):
            p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            with lock:
                procs.append(p)
            w = threading.Thread(target=reap, args=(p,), daemon=True)
            w.start()
            waiters.append(w)
        spawned = time.monotonic() - t0
        for w in waiters:
            w.join()
        stop.set()
        sampler.join()

        stats = servers.stats()
        ok = [t - t0 for (t, code) in ends.values() if code == 0]
        failed = args.starts - len(ok)
        ssm_requests = sum(n for k, n in stats["requests"].items() if k.startswith("AmazonSSM."))
        ssm_throttled = sum(kinds.get("throttle", 0) for k, kinds in stats["faults"].items()
                            if k.startswith("AmazonSSM."))
        successful_calls = ssm_requests - ssm_throttled
        last = max(ok) if ok else float("nan")
        print("fleet: %s%d starts x %d SSM refs, %g req/s burst %g, envseal %s, %s, %d cores"
              % (args.label + ": " if args.label else "", args.starts, args.refs, args.rate, args.burst,
                 " ".join(cmd[1:-2]) or "exec", platform.node(), os.cpu_count()))
        print("  spawned all in        %.2f s" % spawned)
        print("  failed starts         %d of %d" % (failed, args.starts))
        for reason, n in errors.most_common(5):
            print("    %3d x %s" % (n, reason))
        print("  last start            %.2f s = %.2fx the floor (%.1f s)" % (last, last / floor_s, floor_s))
        if ok:
            ok.sort()
            print("  median start          %.2f s" % ok[len(ok) // 2])
        print("  throttled per success %.2f (%d throttled, %d successful SSM calls)"
              % (ssm_throttled / max(successful_calls, 1), ssm_throttled, successful_calls))
        print("  calls per start       %.2f successful (%.2f requests)"
              % (successful_calls / args.starts, ssm_requests / args.starts))
        print("  peak total RSS        %.0f MB (sampled)" % (peak[0] / 1024.0))
        return 0 if failed == 0 else 1
    finally:
        servers.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
