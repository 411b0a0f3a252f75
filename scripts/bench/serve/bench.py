#!/usr/bin/env python3
"""`rcluster serve` against `pm2 serve` and nginx, side by side in one run (scripts/bench/serve.sh).

usage: bench.py --work DIR --rcluster BIN --rc-home DIR [--pm2 BIN --pm2-home DIR] [--nginx BIN]
                --pids FILE [--rounds R] [--duration S] > results.json

Run by serve.sh inside a network namespace of its own (`unshare -rn`) whose only interface is
loopback: `pm2 serve` listens on every interface and has no option to say otherwise, so there
every interface is loopback. The same folder (an index.html of 1 KiB and an asset of 100 KiB) is
served by each server, one process each; wrk (-t2 -c32, keep-alive) asks for each file, rounds
interleaved. Measured: req/s, p99, errors, and each server's RSS and CPU time during the rounds.
Every process started here is recorded in --pids (pid:starttime) and ended here by pid.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_LUA = os.path.join(HERE, "..", "cluster", "wrk_report.lua")
TICK = os.sysconf("SC_CLK_TCK")
FILES = {"/": 1024, "/asset.js": 100 * 1024}


def say(text):
    print("[serve.sh] %s" % text, file=sys.stderr, flush=True)


def proc_id(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if rest[0] in ("Z", "X") else "%d:%s" % (pid, rest[19])


class Pids:
    def __init__(self, path):
        self.path = path

    def record(self, pid):
        pid_id = proc_id(pid)
        if pid_id:
            with open(self.path, "a") as f:
                f.write(pid_id + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_answers(name, port, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while not answers(port):
        if time.monotonic() > deadline:
            raise RuntimeError("%s does not answer on 127.0.0.1:%d" % (name, port))
        time.sleep(0.05)  # polling interval


def tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def make_site(root):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!doctype html><title>bench</title>" + "x" * (FILES["/"] - 34 - 1) + "\n")
    with open(os.path.join(root, "asset.js"), "w") as f:
        f.write(("console.log(1);" * (FILES["/asset.js"] // 15 + 1))[: FILES["/asset.js"]])


def start_servers(a, site, pids):
    """{name: (port, [pids of the server process])}"""
    servers = {}
    env = dict(os.environ, RCLUSTER_HOME=a.rc_home)
    port = free_port()
    subprocess.run([a.rcluster, "serve", site, str(port), "--host", "127.0.0.1", "--name", "site"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    wait_answers("rcluster serve", port)
    pid = int(subprocess.run([a.rcluster, "pid", "site"], env=env, check=True,
                             capture_output=True, text=True).stdout.split()[0])
    pids.record(pid)
    servers["rcluster"] = (port, [pid])
    if a.pm2:
        env = dict(os.environ, PM2_HOME=a.pm2_home)
        port = free_port()
        try:
            subprocess.run([a.pm2, "serve", site, str(port), "--name", "site"], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            wait_answers("pm2 serve", port)
            out = subprocess.run([a.pm2, "pid", "site"], env=env, capture_output=True, text=True,
                                 timeout=60).stdout.split()
            pid = int(out[0])
            pids.record(pid)
            servers["pm2"] = (port, [pid])
        except (subprocess.SubprocessError, RuntimeError, ValueError, IndexError) as e:
            say("pm2 skipped: %s" % e)
    if a.nginx:
        port = free_port()
        conf = os.path.join(a.work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                # One process that serves itself (no master): in a user namespace nginx, seeing
                # uid 0, would otherwise switch its workers to a user the namespace lacks.
                "user root root; daemon off; master_process off; pid %s/nginx.pid; error_log stderr;\n"
                "events { worker_connections 1024; }\n"
                "http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
                "  types { text/html html; text/javascript js; }\n"
                "  client_body_temp_path %s/nginx-tmp; proxy_temp_path %s/nginx-tmp;\n"
                "  fastcgi_temp_path %s/nginx-tmp; uwsgi_temp_path %s/nginx-tmp; scgi_temp_path %s/nginx-tmp;\n"
                "  server { listen 127.0.0.1:%d; root %s; } }\n"
                % ((a.work,) * 6 + (port, site)))
        os.makedirs(os.path.join(a.work, "nginx-tmp"), exist_ok=True)
        p = subprocess.Popen([a.nginx, "-c", conf, "-p", a.work], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        pids.record(p.pid)
        try:
            wait_answers("nginx", port, 30)
            servers["nginx"] = (port, tree(p.pid))
            for child in servers["nginx"][1]:
                pids.record(child)
        except RuntimeError as e:
            say("nginx skipped: %s" % e)
            p.kill()
        servers.setdefault("_nginx_proc", p)
    return servers


def wrk(port, path, duration):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % duration, "-s", WRK_LUA,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            rec = json.loads(line[len("WRKJSON "):])
            errors = sum(rec[k] for k in ("connect", "read", "write", "status", "timeout"))
            return {"rps": rec["requests"] / (rec["duration_us"] / 1e6),
                    "p99_ms": rec["p99_us"] / 1000, "errors": errors,
                    "mb_s": rec["bytes"] / (rec["duration_us"] / 1e6) / 1e6}
    raise RuntimeError("no WRKJSON line from wrk: %s" % out[-300:])


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--rcluster", required=True)
    ap.add_argument("--rc-home", required=True)
    ap.add_argument("--pm2")
    ap.add_argument("--pm2-home")
    ap.add_argument("--nginx")
    ap.add_argument("--pids", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    a = ap.parse_args()
    pids = Pids(a.pids)
    site = os.path.join(a.work, "site")
    make_site(site)
    servers = start_servers(a, site, pids)
    nginx_proc = servers.pop("_nginx_proc", None)
    names = [n for n in ("rcluster", "pm2", "nginx") if n in servers]
    runs = []
    cpu = {n: 0 for n in names}
    try:
        for port, _ in servers.values():
            for path in FILES:
                wrk(port, path, 2)  # warm-up
        for rnd in range(a.rounds):
            order = names if rnd % 2 == 0 else names[::-1]
            for name in order:
                port, server_pids = servers[name]
                for path in FILES:
                    t0 = cpu_ticks(server_pids)
                    res = wrk(port, path, a.duration)
                    cpu[name] += cpu_ticks(server_pids) - t0
                    res.update({"server": name, "path": path, "round": rnd + 1})
                    runs.append(res)
                    say("%-8s %-10s round %d: %8.0f req/s, p99 %.2f ms, %d errors"
                        % (name, path, rnd + 1, res["rps"], res["p99_ms"], res["errors"]))
        rss = {n: rss_kib(servers[n][1]) for n in names}
        requests = {n: sum(r["rps"] * a.duration for r in runs if r["server"] == n) for n in names}
        json.dump({"runs": runs, "rss_kib": rss, "names": names, "rounds": a.rounds,
                   "duration": a.duration, "files": FILES,
                   "cpu_us_per_request": {n: cpu[n] / TICK * 1e6 / max(requests[n], 1) for n in names}},
                  sys.stdout)
    finally:
        if nginx_proc is not None:
            nginx_proc.terminate()
            try:
                nginx_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx_proc.kill()
        subprocess.run([a.rcluster, "kill"], env=dict(os.environ, RCLUSTER_HOME=a.rc_home),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        if a.pm2:
            subprocess.run([a.pm2, "kill"], env=dict(os.environ, PM2_HOME=a.pm2_home),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


if __name__ == "__main__":
    main()
