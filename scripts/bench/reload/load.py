#!/usr/bin/env python3
"""Steady HTTP load for the reload benchmark, with an exact outcome for every request.

usage: load.py --port P [--close C] [--keepalive K] [--timeout S]

Runs, in one process (asyncio, raw sockets on 127.0.0.1, no HTTP library), until its stdin
closes or it gets SIGTERM/SIGINT:
  C `Connection: close` workers: each opens a connection, sends one GET, reads the answer and the
    server's close, and starts over (closed loop, no pause).
  K keep-alive workers: each keeps one connection and sends GET after GET on it. Like every HTTP
    client, a request sent on a REUSED connection that is closed (EOF or reset, or the write
    fails) before any byte of an answer arrived is sent again on a new connection ("resent", not a
    failure: the server closed an idle connection and never saw the request, or dropped it unread).
    A fresh connection that ends before any answer byte is a failure.
Outcomes: ok (status 200, whole body), refused (connect() got ECONNREFUSED: the port was closed),
failed (everything else: reset or EOF after a partial answer, or before any answer on a fresh
connection, a status other than 200, a timeout of S seconds (default 10) for connect or answer,
any other socket error). After a refused or failed attempt a worker pauses 1 ms (no hot loop).

Prints `ready` on stdout once both kinds have had a 200, and at the end one JSON line: per kind
the counts, failure reasons, latency percentiles (ms, of ok requests, a resend included), and the
wall-clock times (time.time(): request sent, outcome seen) and the client port of the first 200
failures / refusals, to match them to reloads, kills and the managers' logs.
On stop, every worker finishes the request it has in flight (bounded by the timeout): nothing is
abandoned uncounted.
"""

import argparse
import array
import asyncio
import errno
import json
import signal
import sys
import time

MAX_EVENTS = 200


class Tally:
    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.refused = 0
        self.resent = 0
        self.connections = 0
        self.reasons = {}
        # (request sent, outcome seen (time.time()), "failed"|"refused", reason, client port or None)
        self.events = []
        self.lat = array.array("d")

    def fail(self, reason, t_start, port=None):
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.events) < MAX_EVENTS:
            self.events.append((t_start, time.time(), "failed", reason, port))

    def refuse(self, t_start):
        self.refused += 1
        if len(self.events) < MAX_EVENTS:
            self.events.append((t_start, time.time(), "refused", "ECONNREFUSED", None))

    def summary(self):
        lat = sorted(self.lat)

        def pct(p):
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3)

        return {
            "ok": self.ok,
            "failed": self.failed,
            "refused": self.refused,
            "resent": self.resent,
            "connections": self.connections,
            "reasons": self.reasons,
            "events": self.events,
            "events_truncated": len(self.events) >= MAX_EVENTS,
            "lat_ms": {"p50": pct(0.50), "p99": pct(0.99), "p999": pct(0.999),
                       "max": round(lat[-1] * 1000, 3) if lat else None},
        }


class Conn(asyncio.Protocol):
    """One client connection; `request()` sends a GET and waits for the whole answer."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter = None
        self.ended = None  # None while open, else "eof" or "reset: ..." (how it ended)
        self.port = None  # the client's local port: names the connection in the server's tables

    # -- asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        sockname = transport.get_extra_info("sockname")
        self.port = sockname[1] if sockname else None

    def data_received(self, data):
        self.buf += data
        self._wake()

    def eof_received(self):
        if self.ended is None:
            self.ended = "eof"
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc):
        if self.ended is None:
            self.ended = "eof" if exc is None else "reset: %s" % (
                errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__))
        self._wake()

    def _wake(self):
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def close(self):
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, deadline):
        loop = asyncio.get_running_loop()
        left = deadline - loop.time()
        if left <= 0:
            raise asyncio.TimeoutError
        self.waiter = loop.create_future()
        try:
            await asyncio.wait_for(self.waiter, left)
        finally:
            self.waiter = None

    async def request(self, req, timeout):
        """-> ("ok", server_closes) | ("nothing", why) | ("broken", why)"""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.buf.clear()
        if self.ended is not None:
            return "nothing", "closed before the request (" + self.ended + ")"
        try:
            self.transport.write(req)
        except Exception as e:  # noqa: BLE001 - every write error counts
            return "nothing", "write: " + type(e).__name__
        # Headers.
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if self.ended is not None:
                if not self.buf:
                    return "nothing", self.ended + " before any answer byte"
                return "broken", self.ended + " in the middle of the headers"
            try:
                await self._wait(deadline)
            except asyncio.TimeoutError:
                return "broken", "timeout (%s answer bytes)" % ("no" if not self.buf else "some")
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        if not head[0].startswith("HTTP/1.1 200 "):
            return "broken", "status " + head[0][:40]
        length = None
        server_closes = False
        for line in head[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v.strip())
            elif k == "connection" and v.strip().lower() == "close":
                server_closes = True
        if length is None:
            return "broken", "no Content-Length"
        want = end + 4 + length
        while len(self.buf) < want:
            if self.ended is not None:
                return "broken", self.ended + " in the middle of the body"
            try:
                await self._wait(deadline)
            except asyncio.TimeoutError:
                return "broken", "timeout in the middle of the body"
        if len(self.buf) > want:
            return "broken", "extra bytes after the body"
        return "ok", server_closes


async def connect(port, timeout, tally, t_start):
    """-> Conn, or None after counting a refusal or failure."""
    loop = asyncio.get_running_loop()
    try:
        _, conn = await asyncio.wait_for(
            loop.create_connection(Conn, "127.0.0.1", port), timeout)
    except ConnectionRefusedError:
        tally.refuse(t_start)
        return None
    except asyncio.TimeoutError:
        tally.fail("connect: timeout", t_start)
        return None
    except OSError as e:
        tally.fail("connect: " + errno.errorcode.get(e.errno or 0, type(e).__name__), t_start)
        return None
    tally.connections += 1
    return conn


async def close_worker(port, timeout, tally, stop):
    req = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = time.perf_counter()
        w0 = time.time()
        conn = await connect(port, timeout, tally, w0)
        if conn is None:
            await asyncio.sleep(0.001)
            continue
        kind, detail = await conn.request(req, timeout)
        if kind == "ok":
            tally.ok += 1
            tally.lat.append(time.perf_counter() - t0)
            # Let the server close first (its answer said so): the TIME_WAIT is then its own.
            deadline = loop.time() + 1.0
            while conn.ended is None:
                try:
                    await conn._wait(deadline)
                except asyncio.TimeoutError:
                    break
            conn.close()
        else:
            conn.close()
            tally.fail(detail, w0, conn.port)
            await asyncio.sleep(0.001)


async def keepalive_worker(port, timeout, tally, stop):
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
    conn = None
    served_on_conn = 0
    while not stop.is_set():
        t0 = time.perf_counter()
        w0 = time.time()
        while True:
            if conn is None:
                conn = await connect(port, timeout, tally, w0)
                served_on_conn = 0
                if conn is None:
                    await asyncio.sleep(0.001)
                    break
            kind, detail = await conn.request(req, timeout)
            if kind == "ok":
                tally.ok += 1
                tally.lat.append(time.perf_counter() - t0)
                served_on_conn += 1
                if detail:  # the server said `Connection: close`
                    conn.close()
                    conn = None
                break
            conn.close()
            client_port, conn = conn.port, None
            if kind == "nothing" and served_on_conn > 0:
                tally.resent += 1  # a reused connection closed before any answer byte: send again
                continue
            tally.fail(("fresh connection: " if kind == "nothing" else "") + detail, w0, client_port)
            await asyncio.sleep(0.001)
            break
    if conn is not None:
        conn.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--close", type=int, default=4)
    ap.add_argument("--keepalive", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # stdin closing (the driver's way to say stop)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin():
        await reader.read()
        stop.set()

    stdin_task = asyncio.create_task(watch_stdin())
    close_t, ka_t = Tally(), Tally()
    t_start = time.time()
    tasks = [asyncio.create_task(close_worker(a.port, a.timeout, close_t, stop)) for _ in range(a.close)]
    tasks += [asyncio.create_task(keepalive_worker(a.port, a.timeout, ka_t, stop)) for _ in range(a.keepalive)]

    async def announce():
        while not stop.is_set():
            if (close_t.ok or not a.close) and (ka_t.ok or not a.keepalive):
                sys.stdout.write("ready\n")
                sys.stdout.flush()
                return
            await asyncio.sleep(0.01)

    ann = asyncio.create_task(announce())
    await stop.wait()
    t_stop = time.time()
    await asyncio.gather(*tasks)
    ann.cancel()
    stdin_task.cancel()
    out = {
        "start": t_start,
        "stop": t_stop,
        "end": time.time(),
        "close": close_t.summary(),
        "keepalive": ka_t.summary(),
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
