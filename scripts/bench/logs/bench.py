#!/usr/bin/env python3
"""Log throughput, rcluster against pm2 and the writer alone, side by side in one run.

usage: bench.py --rcluster BIN --rcluster-home DIR [--pm2 BIN --pm2-home DIR] --workdir DIR
                [--lines N] [--rounds R] > section.md

Every contender runs the same writer (`writer.py`: N lines, one write(2) per line, PYTHONUNBUFFERED=1)
with timestamps on (`--time` for both managers). Measured per run:

- time from the writer's first line (its own clock, so no manager's start-up counts) until the
  out file holds all N lines (polled every 2 ms), against the floor: the writer alone into a file;
- the daemon's CPU time (utime+stime of its pid, from /proc, before and after) per line;
- every line checked: present once, in order, whole, with its timestamp.

Rounds alternate floor, rcluster, pm2; the medians are reported. Prints a Markdown section.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WRITER = os.path.join(HERE, "writer.py")
TICK = os.sysconf("SC_CLK_TCK")
STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: ")
LINE = re.compile(rb"^line (\d{7}) the quick brown fox jumps over the lazy dog$")


def say(text):
    print(f"[logs.sh] {text}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime+stime of the whole process (all threads), and the precise on-CPU time (schedstat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / TICK
    ns = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended in between
    return ticks, ns / 1e9


def daemon_pid(path):
    with open(path) as f:
        return int(f.read().split()[0])


def wait_for(what, probe, timeout=120.0, nap=0.002):
    deadline = time.time() + timeout
    while True:
        got = probe()
        if got is not None:
            return got
        if time.time() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(nap)


class LineCounter:
    """Counts newlines appended to a file, reading only what is new."""

    def __init__(self, path):
        self.path, self.file, self.count = path, None, 0

    def poll(self):
        if self.file is None:
            try:
                self.file = open(self.path, "rb")
            except FileNotFoundError:
                return 0
        while True:
            chunk = self.file.read(1 << 20)
            if not chunk:
                return self.count
            self.count += chunk.count(b"\n")


def check(path, n, stamped):
    """(lost, duplicated, broken, unstamped) lines of an out file."""
    seen = bytearray(n)
    dup = broken = unstamped = 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            m = STAMP.match(line)
            if m:
                line = line[m.end():]
            elif stamped:
                unstamped += 1
            m = LINE.match(line)
            if not m or int(m.group(1)) >= n:
                broken += 1
                continue
            i = int(m.group(1))
            if seen[i]:
                dup += 1
            seen[i] = 1
    lost = n - sum(seen)
    return lost, dup, broken, unstamped


def read_mark(mark):
    def probe():
        try:
            with open(mark) as a, open(mark + ".end") as b:
                return float(a.read()), float(b.read())
        except (OSError, ValueError):
            return None

    return wait_for("the writer's marks", probe)


def writer_env():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return env


def run_floor(workdir, n, tag, target):
    """The writer alone, into a file (or /dev/null)."""
    mark = os.path.join(workdir, f"floor-{tag}.mark")
    out = target or os.path.join(workdir, f"floor-{tag}.log")
    with open(out, "wb") as f:
        subprocess.run(["python3", WRITER, str(n), mark], stdout=f, env=writer_env(), check=True)
    start, end = read_mark(mark)
    result = {"seconds": end - start}
    if target is None:
        result["check"] = check(out, n, stamped=False)
        os.remove(out)
    return result


def run_manager(kind, args, round_no):
    workdir, n = args.workdir, args.lines
    name = f"logbench{round_no}"
    out = os.path.join(workdir, f"{kind}-{round_no}-out.log")
    err = os.path.join(workdir, f"{kind}-{round_no}-err.log")
    mark = os.path.join(workdir, f"{kind}-{round_no}.mark")
    if kind == "rcluster":
        home_env = {"RCLUSTER_HOME": args.rcluster_home}
        pid = daemon_pid(os.path.join(args.rcluster_home, "daemon.lock"))
        start = [args.rcluster, "start", "python3", "--name", name, "--no-autorestart", "--time",
                 "-o", out, "-e", err, "--", WRITER, str(n), mark]
        delete = [args.rcluster, "delete", name]
    else:
        home_env = {"PM2_HOME": args.pm2_home}
        pid = daemon_pid(os.path.join(args.pm2_home, "pm2.pid"))
        start = [args.pm2, "start", WRITER, "--name", name, "--interpreter", "python3",
                 "--no-autorestart", "--time", "--merge-logs", "-o", out, "-e", err, "--", str(n), mark]
        delete = [args.pm2, "delete", name]
    env = dict(writer_env(), **home_env)
    counter = LineCounter(out)
    time.sleep(0.5)  # pacing: let the daemon and the last run's files settle
    cpu_before = cpu_seconds(pid)
    subprocess.run(start, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Done when every line is in; or, if some never arrive, once the writer has ended and the
    # file has not grown for 5 s (the run then counts as incomplete, its lines as lost).
    quiet = {"count": -1, "since": time.time()}

    def finished():
        count = counter.poll()
        if count >= n:
            return True
        if count != quiet["count"]:
            quiet.update(count=count, since=time.time())
        elif os.path.exists(mark + ".end") and time.time() - quiet["since"] > 5:
            return False
        return None

    complete = wait_for(f"{n} lines from {kind}", finished, timeout=600)
    done = time.time()
    cpu_after = cpu_seconds(pid)
    first, last = read_mark(mark)
    lost, dup, broken, unstamped = check(out, n, stamped=True)
    extra = counter.poll() - n
    subprocess.run(delete, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for path in (out, err, mark, mark + ".end"):
        try:
            os.remove(path)
        except OSError:
            pass
    if not complete:
        say(f"{kind}: only {counter.count} of {n} lines reached the file")
    return {
        "complete": complete,
        "seconds": done - first,
        "writer_seconds": last - first,
        "cpu_ticks": cpu_after[0] - cpu_before[0],
        "cpu_sched": cpu_after[1] - cpu_before[1],
        "check": (lost, dup, broken + max(extra, 0), unstamped),
    }


def fmt_s(x):
    return f"{x:.3f} s"


def fmt_us(x):
    return f"{x * 1e6:.2f} µs"


def main():
    # The script's cleanup sends SIGTERM: exit through Python so that subprocess.run ends the
    # writer it waits for instead of leaving it behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser()
    p.add_argument("--rcluster", required=True)
    p.add_argument("--rcluster-home", required=True)
    p.add_argument("--pm2")
    p.add_argument("--pm2-home")
    p.add_argument("--pm2-skip", default="")
    p.add_argument("--workdir", required=True)
    p.add_argument("--lines", type=int, default=400_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--meta", default="{}")
    p.add_argument("--json-out")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    n = args.lines
    kinds = ["rcluster"] + (["pm2"] if args.pm2 else [])
    runs = {"floor": [], "devnull": [], **{k: [] for k in kinds}}
    for r in range(args.rounds):
        say(f"round {r + 1}/{args.rounds}: floor")
        runs["devnull"].append(run_floor(args.workdir, n, f"null{r}", "/dev/null"))
        runs["floor"].append(run_floor(args.workdir, n, str(r), None))
        for kind in kinds:
            say(f"round {r + 1}/{args.rounds}: {kind}")
            runs[kind].append(run_manager(kind, args, r))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(runs, f, indent=1)

    def med(kind, key):
        # Times only from runs where every line arrived; the check row counts the others.
        done = [run[key] for run in runs[kind] if run.get("complete", True)]
        return statistics.median(done) if done else float("nan")

    floor = med("floor", "seconds")
    devnull = med("devnull", "seconds")
    meta = json.loads(args.meta)
    rows = []
    row = lambda *cells: rows.append("| " + " | ".join(cells) + " |")

    def col(kind, f):
        return f(kind) if kind in runs and runs[kind] else "—"

    def totals(kind):
        lost = sum(r["check"][0] for r in runs[kind])
        dup = sum(r["check"][1] for r in runs[kind])
        broken = sum(r["check"][2] for r in runs[kind])
        unstamped = sum(r["check"][3] for r in runs[kind])
        return lost, dup, broken, unstamped

    pm2_name = f"pm2 {meta.get('pm2_version', '')}".strip()
    rc_t, rc_cpu = med("rcluster", "seconds"), med("rcluster", "cpu_ticks") / n
    ratio = rc_t / floor
    verdict = lambda ok: "**met**" if ok else "**missed**"
    row("figure", "rcluster", pm2_name if args.pm2 else "pm2", "writer alone", "target")
    row("---", "---", "---", "---", "---")
    pm2_t = med("pm2", "seconds") if args.pm2 else None
    pm2_cpu = med("pm2", "cpu_ticks") / n if args.pm2 else None
    row(
        f"time until the out file holds all {n:,} lines, median of {args.rounds}",
        f"{fmt_s(rc_t)} ({ratio:.2f}× floor)",
        f"{fmt_s(pm2_t)} ({pm2_t / floor:.2f}× floor)" if pm2_t else "skipped",
        f"{fmt_s(floor)} into a file; {fmt_s(devnull)} into /dev/null",
        f"≤ 1.3× floor: {verdict(ratio <= 1.3)}",
    )
    row(
        "lines per second into the file",
        f"{n / rc_t:,.0f}",
        f"{n / pm2_t:,.0f}" if pm2_t else "skipped",
        f"{n / floor:,.0f}",
        "(context)",
    )
    cpu_ratio = (pm2_cpu / rc_cpu) if (pm2_cpu and rc_cpu > 0) else None
    row(
        "daemon CPU per line (utime+stime of the daemon, median)",
        fmt_us(rc_cpu),
        fmt_us(pm2_cpu) if pm2_cpu is not None else "skipped",
        "—",
        (f"≥ 4× less than pm2: {verdict(cpu_ratio >= 4)} ({cpu_ratio:.1f}× less)"
         if cpu_ratio else ("≥ 4× less than pm2: pm2 skipped" if not args.pm2 else
                            "≥ 4× less than pm2: rcluster's CPU under the clock tick")),
    )
    row(
        "daemon on-CPU time per line (sum of its threads' schedstat, median)",
        fmt_us(med("rcluster", "cpu_sched") / n),
        fmt_us(med("pm2", "cpu_sched") / n) if args.pm2 else "skipped",
        "—",
        "(cross-check of the row above)",
    )
    row(
        "writer's own time to write every line (back-pressure shows here)",
        fmt_s(med("rcluster", "writer_seconds")),
        fmt_s(med("pm2", "writer_seconds")) if args.pm2 else "skipped",
        fmt_s(floor),
        "(context)",
    )
    def complete(kind):
        done = sum(1 for r in runs[kind] if r.get("complete", True))
        return f"; {done}/{len(runs[kind])} runs complete" if done < len(runs[kind]) else ""

    lost, dup, broken, unstamped = totals("rcluster")
    rc_ok = lost == dup == broken == unstamped == 0
    pm_cell = "skipped"
    if args.pm2:
        pl, pd, pb, pu = totals("pm2")
        pm_cell = f"{pl} lost, {pd} duplicated, {pb} broken, {pu} without a timestamp{complete('pm2')}"
    row(
        f"lines checked over {args.rounds} runs ({args.rounds * n:,} each)",
        f"{lost} lost, {dup} duplicated, {broken} broken, {unstamped} without a timestamp"
        + complete("rcluster"),
        pm_cell,
        "{} lost, {} duplicated, {} broken".format(*[sum(r["check"][i] for r in runs["floor"]) for i in range(3)]),
        f"0 lost or cut: {verdict(rc_ok)}",
    )

    print(
        f"Run {meta.get('date', '')} on {meta.get('machine', '')}: {meta.get('nproc', '?')} cores, "
        f"{meta.get('cpu', '')}; rcluster {meta.get('rcluster_version', '')} at commit {meta.get('commit', '')}; "
        + (f"{pm2_name}; node {meta.get('node_version', '')}; " if args.pm2 else f"pm2 skipped: {args.pm2_skip}; ")
        + f"{meta.get('python_version', '')}; load average before the run {meta.get('loadavg', '')}. "
        "Reproduce with `bash scripts/bench/logs.sh` from the repo root."
    )
    print()
    print("\n".join(rows))
    print()
    print("How it is measured (all contenders in one run, alternating, on one machine):")
    print()
    print(
        f"- The writer (`scripts/bench/logs/writer.py`) is the same for all: {n:,} lines of 60 bytes, "
        "`sys.stdout.write` with `PYTHONUNBUFFERED=1`, so one write(2) per line (as a Python app "
        "logs under pm2 and rcluster, both of which set that variable). It notes the wall-clock time "
        "of its first line; the managers' CLIs and forks happen before it and are not counted."
    )
    print(
        "- Managers: `rcluster start python3 --time -o FILE -- writer.py` and `pm2 start writer.py "
        "--interpreter python3 --time --merge-logs -o FILE` (fork mode), each into a fresh file. The "
        "bench polls the file every 2 ms, reading only what was appended, until it holds every line; "
        "that moment minus the writer's first line is the time. Floor: the writer with its stdout "
        "redirected to a file (and, for context, to /dev/null), its own first-to-last-line time."
    )
    print(
        "- Daemon CPU: utime+stime of the daemon pid (`/proc/<pid>/stat`, every thread; rcluster "
        "`daemon.lock`, pm2's God daemon `pm2.pid`) just before `start` and when the last line is in "
        f"the file, divided by {n:,}; ticks are 1/{TICK} s, so the schedstat row (nanoseconds) is the "
        "precise one. Both daemons run `--time` (a timestamp on every line)."
    )
    print(
        "- A manager can beat the file floor: the writer's write(2) into a pipe costs it less than "
        "into a file (compare the /dev/null figure, the writer's own cost), and the daemon writes "
        "the file in large batches."
    )
    print(
        "- Every line of every run is checked: each of the N lines present exactly once, whole "
        "(the expected text after the `YYYY-MM-DDTHH:mm:ss: ` stamp), and stamped."
    )


if __name__ == "__main__":
    main()
