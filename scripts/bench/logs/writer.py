#!/usr/bin/env python3
"""The log benchmark's writer, the same for every contender: N lines, one write(2) per line.

usage: writer.py N MARK

Run with PYTHONUNBUFFERED=1 (as pm2 and rcluster run Python apps), `sys.stdout.write` of a line
that ends in a newline is one write(2). Writes the wall-clock time of its first and last line to
MARK and MARK.end, so that a manager's own start-up (a CLI, a fork) is outside the measurement.
"""

import sys
import time

n = int(sys.argv[1])
mark = sys.argv[2]
write = sys.stdout.write
start = time.time()
for i in range(n):
    write(f"line {i:07d} the quick brown fox jumps over the lazy dog\n")
end = time.time()
with open(mark, "w") as f:
    f.write(repr(start))
with open(mark + ".end", "w") as f:
    f.write(repr(end))
