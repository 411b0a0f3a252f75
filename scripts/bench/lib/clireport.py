#!/usr/bin/env python3
"""Render clibench.py's JSON as the Markdown body of the "CLI and daemon" section.

usage: clireport.py RESULTS.json META.json   (prints the section body, without its heading)
META: date, machine, cpu, nproc, commit, rcluster_version, pm2_version, node_version, pm2_skip.
"""

import json
import sys


def ms(v):
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def sec(v):
    return f"{v:.3f} s"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def ratio(x):
    return f"{x:.0f}×" if x >= 10 else f"{x:.1f}×"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def main():
    res = json.load(open(sys.argv[1]))
    meta = json.load(open(sys.argv[2]))
    have_pm2 = "pm2" in res["managers"]
    rows = []

    def row(figure, rc, pm, rat, target):
        rows.append(f"| {figure} | {rc} | {pm if have_pm2 else '—'} | {rat if have_pm2 else '—'} | {target} |")

    na = "n/a without pm2"

    # 1. jlist
    j = res["jlist_ms"]
    rc = j["rcluster"]
    cell = lambda s: f"{ms(s['median'])} (p90 {ms(s['p90'])})"  # noqa: E731
    if have_pm2:
        pm = j["pm2"]
        r = pm["median"] / rc["median"]
        row("`jlist` wall time, 4 idle instances, median (p90)", cell(rc), cell(pm), ratio(r),
            f"≥ 50× (aim 100×): {verdict(r >= 50)}" + (", aim reached" if r >= 100 else ""))
    else:
        row("`jlist` wall time, 4 idle instances, median (p90)", cell(rc), "", "", f"≥ 50×: {na}")

    # 2. RSS
    rss = res["rss_kib"]
    row("daemon RSS after serving clients (VmRSS, 4 instances up)",
        f"{rss['rcluster'] / 1024:.2f} MiB ({rss['rcluster']:,} KiB)",
        mib(rss.get("pm2", 0)), ratio(rss.get("pm2", 0) / rss["rcluster"]) + " less",
        f"≤ 5 MiB: {verdict(rss['rcluster'] <= 5 * 1024)}")

    # 3. start 50
    s = res["start50"]
    n_rounds = res["params"]["rounds"]

    def srow(kind, k):
        rc = s["rcluster"][kind][k]["median"]
        if not have_pm2:
            return sec(rc), "", ""
        pm = s["pm2"][kind][k]["median"]
        return sec(rc), sec(pm), ratio(pm / rc)

    a, b, c = srow("node", "online_s")
    row(f"start 50 instances of `idle.js` → all 50 `online` per jlist (median of {n_rounds})", a, b, c,
        f"≤ 0.1 s: {verdict(s['rcluster']['node']['online_s']['median'] <= 0.1)}")
    a, b, c = srow("node", "ran_s")
    row("start 50 instances of `idle.js` → all 50 programs ran their first line", a, b, c,
        f"(context; no manager: {sec(s['direct_node']['ran_s']['median'])})")
    a, b, c = srow("sleep", "online_s")
    row('start 50 instances of `"sleep 1000"` → all 50 `online` per jlist', a, b, c,
        f"≤ 0.1 s: {verdict(s['rcluster']['sleep']['online_s']['median'] <= 0.1)}")
    a, b, c = srow("node", "daemon_cpu_s")
    row("daemon CPU time to start 50 instances of `idle.js`", a, b, c, "(context)")

    # 4. kill -9
    def kcell(block, m, f):
        return f"{ms(block[m][f]['median'])} (p90 {ms(block[m][f]['p90'])})"

    def krow(label, block, f, target):
        r = block["pm2"][f]["median"] / block["rcluster"][f]["median"] if have_pm2 else 0
        row(label, kcell(block, "rcluster", f), kcell(block, "pm2", f) if have_pm2 else "",
            ratio(r) if have_pm2 else "", target(r) if callable(target) else target)

    def kill_target(rc_ms):
        def t(r):
            aim = ", ≤ 10 ms" if rc_ms <= 10 else ", over 10 ms"
            if not have_pm2:
                return f"≥ 3×: {na}; aim ≤ 10 ms: {verdict(rc_ms <= 10)}"
            return f"≥ 3× faster (aim ≤ 10 ms): {verdict(r >= 3)}{aim}"
        return t

    ks, k = res["kill_sleep"], res["kill"]
    nk = ks["rcluster"]["kills"]
    krow(f'kill -9 → replacement running the program, `"sleep 1000"`, median (p90) of {nk}', ks, "cmdline_ms",
         kill_target(ks["rcluster"]["cmdline_ms"]["median"]))
    krow('kill -9 → new pid exists, `"sleep 1000"`', ks, "pid_ms", "(context)")
    krow("kill -9 → new pid exists, `idle.js`", k, "pid_ms", "(context)")
    krow("kill -9 → replacement's cmdline is `node …/idle.js`", k, "cmdline_ms", "(context: not like for like, see below)")
    krow("kill -9 → replacement `idle.js` ran its first line", k, "ran_ms", "(context)")

    # end RSS
    e = res["rss_end_kib"]
    row(f"daemon RSS at the end (after {2 * n_rounds}×50 starts and deletes)", mib(e["rcluster"]), mib(e.get("pm2", 0)),
        ratio(e.get("pm2", 0) / e["rcluster"]) + " less", "(context)")

    p = res["params"]
    out = []
    out.append(f"Run {meta['date']} on {meta['machine']}: {meta['nproc']} cores, {meta['cpu']}; "
               f"rcluster {meta['rcluster_version']} at commit {meta['commit']}; "
               + (f"pm2 {meta['pm2_version']}" if have_pm2 else f"pm2 skipped ({meta['pm2_skip']})")
               + f"; node {meta['node_version']}; load average before the run {meta['loadavg']} "
               "(other work on the machine shows in the spread). Reproduce with `bash scripts/bench/cli.sh` from the repo root.")
    out.append("")
    out.append("| figure | rcluster | pm2 | ratio | target |")
    out.append("|---|---|---|---|---|")
    out.extend(rows)
    out.append("")
    checks = []
    for block, what in ((k, "idle.js"), (ks, "sleep")):
        for m in res["managers"]:
            b = block[m]
            checks.append(f"{m} counted {b['restarts_counted']} restarts for {b['kills']} kills of {what}, "
                          f"{b['online_after']}/{b['instances']} online after")
    out.append("How it is measured (both managers in one run, private homes, loopback only):")
    out.append("")
    out.append(f"- `jlist`: {p['runs']} timed runs each after {p['warmup']} warm-up runs, rcluster and pm2 "
               "alternating, `time.perf_counter` around `subprocess.run` (output read in full). Spawning "
               f"`true` the same way takes {ms(j['spawn_floor']['median'])}: the floor under any CLI figure.")
    out.append("- RSS: `VmRSS` of the daemon pid (`$RCLUSTER_HOME/daemon.lock`, `$PM2_HOME/pm2.pid`, pm2's God "
               "daemon) right after the jlist runs.")
    out.append("- start 50: the same tiny Node script (`setInterval(()=>{},1e6)`, after writing `marks/<pid>` "
               "beside itself) for both; `rcluster start idle.js -i 50` (fork mode, run with node) vs "
               "`pm2 start idle.js -i 50` (pm2's cluster mode). Timed from the command's start until a "
               "`jlist` polled after the command returns shows 50 `online`, and until 50 marks exist; then "
               "`delete` and wait for the daemon's children to drop back to the 4 idle ones. Rounds alternate "
               "rcluster, pm2, `sleep` rcluster, `sleep` pm2, floor. `online` is not the same event in both: "
               "rcluster's is set when the process is spawned, pm2's (cluster mode) when the worker has booted "
               "node and said so.")
    out.append("- Floor for 50 node programs, no manager: a plain `sh` in a session of its own starts them in a "
               f"loop: all 50 spawned after {sec(s['direct_node']['spawned_s']['median'])}, all 50 ran after "
               f"{sec(s['direct_node']['ran_s']['median'])}. 50 node boots on {meta['nproc']} cores are "
               "CPU-bound whoever starts them: on a loaded machine the \"ran\" rows grow for the managers and the "
               "floor alike. rcluster runs each instance in a session of its own, so with the kernel's "
               "autogroup scheduling each booting node gets a CPU share equal to the daemon's, and the "
               "later instances' execs (which `online` waits for) queue behind the earlier ones' boots. "
               "The `\"sleep 1000\"` row removes node's boot and shows the managers' own cost (pm2 runs it "
               "in fork mode through bash); the daemon CPU row (utime+stime from `/proc/<pid>/stat`: every thread, ended ones included; 10 ms ticks) too.")
    out.append("- kill -9: two apps of 4 instances each, the idle Node script and `\"sleep 1000\"` (pm2 runs the "
               "script in cluster mode, `sleep` in fork mode). The oldest instance of the app gets SIGKILL; a "
               "Python loop then busy-polls (yielding the CPU each turn) `/proc/<daemon>/task/*/children` for a "
               "new pid, then its `/proc/<pid>/cmdline` until it equals the app's other instances' (the program, "
               "not the manager's fork), then, for the script, its mark file; `perf_counter_ns` from just before "
               f"`os.kill`. {p['kills']} kills per app and manager, alternating, daemon and instances left to go "
               "quiet between kills. Floor: a node child of the measuring process itself is reaped "
               f"{ms(res['kill_floor_ms']['median'])} after its SIGKILL (the kernel tearing it down), before any "
               f"manager can react. Sanity: {'; '.join(checks)}.")
    out.append("- The target row is the `sleep` one: there \"running the program\" is unambiguous for both (exec'd). "
               "For `idle.js` the cmdline row is not like for like: rcluster's new process shows "
               "`node …/idle.js` from its exec on, before node has booted, while pm2's shows it only once its "
               "`ProcessContainer.js` has booted node and set the title; the \"ran its first line\" row is the "
               "like-for-like one there, and node's own boot dominates it.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
