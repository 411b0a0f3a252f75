#!/usr/bin/env python3
"""Driver of scripts/bench/fork.sh: one-instance (fork mode) reloads under load, rcluster and pm2
side by side, and what each way of keeping the port costs per connection at steady state.

usage: bench.py ports N
       bench.py run CONF.json        (appends JSON lines to CONF["results"])
       bench.py report RESULTS META  (Markdown on stdout)

run, part 1 -- reloads. Two apps, each one instance on a fixed port with no flags, under each
manager: scripts/bench/fork/server.py (Python, ThreadingHTTPServer) and express.js (Express 5,
app.listen). For each (manager, app) in turn: scripts/bench/reload/load.py puts a steady load on
its port (`Connection: close` and keep-alive workers, an exact outcome for every request), the
manager reloads the app N times back to back (`rcluster reload NAME` / `pm2 reload NAME`, timed),
and after each reload the driver polls the port until the pid answering is the manager's new pid
(new pid serving after each: yes/no, and how long after the reload command returned).

run, part 2 -- steady-state cost. scripts/bench/reload/hello.js (plain Node http) on its own port
as: direct (no manager), rcluster fork mode (the daemon holds the port, the program accepts on it),
rcluster `-i 1 --exec-mode cluster` (the daemon accepts and deals each connection: what a
dealing-based fork reload would cost), pm2 fork mode. For each row, wrk (`Connection: close`, then
keep-alive) and the manager daemon's CPU time (utime+stime, /proc) over the run, per request.
"""

import json
import os
import socket
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def get_pid(port, timeout=5.0):
    """The pid a one-request GET on port answers with, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        return int(body.strip())
    except ValueError:
        return None


def record_pid(conf, pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
        with open(conf["pids"], "a") as f:
            f.write(f"{pid}:{start}\n")
    except OSError:
        pass


class Manager:
    def __init__(self, conf, kind):
        self.conf, self.kind = conf, kind
        m = conf["managers"][kind]
        self.bin, self.home = m["bin"], m["home"]
        self.env = dict(os.environ)
        self.env["RCLUSTER_HOME" if kind == "rcluster" else "PM2_HOME"] = self.home
        if conf.get("express"):
            self.env["NODE_PATH"] = conf["express"]

    def cli(self, *args, check=True):
        out = subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if check and out.returncode != 0:
            sys.exit(f"{self.kind} {' '.join(args)} failed: {out.stderr[-500:]}")
        return out

    def start(self, name, script, port, *extra):
        if self.kind == "rcluster":
            self.cli("start", script, "--name", name, *extra, "--", str(port))
        else:
            interp = ["--interpreter", "python3"] if script.endswith(".py") else []
            self.cli("start", script, "--name", name, *interp, *extra, "--", str(port))

    def pid_of(self, name):
        out = self.cli("jlist", check=False)
        try:
            for app in json.loads(out.stdout):
                if app.get("name") == name and app.get("pid"):
                    return int(app["pid"])
        except (ValueError, TypeError):
            pass
        return None

    def daemon_pid(self):
        path = os.path.join(self.home, "daemon.lock" if self.kind == "rcluster" else "pm2.pid")
        with open(path) as f:
            return int("".join(c for c in f.readline() if c.isdigit()))


def wait_serving(port, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = get_pid(port, 2.0)
        if pid:
            return pid
        time.sleep(0.1)  # polling
    sys.exit(f"{what} does not answer on 127.0.0.1:{port} after {seconds} s")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def reload_row(conf, mgr, app, name, port):
    here = conf["bench_dir"]
    load = subprocess.Popen(
        [sys.executable, os.path.join(here, "reload", "load.py"), "--port", str(port),
         "--close", str(conf["close"]), "--keepalive", str(conf["keepalive"]), "--timeout", str(conf["timeout"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    record_pid(conf, load.pid)
    try:
        if load.stdout.readline().strip() != "ready":
            sys.exit(f"{mgr.kind} {app}: the load got no answer")
        reloads = []
        for _ in range(conf["reloads"]):
            before = get_pid(port) or mgr.pid_of(name)
            t0 = time.monotonic()
            out = mgr.cli("reload", name, check=False)
            took = time.monotonic() - t0
            serving, after = False, None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                served = get_pid(port, 2.0)
                answered = time.monotonic() - t0 - took
                if served and served != before and served == mgr.pid_of(name):
                    serving, after = True, answered
                    break
                time.sleep(0.05)  # polling
            notes = [l for l in (out.stderr + out.stdout).splitlines() if "note:" in l]
            reloads.append({"exit": out.returncode, "seconds": took, "new_pid_serving": serving,
                            "serving_after_s": after, "notes": notes,
                            "error": out.stderr.strip()[-300:] if out.returncode else ""})
    finally:
        load.stdin.close()
        rest = load.stdout.read()
        load.wait(timeout=120)
    summary = json.loads(rest.strip().splitlines()[-1])
    return {"part": "reload", "manager": mgr.kind, "app": app, "reloads": reloads,
            "close": summary["close"], "keepalive": summary["keepalive"],
            "load_s": summary["stop"] - summary["start"]}


def wrk(conf, port, close, seconds):
    args = ["wrk", f"-t{conf['threads']}", f"-c{conf['conns']}", f"-d{seconds}s", "--latency",
            "-s", os.path.join(conf["bench_dir"], "cluster", "wrk_report.lua")]
    if close:
        args += ["-H", "Connection: close"]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    sys.exit(f"wrk gave no result: {out.stdout[-300:]} {out.stderr[-300:]}")


def cost_row(conf, row, port, daemon, rnd):
    results = []
    for mode in ("close", "keepalive"):
        if rnd == 0:
            wrk(conf, port, mode == "close", conf["warmup"])
        t0 = cpu_ticks(daemon) if daemon else 0
        w = wrk(conf, port, mode == "close", conf["duration"])
        t1 = cpu_ticks(daemon) if daemon else 0
        errors = sum(w[k] for k in ("connect", "read", "write", "status", "timeout"))
        results.append({"part": "cost", "row": row, "mode": mode, "round": rnd, "requests": w["requests"],
                        "rps": w["requests"] / (w["duration_us"] / 1e6), "errors": errors,
                        "manager_cpu_s": (t1 - t0) / HZ if daemon else None,
                        "p99_ms": w["p99_us"] / 1000})
        r = results[-1]
        cpu = "" if r["manager_cpu_s"] is None else f", manager {r['manager_cpu_s'] * 1e6 / max(r['requests'], 1):.2f} µs/req"
        print(f"[fork.sh]   {row:<16} {mode:<9} {r['rps']:>9.0f} req/s  errors {errors}{cpu}", file=sys.stderr)
    return results


def run(conf_path):
    conf = json.load(open(conf_path))
    here = os.path.join(conf["bench_dir"], "fork")
    managers = {k: Manager(conf, k) for k in conf["managers"]}
    apps = [("python", "py", os.path.join(here, "server.py"))]
    if conf.get("express"):
        apps.append(("express", "ex", os.path.join(here, "express.js")))
    out = open(conf["results"], "a")

    # Part 1: every app up under every manager, then one (manager, app) at a time under load.
    rows = []
    port_list = iter(conf["ports"])
    for kind, mgr in managers.items():
        for app, name, script in apps:
            port = next(port_list)
            mgr.start(name, script, port)
            rows.append((mgr, app, name, port))
    for mgr, app, name, port in rows:
        wait_serving(port, f"{mgr.kind} {app}")
        record_pid(conf, mgr.daemon_pid())
    for mgr, app, name, port in rows:
        print(f"[fork.sh] {mgr.kind} {app}: {conf['reloads']} reloads under load", file=sys.stderr)
        r = reload_row(conf, mgr, app, name, port)
        fails = r["close"]["failed"] + r["keepalive"]["failed"]
        refused = r["close"]["refused"] + r["keepalive"]["refused"]
        served = sum(x["new_pid_serving"] for x in r["reloads"])
        print(f"[fork.sh]   failed {fails}, refused {refused}, new pid serving after {served}/{len(r['reloads'])}",
              file=sys.stderr)
        out.write(json.dumps(r) + "\n")
        out.flush()
        mgr.cli("delete", name, check=False)

    # Part 2: the steady-state cost of each way of keeping the port.
    hello = os.path.join(conf["bench_dir"], "reload", "hello.js")
    direct_port = next(port_list)
    direct = subprocess.Popen(["node", hello, str(direct_port)], stdout=subprocess.DEVNULL)
    record_pid(conf, direct.pid)
    try:
        cost = [("direct", direct_port, None)]
        rc = managers["rcluster"]
        p = next(port_list)
        rc.start("hold", hello, p)
        cost.append(("rcluster fork", p, rc))
        p = next(port_list)
        rc.start("deal", hello, p, "-i", "1", "--exec-mode", "cluster")
        cost.append(("rcluster dealing", p, rc))
        if "pm2" in managers:
            p = next(port_list)
            managers["pm2"].start("hold", hello, p)
            cost.append(("pm2 fork", p, managers["pm2"]))
        for row, port, mgr in cost:
            deadline = time.monotonic() + 60
            while get_pid_any(port) is None:
                if time.monotonic() > deadline:
                    sys.exit(f"{row} does not answer on {port}")
                time.sleep(0.1)  # polling
        # Rows interleaved, round after round: the best round of each row is reported, as the
        # machine is shared with other jobs.
        for rnd in range(conf["rounds"]):
            for row, port, mgr in cost:
                for r in cost_row(conf, row, port, mgr.daemon_pid() if mgr else None, rnd):
                    out.write(json.dumps(r) + "\n")
                    out.flush()
    finally:
        direct.terminate()
        direct.wait(timeout=30)


def get_pid_any(port):
    """Whether port answers a GET with 200 (hello.js answers no pid)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return 1 if s.recv(16).startswith(b"HTTP/1.1 200") else None
    except OSError:
        return None


def report(results_path, meta_path):
    meta = json.load(open(meta_path))
    rows = [json.loads(l) for l in open(results_path) if l.strip()]
    w = print
    w(f"Measured {meta['date']} on {meta['nproc']} × {meta['cpu']} ({meta['machine']}), "
      f"rcluster {meta['rc_version']} at {meta['commit']}, "
      + (f"pm2 {meta['pm2_version']}" if meta["pm2_version"] else f"pm2 not measured ({meta['pm2_skip']})")
      + f", Node {meta['node']}, {meta['python']}. Load average before / after: {meta['loadavg']} / "
      f"{meta['loadavg_after']} (the machine is shared: figures of one run, side by side).")
    w()
    w(f"**Reloads of one instance on a fixed port, no flags** (`rcluster start server.py -- PORT`, "
      f"`pm2 start server.py -- PORT`; the same for an Express 5 app, `app.listen(PORT, cb)`): "
      f"{meta['reloads']} reloads back to back per row under {meta['close']} `Connection: close` and "
      f"{meta['keepalive']} keep-alive clients (scripts/bench/reload/load.py: every request's outcome; "
      f"a keep-alive request whose idle connection was closed unanswered is resent, as clients do). "
      f"\"New pid serving\": after the reload command returned, the pid answering on the port became the "
      f"manager's new pid (polled, up to 30 s).")
    w()
    w("| manager | app | under load | requests ok | failed | refused connections | keep-alive resends | new pid serving after each | reload command (median) | new pid answering after the command (max) |")
    w("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in (x for x in rows if x["part"] == "reload"):
        ok = r["close"]["ok"] + r["keepalive"]["ok"]
        failed = r["close"]["failed"] + r["keepalive"]["failed"]
        refused = r["close"]["refused"] + r["keepalive"]["refused"]
        served = sum(x["new_pid_serving"] for x in r["reloads"])
        secs = sorted(x["seconds"] for x in r["reloads"])
        after = [x["serving_after_s"] for x in r["reloads"] if x["serving_after_s"] is not None]
        errors = [x["error"] for x in r["reloads"] if x["exit"]]
        w(f"| {r['manager']} | {r['app']} | {r['load_s']:.1f} s | {ok:,} | {failed} | {refused:,} | {r['keepalive']['resent']} | "
          f"{served}/{len(r['reloads'])}{' (' + str(len(errors)) + ' reload commands failed)' if errors else ''} | "
          f"{secs[len(secs) // 2] * 1000:.0f} ms | {max(after) * 1000 if after else float('nan'):.0f} ms |")
    reasons = {}
    for r in (x for x in rows if x["part"] == "reload"):
        for kind in ("close", "keepalive"):
            for k, v in r[kind]["reasons"].items():
                reasons.setdefault(f"{r['manager']} {r['app']}", {}).setdefault(k, 0)
                reasons[f"{r['manager']} {r['app']}"][k] += v
    if reasons:
        w()
        w("Failed requests by reason: " + "; ".join(
            f"{row}: " + ", ".join(f"{k} {v}" for k, v in rs.items()) for row, rs in reasons.items()) + ".")
    w()
    w(f"**What keeping the port costs at steady state** (scripts/bench/reload/hello.js, plain Node "
      f"http; wrk -t{meta['threads']} -c{meta['conns']} -d{meta['duration']}s after a "
      f"{meta['warmup']} s warm-up, {meta['rounds']} rounds with the rows interleaved, the best round "
      f"of each row shown; manager CPU = the daemon's utime+stime over that run per request, one "
      f"connection per request with `Connection: close`):")
    w()
    w("| row | `Connection: close` req/s | keep-alive req/s | manager CPU per connection | errors |")
    w("|---|---:|---:|---:|---:|")
    cost = [x for x in rows if x["part"] == "cost"]
    for row in dict.fromkeys(x["row"] for x in cost):
        by = {}
        for x in (x for x in cost if x["row"] == row):
            if x["mode"] not in by or x["rps"] > by[x["mode"]]["rps"]:
                by[x["mode"]] = x
        cl, ka = by.get("close"), by.get("keepalive")
        cpu = "—" if cl is None or cl["manager_cpu_s"] is None else f"{cl['manager_cpu_s'] * 1e6 / max(cl['requests'], 1):.2f} µs"
        errs = sum(x["errors"] for x in by.values())
        w(f"| {row} | {cl['rps']:,.0f} | {ka['rps']:,.0f} | {cpu} | {errs} |")
    w()
    w("`rcluster fork` is what a one-instance app runs as: the program accepts on the socket the "
      "daemon holds for it, so the daemon does nothing per connection. `rcluster dealing` is the "
      "same app with `-i 1 --exec-mode cluster` (the daemon accepts and hands each connection over), "
      "what holding the port by dealing would have cost every fork app.")


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "ports":
        ports(int(sys.argv[2]))
    elif cmd == "run":
        run(sys.argv[2])
    elif cmd == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
