"""SIGKILL of one instance under load (PRODUCT.md §11: "only requests that instance had
accepted" may fail), for scripts/bench/reload.sh's driver.py.

Each kill stops the victim first (SIGSTOP, every thread), reads which TCP connections of the
app's port it holds (the sockets in its fd table: accepted by it, whatever it has done with
them since; from copies made with pidfd_getfd, else from a sock_diag dump), then SIGKILLs it. A failed request is then "held" when its connection was one of
those, and "lost" otherwise: a connection the manager had dealt or queued but the instance never
took (or, for a refusal, one that never got in). The stop lasts a few milliseconds, the same for
every manager.
"""

import ctypes
import os
import signal
import socket
import struct
import time

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
_libc = ctypes.CDLL(None, use_errno=True)

# ------------------------------------------------------------------ sock_diag (netlink)

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
# TCP states a connection can be in while a process holds it (not LISTEN, not TIME_WAIT).
HELD_STATES = sum(1 << s for s in (1, 4, 5, 7, 8, 9, 11))  # ESTABLISHED FIN_WAIT1/2 CLOSE CLOSE_WAIT LAST_ACK CLOSING


def tcp_sockets(port):
    """{inode: peer port} of the TCP sockets whose local port is `port` (IPv4 and IPv6), one
    netlink dump each; the kernel filters by state, so TIME_WAIT's thousands cost nothing."""
    found = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            # inet_diag_req_v2: family, protocol, ext, pad, states, then an empty inet_diag_sockid
            # (sport, dport, src[4], dst[4], if, cookie[2]: 48 bytes).
            req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, HELD_STATES) + bytes(48)
            nl.send(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                                NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
            done = False
            while not done:
                data = nl.recv(1 << 16)
                off = 0
                while off + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, off)
                    if kind == NLMSG_DONE:
                        done = True
                        break
                    if kind == NLMSG_ERROR:
                        raise OSError("sock_diag dump failed")
                    # inet_diag_msg: family, state, timer, retrans, sockid (sport and dport in
                    # network order first), expires, rqueue, wqueue, uid, inode.
                    sport, dport = struct.unpack_from("!HH", data, off + 16 + 4)
                    inode = struct.unpack_from("=I", data, off + 16 + 4 + 48 + 16)[0]
                    if sport == port and inode:
                        found[inode] = dport
                    off += (length + 3) & ~3
    return found


def held_by_copy(pid, port):
    """Peer ports of the process's connections on `port`, read from copies of its sockets
    (pidfd_getfd: well under a millisecond), or None when the kernel will not make copies."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    peers = []
    try:
        fd_dir = "/proc/%d/fd" % pid
        for fd in os.listdir(fd_dir):
            try:
                if not os.readlink(os.path.join(fd_dir, fd)).startswith("socket:["):
                    continue
            except OSError:
                continue
            copy = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(fd), 0)
            if copy < 0:
                if ctypes.get_errno() == 9:  # EBADF: closed meanwhile
                    continue
                return None  # EPERM (ptrace rules) or ENOSYS: fall back to sock_diag
            with socket.socket(fileno=copy) as s:
                try:
                    if s.type != socket.SOCK_STREAM or s.getsockname()[1] != port:
                        continue
                    peers.append(s.getpeername()[1])
                except (OSError, IndexError, TypeError):
                    continue  # a listening or Unix socket
    finally:
        os.close(pidfd)
    return peers


def socket_inodes(pid):
    """Inodes of the sockets in the process's fd table."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def all_stopped(pid):
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
    except OSError:
        return False
    return True


def stop_and_kill(pid, port):
    """SIGSTOP the instance, note the connections on `port` it holds, SIGKILL it.
    -> {"victim", "t_stop", "t_kill", "stopped_ms", "held": [peer ports]}"""
    t_stop = time.time()
    c0 = time.perf_counter()
    os.kill(pid, signal.SIGSTOP)
    deadline = c0 + 2.0
    while not all_stopped(pid) and time.perf_counter() < deadline:
        pass  # a stop takes effect within microseconds; busy-poll so the window stays short
    try:
        held = held_by_copy(pid, port)
        if held is None:
            mine = socket_inodes(pid)
            held = [p for inode, p in tcp_sockets(port).items() if inode in mine]
        held.sort()
    finally:
        os.kill(pid, signal.SIGKILL)
    t_kill = time.time()
    return {"victim": pid, "t_stop": t_stop, "t_kill": t_kill,
            "stopped_ms": (time.perf_counter() - c0) * 1000, "held": held}


# ------------------------------------------------------------------ report


def attribute(rec):
    """{"held", "lost", "refused"} counts of one kill phase's failures: a failure is matched to the
    kill that fell while its request was out (sent before the kill, outcome after the stop)."""
    kills = [r for r in rec["reloads"] if "t_kill" in r]
    out = {"held": 0, "lost": 0, "refused": 0, "unmatched": 0}
    for kind in ("close", "keepalive"):
        for ev in rec["load"][kind]["events"]:
            sent, seen, what = ev[0], ev[1], ev[2]
            port = ev[4] if len(ev) > 4 else None
            if what == "refused":
                out["refused"] += 1
                continue
            during = [k for k in kills if sent <= k["t_kill"] and seen >= k["t_stop"]]
            if not during:
                out["unmatched"] += 1
            elif port is not None and any(port in k["held"] for k in during):
                out["held"] += 1
            else:
                out["lost"] += 1
        out["truncated"] = out.get("truncated", False) or rec["load"][kind]["events_truncated"]
    return out


def kill_report(recs, labels, instances, gap):
    """Markdown lines of the kill rows; recs are the kill phases' records, labels {manager: row name}."""
    names = [x for x in labels if any(r["manager"] == x for r in recs)]
    if not names:
        return []
    agg = {}
    for x in names:
        mine = [r for r in recs if r["manager"] == x]
        a = {"n": 0, "problems": [], "held_conns": 0, "stopped": [], "failed_close": 0,
             "failed_ka": 0, "ok_close": 0, "ok_ka": 0, "resent": 0, "reasons": {},
             "held": 0, "lost": 0, "refused": 0, "unmatched": 0, "truncated": False}
        for r in mine:
            for k in r["reloads"]:
                a["n"] += 1
                if "problem" in k:
                    a["problems"].append(k["problem"])
                a["held_conns"] += len(k.get("held", []))
                if "stopped_ms" in k:
                    a["stopped"].append(k["stopped_ms"])
            ld = r["load"]
            a["failed_close"] += ld["close"]["failed"]
            a["failed_ka"] += ld["keepalive"]["failed"]
            a["ok_close"] += ld["close"]["ok"]
            a["ok_ka"] += ld["keepalive"]["ok"]
            a["resent"] += ld["keepalive"]["resent"]
            for kind in ("close", "keepalive"):
                for reason, c in ld[kind]["reasons"].items():
                    key = "%s: %s" % ("close" if kind == "close" else "keep-alive", reason)
                    a["reasons"][key] = a["reasons"].get(key, 0) + c
            att = attribute(r)
            for key in ("held", "lost", "refused", "unmatched"):
                a[key] += att[key]
            a["truncated"] |= att["truncated"]
        agg[x] = a
    out = ["### One instance of 4 killed under load (SIGKILL)", ""]
    out.append(
        "Then, under the same load, one instance of 4 gets SIGKILL, N times per row, each time the "
        "next instance in the list; the next kill waits until %d instances are online again (the "
        "victim replaced) and %g s more of load. The victim is stopped (SIGSTOP) a moment before, "
        "to read which connections of the port it holds: the ones it had accepted (the sockets in "
        "its fd table; the stop lasted %s). A failed request whose connection was one of "
        "them is **held**; any other failure is **lost**: dealt or queued by the manager but never "
        "taken by the instance, so the manager dropped it. Target (PRODUCT.md §11): only requests "
        "the killed instance had accepted may fail, so 0 lost and 0 refused. The kernel-shared row "
        "is rcluster `--balance shared`: the instances accept from one socket the daemon passes as "
        "fd 3 (`hello_fd.js`), so no manager is in the path."
        % (instances, gap, "; ".join("%s median %.1f ms" % (labels[x], _median(agg[x]["stopped"]))
                                      for x in names if agg[x]["stopped"])))
    out.append("")
    out.append("| figure | " + " | ".join(labels[x] for x in names) + " | target |")
    out.append("|---|" + "---|" * len(names) + "---|")

    def row(fig, f, target=""):
        out.append("| " + " | ".join([fig] + [f(agg[x]) for x in names] + [target]) + " |")

    row("kills under load (N)", lambda a: str(a["n"]))
    row("kills that went wrong (not %d online instances after, victim still listed)" % instances,
        lambda a: str(len(a["problems"])), "0")
    row("connections the victims held when killed (all kills)", lambda a: str(a["held_conns"]))
    row("failed requests (`Connection: close`; keep-alive)",
        lambda a: "%d; %d" % (a["failed_close"], a["failed_ka"]))
    row("of which **held** by the killed instance", lambda a: "%d" % a["held"], "(allowed)")
    row("of which **lost** (never taken by the instance)", lambda a: "**%d**" % a["lost"], "0")
    row("**refused connections**", lambda a: "**%d**" % a["refused"], "0")
    row("requests served (`Connection: close`; keep-alive)",
        lambda a: "%s; %s" % (_int(a["ok_close"]), _int(a["ok_ka"])))
    row("keep-alive requests resent (reused connection closed before any answer byte)",
        lambda a: str(a["resent"]), "(context)")
    out.append("")
    for x in names:
        a = agg[x]
        verdict = "met" if a["n"] and not a["problems"] and a["lost"] == 0 and a["refused"] == 0 \
            and a["unmatched"] == 0 else "**missed**"
        out.append("- %s: %s. Failed requests by reason: %s.%s%s" % (
            labels[x], verdict,
            "; ".join("%s: %d" % kv for kv in sorted(a["reasons"].items(), key=lambda kv: -kv[1]))
            or "none",
            " %d failure(s) fell outside every kill window." % a["unmatched"] if a["unmatched"] else "",
            " (more than 200 failures in a phase: only the first 200 were attributed)"
            if a["truncated"] else ""))
        for p in a["problems"][:3]:
            out.append("  - a kill went wrong: %s" % p.replace("\n", " ")[:400])
    out.append("")
    return out


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def _int(n):
    return "{:,}".format(n).replace(",", "\u202f")
