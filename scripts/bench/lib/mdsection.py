#!/usr/bin/env python3
"""Replace one `## ` section's body in a Markdown file, keeping every other section.

usage: mdsection.py FILE "## Heading" < body.md

The section runs from its heading line to the next `## ` heading (outside code fences) or the
end of the file. A missing section is appended; a missing file is created with a title.
Shared by the scripts in scripts/bench/: each owns one section of docs/benchmarks.md.
"""

import os
import sys

TITLE = """# Benchmarks

Each section is written by its script in `scripts/bench/` (rerun the script to refresh it). Every
figure is taken side by side with pm2 (installed from npm into `scripts/bench/.cache/`) in one run on
one machine, loopback only; targets are PRODUCT.md §11's.
"""


def split_sections(lines):
    """[(heading or None, [lines])], a section starting at each `## ` line outside fences."""
    out = [(None, [])]
    fence = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and line.startswith("## "):
            out.append((line.rstrip("\n"), [line]))
        else:
            out[-1][1].append(line)
    return out


def main():
    path, heading = sys.argv[1], sys.argv[2].rstrip()
    body = sys.stdin.read().strip("\n")
    new = [heading + "\n", "\n", body + "\n", "\n"]
    text = open(path).read() if os.path.exists(path) else TITLE
    if not text.endswith("\n"):
        text += "\n"
    sections = split_sections(text.splitlines(keepends=True))
    done = False
    for i, (h, _) in enumerate(sections):
        if h is not None and h.strip() == heading:
            sections[i] = (h, new)
            done = True
            break
    if not done:
        pre = sections[-1][1]
        if pre and pre[-1].strip():
            pre.append("\n")
        sections.append((heading, new))
    result = "".join("".join(ls) for _, ls in sections).rstrip("\n") + "\n"
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "w") as f:
        f.write(result)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
