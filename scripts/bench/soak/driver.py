#!/usr/bin/env python3
"""Helpers of scripts/bench/soak.sh (run by it; not meant to be called by hand).

  driver.py ports N              N free 127.0.0.1 TCP ports
  driver.py phase CONF MANAGER   the soak of one manager -> one JSON line appended to CONF's results
  driver.py report RESULTS META  Markdown section body on stdout

One phase: the app (4 instances of scripts/bench/reload/hello.js) is loaded by wrk with
`Connection: close` (each request is one connection the manager deals) in chunks of a few seconds
until at least CONF's "connections" have been served and CONF's "kills" instances have been
SIGKILLed; meanwhile a thread kills one instance at a time (the oldest, once every instance has
lived "gap" seconds: never one still booting), stopping it first to read which connections it
holds (scripts/bench/reload/kills.py), and another samples the manager daemon's RSS, open fds,
threads and CPU once a second. Every pid this helper sees (instances, victims) is appended to
CONF's "pids" file as pid:starttime for soak.sh's cleanup.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reload"))
import kills  # noqa: E402  (scripts/bench/reload/kills.py: stop, read held connections, SIGKILL)

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# ------------------------------------------------------------------ processes


def proc_id(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if rest[0] in ("Z", "X"):
        return None
    return "%d:%s" % (pid, rest[19])


def start_ticks(pid):
    """Start time of a process in clock ticks after boot, or None."""
    pid_id = proc_id(pid)
    return int(pid_id.split(":")[1]) if pid_id else None


def uptime_ticks():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * HZ


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def daemon_pid(m):
    path = os.path.join(m["home"], "daemon.lock" if m["kind"] == "rcluster" else "pm2.pid")
    with open(path) as f:
        return int(re.sub(r"\D", "", f.readline()))


def sample(pid):
    """{rss_kib, fds, threads, cpu_ticks} of a live process."""
    s = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                s["rss_kib"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                s["threads"] = int(line.split()[1])
    s["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    s["cpu_ticks"] = int(rest[11]) + int(rest[12])
    return s


class Pids:
    def __init__(self, path):
        self.path, self.seen = path, set()

    def record(self, pid):
        pid_id = proc_id(pid)
        if pid_id and pid_id not in self.seen:
            self.seen.add(pid_id)
            with open(self.path, "a") as f:
                f.write(pid_id + "\n")


# ------------------------------------------------------------------ the phase


def instances(dpid, script):
    """Live children of the daemon that run the app's script (the instances)."""
    return [c for c in children(dpid) if script in cmdline(c) and proc_id(c)]


def kill_loop(conf, m, dpid, stop, out, pids):
    """Kills until conf["kills"] are done or `stop` is set; appends a record per kill to out."""
    n, gap, script = conf["instances"], conf["gap"], conf["script"]
    victims = set()
    while len(out) < conf["kills"] and not stop.is_set():
        kids = [k for k in instances(dpid, script) if k not in victims]
        for k in kids:
            pids.record(k)
        starts = {k: start_ticks(k) for k in kids}
        starts = {k: t for k, t in starts.items() if t is not None}
        if len(starts) < n or (uptime_ticks() - max(starts.values())) / HZ < gap:
            time.sleep(0.005)  # polling interval: the replacement is still coming up
            continue
        victim = min(starts, key=starts.get)
        victims.add(victim)
        rec = kills.stop_and_kill(victim, m["port"])
        # Time until the manager has a new instance process (the victim's replacement).
        t0 = time.perf_counter()
        while not stop.is_set():
            now = [k for k in instances(dpid, script) if k not in victims]
            if len(now) >= n:
                rec["replaced_ms"] = (time.perf_counter() - t0) * 1000
                break
            if time.perf_counter() - t0 > 60:
                rec["problem"] = "no replacement within 60 s"
                break
            time.sleep(0.001)  # polling interval
        out.append({"held": len(rec["held"]), "stopped_ms": rec["stopped_ms"],
                    "replaced_ms": rec.get("replaced_ms"), "problem": rec.get("problem")})


def sampler(dpid, stop, out, t0):
    while not stop.wait(1.0):
        try:
            s = sample(dpid)
        except OSError:
            out.append({"t": time.monotonic() - t0, "dead": True})
            return
        s["t"] = time.monotonic() - t0
        out.append(s)


def wrk(conf, port, seconds):
    """One wrk run -> its WRKJSON totals."""
    cmd = ["wrk", "-t%d" % conf["wrk_threads"], "-c%d" % conf["wrk_conns"], "-d%ds" % seconds,
           "-s", conf["wrk_lua"], "-H", "Connection: close", "http://127.0.0.1:%d/" % port]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in p.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError("no result from wrk: %s %s" % (p.stdout[-500:], p.stderr[-500:]))


def jlist_counts(conf, m):
    """(restarts, online) of the app's instances as the manager reports them."""
    env = dict(os.environ)
    env["RCLUSTER_HOME" if m["kind"] == "rcluster" else "PM2_HOME"] = m["home"]
    try:
        data = json.loads(subprocess.run([m["bin"], "jlist"], env=env, capture_output=True,
                                         timeout=60, check=True).stdout)
    except (subprocess.SubprocessError, ValueError, OSError):
        return None, None
    restarts = online = 0
    for i in data:
        if i.get("name") != conf["app"]:
            continue
        env_ = i.get("pm2_env") or {}
        restarts += int(env_.get("restart_time", i.get("restarts", 0)) or 0)
        online += (env_.get("status") or i.get("status")) == "online"
    return restarts, online


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def cmd_phase(conf_path, name):
    with open(conf_path) as f:
        conf = json.load(f)
    m = conf["managers"][name]
    pids = Pids(conf["pids"])
    dpid = daemon_pid(m)
    pids.record(dpid)
    restarts_before, _ = jlist_counts(conf, m)
    wrk(conf, m["port"], 2)  # warm-up: JIT, connection paths, first allocations
    time.sleep(1)
    first = sample(dpid)
    log_before = file_size(m["log"])
    stop = threading.Event()
    samples, kill_recs = [dict(first, t=0.0)], []
    t0 = time.monotonic()
    threads = [threading.Thread(target=sampler, args=(dpid, stop, samples, t0), daemon=True),
               threading.Thread(target=kill_loop, args=(conf, m, dpid, stop, kill_recs, pids),
                                daemon=True)]
    for t in threads:
        t.start()
    total = {"requests": 0, "connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0,
             "chunks": 0}
    rate = 5000.0
    while True:
        elapsed = time.monotonic() - t0
        kills_done = len(kill_recs) >= conf["kills"]
        if total["requests"] >= conf["connections"] and kills_done:
            break
        if elapsed >= conf["max_seconds"]:
            break
        left = conf["connections"] - total["requests"]
        chunk = 10 if left <= 0 else min(30, max(5, int(left / rate) + 1))
        chunk = max(1, min(chunk, int(conf["max_seconds"] - elapsed) + 1))
        r = wrk(conf, m["port"], chunk)
        for k in ("requests", "connect", "read", "write", "status", "timeout"):
            total[k] += r[k]
        total["chunks"] += 1
        rate = max(100.0, r["requests"] / max(0.1, r["duration_us"] / 1e6))
    load_s = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join(timeout=70)
    time.sleep(3)  # settle: the last replacement boots, buffers are given back
    last = sample(dpid)
    samples.append(dict(last, t=time.monotonic() - t0))
    restarts_after, online = jlist_counts(conf, m)
    rec = {"manager": name, "load_s": load_s, "wrk": total, "kills": kill_recs,
           "samples": samples, "first": first, "last": last,
           "restarts": None if restarts_before is None or restarts_after is None
           else restarts_after - restarts_before,
           "online": online, "log_growth": (file_size(m["log"]) or 0) - (log_before or 0)
           if log_before is not None else None}
    with open(conf["results"], "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


# ------------------------------------------------------------------ report


def fmt_int(n):
    return "{:,}".format(n)


def mib(kib):
    return "%.2f MiB" % (kib / 1024)


def pctl(xs, p):
    xs = sorted(x for x in xs if x is not None)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None


def cmd_report(results_path, meta_path):
    with open(meta_path) as f:
        meta = json.load(f)
    recs = {}
    with open(results_path) as f:
        for line in f:
            r = json.loads(line)
            recs[r["manager"]] = r
    labels = {"rcluster": "rcluster round-robin", "pm2": "pm2 %s cluster mode" % meta["pm2_version"]}
    names = [n for n in ("rcluster", "pm2") if n in recs]
    out = []
    out.append("Run %s on %s: %s cores, %s; rcluster %s at commit %s; %snode %s; wrk %s. "
               "Load average before the run %s, after it %s (the machine is shared: other work "
               "shows in the CPU-bound figures, not in the counts). Reproduce with "
               "`bash scripts/bench/soak.sh` from the repo root."
               % (meta["date"], meta["machine"], meta["nproc"], meta["cpu"], meta["rc_version"],
                  meta["commit"], ("pm2 %s; " % meta["pm2_version"]) if meta["pm2_version"] else "",
                  meta["node"], meta["wrk"], meta["loadavg"], meta["loadavg_after"]))
    if meta.get("pm2_skip"):
        out.append("")
        out.append("pm2 not measured: %s." % meta["pm2_skip"])
    out.append("")
    out.append(
        "The same unmodified hello-world Node server (`scripts/bench/reload/hello.js`, binds "
        "127.0.0.1:PORT itself), 4 instances under each manager (`rcluster start hello.js -i 4 -- "
        "PORT`: round-robin, port found by the preload; `pm2 start hello.js -i 4 -- PORT`: pm2's "
        "cluster mode), one manager at a time. wrk `-t%d -c%d -H 'Connection: close'` (every "
        "request is a new connection the manager deals) runs in chunks until at least %s "
        "connections are served and %d instances have been SIGKILLed; meanwhile one instance at a "
        "time is killed, the oldest, once all 4 have run %.2f s (so never one still booting), "
        "after a SIGSTOP of a few milliseconds to read which connections it holds (its fd table; "
        "`scripts/bench/reload/kills.py`). The daemon's RSS (VmRSS), open fds and threads are "
        "sampled every second from after a 2 s warm-up to 3 s after the load."
        % (meta["wrk_threads"], meta["wrk_conns"], fmt_int(meta["connections"]), meta["kills"],
           meta["gap"]))
    out.append("")
    out.append("| figure | " + " | ".join(labels[n] for n in names) + " | target |")
    out.append("|---|" + "---|" * len(names) + "---|")

    def row(fig, f, target=""):
        out.append("| " + " | ".join([fig] + [f(recs[n]) for n in names] + [target]) + " |")

    def failed(r):
        w = r["wrk"]
        return w["read"] + w["write"] + w["status"] + w["timeout"]

    def held(r):
        return sum(k["held"] for k in r["kills"])

    def rng(key, fmt):
        def f(r):
            xs = [s[key] for s in r["samples"] if key in s]
            return "%s → %s (max %s)" % (fmt(r["first"][key]), fmt(r["last"][key]), fmt(max(xs)))
        return f

    row("connections served (`Connection: close` requests, 200)", lambda r: fmt_int(r["wrk"]["requests"]),
        "≥ %s" % fmt_int(meta["connections"]))
    row("load time", lambda r: "%.0f s (%s conn/s)" % (r["load_s"], fmt_int(int(r["wrk"]["requests"] / r["load_s"]))))
    row("instances SIGKILLed under load", lambda r: str(len(r["kills"])), str(meta["kills"]))
    row("restarts the manager counted; instances online at the end",
        lambda r: "%s; %s/4" % (r["restarts"], r["online"]), "= kills; 4/4")
    row("kill → a new process of the app (its cmdline names hello.js), median (p90)",
        lambda r: "%.1f ms (%.1f ms)" % (pctl([k["replaced_ms"] for k in r["kills"]], 0.5) or 0,
                                        pctl([k["replaced_ms"] for k in r["kills"]], 0.9) or 0),
        "(context: pm2's worker shows the script once its wrapper has booted node)")
    row("connections the killed instances held (in flight, all kills)", lambda r: fmt_int(held(r)))
    row("**failed requests** (wrk read/write errors, timeouts, non-2xx)", lambda r: "**%s**" % fmt_int(failed(r)),
        "≤ held")
    row("failed beyond what the victims held", lambda r: "**%s**" % fmt_int(max(0, failed(r) - held(r))), "0")
    row("**refused connections** (wrk connect errors)", lambda r: "**%s**" % fmt_int(r["wrk"]["connect"]), "0")
    row("daemon RSS: start → end (max)", rng("rss_kib", mib), "flat")
    row("daemon open fds: start → end (max)", rng("fds", str), "flat")
    row("daemon threads: start → end (max)", rng("threads", str), "flat")
    row("daemon CPU per connection (user + system)",
        lambda r: "%.1f µs" % ((r["last"]["cpu_ticks"] - r["first"]["cpu_ticks"]) / HZ * 1e6
                               / max(1, r["wrk"]["requests"])), "(context)")
    row("daemon's own log grew by (rcluster `daemon.log`, pm2 `pm2.log`)",
        lambda r: "%s KiB" % fmt_int((r["log_growth"] or 0) // 1024), "(context)")
    out.append("")
    for n in names:
        r = recs[n]
        pts = r["samples"]
        step = max(1, len(pts) // 10)
        series = pts[::step]
        if series[-1] is not pts[-1]:
            series.append(pts[-1])
        out.append("- %s, RSS over the phase (MiB at seconds): %s." % (labels[n], ", ".join(
            "%.2f @%d" % (s["rss_kib"] / 1024, s["t"]) for s in series if "rss_kib" in s)))
        problems = [k["problem"] for k in r["kills"] if k.get("problem")]
        if problems:
            out.append("  - kills that went wrong: %d (%s)" % (len(problems), problems[0]))
        w = r["wrk"]
        out.append("  - wrk errors: connect %d, read %d, write %d, timeout %d, non-2xx %d (%d chunks)."
                   % (w["connect"], w["read"], w["write"], w["timeout"], w["status"], w["chunks"]))
    out.append("")
    out.append(
        "Reading it: with `Connection: close` a request is in flight from connect to the server's "
        "close, so a killed instance takes with it the requests on the connections it had "
        "accepted; the held count is read from its fd table while it is stopped, just before "
        "the SIGKILL. wrk reports counts, not which connection failed, so a run meets the target "
        "when the failures are no more than what the victims held and no connection was "
        "refused. Growth is end against start: flat means the daemon frees what each connection "
        "and each restart took.")
    print("\n".join(out))
    return 0


def cmd_ports(n):
    import socket
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))
    return 0


def main():
    cmd = sys.argv[1]
    if cmd == "ports":
        return cmd_ports(int(sys.argv[2]))
    if cmd == "phase":
        return cmd_phase(sys.argv[2], sys.argv[3])
    if cmd == "report":
        return cmd_report(sys.argv[2], sys.argv[3])
    print("usage: driver.py ports N | phase CONF MANAGER | report RESULTS META", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
