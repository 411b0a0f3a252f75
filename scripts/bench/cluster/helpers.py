#!/usr/bin/env python3
"""Helpers of scripts/bench/cluster.sh: free ports, readiness checks on `jlist` output, wrk result
parsing, and the Markdown report. One subcommand per use; see cluster.sh for the callers.

  ports N                       N free TCP ports on 127.0.0.1, below the ephemeral range
  rc-online APP=N...            stdin: `rcluster jlist`; exit 0 when every APP has N online
  pm2-online N NAME             stdin: `pm2 jlist`; exit 0 when NAME has N online
  wrk-result --row R --mode M --round K --hz H --before S --after S --wrk-cpu SECONDS OUT...
                                one JSON line from wrk output(s) and two `sample`s
  sample MGR_PIDS -- ROOT_PIDS   CPU ticks now: /proc/stat busy and total, the manager pids, and
                                every process in the trees under ROOT_PIDS (the servers)
  quiet SHARE SECONDS           wait (up to SECONDS) for a 0.5 s window in which the whole machine is
                                busy less than SHARE of its CPUs (our servers idle between runs);
                                prints the last window's busy share, exit 1 if it never got quiet
  line RESULTS                  the last result, human readable (progress on stderr)
  rc-dealt BEFORE AFTER         connections dealt to each instance between two `jlist`s
  pm2-restarts NAME             stdin: `pm2 jlist`; {"restarts": n}
  meta                          the M_* environment as JSON
  report RESULTS META DEALT PM2 DAEMON_ERRORS    the Markdown section body
"""

import argparse
import json
import os
import random
import socket
import sys

# ------------------------------------------------------------------ small commands


def ports(n):
    lo, hi = 20000, 32000  # below net.ipv4.ip_local_port_range (32768-60999 by default)
    try:
        lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
        hi = min(hi, lo_eph - 1)
        lo = min(lo, hi - 2000)
    except (OSError, ValueError, IndexError):
        pass
    found, held = [], []
    candidates = list(range(lo, hi))
    random.shuffle(candidates)
    for port in candidates:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        held.append(s)
        found.append(port)
        if len(found) == n:
            break
    for s in held:
        s.close()
    if len(found) < n:
        sys.exit("no free ports")
    print(" ".join(map(str, found)))


def read_json_stdin():
    text = sys.stdin.read()
    start = text.find("[")  # pm2 may print notices before the JSON
    return json.loads(text[start:]) if start >= 0 else []


def rc_online(wanted):
    try:
        items = read_json_stdin()
    except ValueError:
        sys.exit(1)
    for pair in wanted:
        app, n = pair.split("=")
        n = int(n)
        online = [i for i in items if i.get("name") == app and i.get("status") == "online"]
        if len(online) != n:
            sys.exit(1)


def pm2_online(n, name):
    try:
        items = read_json_stdin()
    except ValueError:
        sys.exit(1)
    online = [i for i in items if i.get("name") == name and i.get("pm2_env", {}).get("status") == "online"]
    sys.exit(0 if len(online) == n else 1)


def pm2_restarts(name):
    try:
        items = read_json_stdin()
    except ValueError:
        items = []
    mine = [i for i in items if i.get("name") == name]
    print(json.dumps({"restarts": sum(i.get("pm2_env", {}).get("restart_time", 0) for i in mine),
                      "instances": len(mine)}))


def proc_table():
    """{pid: (ppid, utime+stime)} of every process now."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            rest = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return table


def sample(args):
    """One line: busy total mgr ours (clock ticks). busy = user+nice+system+irq+softirq+steal of all
    CPUs (the loopback TCP work in softirq shows up in the processes' stime too, as measured here)."""
    split = args.index("--") if "--" in args else len(args)
    mgr = {int(p) for p in args[:split] if p}
    roots = {int(p) for p in args[split + 1:] if p}
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    total = sum(f[:8])
    table = proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    ours, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in ours or pid not in table:
            continue
        ours.add(pid)
        todo.extend(kids.get(pid, []))
    print(busy, total, sum(table[p][1] for p in mgr if p in table), sum(table[p][1] for p in ours))


def cpu_busy_total():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, sum(f[:8])


def quiet(share, seconds):
    import time
    deadline = time.monotonic() + seconds
    while True:
        b0, t0 = cpu_busy_total()
        time.sleep(0.5)  # the measuring window
        b1, t1 = cpu_busy_total()
        busy = (b1 - b0) / max(t1 - t0, 1)
        if busy < share:
            print(f"{busy:.2f}")
            return
        if time.monotonic() >= deadline:
            print(f"{busy:.2f}")
            sys.exit(1)


def wrk_result(args):
    parts = []
    for path in args.outs:
        rec = None
        with open(path) as f:
            for line in f:
                if line.startswith("WRKJSON "):
                    rec = json.loads(line[len("WRKJSON "):])
        if rec is None:
            sys.exit(f"no WRKJSON line in {path}")
        parts.append(rec)
    requests = sum(p["requests"] for p in parts)
    rps = sum(p["requests"] / (p["duration_us"] / 1e6) for p in parts)
    errors = {k: sum(p[k] for p in parts) for k in ("connect", "read", "write", "status", "timeout")}
    b0, t0, m0, o0 = map(int, args.before.split())
    b1, t1, m1, o1 = map(int, args.after.split())
    capacity = max(t1 - t0, 1)
    # CPU of every other process on the box during the run (other jobs, the hypervisor's steal),
    # as a share of all CPUs: busy minus the servers' trees minus wrk.
    others = max((b1 - b0) - (o1 - o0) - round(args.wrk_cpu * args.hz), 0) / capacity
    cpu_s = (m1 - m0) / args.hz
    print(json.dumps({
        "row": args.row, "mode": args.mode, "round": args.round, "requests": requests, "rps": rps,
        # Two wrk at once (direct sum): the worse of the two p99s, a conservative figure.
        "p99_ms": max(p["p99_us"] for p in parts) / 1000, "p50_ms": max(p["p50_us"] for p in parts) / 1000,
        "errors": errors, "manager_cpu_s": cpu_s, "ticks": m1 - m0, "hz": args.hz, "others": others,
        "servers_cpu_share": (o1 - o0) / capacity, "wrk_cpu_s": args.wrk_cpu,
    }))


def line(path):
    with open(path) as f:
        r = json.loads(f.read().splitlines()[-1])
    errs = sum(r["errors"].values())
    cpu = "" if r["row"].startswith("direct") else \
        f", manager {r['manager_cpu_s'] * 1e6 / max(r['requests'], 1):.1f} µs/req"
    print(f"[cluster.sh]   {r['row']:<10} {r['mode']:<9} {r['rps']:>9.0f} req/s  p99 {r['p99_ms']:7.2f} ms"
          f"  errors {errs}  other jobs {r['others']:.0%} of the CPUs{cpu}")


def rc_dealt(before_path, after_path):
    def load(p):
        try:
            return {i["id"]: i for i in json.load(open(p))}
        except (OSError, ValueError):
            return {}
    before, after = load(before_path), load(after_path)
    out = {}
    for iid, inst in sorted(after.items()):
        b = before.get(iid, {})
        app = out.setdefault(inst["name"], {"accepted": [], "restarts": 0, "pids_changed": 0})
        app["accepted"].append(inst.get("accepted", 0) - b.get("accepted", 0))
        app["restarts"] += inst.get("restarts", 0) - b.get("restarts", 0)
        app["pids_changed"] += int(b.get("pid") != inst.get("pid"))
    print(json.dumps(out))


def meta():
    keys = ["DATE", "MACHINE", "NPROC", "CPU", "COMMIT", "RC_VERSION", "PM2_VERSION", "PM2_SKIP",
            "NGINX_VERSION", "NGINX_SKIP", "NODE", "WRK", "THREADS", "CONNS", "DURATION", "ROUNDS",
            "ROTATIONS", "WARMUP", "LOAD"]
    print(json.dumps({k.lower(): os.environ.get("M_" + k, "") for k in keys}))


# ------------------------------------------------------------------ report

NOISY = 0.10  # share of the CPUs taken by other jobs above which a run is marked
RC_ROWS = ["rr1", "rr", "shared", "reuseport", "proxy", "leastconn"]


def fmt_rps(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "n/a"


def report(results_path, meta_path, dealt_path, pm2_path, errors_path):
    meta_ = json.load(open(meta_path))
    dealt = json.load(open(dealt_path)) if os.path.getsize(dealt_path) else {}
    pm2info = json.load(open(pm2_path)) if os.path.getsize(pm2_path) else {}
    daemon_errors = open(errors_path).read().strip() if os.path.exists(errors_path) else ""
    runs = [json.loads(l) for l in open(results_path) if l.strip()]

    rounds = {}  # (row, mode) -> [runs]
    for r in runs:
        rounds.setdefault((r["row"], r["mode"]), []).append(r)
    best = {k: max(v, key=lambda r: r["rps"]) for k, v in rounds.items()}

    def rps(row, mode):
        return best[(row, mode)]["rps"] if (row, mode) in best else None

    def cpu_us(row, mode):
        r = best.get((row, mode))
        if not r or not r["requests"]:
            return None
        return r["manager_cpu_s"] * 1e6 / r["requests"]

    pm2v = meta_["pm2_version"]
    ngxv = meta_["nginx_version"]
    labels = {
        "direct1": "Node direct, 1 process",
        "direct2": "Node direct, 2 processes (sum)",
        "rr1": "rcluster round-robin, `-i 1` (context)",
        "rr": "rcluster round-robin (unmodified app)",
        "shared": "rcluster shared (fd 3)",
        "reuseport": "rcluster reuseport (fd 3)",
        "proxy": "rcluster proxy (app on $PORT)",
        "leastconn": "rcluster least-conn (app on $PORT)",
        "pm2": f"pm2 {pm2v} cluster mode `-i 2`",
        "nginx": f"nginx {ngxv} `least_conn`, keepalive 64, over 2 direct",
    }
    order = ["direct1", "direct2"] + RC_ROWS + ["pm2", "nginx"]
    one_close = rps("direct1", "close")
    one_ka = rps("direct1", "keepalive")
    sum_ka = rps("direct2", "keepalive")
    pm2_close = rps("pm2", "close")
    ngx_ka = rps("nginx", "keepalive")

    out = []
    w = out.append
    t, c, d = meta_["threads"], meta_["conns"], meta_["duration"]
    w(f"Measured {meta_['date']} on {meta_['nproc']} × {meta_['cpu']} ({meta_['machine']}), "
      f"load average before the run {meta_['load']}.  ")
    w(f"rcluster {meta_['rc_version']} at commit {meta_['commit']}; "
      f"pm2 {pm2v or 'skipped'}; nginx {ngxv or 'skipped'}; Node {meta_['node']}; wrk {meta_['wrk']}.  ")
    split_t = (int(t) + 1) // 2
    w(f"Every row: `wrk -t{t} -c{c} -d{d}s --latency` at 127.0.0.1, keep-alive (wrk's default) and "
      f"with `-H 'Connection: close'`; the direct sum runs two wrk at once (`-t{split_t} -c{int(c) // 2}` each, "
      f"the same total load) and adds their req/s (its p99 is the worse of the two). All servers are up "
      f"together, each row warmed for {meta_['warmup']} s, then {meta_['rounds']} interleaved round(s); "
      f"the table shows each row's best round (the box is shared: other jobs only ever lower a figure). "
      f"The app is one hello-world `http.createServer` (`scripts/bench/cluster/hello.js`; `hello_fd.js` "
      f"listens on fd 3 for shared/reuseport).")
    w("")
    for what, reason in (("pm2", meta_["pm2_skip"]), ("nginx", meta_["nginx_skip"])):
        if reason:
            w(f"**{what} row skipped:** {reason}.")
            w("")
    w("| row | keep-alive req/s | p99 | close req/s | p99 | ratios | errors |")
    w("|---|---:|---:|---:|---:|---|---:|")
    for row in order:
        if (row, "keepalive") not in best and (row, "close") not in best:
            continue
        ka, cl = best.get((row, "keepalive")), best.get((row, "close"))
        cells = [labels[row]]
        for r in (ka, cl):
            mark = " †" if r and r["others"] > NOISY else ""
            cells += [fmt_rps(r["rps"]) + mark, fmt_ms(r["p99_ms"])] if r else ["—", "—"]
        ratios = []
        if row == "direct1":
            ratios.append("baseline")
        elif row in ("direct2", "rr1"):
            ratios.append(f"keep-alive {ratio(rps(row, 'keepalive'), one_ka)} one")
            ratios.append(f"close {ratio(rps(row, 'close'), one_close)} one")
        else:
            ratios.append(f"keep-alive {ratio(rps(row, 'keepalive'), sum_ka)} sum")
            if row in ("proxy", "leastconn") and ngx_ka:
                ratios.append(f"{ratio(rps(row, 'keepalive'), ngx_ka)} nginx")
            ratios.append(f"close {ratio(rps(row, 'close'), one_close)} one")
            if row != "pm2" and pm2_close:
                ratios.append(f"{ratio(rps(row, 'close'), pm2_close)} pm2")
        cells.append("; ".join(ratios))
        nerr = sum(sum(r["errors"].values()) for r in (ka, cl) if r)
        cells.append(str(nerr))
        w("| " + " | ".join(cells) + " |")
    w("")
    shown = list(best.values())
    if shown:
        lo, hi = min(r["others"] for r in shown), max(r["others"] for r in shown)
        w(f"Other jobs on the machine took {lo:.0%}–{hi:.0%} of its CPUs during the reported runs "
          f"(busy time in `/proc/stat` minus the servers' process trees and wrk; † marks a run where they "
          f"took more than {NOISY:.0%}: read its ratios with care); see every round below.")
        w("")
    w("Ratios: “sum” = the direct sum's keep-alive req/s, “one” = one direct process's close req/s, "
      "“pm2” = pm2 cluster's close req/s, “nginx” = nginx's keep-alive req/s. Errors: wrk socket errors "
      "(connect/read/write/timeout) plus non-2xx answers, both modes of the reported rounds.")
    w("")

    # CPU of the manager process per request
    w("Manager CPU (utime+stime from `/proc/<pid>/stat`, clock ticks of "
      f"{1000 // int(runs[0]['hz']) if runs else 10} ms) during the reported runs, per request; with "
      "`Connection: close` each request is one connection, so the close column is the CPU per dealt "
      "(or proxied) connection:")
    w("")
    w("| row | process | keep-alive µs/request | close µs/connection |")
    w("|---|---|---:|---:|")
    procs = {r: "rcluster daemon" for r in RC_ROWS}
    procs.update({"pm2": "pm2 God daemon (the cluster primary)", "nginx": "nginx master + workers"})
    for row in RC_ROWS + ["pm2", "nginx"]:
        if (row, "close") not in best:
            continue
        ka, cl = cpu_us(row, "keepalive"), cpu_us(row, "close")
        w(f"| {labels[row]} | {procs[row]} | {'—' if ka is None else f'{ka:.2f}'} | "
          f"{'—' if cl is None else f'{cl:.1f}'} |")
    w("")

    # targets
    def met(ok):
        return "(context)" if ok is None else "yes" if ok else "**no**"

    rr_cpu = cpu_us("rr", "close")
    pm2_cpu = cpu_us("pm2", "close")

    def by_round(a, b, mode):
        """Round k of row a over round k of row b (the two ran minutes apart at most): the
        ratios, and their median, which a good or bad moment of the shared box moves less than
        it moves a best-of-rounds ratio."""
        pairs = [x["rps"] / y["rps"] for x, y in zip(rounds.get((a, mode), []), rounds.get((b, mode), []))
                 if y["rps"]]
        if not pairs:
            return "", None
        ordered = sorted(pairs)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return " / ".join(f"{p:.2f}" for p in pairs) + f" (median {median:.2f}×)", median

    targets = []

    def ratio_target(name, a, b, mode, goal, floor):
        va, vb = rps(a, mode), rps(b, mode)
        if not (va and vb):
            return
        rounds_text, median = by_round(a, b, mode)
        # Met only if the best rounds and the round-by-round median both reach it.
        ok = None if floor is None else (va / vb >= floor and median is not None and median >= floor)
        targets.append((name, f"{va / vb:.2f}×", rounds_text, goal, ok))

    for row in ("rr", "shared", "reuseport"):
        ratio_target(f"keep-alive, {row.replace('rr', 'round-robin')}, vs the direct sum",
                     row, "direct2", "keepalive", "≥ 0.95×", 0.95)
    ab_runs = len(rounds.get(("direct2", "keepalive-ab"), []))
    for row, name, goal, floor in (
            ("rr", "round-robin", "≥ 0.95×", 0.95), ("shared", "shared", "≥ 0.95×", 0.95)):
        rounds_text, median = by_round(row, "direct2", "keepalive-ab")
        if median is not None:
            targets.append((f"keep-alive, {name}, vs the direct sum, back to back ({ab_runs} rotations)",
                            f"{median:.2f}× (median)", rounds_text, goal, median >= floor))
    rounds_text, median = by_round("rr", "shared", "keepalive-ab")
    if median is not None:
        targets.append((f"keep-alive, round-robin, vs shared, back to back ({ab_runs} rotations)",
                        f"{median:.2f}× (median)", rounds_text, "≈ 1×", None))
    for name, a, b, goal in (
            ("keep-alive, round-robin `-i 1`, vs one direct process (same client load)", "rr1", "direct1", "≈ 1×"),
            ("keep-alive, round-robin, vs shared (the kernel deals, no manager in the path)", "rr", "shared", "≈ 1×"),
            ("keep-alive, pm2 cluster, vs the direct sum", "pm2", "direct2", "")):
        ratio_target(name, a, b, "keepalive", goal, None)
    ratio_target("`Connection: close`, round-robin, vs pm2 cluster", "rr", "pm2", "close", "≥ 1.5× (aim 2×)", 1.5)
    ratio_target("`Connection: close`, round-robin, vs one direct process", "rr", "direct1", "close", "≥ 1.3×", 1.3)
    for row in ("proxy", "leastconn"):
        ratio_target(f"keep-alive, {row.replace('leastconn', 'least-conn')}, vs nginx",
                     row, "nginx", "keepalive", "≥ 1×", 1.0)
    if rr_cpu is not None:
        extra = f" (pm2 God daemon: {pm2_cpu:.0f} µs, {pm2_cpu / rr_cpu:.1f}× more)" if pm2_cpu and rr_cpu else ""
        targets.append(("daemon CPU per dealt connection, round-robin", f"{rr_cpu:.1f} µs{extra}", "", "≤ 15 µs",
                         rr_cpu <= 15))
    w("Targets (PRODUCT.md §11, SOCKET-PASSING.md §6). A ratio is met when both the best rounds and the "
      "median of the round-by-round ratios reach it; a back-to-back ratio, when the median of its "
      "rotations does (after the rounds, the direct sum, round-robin and shared ran keep-alive one right "
      "after the other, each rotation starting with the next of them, so each ratio compares runs "
      "seconds apart rather than minutes):")
    w("")
    w("| target | best rounds | round by round | goal | met |")
    w("|---|---:|---|---|---|")
    for name, value, rounds_text, goal, ok in targets:
        w(f"| {name} | {value} | {rounds_text} | {goal} | {met(ok)} |")
    w("")
    w("Reading the keep-alive rows: the direct sum pairs each wrk thread with one server (two wrk, one port "
      "each), while in every one-port row (rcluster, pm2, nginx) each wrk thread's connections go to both "
      "instances, which on a small machine costs by itself (more cross-CPU wake-ups). The context lines "
      "separate rcluster's own cost from that: round-robin `-i 1` against one direct process (the same "
      "client load), round-robin against the kernel's shared socket (no manager in the path either). "
      "rcluster's instances run in sessions of their own, as the direct processes do, so that the "
      "scheduler's autogroups give each the CPU share of a separately started server (with one session "
      "for all of them, round-robin was 0.74× the sum). Dealing each connection to the instance matching "
      "the CPU it arrived on (SO_INCOMING_CPU), to pair wrk threads with servers as the direct sum does, "
      "was tried and measured worse: wrk's connections mostly arrive on one CPU, so one instance gets "
      "most of them.")
    w("")

    # sanity
    notes = []
    for app in ("rr1", "rr", "proxy", "leastconn", "shared", "reuseport"):
        d = dealt.get(app)
        if not d:
            continue
        acc = d["accepted"]
        if any(acc):
            notes.append(f"{app}: {' / '.join(f'{a:,}' for a in acc)}")
        else:
            notes.append(f"{app}: not counted (the kernel deals)")
    if notes:
        w("Connections dealt per instance during the measured rounds (`accepted` in `rcluster jlist`): "
          + "; ".join(notes) + ".")
    restarts = {app: d["restarts"] for app, d in dealt.items() if d["restarts"] or d["pids_changed"]}
    if restarts:
        w(f"**rcluster instances restarted during the run:** {restarts}.")
    if pm2info.get("restarts"):
        w(f"**pm2 instances restarted during the run:** {pm2info['restarts']}.")
    if daemon_errors:
        w("")
        w("rcluster daemon log lines mentioning errors during the run (last 20):")
        w("")
        w("```")
        w(daemon_errors)
        w("```")
    w("")
    w("Every round, req/s keep-alive / close (the share of the CPUs other jobs took during each run):")
    w("")
    for row in order:
        ka, cl = rounds.get((row, "keepalive"), []), rounds.get((row, "close"), [])
        if ka or cl:
            w(f"- {row}: " + "; ".join(f"{fmt_rps(a['rps'])} / {fmt_rps(b['rps'])} ({a['others']:.0%}, {b['others']:.0%})"
                                       for a, b in zip(ka, cl)))
    for row in order:
        ab = rounds.get((row, "keepalive-ab"), [])
        if ab:
            w(f"- {row}, back to back, keep-alive: " + "; ".join(f"{fmt_rps(a['rps'])} ({a['others']:.0%})" for a in ab))
    print("\n".join(out))


def main():
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "ports":
        ports(int(rest[0]))
    elif cmd == "rc-online":
        rc_online(rest)
    elif cmd == "pm2-online":
        pm2_online(int(rest[0]), rest[1])
    elif cmd == "pm2-restarts":
        pm2_restarts(rest[0])
    elif cmd == "wrk-result":
        p = argparse.ArgumentParser()
        for opt in ("--row", "--mode"):
            p.add_argument(opt, required=True)
        for opt in ("--round", "--hz"):
            p.add_argument(opt, type=int, required=True)
        p.add_argument("--before", required=True)
        p.add_argument("--after", required=True)
        p.add_argument("--wrk-cpu", type=float, required=True)
        p.add_argument("outs", nargs="+")
        wrk_result(p.parse_args(rest))
    elif cmd == "sample":
        sample(rest)
    elif cmd == "quiet":
        quiet(float(rest[0]), float(rest[1]))
    elif cmd == "line":
        line(rest[0])
    elif cmd == "rc-dealt":
        rc_dealt(rest[0], rest[1])
    elif cmd == "meta":
        meta()
    elif cmd == "report":
        report(*rest)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
