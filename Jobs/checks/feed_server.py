"""Loopback HTTPS feed server for Jobs/checks/feed-https.sh (standard library only).

Usage: feed_server.py ROOT CERTS_DIR PORT_FILE TOKEN_FILE

Serves the files under ROOT on 127.0.0.1 from several listeners, each on a free port, and writes
"name port" lines to PORT_FILE once all listen:
  good       certificate for IP 127.0.0.1 from the check's throwaway CA
  wrongname  certificate for DNS feed.invalid from the same CA (name mismatch)
  expired    certificate for IP 127.0.0.1 from the same CA, past its end
  mtls       the good certificate; the client must present one from the same CA
Paths on every listener:
  /NAME                 the file ROOT/NAME
  /slow/NAME            a .csv is sent one byte every 0.3 s (its control record at once)
  /big/NAME             a .csv is 600 MiB of filler with no Content-Length (read until close)
  /announced/NAME       a .csv announces 600 MiB in Content-Length and sends nothing
  /flaky/NAME           the first request of each path gets 503, later ones the file
  /auth/NAME            401 unless "Authorization: Bearer <token in TOKEN_FILE>"
  latest.json under any of them is ROOT/latest.json, an index document naming a snapshot
  /stats                JSON: requests per path
Stops by itself after 600 s.
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time

root, certs, port_file, token_file = sys.argv[1:5]
token = open(token_file).read().strip()
lock = threading.Lock()
counts = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        with lock:
            counts[path] = counts.get(path, 0) + 1
            seen = counts[path]
        if path == "/stats":
            return self.send(200, json.dumps(counts).encode())
        mode, _, name = path.lstrip("/").rpartition("/")
        file = os.path.join(root, os.path.basename(name))
        if mode == "auth" and self.headers.get("Authorization") != "Bearer " + token:
            return self.send(401, b"unauthorized", [("WWW-Authenticate", "Bearer")])
        if mode == "flaky" and seen == 1:
            return self.send(503, b"try later")
        is_csv = name.endswith(".csv")
        if mode == "announced" and is_csv:
            self.send_response(200)
            self.send_header("Content-Length", str(600 * 1024 * 1024))
            self.end_headers()
            return
        if mode == "big" and is_csv:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(600):
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        if not os.path.isfile(file):
            return self.send(404, b"not found")
        data = open(file, "rb").read()
        if mode == "slow" and is_csv:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            end = time.time() + 300
            try:
                for i in range(len(data)):
                    if time.time() > end:
                        break
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
            return
        self.send(200, data, [("Content-Type", "text/csv")])


def listener(cert, key, require_client=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, cert), os.path.join(certs, key))
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


servers = {
    "good": listener("server.pem", "server.key"),
    "wrongname": listener("wrongname.pem", "server.key"),
    "expired": listener("expired.pem", "server.key"),
    "mtls": listener("server.pem", "server.key", require_client=True),
}
with open(port_file + ".tmp", "w") as f:
    for name, server in servers.items():
        f.write(f"{name} {server.server_address[1]}\n")
os.rename(port_file + ".tmp", port_file)
time.sleep(600)
