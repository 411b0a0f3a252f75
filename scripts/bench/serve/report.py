#!/usr/bin/env python3
"""Markdown section of scripts/bench/serve.sh from bench.py's results and the run's meta.

usage: report.py RESULTS.json META.json > section.md
"""

import json
import statistics
import sys

LABEL = {"rcluster": "`rcluster serve`", "pm2": "`pm2 serve`", "nginx": "nginx (one process)"}


def fmt_int(x):
    return "{:,}".format(int(round(x)))


def main():
    res = json.load(open(sys.argv[1]))
    meta = json.load(open(sys.argv[2]))
    names = res["names"]
    runs = res["runs"]
    out = []
    w = out.append
    w("Run %s on %s: %s cores, %s; rcluster %s at commit %s; pm2 %s; nginx %s; node %s; load "
      "average before the run %s. Reproduce with `bash scripts/bench/serve.sh` from the repo root."
      % (meta["date"], meta["machine"], meta["nproc"], meta["cpu"], meta["rc_version"],
         meta["commit"], meta["pm2_version"] or "not run (%s)" % meta["pm2_skip"],
         meta["nginx_version"] or "not run", meta["node"], meta["loadavg"]))
    w("")
    w("The same folder served by each, one process each: `rcluster serve DIR PORT` (the built-in "
      "server, `rcluster __serve`), `pm2 serve DIR PORT` (pm2's Serve.js under node) and nginx "
      "(`master_process off`: one process, sendfile) for reference. `wrk -t2 -c32 -d%ds` keep-alive per file, "
      "%d interleaved rounds after a warm-up; each cell is the median round (best in brackets). "
      "`pm2 serve` listens on every interface and has no option to say otherwise, so the whole "
      "run happens in a network namespace of its own whose only interface is loopback "
      "(`unshare -rn`)." % (res["duration"], res["rounds"]))
    w("")
    head = "| figure | " + " | ".join(LABEL[n] for n in names) + " |"
    w(head)
    w("|---|" + "---|" * len(names))

    def cell(name, path, key, fmt, best):
        vals = [r[key] for r in runs if r["server"] == name and r["path"] == path]
        if not vals:
            return "-"
        return "%s (%s)" % (fmt(statistics.median(vals)), fmt(best(vals)))

    for path, size in res["files"].items():
        label = "%s (%s KiB)" % ("index.html at `/`" if path == "/" else "`%s`" % path, size // 1024)
        w("| req/s, %s | %s |" % (label, " | ".join(
            cell(n, path, "rps", fmt_int, max) for n in names)))
        w("| p99, %s | %s |" % (label, " | ".join(
            cell(n, path, "p99_ms", lambda x: "%.2f ms" % x, min) for n in names)))
    w("| errors (all rounds) | %s |" % " | ".join(
        str(sum(r["errors"] for r in runs if r["server"] == n)) for n in names))
    w("| server CPU per request (all rounds) | %s |" % " | ".join(
        "%.1f µs" % res["cpu_us_per_request"][n] for n in names))
    w("| server RSS after the rounds | %s |" % " | ".join(
        "%.1f MiB" % (res["rss_kib"][n] / 1024) for n in names))
    w("")
    if "pm2" in names and "rcluster" in names:
        ratios = []
        for path in res["files"]:
            def med(n):
                return statistics.median(r["rps"] for r in runs if r["server"] == n and r["path"] == path)
            ratios.append("%s %.1f×" % ("`/`" if path == "/" else "`%s`" % path, med("rcluster") / med("pm2")))
        w("rcluster serve against pm2 serve, req/s by median round: %s; RSS %.0f× less."
          % (", ".join(ratios), res["rss_kib"]["pm2"] / max(res["rss_kib"]["rcluster"], 1)))
        w("")
    w("Every round:")
    w("")
    for n in names:
        parts = []
        for path in res["files"]:
            vals = ["%s" % fmt_int(r["rps"]) for r in runs if r["server"] == n and r["path"] == path]
            parts.append("%s %s" % ("`/`" if path == "/" else "`%s`" % path, " / ".join(vals)))
        w("- %s: %s" % (LABEL[n], "; ".join(parts)))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
