#!/usr/bin/env python3
"""Measurements behind scripts/bench/cli.sh: rcluster and pm2 side by side, in one run.

The shell script builds rcluster, installs pm2, starts both daemons in private homes and
cleans up; this tool only measures and writes a JSON file of raw figures:

  jlist      wall time of `<manager> jlist` (subprocess.run around perf_counter), 4 idle
             instances up in each, the two managers alternating run by run
  rss        VmRSS of each daemon after the jlist runs (4 instances up), and again at the end
  kill       SIGKILL one instance, then busy-poll /proc with perf_counter_ns for: a new child of
             the daemon (new pid), its cmdline equal to a sibling's (the program, not the
             manager's fork or pm2's ProcessContainer.js), and the program's first line having
             run (it writes marks/<pid> beside itself)
  start50    `<manager> start idle.js -i 50` until jlist shows 50 online (jlist polled after the
             command returns), and until all 50 programs have written their mark; the same with
             `sleep 1000` (no node boot: the managers' own cost); and, as a floor, this tool
             spawning the 50 node programs itself

Every wait polls a condition; nothing sleeps in place of one.
"""

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

IDLE_JS = """\
// Idle instance for scripts/bench/cli.sh: note that the program ran, then idle.
try { require('fs').writeFileSync(__dirname + '/marks/' + process.pid, ''); } catch (e) {}
setInterval(() => {}, 1e6);
"""

TIMEOUT_S = 60.0


def log(msg):
    print(f"[clibench] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- /proc helpers


def fresh_dir(d):
    """d with an empty marks/ inside (a mark left by an earlier run would end a wait early)."""
    marks = os.path.join(d, "marks")
    os.makedirs(marks, exist_ok=True)
    for name in os.listdir(marks):
        os.unlink(os.path.join(marks, name))
    return d


def read_bytes(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def stat_fields(pid):
    """Fields of /proc/<pid>/stat after the `(comm)` field (index 0 = state)."""
    raw = read_bytes(f"/proc/{pid}/stat")
    if raw is None:
        return None
    return raw.rsplit(b")", 1)[1].split()


def is_live(pid):
    f = stat_fields(pid)
    return f is not None and f[0] not in (b"Z", b"X")


def start_time(pid):
    f = stat_fields(pid)
    return int(f[19]) if f else None


def norm_cmdline(raw):
    """pm2's process.title pads the argv area with NULs: compare the words only."""
    if raw is None:
        return None
    return b" ".join(w for w in raw.split(b"\0") if w)


def cmdline(pid):
    return norm_cmdline(read_bytes(f"/proc/{pid}/cmdline"))


def children_of(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        raw = read_bytes(f"/proc/{pid}/task/{t}/children")
        if raw:
            out.extend(int(x) for x in raw.split())
    return out


def vmrss_kib(pid):
    raw = read_bytes(f"/proc/{pid}/status")
    if raw is None:
        raise BenchError(f"daemon pid {pid} is gone")
    for line in raw.splitlines():
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_ns(pid):
    # utime+stime of the whole process: every thread, those that have ended included (rcluster
    # forks a batch of instances from short-lived threads; /proc/<pid>/schedstat is the main
    # thread's alone). Clock ticks, so 10 ms resolution.
    f = stat_fields(pid)
    if f is None:
        return 0
    return (int(f[11]) + int(f[12])) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


# ---------------------------------------------------------------- managers


class Manager:
    def __init__(self, name, argv, env, pidfile, workdir, pm2_style):
        self.name = name
        self.argv = argv
        self.env = env
        self.pidfile = pidfile
        self.workdir = workdir
        self.pm2_style = pm2_style
        os.makedirs(workdir, exist_ok=True)

    def run(self, *args, check=True, capture=True):
        cp = subprocess.run(
            self.argv + list(args),
            env=self.env,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
            timeout=TIMEOUT_S,
            cwd=self.workdir,
        )
        if check and cp.returncode != 0:
            err = (cp.stderr or b"").decode(errors="replace")[-2000:]
            raise BenchError(f"{self.name} {' '.join(args)} exited {cp.returncode}: {err}")
        return cp

    def daemon_pid(self):
        raw = read_bytes(self.pidfile)
        if not raw or not raw.strip():
            raise BenchError(f"{self.name}: no daemon pid in {self.pidfile}")
        return int(raw.split()[0])

    def task_children_paths(self):
        d = self.daemon_pid()
        return [f"/proc/{d}/task/{t}/children" for t in os.listdir(f"/proc/{d}/task")]

    def children(self, paths=None):
        out = set()
        for p in paths or self.task_children_paths():
            raw = read_bytes(p)
            if raw:
                out.update(int(x) for x in raw.split())
        return out

    def live_children(self):
        return {p for p in self.children() if is_live(p)}

    def jlist(self):
        cp = self.run("jlist")
        text = cp.stdout.decode(errors="replace")
        # pm2 may print a line before the JSON (e.g. an update notice): take the array.
        start = text.find("[")
        if start < 0:
            raise BenchError(f"{self.name} jlist printed no JSON array: {text[:300]!r}")
        rows = json.loads(text[start:])
        out = []
        for r in rows:
            if self.pm2_style:
                env = r.get("pm2_env", {})
                out.append({"name": r.get("name"), "pid": r.get("pid"),
                            "status": env.get("status"), "restarts": env.get("restart_time", 0)})
            else:
                out.append({"name": r.get("name"), "pid": r.get("pid"),
                            "status": r.get("status"), "restarts": r.get("restarts", 0)})
        return out

    def app_dir(self, label):
        d = fresh_dir(os.path.join(self.workdir, label))
        path = os.path.join(d, "idle.js")
        with open(path, "w") as f:
            f.write(IDLE_JS)
        return d, path

    def wait_children(self, count, what):
        """Poll until the daemon has exactly `count` live children."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            n = len(self.live_children())
            if n == count:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: {what}: {n} live children, expected {count}")
            time.sleep(0.005)

    def wait_online(self, app, count):
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            rows = [r for r in self.jlist() if r["name"] == app]
            online = [r for r in rows if r["status"] == "online" and r["pid"]]
            if len(online) == count:
                return rows
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: {app}: {len(online)}/{count} online")

    def quiesce(self, window_s=0.05, max_s=3.0, budget_ns=1_000_000):
        """Poll until the daemon and its children use < budget_ns CPU over one window."""
        deadline = time.monotonic() + max_s
        pids = [self.daemon_pid()] + sorted(self.children())

        def total():
            return sum(cpu_ns(p) for p in pids)

        last = total()
        while time.monotonic() < deadline:
            time.sleep(window_s)
            now = total()
            if now - last < budget_ns:
                return True
            last = now
        return False


def pct(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary(values):
    return {"median": statistics.median(values), "p90": pct(values, 0.9),
            "min": min(values), "max": max(values), "n": len(values), "all": values}


# ---------------------------------------------------------------- benchmarks


def bench_jlist(managers, runs, warmup):
    times = {m.name: [] for m in managers}
    for m in managers:
        rows = m.jlist()  # validates the output once
        if len([r for r in rows if r["status"] == "online"]) != 4:
            raise BenchError(f"{m.name}: expected 4 online instances before jlist runs, got {rows}")
    floor = []
    for i in range(warmup + runs):
        for m in managers:
            t0 = time.perf_counter()
            cp = subprocess.run(m.argv + ["jlist"], env=m.env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, timeout=TIMEOUT_S, cwd=m.workdir)
            dt = time.perf_counter() - t0
            if cp.returncode != 0 or not cp.stdout:
                raise BenchError(f"{m.name} jlist failed during timing (exit {cp.returncode})")
            if i >= warmup:
                times[m.name].append(dt * 1000)
        t0 = time.perf_counter()
        subprocess.run(["true"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if i >= warmup:
            floor.append((time.perf_counter() - t0) * 1000)
    out = {name: summary(v) for name, v in times.items()}
    out["spawn_floor"] = summary(floor)
    return out


def kill_trial(m, target, markdir):
    """SIGKILL the oldest live child whose cmdline is `target`; time its replacement."""
    paths = m.task_children_paths()
    before = m.children(paths)
    live = sorted((p for p in before if is_live(p) and cmdline(p) == target), key=lambda p: start_time(p) or 0)
    if len(live) < 2:
        raise BenchError(f"{m.name}: need 2+ live instances running {target!r}, have {live}")
    victim = live[0]  # the oldest goes: never one that has just restarted
    seen = set(before)
    new_pid = t_pid = t_cmd = t_ran = None
    ran_path = None
    t0 = time.perf_counter_ns()
    os.kill(victim, signal.SIGKILL)
    limit = t0 + int(TIMEOUT_S * 1e9)
    yield_ = os.sched_yield
    while True:
        yield_()  # busy, but let the daemon and the new child run first on a busy core
        now = time.perf_counter_ns()
        if now > limit:
            raise BenchError(f"{m.name}: no replacement running {target!r} within {TIMEOUT_S}s "
                             f"(new pid {new_pid}, cmdline ok {t_cmd is not None})")
        if new_pid is None:
            for p in m.children(paths) - seen:
                new_pid, t_pid = p, now
                break
            continue
        if t_cmd is None:
            c = cmdline(new_pid)
            if c is None:  # it died before running the program: look for the next one
                seen.add(new_pid)
                new_pid = t_pid = None
                continue
            if c != target:
                continue
            t_cmd = now
            if markdir is None:
                break
            ran_path = os.path.join(markdir, str(new_pid))
        if os.path.exists(ran_path):
            t_ran = time.perf_counter_ns()
            break
    ms = lambda t: (t - t0) / 1e6  # noqa: E731
    out = {"victim": victim, "new_pid": new_pid, "pid_ms": ms(t_pid), "cmdline_ms": ms(t_cmd)}
    if t_ran is not None:
        out["ran_ms"] = ms(t_ran)
    return out


def bench_kill(managers, kills, app, markdirs):
    """`kills` trials per manager on `app`, alternating; markdirs[name] or None (no mark)."""
    res = {m.name: [] for m in managers}
    restarts0, targets = {}, {}
    for m in managers:
        rows = [r for r in m.jlist() if r["name"] == app]
        restarts0[m.name] = sum(r["restarts"] for r in rows)
        targets[m.name] = cmdline(rows[0]["pid"])
        if not targets[m.name]:
            raise BenchError(f"{m.name}: cannot read the cmdline of {app}'s pid {rows[0]['pid']}")
        m.quiesce()
    for _ in range(kills):
        for m in managers:
            res[m.name].append(kill_trial(m, targets[m.name], markdirs[m.name]))
            m.quiesce()
    out = {}
    for m in managers:
        rows = [r for r in m.jlist() if r["name"] == app]
        trials = res[m.name]
        out[m.name] = {k: summary([t[k] for t in trials]) for k in ("pid_ms", "cmdline_ms", "ran_ms")
                       if k in trials[0]}
        out[m.name].update({
            "program": targets[m.name].decode(errors="replace"),
            "restarts_counted": sum(r["restarts"] for r in rows) - restarts0[m.name],
            "online_after": len([r for r in rows if r["status"] == "online"]),
            "instances": len(rows),
            "kills": kills,
        })
    return out


def start_round(m, rnd, kind, n=50):
    """`start <program> -i n` until jlist shows n online; for node, also until n marks exist."""
    app = f"{kind}{n}r{rnd}"
    if kind == "node":
        d, script = m.app_dir(app)
        marks = os.path.join(d, "marks")
        program = [script]
    else:
        marks, program = None, ["sleep 1000"]
    ran = {}
    base_children = len(m.live_children())

    def watch():
        deadline = time.perf_counter() + TIMEOUT_S
        while time.perf_counter() < deadline:
            if len(os.listdir(marks)) >= n:
                ran["t"] = time.perf_counter()
                return
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    if marks:
        watcher.start()
    daemon = m.daemon_pid()
    cpu0 = cpu_ns(daemon)
    t0 = time.perf_counter()
    cp = m.run("start", *program, "--name", app, "-i", str(n), check=False)
    t_cmd = time.perf_counter()
    if cp.returncode != 0:
        raise BenchError(f"{m.name} start -i {n} exited {cp.returncode}: "
                         f"{cp.stderr.decode(errors='replace')[-1500:]}")
    m.wait_online(app, n)
    t_online = time.perf_counter()
    out = {"cmd_s": t_cmd - t0, "online_s": t_online - t0}
    if marks:
        watcher.join(TIMEOUT_S)
        if "t" not in ran:
            raise BenchError(f"{m.name}: only {len(os.listdir(marks))}/{n} programs ran")
        out["ran_s"] = ran["t"] - t0
    out["daemon_cpu_s"] = (cpu_ns(daemon) - cpu0) / 1e9
    m.run("delete", app)
    m.wait_children(base_children, f"after delete {app}")
    return out


def direct_node_floor(workdir, rnd, n=50):
    """No manager: a plain `sh` in a session of its own (as a daemon's instances share their
    daemon's session, and so one CPU autogroup) starts the same n node programs in a loop; time
    until all n marks exist."""
    d = fresh_dir(os.path.join(workdir, f"direct{n}r{rnd}"))
    marks = os.path.join(d, "marks")
    script = os.path.join(d, "idle.js")
    with open(script, "w") as f:
        f.write(IDLE_JS)
    loop = 'i=0; while [ $i -lt "$1" ]; do node "$0" </dev/null >/dev/null 2>&1 & i=$((i+1)); done; wait'
    t0 = time.perf_counter()
    sh = subprocess.Popen(["sh", "-c", loop, script, str(n)], cwd=d, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        spawned = None
        deadline = t0 + TIMEOUT_S
        while len(os.listdir(marks)) < n:
            if spawned is None and len(children_of(sh.pid)) >= n:
                spawned = time.perf_counter()
            if time.perf_counter() > deadline or sh.poll() is not None:
                raise BenchError(f"direct spawn: only {len(os.listdir(marks))} of {n} node programs ran")
            time.sleep(0.0005)
        t_ran = time.perf_counter()
        return {"spawned_s": (spawned or t_ran) - t0, "ran_s": t_ran - t0}
    finally:
        for pid in children_of(sh.pid):  # the nodes first: sh's `wait` then returns
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            sh.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            sh.kill()
            sh.wait()


def bench_start50(managers, rounds, workdir):
    res = {(m.name, kind): [] for m in managers for kind in ("node", "sleep")}
    floor = []
    for rnd in range(rounds):
        for kind in ("node", "sleep"):
            for m in managers:
                m.quiesce()
                r = start_round(m, rnd, kind)
                log(f"start -i 50 {kind} round {rnd} {m.name}: "
                    + ", ".join(f"{k} {v:.3f}s" for k, v in r.items()))
                res[(m.name, kind)].append(r)
        managers[0].quiesce()
        floor.append(direct_node_floor(workdir, rnd))
        log(f"direct spawn of 50 node, round {rnd}: " + ", ".join(f"{k} {v:.3f}s" for k, v in floor[-1].items()))
    out = {}
    for (name, kind), rs in res.items():
        out.setdefault(name, {})[kind] = {k: summary([r[k] for r in rs]) for k in rs[0]}
    out["direct_node"] = {k: summary([r[k] for r in floor]) for k in floor[0]}
    return out


def kill_floor(workdir, trials=10):
    """No manager: SIGKILL a node child of this process, time until waitpid returns it."""
    d = fresh_dir(os.path.join(workdir, "killfloor"))
    script = os.path.join(d, "idle.js")
    with open(script, "w") as f:
        f.write(IDLE_JS)
    out = []
    for _ in range(trials):
        p = subprocess.Popen(["node", script], cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while not os.path.exists(os.path.join(d, "marks", str(p.pid))):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise BenchError("kill floor: node did not start")
                time.sleep(0.001)
            t0 = time.perf_counter_ns()
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            out.append((time.perf_counter_ns() - t0) / 1e6)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    return summary(out)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rcluster", required=True, help="path of the rcluster binary")
    ap.add_argument("--rcluster-home", required=True)
    ap.add_argument("--pm2", help="path of pm2's bin (omit to measure rcluster alone)")
    ap.add_argument("--pm2-home")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of start -i 50")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    base = {k: v for k, v in os.environ.items() if not k.startswith(("RCLUSTER_", "PM2_"))}
    rc_env = dict(base, RCLUSTER_HOME=a.rcluster_home)
    managers = [Manager("rcluster", [a.rcluster], rc_env, os.path.join(a.rcluster_home, "daemon.lock"),
                        os.path.join(a.workdir, "rcluster"), pm2_style=False)]
    if a.pm2:
        pm2_env = dict(base, PM2_HOME=a.pm2_home)
        managers.append(Manager("pm2", [a.pm2], pm2_env, os.path.join(a.pm2_home, "pm2.pid"),
                                os.path.join(a.workdir, "pm2"), pm2_style=True))

    results = {"managers": [m.name for m in managers],
               "params": {"runs": a.runs, "warmup": a.warmup, "kills": a.kills, "rounds": a.rounds}}

    # Daemons up, 4 idle instances each.
    markdirs = {}
    for m in managers:
        m.run("ping")
        d, script = m.app_dir("idle4")
        markdirs[m.name] = os.path.join(d, "marks")
        m.run("start", script, "--name", "idle4", "-i", "4")
        m.wait_online("idle4", 4)
        m.wait_children(4, "idle4 up")
        results.setdefault("daemon_pid", {})[m.name] = m.daemon_pid()
        if m.pm2_style:
            results["pm2_mode"] = "cluster"
    log("daemons up, 4 idle instances each")

    log(f"1. jlist x{a.runs} (+{a.warmup} warm-up), alternating")
    results["jlist_ms"] = bench_jlist(managers, a.runs, a.warmup)

    log("2. daemon RSS after serving clients")
    results["rss_kib"] = {m.name: vmrss_kib(m.daemon_pid()) for m in managers}

    log(f"4. kill -9 -> replacement running the program, x{a.kills}, alternating: idle.js")
    results["kill"] = bench_kill(managers, a.kills, "idle4", markdirs)
    for m in managers:
        m.run("start", "sleep 1000", "--name", "sleep4", "-i", "4")
        m.wait_online("sleep4", 4)
        m.wait_children(8, "sleep4 up")
    log(f"4. kill -9 -> replacement running the program, x{a.kills}, alternating: sleep 1000")
    results["kill_sleep"] = bench_kill(managers, a.kills, "sleep4", {m.name: None for m in managers})
    for m in managers:
        m.run("delete", "sleep4")
        m.wait_children(4, "sleep4 deleted")

    results["kill_floor_ms"] = kill_floor(a.workdir)

    log(f"3. start -i 50 (node script, then sleep 1000), {a.rounds} rounds, alternating")
    results["start50"] = bench_start50(managers, a.rounds, a.workdir)

    results["rss_end_kib"] = {m.name: vmrss_kib(m.daemon_pid()) for m in managers}

    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"raw figures in {a.out}")


if __name__ == "__main__":
    # SIGTERM (from cli.sh's trap) unwinds, so that the `finally:` blocks end the node processes
    # this tool spawned itself; the managers' daemons are the shell's to end.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
