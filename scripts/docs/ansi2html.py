#!/usr/bin/env python3
"""Turn a terminal capture with ANSI colours (`tmux capture-pane -e -p`) into an HTML page that
looks like the terminal: one <pre>, a span per run of one style. Used by monit-screenshot.sh;
standard library only.

    python3 ansi2html.py capture.txt > page.html
"""
import html
import re
import sys

# xterm's 16 colours (a dark theme), then the 6x6x6 cube and the grey ramp of the 256.
BASE = ["#1d1f21", "#cc6666", "#8ec07c", "#f0c674", "#81a2be", "#b294bb", "#5fd7d7", "#c5c8c6",
        "#666666", "#ff6b6b", "#b5e890", "#ffe08a", "#9ec5ff", "#d7b8ff", "#8ee8e8", "#ffffff"]


def palette(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    grey = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (grey, grey, grey)


def apply(codes, style):
    codes = codes or [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style.clear()
        elif c == 1:
            style["bold"] = True
        elif c == 2:
            style["dim"] = True
        elif c == 7:
            style["reverse"] = True
        elif c in (22,):
            style.pop("bold", None)
            style.pop("dim", None)
        elif c == 27:
            style.pop("reverse", None)
        elif 30 <= c <= 37:
            style["fg"] = BASE[c - 30]
        elif 90 <= c <= 97:
            style["fg"] = BASE[c - 90 + 8]
        elif 40 <= c <= 47:
            style["bg"] = BASE[c - 40]
        elif 100 <= c <= 107:
            style["bg"] = BASE[c - 100 + 8]
        elif c == 39:
            style.pop("fg", None)
        elif c == 49:
            style.pop("bg", None)
        elif c in (38, 48) and i + 1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i + 1] == 5 and i + 2 < len(codes):
                style[key] = palette(codes[i + 2])
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                style[key] = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                i += 4
        i += 1


def css(style):
    fg, bg = style.get("fg", "#c5c8c6"), style.get("bg")
    if style.get("reverse"):
        fg, bg = bg or "#1d1f21", fg
    out = ["color:" + fg]
    if bg:
        out.append("background:" + bg)
    if style.get("bold"):
        out.append("font-weight:bold")
    if style.get("dim"):
        out.append("opacity:0.6")
    return ";".join(out)


def convert(text):
    style, out = {}, []
    for part in re.split(r"(\x1b\[[0-9;]*m)", text):
        if part.startswith("\x1b["):
            apply([int(c) if c else 0 for c in part[2:-1].split(";")], style)
        elif part:
            out.append('<span style="%s">%s</span>' % (css(style), html.escape(part)))
    return "".join(out)


def main():
    text = open(sys.argv[1], encoding="utf-8").read().rstrip("\n")
    print("""<!doctype html><meta charset="utf-8"><style>
body { margin: 0; background: #1d1f21; }
pre { margin: 0; padding: 14px 16px; font: 15px/18px "DejaVu Sans Mono", monospace; color: #c5c8c6; }
</style><pre>%s</pre>""" % convert(text))


if __name__ == "__main__":
    main()
