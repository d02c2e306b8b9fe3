"""Fallback load generator when wrk is not installed: asyncio, raw HTTP/1.1 keep-alive.

``python bench/loadgen.py URL --connections 50 --duration 10 [--bodies FILE]
[--method POST] [--header 'Cookie: ...'] [--processes 1]``

Runs in its own process(es), never in the server's. Prints the same
``WRKJSON {...}`` line as the wrk scripts. With ``--bodies`` it POSTs the
file's lines in order, process ``t`` of ``n`` taking lines ``t, t+n, ...``
exactly like notify.lua; requests still in flight when the clock stops are
finished (not counted in the rate), so ``sent`` is exact.
"""

import argparse
import asyncio
import json
import multiprocessing
import time
from urllib.parse import urlsplit


def build_request(method: str, host: str, path: str, headers, body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += list(headers)
    if body or method == "POST":
        lines += ["Content-Type: text/xml", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def worker_main(args, tid: int, nproc: int, conns: int, stop_at: float) -> dict:
    url = urlsplit(args.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    bodies = []
    if args.bodies:
        with open(args.bodies, "rb") as fh:
            bodies = fh.read().splitlines()
    static = None if bodies else build_request(args.method, url.netloc, path, args.header, b"")
    state = {"sent": 0, "ok": 0, "non2xx": 0, "read": 0, "connect": 0, "counted": 0}
    latencies = []

    def next_request() -> bytes:
        if static is not None:
            state["sent"] += 1
            return static
        i = tid + state["sent"] * nproc
        state["sent"] += 1
        return build_request("POST", url.netloc, path, args.header, bodies[i % len(bodies)])

    async def connection():
        try:
            reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
        except OSError:
            state["connect"] += 1
            return
        try:
            while time.monotonic() < stop_at:
                started = time.monotonic()
                writer.write(next_request())
                try:
                    status = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    state["read"] += 1
                    return
                done = time.monotonic()
                if done <= stop_at:  # finished after the clock stopped: not in the rate
                    state["counted"] += 1
                    latencies.append(done - started)
                    if not 200 <= status < 400:
                        state["non2xx"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(conns)))
    return {"tid": tid, "state": state, "latencies": latencies}


def worker(args, tid, nproc, conns, stop_at, queue):
    queue.put(asyncio.run(worker_main(args, tid, nproc, conns, stop_at)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--bodies")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    nproc = max(1, min(args.processes, args.connections))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    started = time.monotonic() + 0.5  # let every process import before the clock starts
    stop_at = started + args.duration
    procs = [ctx.Process(target=worker, args=(args, t, nproc,
                                              args.connections // nproc
                                              + (t < args.connections % nproc),
                                              stop_at, queue))
             for t in range(nproc)]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    lat = sorted(x for r in results for x in r["latencies"])

    def pct(p):
        return int(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1e6) if lat else 0

    total = lambda key: sum(r["state"][key] for r in results)  # noqa: E731
    print("WRKJSON " + json.dumps({
        "requests": total("counted"), "duration_us": int(args.duration * 1e6),
        "p50_us": pct(50), "p99_us": pct(99), "max_us": int(lat[-1] * 1e6) if lat else 0,
        "non2xx": total("non2xx"), "connect": total("connect"), "read": total("read"),
        "write": 0, "timeout": 0,
        # Per process, in tid order: how many of its stride of bodies it sent.
        "sent": [r["state"]["sent"] for r in sorted(results, key=lambda r: r["tid"])],
    }))


if __name__ == "__main__":
    main()
