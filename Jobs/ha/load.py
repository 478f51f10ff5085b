#!/usr/bin/env python3
"""Mixed hospital load for the HA drills (stdlib only), bounded in time and count.

Each worker loops: a lookup (GET /v1/availability) and, every second iteration, a reservation flow
(POST /v1/matches with its own Idempotency-Key, then POST /v1/reservations for that decision with
its own key). Every request is one JSON line in --out: start/end (epoch ns), kind, HTTP status,
class, keys and ids, so the drill can compute the takeover time, errors by class, acknowledged
decisions to look for after the fault, and the indeterminate reservations to retry.

  load.py --api http://127.0.0.1:55440 --token TOKEN --run RUNID --seconds 60 --workers 4 --out FILE
  load.py --retry FILE ...   retry every indeterminate reservation of FILE with its same key
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse

INDETERMINATE = {"connection_error", "timeout", "http_502", "http_504", "proxy_503"}

RECIPIENTS = [
    ("RBC", "O", "NEG"), ("RBC", "A", "POS"), ("RBC", "B", "POS"), ("RBC", "AB", "POS"),
    ("PLASMA", "A", "POS"), ("PLT", "O", "POS"), ("RBC", "O", "POS"), ("PLASMA", "O", "NEG"),
]


def classify(status, body):
    """One class per answer: ok, unable_to_verify, no_units, conflict, overloaded, rate_limited,
    http_<status>, proxy_503 (HAProxy's own page), timeout, connection_error."""
    if status is None:
        return body  # "timeout" / "connection_error"
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if 200 <= status < 300:
        if isinstance(doc, dict) and doc.get("outcome") == "none_compatible_available":
            return "no_units"
        return "ok"
    code = doc.get("error", {}).get("code") if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else None
    if status == 503:
        if code == "unable_to_verify":
            return "unable_to_verify"
        if code == "overloaded":
            return "overloaded"
        return "proxy_503" if code is None else "http_503_" + code
    if status == 409:
        return "conflict"
    if status == 429:
        return "rate_limited"
    return "http_%d" % status


class Client:
    def __init__(self, api, token, timeout):
        u = urllib.parse.urlsplit(api)
        self.host, self.port = u.hostname, u.port or 80
        self.token, self.timeout = token, timeout
        self.conn = None

    def request(self, method, path, body=None, key=None):
        headers = {"Authorization": "Bearer " + self.token}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                text = r.read().decode("utf-8", "replace")
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close(); self.conn = None
                return r.status, text
            except TimeoutError:
                self.conn.close(); self.conn = None
                return None, "timeout"
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A kept-alive connection the server closed: the request may or may not have been
                # received. Only a GET is resent here; a POST is reported (the drill retries it with
                # its same Idempotency-Key afterwards).
                self.conn.close(); self.conn = None
                if method == "GET" and attempt == 0:
                    continue
                return None, "connection_error"
            except OSError:
                self.conn.close(); self.conn = None
                return None, "connection_error"
        return None, "connection_error"


def worker(args, w, deadline, out, lock, counter):
    c = Client(args.api, args.token, args.timeout)
    i = 0
    while time.time() < deadline:
        with lock:
            if counter[0] >= args.max_requests:
                return
            counter[0] += 1
        i += 1
        comp, abo, rhd = RECIPIENTS[(w + i) % len(RECIPIENTS)]

        def record(kind, status, text, t0, final=True, **extra):
            cls = classify(status, text)
            line = {"t0": t0, "t1": time.time_ns(), "kind": kind, "status": status, "class": cls, "worker": w, "final": final}
            line.update(extra)
            if cls not in ("ok", "conflict"):
                line["body"] = (text or "")[:300]
            with lock:
                out.write(json.dumps(line) + "\n"); out.flush()
            return cls

        def call(kind, method, path, body=None, key=None, **extra):
            """One request; an answer that says nothing about the outcome (connection lost, a
            proxy's 502/503/504, no answer in time) is retried once at once with the same key,
            which is safe because every write carries its Idempotency-Key. Both attempts are logged."""
            t0 = time.time_ns()
            status, text = c.request(method, path, body, key)
            if classify(status, text) in INDETERMINATE:
                record(kind, status, text, t0, final=False, key=key, **extra)
                t0 = time.time_ns()
                status, text = c.request(method, path, body, key)
            return status, text, t0

        status, text, t0 = call("lookup", "GET", "/v1/availability?component=%s&abo=%s&rhd=%s&limit=5" % (comp, abo, rhd))
        record("lookup", status, text, t0)
        if i % 2:
            continue
        mkey = "%s-m-%d-%d" % (args.run, w, i)
        status, text, t0 = call("match", "POST", "/v1/matches", {"component": comp, "recipient": {"abo": abo, "rhd": rhd, "sex": "male", "age": 60}, "quantity": 1}, mkey)
        decision = None
        if status is not None and 200 <= status < 300:
            try:
                decision = json.loads(text)["decision_id"]
            except (ValueError, KeyError):
                pass
        cls = record("match", status, text, t0, key=mkey, decision_id=decision)
        if cls != "ok" or decision is None:
            continue
        rkey = "%s-r-%d-%d" % (args.run, w, i)
        status, text, t0 = call("reserve", "POST", "/v1/reservations", {"decision_id": decision}, rkey, decision_id=decision)
        rid = None
        if status is not None and 200 <= status < 300:
            try:
                rid = json.loads(text)["reservation_id"]
            except (ValueError, KeyError):
                pass
        record("reserve", status, text, t0, key=rkey, decision_id=decision, reservation_id=rid)


def retry(args):
    """Retries each reservation that got no definite answer, with its same key and decision, until
    it gets one (bounded); prints a JSON summary."""
    lines = [json.loads(l) for l in open(args.retry)]
    todo = [l for l in lines if l["kind"] == "reserve" and l.get("final", True) and l["class"] not in ("ok", "conflict")]
    c = Client(args.api, args.token, args.timeout)
    results = {}
    for l in todo:
        final = None
        for _ in range(10):
            status, text = c.request("POST", "/v1/reservations", {"decision_id": l["decision_id"]}, l["key"])
            cls = classify(status, text)
            if cls in ("ok", "conflict"):
                rid = json.loads(text).get("reservation_id") if cls == "ok" else None
                final = {"key": l["key"], "status": status, "class": cls, "reservation_id": rid}
                break
            time.sleep(1)
        results[l["key"]] = final or {"key": l["key"], "class": "unresolved"}
    print(json.dumps({"retried": len(todo), "results": list(results.values())}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--run", default="load")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--max-requests", type=int, default=20000)
    p.add_argument("--timeout", type=float, default=12, help="client deadline per request, seconds")
    p.add_argument("--out")
    p.add_argument("--retry")
    args = p.parse_args()
    if args.retry:
        return retry(args)
    deadline = time.time() + min(args.seconds, 600)
    lock = threading.Lock()
    counter = [0]
    with open(args.out, "w") as out:
        threads = [threading.Thread(target=worker, args=(args, w, deadline, out, lock, counter), daemon=True) for w in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 2 * args.timeout + 30)


if __name__ == "__main__":
    main()
