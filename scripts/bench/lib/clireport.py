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
    row("daemon RSS after serving clients (VmRSS, 4 instances up)", mib(rss["rcluster"]),
        mib(rss.get("pm2", 0)), ratio(rss.get("pm2", 0) / rss["rcluster"]) + " less",
        f"≤ 5 MiB: {verdict(rss['rcluster'] <= 5 * 1024)}")

    # 3. start 50
    s = res["start50"]
    n_rounds = res["params"]["rounds"]
    srow = lambda k: (sec(s["rcluster"][k]["median"]), sec(s["pm2"][k]["median"]) if have_pm2 else "",  # noqa: E731
                      ratio(s["pm2"][k]["median"] / s["rcluster"][k]["median"]) if have_pm2 else "")
    a, b, c = srow("online_s")
    row(f"start 50 instances → all 50 `online` per jlist (median of {n_rounds})", a, b, c,
        f"≤ 0.1 s: {verdict(s['rcluster']['online_s']['median'] <= 0.1)}")
    a, b, c = srow("ran_s")
    row("start 50 instances → all 50 programs ran their first line", a, b, c, "(context)")

    # 4. kill -9
    k = res["kill"]
    kcell = lambda m, f: f"{ms(k[m][f]['median'])} (p90 {ms(k[m][f]['p90'])})"  # noqa: E731
    rc_cmd = k["rcluster"]["cmdline_ms"]["median"]
    if have_pm2:
        r = k["pm2"]["cmdline_ms"]["median"] / rc_cmd
        tgt = f"≥ 3× faster (aim ≤ 10 ms): {verdict(r >= 3)}" + (
            ", ≤ 10 ms" if rc_cmd <= 10 else ", over 10 ms")
    else:
        r, tgt = 0, f"≥ 3×: {na}; ≤ 10 ms: {verdict(rc_cmd <= 10)}"
    row(f"kill -9 → replacement running the program (cmdline), median (p90) of {k['rcluster']['kills']}",
        kcell("rcluster", "cmdline_ms"), kcell("pm2", "cmdline_ms") if have_pm2 else "", ratio(r) if r else "",
        tgt)
    for f, label in (("pid_ms", "kill -9 → new pid exists"), ("ran_ms", "kill -9 → program's first line ran")):
        row(label, kcell("rcluster", f), kcell("pm2", f) if have_pm2 else "",
            ratio(k["pm2"][f]["median"] / k["rcluster"][f]["median"]) if have_pm2 else "", "(context)")

    # end RSS
    e = res["rss_end_kib"]
    row("daemon RSS at the end (after 3×50 starts and deletes)", mib(e["rcluster"]), mib(e.get("pm2", 0)),
        ratio(e.get("pm2", 0) / e["rcluster"]) + " less", "(context)")

    p = res["params"]
    out = []
    out.append(f"Run {meta['date']} on {meta['machine']}: {meta['nproc']} cores, {meta['cpu']}; "
               f"rcluster {meta['rcluster_version']} at commit {meta['commit']}; "
               + (f"pm2 {meta['pm2_version']}" if have_pm2 else f"pm2 skipped ({meta['pm2_skip']})")
               + f"; node {meta['node_version']}. Reproduce with `bash scripts/bench/cli.sh` from the repo root.")
    out.append("")
    out.append("| figure | rcluster | pm2 | ratio | target |")
    out.append("|---|---|---|---|---|")
    out.extend(rows)
    out.append("")
    kr = k["rcluster"]
    checks = [f"rcluster counted {kr['restarts_counted']} restarts for {kr['kills']} kills, "
              f"{kr['online_after']}/4 online after"]
    if have_pm2:
        kp = k["pm2"]
        checks.append(f"pm2 {kp['restarts_counted']} for {kp['kills']}, {kp['online_after']}/4 online after")
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
               "`jlist` polled after the command returns shows 50 `online`; and until 50 marks exist. "
               "Then `delete` and wait for the daemon's children to drop back to 4.")
    out.append(f"- kill -9: the oldest of the 4 idle instances gets SIGKILL; a Python loop then busy-polls "
               "`/proc/<daemon>/task/*/children` for a new pid, then its `/proc/<pid>/cmdline` until it "
               "equals a sibling instance's (`node …/idle.js`: not the manager's fork, not pm2's "
               "`ProcessContainer.js`, whose title is set to the script once it runs), then the program's "
               f"mark file; `perf_counter_ns` from just before `os.kill`. {p['kills']} kills each, alternating, "
               f"daemon and instances left to go quiet between kills. Sanity: {'; '.join(checks)}.")
    out.append("- Caveat on the cmdline row: rcluster's new process shows `node …/idle.js` from its exec on, "
               "before node has booted; pm2's shows it only once its container has booted node and set the "
               "title. The \"program's first line ran\" row is the like-for-like one.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
