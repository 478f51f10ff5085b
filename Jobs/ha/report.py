#!/usr/bin/env python3
"""Turns a drill's request log (load.py) into its one JSON line and verdict.

  report.py --drill NAME --log FILE --fault-ns N [--retry FILE] [--extra k=v ...] [--require k=v ...]

Measures: takeover_s (fault → end of the first successful reservation that started after the
fault), answers by class and kind, acknowledged-but-lost matches and reservations (every 2xx id
must be in the current primary, read through HAProxy), duplicates (a key or a decision holding
more than one reservation, after the indeterminate requests were retried with their same keys).
Fails on any lost or duplicated decision, any answer that is neither a real answer nor the
service's own "unable to verify" (bare 5xx, HAProxy's 503, timeouts, "no units"), and any
--require k=v not met. Exit 0 when it passes, 1 otherwise.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

OK_CLASSES = {"ok", "conflict", "unable_to_verify", "overloaded"}


def sql(query):
    env = dict(os.environ, PGPASSWORD=os.environ["HA_PGPW"], PGCONNECT_TIMEOUT="5")
    out = subprocess.run(["psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", "55430", "-U", "postgres", "-d", "bloodmatch", "-c", query],
                         env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit("query failed: " + out.stderr.strip())
    return out.stdout.strip()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--drill", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fault-ns", type=int, default=0)
    p.add_argument("--heal-ns", type=int, default=0)
    p.add_argument("--retry")
    p.add_argument("--run", required=True)
    p.add_argument("--extra", nargs="*", default=[])
    p.add_argument("--require", nargs="*", default=[])
    p.add_argument("--accept", nargs="*", help="the only final answer classes accepted (default: ok, conflict, unable_to_verify, overloaded)")
    args = p.parse_args()
    lines = [json.loads(l) for l in open(args.log) if l.strip()]
    failures = []

    finals = [l for l in lines if l.get("final", True)]
    retried_at_once = len(lines) - len(finals)
    by_class = collections.Counter(l["class"] for l in lines)
    by_kind = collections.defaultdict(collections.Counter)
    for l in lines:
        by_kind[l["kind"]][l["class"]] += 1
    accepted = set(args.accept) if args.accept else OK_CLASSES
    bad = [l for l in finals if l["class"] not in accepted]
    if bad:
        failures.append("%d final answers outside the accepted classes: %s" % (len(bad), dict(collections.Counter(l["class"] for l in bad))))

    takeover_s = None
    if args.fault_ns:
        after = [l for l in lines if l["kind"] == "reserve" and l["class"] == "ok" and l["t0"] >= args.fault_ns]
        if after:
            takeover_s = round((min(l["t1"] for l in after) - args.fault_ns) / 1e9, 2)
        else:
            failures.append("no reservation succeeded after the fault")
    window = None
    if args.fault_ns:
        end = args.fault_ns + int((takeover_s or 0) * 1e9)
        during = [l for l in lines if l["t1"] >= args.fault_ns and l["t0"] <= end]
        window = dict(collections.Counter(l["class"] for l in during))

    acked_res = [l["reservation_id"] for l in lines if l["kind"] == "reserve" and l["class"] == "ok" and l.get("reservation_id")]
    acked_dec = [l["decision_id"] for l in lines if l["kind"] == "match" and l["class"] == "ok" and l.get("decision_id")]
    retried = {"retried": 0, "results": []}
    if args.retry and os.path.exists(args.retry) and os.path.getsize(args.retry):
        retried = json.load(open(args.retry))
    acked_res += [r["reservation_id"] for r in retried["results"] if r.get("class") == "ok" and r.get("reservation_id")]
    unresolved = sum(1 for r in retried["results"] if r.get("class") == "unresolved")
    if unresolved:
        failures.append("%d indeterminate reservations still unresolved after retries" % unresolved)

    def missing(table, column, ids):
        if not ids:
            return 0
        arr = "ARRAY[%s]::uuid[]" % ",".join("'%s'" % i for i in set(ids))
        return int(sql("SELECT count(*) FROM unnest(%s) u(id) WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE t.%s = u.id)" % (arr, table, column)))

    lost_res = missing("bm.reservations", "reservation_id", acked_res)
    lost_dec = missing("bm.decisions", "decision_id", acked_dec)
    prefix = "api:H9001:%s-%%" % args.run
    dup_keys = int(sql("SELECT count(*) FROM (SELECT idempotency_key FROM bm.reservations WHERE idempotency_key LIKE '%s' GROUP BY 1 HAVING count(*) > 1) x" % prefix))
    dup_decisions = int(sql("SELECT count(*) FROM (SELECT decision_id FROM bm.reservations WHERE idempotency_key LIKE '%s' GROUP BY 1 HAVING count(*) > 1) x" % prefix))
    held_twice = int(sql("SELECT count(*) FROM (SELECT din, product_code FROM bm.reservation_units WHERE state = 'active' GROUP BY din, product_code HAVING count(*) > 1) x"))
    if lost_res or lost_dec:
        failures.append("acknowledged but lost: %d reservations, %d decisions" % (lost_res, lost_dec))
    if dup_keys or dup_decisions or held_twice:
        failures.append("duplicates: %d keys, %d decisions, %d units held twice" % (dup_keys, dup_decisions, held_twice))

    result = {"drill": args.drill, "pass": None, "requests": len(lines), "client_retries_same_key": retried_at_once, "takeover_s": takeover_s,
              "acknowledged_reservations": len(acked_res), "acknowledged_decisions": len(acked_dec),
              "acked_lost": lost_res + lost_dec, "duplicates": dup_keys + dup_decisions + held_twice,
              "indeterminate_retried": retried["retried"], "errors_by_class": {k: v for k, v in by_class.items() if k != "ok"},
              "final_errors_by_class": dict(collections.Counter(l["class"] for l in finals if l["class"] != "ok")),
              "classes_during_takeover": window, "by_kind": {k: dict(v) for k, v in by_kind.items()}}
    for kv in args.extra:
        k, v = kv.split("=", 1)
        try:
            result[k] = json.loads(v)
        except ValueError:
            result[k] = v
    for kv in args.require:
        k, v = kv.split("=", 1)
        if str(result.get(k)).lower() != v.lower():
            failures.append("%s is %s, expected %s" % (k, result.get(k), v))
    result["pass"] = not failures
    result["failures"] = failures
    print(json.dumps(result))
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    main()
