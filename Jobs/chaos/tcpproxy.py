#!/usr/bin/env python3
"""A small TCP fault proxy for drills (this kernel has no netem).

Listens on 127.0.0.1 (an ephemeral port unless --listen-port is given), forwards to --target, and
takes commands on a Unix control socket, one per line, answering "ok" or "error: …":

  delay MS        add MS milliseconds before forwarding each chunk, both directions
  pause           stop reading from both sides: connections hang, new ones are accepted and hang
  blackhole       accept new connections and never forward; existing ones hang as in pause
  reset           close every connection with RST (SO_LINGER 0); new ones are reset at once
  heal            back to plain forwarding (delay 0)
  status          print the mode, the delay and the number of open connections

Prints "listening PORT" on stdout once ready. Loopback only; the drill that starts it stops it by pid.
"""
import argparse
import asyncio
import os
import socket
import struct
import sys


class Proxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.mode = "forward"  # forward | pause | blackhole | reset
        self.delay = 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.connections = set()

    def abort_all(self):
        for writer in list(self.connections):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            writer.transport.abort()
        self.connections.clear()

    async def pump(self, reader, writer):
        try:
            while True:
                await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self.flowing.wait()
                if self.delay > 0:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def client(self, creader, cwriter):
        if self.mode == "reset":
            self.connections.add(cwriter)
            self.abort_all()
            return
        self.connections.add(cwriter)
        if self.mode == "blackhole":
            await creader.read()  # hold the socket until the client gives up
            self.connections.discard(cwriter)
            return
        await self.flowing.wait()
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.transport.abort()
            return
        self.connections.add(swriter)
        await asyncio.gather(self.pump(creader, swriter), self.pump(sreader, cwriter))
        self.connections.discard(cwriter)
        self.connections.discard(swriter)

    async def control(self, reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            words = line.decode().split()
            answer = "ok"
            if not words:
                continue
            cmd = words[0]
            if cmd == "delay" and len(words) == 2:
                self.delay = float(words[1]) / 1000.0
            elif cmd == "pause":
                self.mode = "pause"
                self.flowing.clear()
            elif cmd == "blackhole":
                self.mode = "blackhole"
                self.flowing.clear()
            elif cmd == "reset":
                self.mode = "reset"
                self.abort_all()
            elif cmd == "heal":
                self.mode = "forward"
                self.delay = 0.0
                self.flowing.set()
            elif cmd == "status":
                answer = f"mode={self.mode} delay_ms={int(self.delay * 1000)} connections={len(self.connections)}"
            else:
                answer = f"error: unknown command {line.decode().strip()!r}"
            writer.write((answer + "\n").encode())
            await writer.drain()
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--control", required=True, help="Unix socket path for commands")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    server = await asyncio.start_server(proxy.client, "127.0.0.1", args.listen_port)
    if os.path.exists(args.control):
        os.unlink(args.control)
    control = await asyncio.start_unix_server(proxy.control, path=args.control)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server, control:
        await asyncio.gather(server.serve_forever(), control.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
