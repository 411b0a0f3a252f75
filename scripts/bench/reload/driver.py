#!/usr/bin/env python3
"""Helpers of scripts/bench/reload.sh (run by it; not meant to be called by hand).

  driver.py ports N                      N free 127.0.0.1 TCP ports
  driver.py wait-ready CONF MANAGER      poll until the app has 4 online instances and answers 200
  driver.py measure CONF                 the reload rounds under load, then the daemon updates
                                         (CONF's "updates" per manager), then the kills (CONF's
                                         "kills" per row, kills.py) -> JSON lines in CONF's results
  driver.py report RESULTS META          Markdown section body on stdout

CONF is a JSON file written by reload.sh: {"app", "instances", "rounds", "timeout", "close",
"keepalive", "results", "pids", "load", "updates", "kills", "managers": {"rcluster": {"bin",
"home", "port", "n", "log"}, "pm2": {...}, "shared": {... "app", "kind": "rcluster"}}} (a manager
left out is skipped; "shared" is the kernel-shared socket row of the kills only).

Every process this helper starts (the load generator) and every instance pid it sees in a `jlist`
is appended to CONF's "pids" file as `pid:starttime`: reload.sh's cleanup SIGKILLs whatever of
those is still alive at the end.
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

import kills

# ------------------------------------------------------------------ processes


def proc_id(pid):
    """'pid:starttime' of a live (not zombie) process, else None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if rest[0] in ("Z", "X"):
        return None
    return "%d:%s" % (pid, rest[19])


def alive(pid_id):
    return proc_id(int(pid_id.split(":")[0])) == pid_id


class Pids:
    def __init__(self, path):
        self.path = path
        self.seen = set()

    def record(self, pid):
        pid_id = proc_id(pid)
        if pid_id and pid_id not in self.seen:
            self.seen.add(pid_id)
            with open(self.path, "a") as f:
                f.write(pid_id + "\n")
        return pid_id


# ------------------------------------------------------------------ managers


def time_wait():
    """TIME_WAIT TCP sockets on the machine (/proc/net/sockstat, cheap to read), or None."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    w = line.split()
                    return int(w[w.index("tw") + 1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def is_rcluster(name, m):
    """Whether the row runs under rcluster (the "shared" kill row is rcluster too)."""
    return m.get("kind", name) == "rcluster"


def daemon_cpu(name, m):
    """CPU seconds (user + system) used so far by the manager's daemon, or None."""
    pidfile = os.path.join(m["home"], "daemon.lock" if is_rcluster(name, m) else "pm2.pid")
    try:
        with open(pidfile) as f:
            pid = int("".join(c for c in f.readline() if c.isdigit()))
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def read_proc_net_tcp():
    """(seconds to read /proc/net/tcp and tcp6 once, lines): what one connection count costs."""
    t0 = time.perf_counter()
    lines = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, "rb") as f:
                lines += f.read().count(b"\n")
        except OSError:
            pass
    return time.perf_counter() - t0, lines


def manager_env(name, m):
    env = dict(os.environ)
    env["RCLUSTER_HOME" if is_rcluster(name, m) else "PM2_HOME"] = m["home"]
    return env


def jlist(name, m, app):
    """[(pid, online)] of the app's instances, or None when jlist failed."""
    try:
        out = subprocess.run([m["bin"], "jlist"], env=manager_env(name, m), capture_output=True,
                             timeout=60, check=True).stdout
        data = json.loads(out)
    except (subprocess.SubprocessError, ValueError, OSError):
        return None
    res = []
    for i in data:
        if i.get("name") != app:
            continue
        if is_rcluster(name, m):
            res.append((i.get("pid"), i.get("status") == "online" and bool(i.get("ready"))))
        else:
            res.append((i.get("pid"), (i.get("pm2_env") or {}).get("status") == "online"))
    return res


def http_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def all_online(insts, count):
    return insts is not None and len(insts) == count and all(ok and pid for pid, ok in insts)


# ------------------------------------------------------------------ commands


def cmd_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def cmd_wait_ready(conf, name, deadline_s=60):
    m = conf["managers"][name]
    pids = Pids(conf["pids"])
    deadline = time.monotonic() + deadline_s
    while True:
        insts = jlist(name, m, m.get("app", conf["app"]))
        for pid, _ in insts or []:
            if pid:
                pids.record(pid)
        if all_online(insts, conf["instances"]) and http_ok(m["port"]):
            return 0
        if time.monotonic() > deadline:
            print("%s: not %d online instances answering on 127.0.0.1:%d after %d s: %s"
                  % (name, conf["instances"], m["port"], deadline_s, insts), file=sys.stderr)
            return 1
        time.sleep(0.1)  # polling interval


def log_offset(m):
    try:
        return os.path.getsize(m["log"]) if m.get("log") else None
    except OSError:
        return None


def log_since(m, off):
    if off is None:
        return ""
    try:
        with open(m["log"], "rb") as f:
            f.seek(off)
            return f.read(20000).decode("utf-8", "replace")
    except OSError:
        return ""


def start_load(conf, port, pids):
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.Popen([sys.executable, os.path.join(here, "load.py"), "--port", str(port),
                          "--close", str(conf["close"]), "--keepalive", str(conf["keepalive"]),
                          "--timeout", str(conf["timeout"])],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pids.record(p.pid)
    line = p.stdout.readline()  # blocks until the load has had a 200 of each kind
    if line.strip() != "ready":
        p.kill()
        p.wait()
        raise RuntimeError("the load generator did not start (port %d): %r" % (port, line))
    return p


def stop_load(p):
    p.stdin.close()
    out = p.stdout.read()
    p.wait(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


# Seconds of load between two daemon updates (two kills).
UPDATE_GAP = 0.5
# The kill rows, in order, with their names in the report.
KILL_ROWS = {"rcluster": "rcluster round-robin", "shared": "kernel-shared socket (rcluster shared)",
             "pm2": "pm2 cluster mode"}


def daemon_pid(name, m):
    path = os.path.join(m["home"], "daemon.lock" if is_rcluster(name, m) else "pm2.pid")
    try:
        return int(re.sub(r"\D", "", open(path).read().split("\n")[0]) or 0) or None
    except OSError:
        return None


def phase(conf, name, rnd, n, pids, verb="reload"):
    """n reloads (or, with verb "update", n daemon updates: `rcluster update`, `pm2 update`; with
    verb "kill", n SIGKILLs of one instance, kills.py) of one manager under load; returns the
    result record."""
    m = conf["managers"][name]
    app, count = m.get("app", conf["app"]), conf["instances"]
    env = manager_env(name, m)
    seen = set()  # pid_ids of every instance seen in this phase
    current = jlist(name, m, app) or []
    for pid, _ in current:
        if pid:
            seen.add(pids.record(pid))
    load = start_load(conf, m["port"], pids)
    cpu0, w0 = daemon_cpu(name, m), time.perf_counter()
    daemon_before = daemon_pid(name, m)
    command = [m["bin"], verb] + ([app] if verb == "reload" else [])
    reloads = []
    try:
        for i in range(n):
            before = {pid for pid, _ in current}
            off = log_offset(m)
            tw = time_wait()
            t0 = time.time()
            c0 = time.perf_counter()
            killed = None
            if verb == "kill":
                victim = [pid for pid, _ in current if pid][i % count]  # in the list's order
                killed = kills.stop_and_kill(victim, m["port"])
                rc, err = 0, ""
            else:
                try:
                    r = subprocess.run(command, env=env, capture_output=True, timeout=180)
                    rc, err = r.returncode, (r.stderr or b"").decode("utf-8", "replace")
                except subprocess.TimeoutExpired as e:
                    rc, err = "timeout", "no answer after 180 s: " + (e.stderr or b"").decode("utf-8", "replace")
            wall = time.perf_counter() - c0
            t1 = time.time()
            current = jlist(name, m, app)

            def settled(insts):
                if not all_online(insts, count):
                    return False
                return killed is None or killed["victim"] not in {pid for pid, _ in insts}

            # An update may take a moment to answer `jlist` again (pm2 starts a new daemon); a
            # killed instance, to be replaced.
            deadline = time.monotonic() + 30
            while verb != "reload" and not settled(current) and time.monotonic() < deadline:
                time.sleep(0.05)
                current = jlist(name, m, app)
            problem = None
            if rc != 0:
                problem = "`%s` exited %s: %s" % (" ".join([name] + command[1:]), rc, err.strip()[-600:])
            elif not settled(current):
                problem = "after the %s: not %d online instances%s: %s" % (
                    verb, count, "" if killed is None else " without the victim", current)
            elif verb == "reload" and before & {pid for pid, _ in current}:
                problem = "after the reload: old pids still listed: %s" % sorted(
                    before & {pid for pid, _ in current})
            for pid, _ in current or []:
                if pid:
                    seen.add(pids.record(pid))
            rec = {"t0": t0, "t1": t1, "wall": wall, "tw": tw,
                   "restarted": len(before - {pid for pid, _ in current or []})}
            if killed is not None:
                rec.update(killed)
            if problem:
                rec["problem"] = problem
                rec["log"] = log_since(m, off)[-4000:]
                print("[reload.sh] %s round %d %s %d: %s" % (name, rnd, verb, i + 1, problem),
                      file=sys.stderr)
                # Let the app settle before the next reload (a failed reload may leave fewer instances).
                deadline = time.monotonic() + 30
                while not all_online(current, count) and time.monotonic() < deadline:
                    time.sleep(0.2)
                    current = jlist(name, m, app)
                current = current or []
            reloads.append(rec)
            if verb != "reload":
                # The load runs on between updates (kills), so that each one meets a steady load.
                time.sleep(UPDATE_GAP)
        walls = [r["wall"] for r in reloads]
        print("[reload.sh] %-8s round %d: %d %ss, median %.0f ms each, %d went wrong"
              % (name, rnd, n, verb, statistics.median(walls) * 1000 if walls else 0,
                 sum(1 for r in reloads if "problem" in r)), file=sys.stderr)
    finally:
        cpu1, w1 = daemon_cpu(name, m), time.perf_counter()
        tcp_s, tcp_lines = read_proc_net_tcp()
        result = stop_load(load)
    # Old instances (seen, no longer listed) should be gone within the kill timeout.
    now_ids = set()
    for pid, _ in current:
        if pid:
            pid_id = proc_id(pid)
            if pid_id:
                now_ids.add(pid_id)
    old = [x for x in seen if x and x not in now_ids]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(x) for x in old):
        time.sleep(0.1)
    lingering = [x for x in old if alive(x)]
    daemon_after = daemon_pid(name, m)
    return {"manager": name, "round": rnd, "n": n, "verb": verb, "reloads": reloads, "load": result,
            "proc_net_tcp": [tcp_s, tcp_lines],
            # An update may replace the daemon process (pm2): its CPU is not comparable then.
            "daemon_cpu": None if cpu0 is None or cpu1 is None or daemon_after != daemon_before
            else cpu1 - cpu0, "phase_s": w1 - w0,
            "daemon_pid_kept": daemon_after == daemon_before,
            "old_instances": len(old), "lingering": lingering}


def cmd_measure(conf):
    pids = Pids(conf["pids"])
    names = [x for x in ("rcluster", "pm2") if x in conf["managers"]]
    rounds = conf["rounds"]

    def split(n):
        return [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]

    plan = {name: split(conf["managers"][name]["n"]) for name in names}
    with open(conf["results"], "a") as out:
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                n = plan[name][r]
                if n == 0:
                    continue
                rec = phase(conf, name, r + 1, n, pids)
                ld = rec["load"]
                print("[reload.sh] %-8s round %d: served %d close + %d keep-alive; failed %d + %d; "
                      "refused %d; resent %d" % (
                          name, r + 1, ld["close"]["ok"], ld["keepalive"]["ok"], ld["close"]["failed"],
                          ld["keepalive"]["failed"], ld["close"]["refused"] + ld["keepalive"]["refused"],
                          ld["keepalive"]["resent"]), file=sys.stderr)
                out.write(json.dumps(rec) + "\n")
                out.flush()
        for name in names:
            if conf.get("updates", 0) > 0:
                rec = phase(conf, name, 1, conf["updates"], pids, verb="update")
                out.write(json.dumps(rec) + "\n")
                out.flush()
        for name in KILL_ROWS:
            if conf.get("kills", 0) > 0 and name in conf["managers"]:
                rec = phase(conf, name, 1, conf["kills"], pids, verb="kill")
                att = kills.attribute(rec)
                print("[reload.sh] %-8s %d kills: failed %d + %d (held %d, lost %d), refused %d"
                      % (name, conf["kills"], rec["load"]["close"]["failed"],
                         rec["load"]["keepalive"]["failed"], att["held"], att["lost"],
                         att["refused"]), file=sys.stderr)
                out.write(json.dumps(rec) + "\n")
                out.flush()
    return 0


# ------------------------------------------------------------------ report


def fmt_int(n):
    return "{:,}".format(n).replace(",", "\u202f")


def fmt_ms(s):
    ms = s * 1000
    return "%.0f ms" % ms if ms >= 100 else "%.1f ms" % ms


def speed(x):
    """pm2 time / rcluster time as words."""
    return "%.1f× faster" % x if x >= 1 else "%.1f× slower" % (1 / x)


def pctl(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def aggregate(recs):
    a = {"n": 0, "walls": [], "tw": [], "problems": [], "load_s": 0.0, "old": 0, "lingering": [],
         "close": {}, "keepalive": {}, "events": [], "windows": []}
    for rec in recs:
        a["n"] += rec["n"]
        a["old"] += rec["old_instances"]
        if rec.get("proc_net_tcp"):
            a.setdefault("tcp", []).append(rec["proc_net_tcp"])
        if rec.get("daemon_cpu") is not None:
            a["dcpu"] = a.get("dcpu", 0.0) + rec["daemon_cpu"]
            a["dwall"] = a.get("dwall", 0.0) + rec["phase_s"]
        a["lingering"] += rec["lingering"]
        load = rec["load"]
        a["load_s"] += load["stop"] - load["start"]
        wins = []  # this phase's reloads: a failure is matched to its own phase's reloads only
        for i, r in enumerate(rec["reloads"]):
            a["walls"].append(r["wall"])
            if r.get("tw") is not None:
                a["tw"].append(r["tw"])
            a["windows"].append((r["t0"], r["t1"], rec["round"], i + 1))
            wins.append((r["t0"], r["t1"], rec["round"], i + 1))
            if "problem" in r:
                a["problems"].append((rec["round"], i + 1, r["problem"], r.get("log", "")))
        for kind in ("close", "keepalive"):
            s, t = load[kind], a[kind]
            for k in ("ok", "failed", "refused", "resent", "connections"):
                t[k] = t.get(k, 0) + s[k]
            t.setdefault("reasons", {})
            for k, v in s["reasons"].items():
                t["reasons"][k] = t["reasons"].get(k, 0) + v
            t.setdefault("p99", []).append(s["lat_ms"]["p99"] or 0)
            t["max"] = max(t.get("max", 0), s["lat_ms"]["max"] or 0)
            for ts, te, what, reason in (ev[:4] for ev in s["events"]):
                a["events"].append((te, ts, kind, what, reason, wins))
    return a


def where(ts, windows, grace):
    """Which reload a failed request fell in: the one running (or returned less than `grace` s
    before) when the request was sent."""
    for t0, t1, rnd, i in windows:
        if t0 <= ts <= t1 + grace:
            return "round %d reload %d" % (rnd, i), t0
    return "between reloads", None


def utc(t):
    return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % int((t % 1) * 1000)


def endings(name, path):
    """How REPLACED instances ended, per the manager's own log: {"SIGTERM": 36, "exit 0": 2, ...}.
    rcluster: the old ids of its "reloading instance K: id A -> id B" lines; pm2: its `_old_N`
    workers. Instances ended by the final kill were never replaced and are not counted."""
    out = {}
    old_ids = set()
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None
    for line in lines:
        key = None
        if name == "rcluster":
            m = re.search(r"reloading instance \d+: id (\d+) -> id \d+", line)
            if m:
                old_ids.add(m.group(1))
                continue
            m = re.search(r"instance \d+ \(id (\d+)\) (?:killed by signal \d+ \((\w+)\)|exited with code (\d+))", line)
            if m and m.group(1) in old_ids:
                key = m.group(2) or "exit %s" % m.group(3)
        else:
            m = re.search(r"App \[[^\]]*:_old_\d+\] exited with code \[(\d+)\](?: via signal \[(\w+)\])?", line)
            if m:
                key = m.group(2) or "exit %s" % m.group(1)
        if key:
            out[key] = out.get(key, 0) + 1
    return out


def rc_marks(path):
    """From rcluster's daemon.log: ([times of replacement "ready" lines], [times of old-instance
    "killed"/"exited" lines]), during reloads."""
    import datetime
    readies, ends, pending = [], [], {}
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue
        m = re.search(r"reloading instance \d+: id (\d+) -> id (\d+)", line)
        if m:
            pending[m.group(2)] = m.group(1)
            continue
        m = re.search(r"instance \d+ \(id (\d+)\) ready", line)
        if m and m.group(1) in pending:
            readies.append(t)
            continue
        m = re.search(r"instance \d+ \(id (\d+)\) (killed|exited)", line)
        if m and m.group(1) in pending.values():
            ends.append(t)
    return readies, ends


def rc_replacements(path):
    """From rcluster's daemon.log: per replacement, (started -> ready, ready -> old one ended) s."""
    import datetime

    def ts(line):
        return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()

    boot, drain, pending = [], [], {}
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            m = re.search(r"reloading instance \d+: id (\d+) -> id (\d+)", line)
            if m:
                pending[m.group(2)] = {"old": m.group(1), "t": ts(line)}
                continue
            m = re.search(r"instance \d+ \(id (\d+)\) ready", line)
            if m and m.group(1) in pending and "ready" not in pending[m.group(1)]:
                p = pending[m.group(1)]
                p["ready"] = ts(line)
                boot.append(p["ready"] - p["t"])
                continue
            m = re.search(r"instance \d+ \(id (\d+)\) (killed|exited)", line)
            if m:
                for k, p in list(pending.items()):
                    if p["old"] == m.group(1) and "ready" in p:
                        drain.append(ts(line) - p["ready"])
                        del pending[k]
        except ValueError:
            continue
    return boot, drain


def cmd_report(results_path, meta_path):
    meta = json.load(open(meta_path))
    every = [json.loads(l) for l in open(results_path) if l.strip()]
    recs = [r for r in every if r.get("verb", "reload") == "reload"]
    updates = [r for r in every if r.get("verb") == "update"]
    killed = [r for r in every if r.get("verb") == "kill"]
    names = [x for x in ("rcluster", "pm2") if any(r["manager"] == x for r in recs)]
    agg = {x: aggregate([r for r in recs if r["manager"] == x]) for x in names}
    for x in names:
        agg[x]["name"] = x
    inst = meta["instances"]
    has_pm2 = "pm2" in agg
    rc = agg.get("rcluster")
    pm = agg.get("pm2")
    lines = []
    w = lines.append

    w("Run %s on %s: %s cores (nproc), %s; rcluster %s at commit %s; pm2 %s; node %s; N = %s; load "
      "average before the run %s%s (other work on the machine shows in the spread). Reproduce with "
      "`bash scripts/bench/reload.sh` from the repo root."
      % (meta["date"], meta["machine"], meta["nproc"], meta["cpu"], meta["rc_version"],
         meta["commit"], meta["pm2_version"] or "not run (%s)" % meta["pm2_skip"], meta["node"],
         "%d" % rc["n"] if not pm or pm["n"] == rc["n"] else "%d for rcluster, %d for pm2" % (rc["n"], pm["n"]),
         meta["loadavg"], ", after it %s" % meta["loadavg_after"] if meta.get("loadavg_after") else ""))
    w("")
    n_rc = rc["n"] if rc else 0
    n_pm = pm["n"] if pm else 0
    if has_pm2 and n_pm != n_rc:
        w("**N differs**: %d reloads for rcluster, %d for pm2 (BENCH_PM2_RELOADS); per-reload "
          "figures compare, totals do not." % (n_rc, n_pm))
        w("")
    head = "| figure | rcluster | pm2 | ratio | target |" if has_pm2 else "| figure | rcluster | target |"
    w(head)
    w("|---|---|---|---|---|" if has_pm2 else "|---|---|---|")

    def row(fig, f, ratio=None, target=""):
        cells = [fig, f(rc) if rc else "-"]
        if has_pm2:
            cells += [f(pm) if pm else "-", ratio(rc, pm) if (ratio and rc and pm) else ""]
        cells.append(target)
        w("| " + " | ".join(cells) + " |")

    def verdict(v, want=0):
        return "**met**" if v == want else "**missed**"

    def failed_total(a):
        return a["close"]["failed"] + a["keepalive"]["failed"]

    def refused_total(a):
        return a["close"]["refused"] + a["keepalive"]["refused"]

    row("reloads of the %d-instance app, back to back under load (N)" % inst, lambda a: str(a["n"]))
    row("reloads that went wrong (non-zero exit, or not %d new online instances after)" % inst,
        lambda a: str(len(a["problems"])), target="0")
    row("requests served, `Connection: close` client (%d connections)" % meta["close"],
        lambda a: "%s (%s/s)" % (fmt_int(a["close"]["ok"]), fmt_int(round(a["close"]["ok"] / a["load_s"]))))
    row("requests served, keep-alive client (%d connections)" % meta["keepalive"],
        lambda a: "%s (%s/s)" % (fmt_int(a["keepalive"]["ok"]),
                                 fmt_int(round(a["keepalive"]["ok"] / a["load_s"]))))
    row("**failed requests**, `Connection: close`", lambda a: "**%d**" % a["close"]["failed"],
        target="0")
    row("**failed requests**, keep-alive", lambda a: "**%d**" % a["keepalive"]["failed"], target="0")
    row("**refused connections** (both clients)", lambda a: "**%d**" % refused_total(a), target="0")
    row("keep-alive requests resent (reused connection closed before any answer byte; not failures)",
        lambda a: fmt_int(a["keepalive"]["resent"]), target="(context)")
    row("**reload wall time per instance** = total reload time / (N × %d)" % inst,
        lambda a: "**%s**" % fmt_ms(sum(a["walls"]) / (a["n"] * inst)),
        ratio=lambda r, p: speed((sum(p["walls"]) / (p["n"] * inst)) / (sum(r["walls"]) / (r["n"] * inst))),
        target="(context)")
    row("`reload` command wall time, median (p90, max)",
        lambda a: "%s (p90 %s, max %s)" % (fmt_ms(statistics.median(a["walls"])),
                                          fmt_ms(pctl(a["walls"], 0.9)), fmt_ms(max(a["walls"]))),
        target="(context)")
    row("latency of served requests, p99 (worst round) / max: close; keep-alive",
        lambda a: "%.0f / %.0f ms; %.0f / %.0f ms" % (max(a["close"]["p99"]), a["close"]["max"],
                                                     max(a["keepalive"]["p99"]), a["keepalive"]["max"]),
        target="(context)")
    row("manager daemon CPU during the reload phases (rcluster daemon; pm2 God daemon = cluster "
        "primary), both also deal the load's connections",
        lambda a: "%.1f s (%.0f%% of one core)" % (a["dcpu"], 100 * a["dcpu"] / a["dwall"])
        if a.get("dwall") else "-", target="(context)")
    row("TIME_WAIT TCP sockets on the machine when a reload began, median (max)",
        lambda a: "%s (%s)" % (fmt_int(int(statistics.median(a["tw"]))), fmt_int(max(a["tw"])))
        if a["tw"] else "-", target="(context)")
    row("one read of /proc/net/tcp + tcp6 at the end of a phase, under load: median time (lines)",
        lambda a: "%s (%s lines)" % (fmt_ms(statistics.median(t for t, _ in a["tcp"])),
                                     fmt_int(int(statistics.median(n for _, n in a["tcp"]))))
        if a.get("tcp") else "-", target="(context)")
    logs = meta.get("logs", {})
    row("how replaced instances ended, per the manager's own log (%s)" % "; ".join(
        "%s: `%s`" % (x, os.path.basename(logs.get(x, "?"))) for x in names),
        lambda a: ", ".join("%s × %d" % kv for kv in sorted(
            (endings(a["name"], logs.get(a["name"], "")) or {}).items(), key=lambda kv: -kv[1])) or "-",
        target="(context)")
    rcr = rc_replacements(logs.get("rcluster", "")) if rc else None
    if rcr and rcr[0] and rcr[1]:
        boot, drain = rcr
        cells = "started → ready %s (p90 %s); ready → old one ended %s (p90 %s)" % (
            fmt_ms(statistics.median(boot)), fmt_ms(pctl(boot, 0.9)),
            fmt_ms(statistics.median(drain)), fmt_ms(pctl(drain, 0.9)))
        if has_pm2:
            w("| one instance replacement, from the daemon's log: median (p90) | %s | n/a (pm2.log "
              "has 1 s resolution) |  | (context) |" % cells)
        else:
            w("| one instance replacement, from the daemon's log: median (p90) | %s | (context) |" % cells)
    row("replaced instances still running 5 s after the last reload of a round",
        lambda a: "%d of %d" % (len(a["lingering"]), a["old"]), target="0")
    w("")
    verdicts = []
    if rc:
        ok = failed_total(rc) == 0 and refused_total(rc) == 0 and not rc["problems"]
        verdicts.append("rcluster: %d failed, %d refused in %d reloads: target (0 in 100) %s%s"
                        % (failed_total(rc), refused_total(rc), rc["n"], "**met**" if ok else "**missed**",
                           "" if rc["n"] >= 100 else " (fewer than 100 reloads run)"))
    if pm:
        verdicts.append("pm2: %d failed, %d refused in %d reloads" % (failed_total(pm), refused_total(pm), pm["n"]))
    w("Verdict: " + "; ".join(verdicts) + ".")
    w("")

    w("How it is measured (both managers in one run, private homes, loopback only):")
    w("")
    w("- The same hello-world Node server (`scripts/bench/reload/hello.js`: plain `http.createServer`, "
      "binds 127.0.0.1 on the port in argv, no signal handler, no readiness call), %d instances: "
      "`rcluster start hello.js -i %d -- PORT` (cluster mode, round-robin, the port found by the "
      "preload; default kill timeout 1600 ms) and `pm2 start hello.js -i %d -- PORT` (pm2 cluster "
      "mode, default kill_timeout 1600 ms), each on its own port, both up for the whole run."
      % (inst, inst, inst))
    w("- Load (`scripts/bench/reload/load.py`, one asyncio process, raw sockets): %d `Connection: "
      "close` workers (connect, GET, read the answer and the server's close, again) and %d keep-alive "
      "connections (GET after GET), closed loop, no pause. A keep-alive request sent on a reused "
      "connection that ends (EOF, reset, write error) before any byte of an answer is sent again on "
      "a new connection, as every HTTP client does, and counted as resent; everything else that is "
      "not a whole `200` is a failed request: a reset or EOF after part of an answer, an EOF or reset "
      "before any answer byte on a fresh connection, another status, no answer within %g s. "
      "`ECONNREFUSED` on connect counts as a refused connection (a worker pauses 1 ms after a "
      "refusal or failure)." % (meta["close"], meta["keepalive"], meta["timeout"]))
    w("- %d rounds, order alternating (rcluster first in odd rounds): in each, for each manager, the "
      "load starts on its port only (and has had a 200 of each kind), then N/%d reloads run back to "
      "back (`rcluster reload hello` / `pm2 reload hello`, each timed from spawn to exit of the CLI: "
      "the wall time a user waits, CLI start included), then the load stops after finishing its "
      "in-flight requests. After each reload (untimed) `jlist` must show %d online instances (rcluster: "
      "and ready), none with a pid from before the reload; the load keeps running meanwhile."
      % (meta["rounds"], meta["rounds"], inst))
    w("- req/s are over the whole load time of the rounds, `jlist` checks included; they show that "
      "the load ran, they are not a throughput benchmark (see the cluster-mode section). A "
      "`Connection: close` worker whose request hangs is stuck until the %g s timeout, so hung "
      "requests also lower that client's count." % meta["timeout"])
    w("- What a reload waits for: pm2 (cluster mode) sends the old worker SIGINT once the new one "
      "listens, SIGKILL 1600 ms later. rcluster is meant to (PRODUCT.md §5) take the old instance "
      "out of the rotation, let it finish what it was dealt (until none of its ESTABLISHED TCP "
      "connections has a request unanswered, at most kill_timeout = 1600 ms: "
      "src/daemon/supervisor/lifecycle.rs), then send kill_signal (default SIGINT), SIGKILL after "
      "kill_timeout; the \"how replaced instances ended\" row shows what they actually got. "
      "rcluster looks at each socket of the instance (TCP_INFO of a copy made with pidfd_getfd: "
      "src/daemon/process/conns.rs); the TIME_WAIT and /proc/net/tcp rows are context on the load "
      "(/proc/net/tcp lists every TCP socket on the machine, TIME_WAIT ones included; rcluster "
      "no longer reads it).")
    w("- Daemon CPU: utime + stime of the daemon process (`$RCLUSTER_HOME/daemon.lock`, "
      "`$PM2_HOME/pm2.pid`) from just after the load started to just before it stopped, per "
      "manager summed over the rounds.")
    w("")

    # Details: failure reasons and where they fell, problems, daemon log.
    detail = []
    for x in names:
        a = agg[x]
        for kind in ("close", "keepalive"):
            if a[kind]["reasons"]:
                detail.append("- %s, %s client, failed requests by reason: %s." % (
                    x, "`Connection: close`" if kind == "close" else "keep-alive",
                    "; ".join("%s: %d" % (k, v) for k, v in
                              sorted(a[kind]["reasons"].items(), key=lambda kv: -kv[1]))))
        if a["events"]:
            ev = sorted(a["events"], key=lambda e: e[0])
            spots = {}
            for te, ts, kind, what, reason, wins in ev:
                key, _ = where(ts, wins, meta["grace"])
                spots[key] = spots.get(key, 0) + 1
            shown = sorted(spots.items(), key=lambda kv: -kv[1])[:10]
            detail.append("- %s: %s failures/refusals by reload (the one running, or returned less "
                          "than %g s before, when the request was sent): %s%s." % (
                              x, "the first %d" % len(ev) if len(ev) < failed_total(a) + refused_total(a)
                              else "all %d" % len(ev), meta["grace"], "; ".join("%s: %d" % kv for kv in shown),
                              "; ..." if len(spots) > len(shown) else ""))
            items = []
            for te, ts, kind, what, reason, wins in ev[:10]:
                key, t0 = where(ts, wins, meta["grace"])
                items.append("sent %s UTC%s, %s %s UTC, %s: %s" % (
                    utc(ts), "" if t0 is None else " (%.2f s into %s)" % (ts - t0, key),
                    what, utc(te), "close" if kind == "close" else "keep-alive", reason))
            detail.append("  When (first %d): %s." % (len(items), "; ".join(items)))
            marks = rc_marks(logs.get(x, "")) if x == "rcluster" else None
            if marks and marks[0]:
                readies, ends = marks
                after_ready, to_end = [], []
                for te, ts, *_ in ev:
                    before = [t for t in readies if t <= te + 0.002]
                    if before:
                        after_ready.append(te - before[-1])
                    if ends:
                        to_end.append(min(abs(te - t) for t in ends))
                if after_ready:
                    detail.append(
                        "  Against rcluster's daemon.log: these %d were seen %s–%s ms (median %s) after the "
                        "last \"ready: accepts connections\" line of a replacement (the moment its old "
                        "instance leaves the rotation), and %s–%s ms (median %s) from the nearest line "
                        "reporting an old instance's end." % (
                            len(after_ready), *("%.0f" % (v * 1000) for v in (
                                min(after_ready), max(after_ready), statistics.median(after_ready))),
                            *("%.0f" % (v * 1000) for v in (
                                min(to_end), max(to_end), statistics.median(to_end)))))
        for rnd, i, problem, log in a["problems"][:5]:
            detail.append("- %s round %d reload %d went wrong: %s" % (x, rnd, i, problem.replace("\n", " ")))
            if log.strip():
                shown_log = [l if len(l) <= 200 else l[:200] + "…" for l in log.strip().splitlines()
                             if "reload of app" not in l][-5:]
                detail.append("  daemon log during it (last lines): `%s`" % " / ".join(
                    shown_log).replace("`", "'"))
        if len(a["problems"]) > 5:
            detail.append("- %s: %d more reloads went wrong." % (x, len(a["problems"]) - 5))
        if a["lingering"]:
            detail.append("- %s: replaced instances still alive 5 s after a round: %s (SIGKILLed at "
                          "the end by this script)." % (x, ", ".join(p.split(":")[0] for p in a["lingering"][:10])))
    if meta.get("daemon_errors"):
        detail.append("- rcluster daemon.log lines with error/warn/fail/panic (last %d):"
                      % len(meta["daemon_errors"]))
        for l in meta["daemon_errors"]:
            detail.append("  `%s`" % l.replace("`", "'"))
    if detail:
        w("Details:")
        w("")
        lines.extend(detail)
        w("")
    if updates:
        lines.extend(update_report(updates, meta))
    if killed:
        lines.extend(kills.kill_report(killed, KILL_ROWS, inst, UPDATE_GAP))
    sys.stdout.write("\n".join(lines).rstrip("\n") + "\n")
    return 0


def update_report(updates, meta):
    """The daemon-update rows: `rcluster update` against `pm2 update`, under the same load."""
    names = [x for x in ("rcluster", "pm2") if any(r["manager"] == x for r in updates)]
    agg = {x: aggregate([r for r in updates if r["manager"] == x]) for x in names}
    kept = {x: all(r.get("daemon_pid_kept") for r in updates if r["manager"] == x) for x in names}
    restarted = {x: sum(u.get("restarted", 0) for r in updates if r["manager"] == x for u in r["reloads"])
                 for x in names}
    out = ["### The daemon replaced under load: `rcluster update` and `pm2 update`", ""]
    out.append("After the reload rounds, the same load runs again on each manager's port in turn while "
               "its daemon is replaced N times back to back: `rcluster update` (the daemon re-executes "
               "its binary in place, PRODUCT.md §8) and `pm2 update` (pm2 saves its list, kills its "
               "daemon and starts a new one, which starts the apps again), %g s of load after "
               "each. Same checks after each: %d online instances answering `jlist` (waited for, "
               "up to 30 s)." % (UPDATE_GAP, meta["instances"]))
    out.append("")
    out.append("| figure | " + " | ".join(names) + " | target |")
    out.append("|---|" + "---|" * len(names) + "---|")

    def row(fig, f, target=""):
        out.append("| " + " | ".join([fig] + [f(x) for x in names] + [target]) + " |")

    row("daemon replacements under load (N)", lambda x: str(agg[x]["n"]))
    row("replacements that went wrong (non-zero exit, or not %d online instances after)"
        % meta["instances"], lambda x: str(len(agg[x]["problems"])), target="0")
    row("**failed requests** (`Connection: close`; keep-alive)", lambda x: "**%d; %d**" % (
        agg[x]["close"]["failed"], agg[x]["keepalive"]["failed"]), target="0")
    row("**refused connections** (both clients)", lambda x: "**%d**" % (
        agg[x]["close"]["refused"] + agg[x]["keepalive"]["refused"]), target="0")
    row("requests served (`Connection: close`; keep-alive)", lambda x: "%s; %s" % (
        fmt_int(agg[x]["close"]["ok"]), fmt_int(agg[x]["keepalive"]["ok"])))
    row("instances restarted by the replacements", lambda x: str(restarted[x]), target="0")
    row("daemon pid kept", lambda x: "yes" if kept[x] else "no")
    row("command wall time, median (max)", lambda x: "%s (max %s)" % (
        fmt_ms(statistics.median(agg[x]["walls"])), fmt_ms(max(agg[x]["walls"]))))
    out.append("")
    for x in names:
        for kind in ("close", "keepalive"):
            if agg[x][kind]["reasons"]:
                out.append("- %s, %s client, failed requests by reason: %s." % (
                    x, "`Connection: close`" if kind == "close" else "keep-alive",
                    "; ".join("%s: %d" % kv for kv in sorted(agg[x][kind]["reasons"].items(),
                                                             key=lambda kv: -kv[1]))))
        for rnd, i, problem, _ in agg[x]["problems"][:3]:
            out.append("- %s update %d went wrong: %s" % (x, i, problem.replace("\n", " ")[:400]))
    out.append("")
    return out


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ports":
        cmd_ports(int(args[0]))
        return 0
    if cmd == "wait-ready":
        return cmd_wait_ready(json.load(open(args[0])), args[1])
    if cmd == "measure":
        return cmd_measure(json.load(open(args[0])))
    if cmd == "report":
        return cmd_report(args[0], args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
