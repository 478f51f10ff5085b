#!/usr/bin/env python3
"""Paced HTTP/1.1 load on loopback for Jobs/checks/api-isolation.sh (standard library only).

  api_isolation.py victim  PORT KEY RPS SECONDS            -> JSON: p50/p99/max latency (ms), statuses
  api_isolation.py flood   PORT KEY RPS SECONDS            -> JSON: statuses (one hospital's requests)
  api_isolation.py random  PORT RPS SECONDS                -> JSON: statuses (a new random key each request)
  api_isolation.py slow    PORT KEY CONNECTIONS SECONDS    -> JSON: statuses and when each answer came
  api_isolation.py decide  PORT KEY RPS SECONDS            -> JSON: as victim, for POST /v1/matches

Requests start on a fixed schedule (RPS), each on a free keep-alive connection or a new one, and
latency is measured from the scheduled start, so a stalled server shows as latency rather than
as fewer requests (no coordinated omission). `slow` opens CONNECTIONS POST /v1/matches requests
that announce a 200-byte body and send one byte every 2 s, as a hostile client would, opened 50 ms
apart so that the hospital's rate limit lets every one in.
"""
import asyncio
import base64
import json
import os
import sys
import time

PATH = "/v1/availability?component=RBC&abo=O&rhd=NEG"


MATCH = (b'{"component":"RBC","recipient":{"abo":"O","rhd":"POS","sex":"male","age":60},'
         b'"quantity":1,"urgency":"routine"}')


async def request(reader, writer, port, key, path=PATH):
    if path == "match":
        head = (f"POST /v1/matches HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: {os.urandom(12).hex()}\r\nContent-Length: {len(MATCH)}\r\n")
    else:
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    writer.write((head + "\r\n").encode() + (MATCH if path == "match" else b""))
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        if name.lower() == "connection" and value.strip().lower() == "close":
            close = True
    await reader.readexactly(length)
    return status, close


async def paced(port, rps, seconds, key_for, path=PATH):
    idle, latencies, statuses = [], [], {}
    start = time.monotonic()

    async def one(scheduled):
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            status, close = await asyncio.wait_for(request(*conn, port, key_for(), path), 10)
            latencies.append((time.monotonic() - scheduled) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if close:
                conn[1].close()
            else:
                idle.append(conn)
        except Exception as error:  # a refused or dropped request is a result, not a crash
            statuses[type(error).__name__] = statuses.get(type(error).__name__, 0) + 1
            latencies.append((time.monotonic() - scheduled) * 1000)
            if conn:
                conn[1].close()

    n = int(rps * seconds)
    await asyncio.gather(*(one(start + i / rps) for i in range(n)))
    for _, writer in idle:
        writer.close()
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None
    return {"requests": n, "statuses": {str(k): v for k, v in statuses.items()},
            "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": round(latencies[-1], 2) if latencies else None}


def random_key():
    key_id = os.urandom(8).hex()
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    return f"bmk_{key_id}.{secret}"


async def slow(port, key, connections, seconds):
    statuses, answered_after = {}, []
    start = time.monotonic()

    async def one(delay):
        # Opened 50 ms apart: within the hospital's rate (20/s, burst 40), so every one gets in.
        await asyncio.sleep(delay)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write((f"POST /v1/matches HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
                          "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n").encode())
            await writer.drain()
            answer = asyncio.ensure_future(reader.readline())
            while time.monotonic() - start < seconds and not answer.done():
                writer.write(b" ")
                await writer.drain()
                await asyncio.wait([answer], timeout=2)
            if answer.done() and answer.result():
                code = answer.result().split()[1].decode()
                statuses[code] = statuses.get(code, 0) + 1
                answered_after.append(round(time.monotonic() - start, 1))
            else:
                statuses["unanswered"] = statuses.get("unanswered", 0) + 1
                answer.cancel()
            writer.close()
        except Exception as error:
            statuses[type(error).__name__] = statuses.get(type(error).__name__, 0) + 1

    await asyncio.gather(*(one(i * 0.05) for i in range(connections)))
    answered_after.sort()
    return {"connections": connections, "statuses": statuses,
            "answered_after_s": {"min": answered_after[0], "max": answered_after[-1]} if answered_after else None}


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode in ("victim", "flood"):
        key, rps, seconds = sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
        result = asyncio.run(paced(port, rps, seconds, lambda: key))
    elif mode == "decide":
        key, rps, seconds = sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
        result = asyncio.run(paced(port, rps, seconds, lambda: key, "match"))
    elif mode == "random":
        rps, seconds = float(sys.argv[3]), float(sys.argv[4])
        result = asyncio.run(paced(port, rps, seconds, random_key))
    elif mode == "slow":
        result = asyncio.run(slow(port, sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
