#!/usr/bin/env python3
"""A hospital system speaking FHIR R5 to `bloodmatch serve` (Jobs/checks/fhir.sh).

fhirpy drives the server as a client library would; every resource the server returns is
validated against the R5 models of fhir.resources; each step is asserted against the database.
Prints one JSON object (steps, corpus documents, resources validated); exits 1 on the first
failure, naming it.
"""
import argparse
import json
import subprocess
import sys
import uuid

import requests
from fhir.resources import get_fhir_model_class
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError

import fhir_corpus

BASE = "https://bloodmatch.example/fhir"
validated = 0
steps = 0


def validate(resource):
    """Validates one resource (and a Bundle's entries) against its R5 model."""
    global validated
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    validated += 1
    for entry in resource.get("entry", []):
        validate(entry["resource"])
    return resource


def step(name, condition, detail=""):
    global steps
    if not condition:
        print(f"FAILED {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    steps += 1


def main():
    ap = argparse.ArgumentParser()
    for name in ("base", "key", "other-key", "bm", "psql-host", "psql-port", "db"):
        ap.add_argument("--" + name, required=True)
    a = ap.parse_args()

    def sql(query):
        out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-qAt", "-h", a.psql_host, "-p", a.psql_port,
                              "-d", a.db, "-c", query], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    headers = {"Authorization": "Bearer " + a.key, "Accept": "application/fhir+json"}
    client = SyncFHIRClient(a.base, authorization="Bearer " + a.key)
    other = SyncFHIRClient(a.base, authorization="Bearer " + a.other_key)

    # The CapabilityStatement (no key needed) lists exactly the three resources.
    cap = validate(requests.get(a.base + "/metadata", timeout=10).json())
    types = sorted(r["type"] for r in cap["rest"][0]["resource"])
    step("capability", types == ["BiologicallyDerivedProduct", "BiologicallyDerivedProductDispense", "SupplyRequest"], types)

    # Stock search: O RhD negative (ISBT 128 code 95) red cells; the total is the database's count of
    # those with at least red cells' minimum remaining life at arrival (48 h, Data/matching.json):
    # the unit with 10 h left is not offered.
    bundle = validate(requests.get(a.base + "/BiologicallyDerivedProduct",
                                   params={"abo-rhd": "95", "component": "RBC"}, headers=headers, timeout=10).json())
    expected = int(sql("SELECT count(*) FROM bm.inventory_units u JOIN bm.centre_status s ON s.current_snapshot_id = u.snapshot_id "
                       "WHERE u.component = 'RBC' AND u.abo = 'O' AND u.rhd = 'NEG' AND u.status = 'AVAILABLE' AND u.expires_at > now() + interval '48 hours'"))
    step("search_total", bundle["total"] == expected == 4, f"{bundle['total']} listed, {expected} in the database")
    expiries = [e["resource"]["expirationDate"] for e in bundle["entry"]]
    step("search_order", expiries == sorted(expiries), expiries)
    step("search_short_dated_out", all("T000126100007" not in e["fullUrl"] for e in bundle["entry"]), "a unit with 10 h left was listed")
    step("search_quarantine_out", all("T000126100006" not in e["fullUrl"] for e in bundle["entry"]), "a quarantined unit was listed")
    # fhirpy: product code and expiry filters, through the client's own search builder.
    found = client.resources("BiologicallyDerivedProduct").search(code="E0398").fetch_all()
    step("search_code", [r["id"] for r in found] == ["T000126100001-E0398V00"], [r["id"] for r in found])
    red = found[0].serialize()
    validate(red)
    prop = {p["type"]["coding"][0]["code"]: p["valueCodeableConcept"] for p in red["property"] if p["type"]["coding"][0]["code"] == "ABORhD"}
    step("abo_rhd_62", prop["ABORhD"]["coding"][0]["code"] == "62", prop)
    step("no_donor_data", "collector" not in red.get("collection", {}) and "source" not in red.get("collection", {}), red.get("collection"))
    soon = client.resources("BiologicallyDerivedProduct").search(**{"expiration-date": "le" + fhir_corpus.days_ahead(10)}).fetch_all()
    step("search_expiry", sorted(r["id"] for r in soon) == ["T000126100003-E0336V00", "T000126100005-E3046V00", "T000126200002-E0336V00"],
         [r["id"] for r in soon])
    read = client.reference("BiologicallyDerivedProduct", "T000126200001-E0336V00").to_resource().serialize()
    validate(read)
    step("read_unit", read["productStatus"]["code"] == "available", read["productStatus"])

    # A routine order goes to the batch: stored pending, not matched.
    routine = client.resource("SupplyRequest", **fhir_corpus.supply_request("routine", hospital="HF1", quantity=1,
                                                                             needed_hours=30, identifier="LAB-R1"))
    routine.save()
    validate(routine.serialize())
    row = sql(f"SELECT status, coalesce(routing, 'batch'), urgency, source FROM bm.orders WHERE order_id = '{routine.id}'")
    step("routine_stored", row == "pending|batch|routine|fhir", row)
    step("routine_active", routine["status"] == "active", routine["status"])

    # A stat order is matched at once and its units held.
    stat = client.resource("SupplyRequest", **fhir_corpus.supply_request("stat", hospital="HF1", quantity=2, identifier="LAB-S1"))
    stat.save()
    validate(stat.serialize())
    row = sql(f"SELECT status, routing, urgency FROM bm.orders WHERE order_id = '{stat.id}'")
    step("stat_matched", row in ("allocated|immediate|emergency",), row)
    held = int(sql("SELECT count(*) FROM bm.reservation_units ru JOIN bm.reservations r USING (reservation_id) "
                   f"JOIN bm.decisions d ON d.decision_id = r.decision_id WHERE d.request_id = 'order:{stat.id}' AND ru.state = 'active'"))
    step("stat_held", held == 2, held)
    dispenses = client.resources("BiologicallyDerivedProductDispense").search(**{"supply-request": "SupplyRequest/" + stat.id}).fetch_all()
    step("dispenses", len(dispenses) == 2 and all(d["status"] == "allocated" for d in dispenses), [d["status"] for d in dispenses])
    for d in dispenses:
        validate(d.serialize())
    # Replays: the same identifier (If-None-Exist) and the same Idempotency-Key find the order.
    body = fhir_corpus.supply_request("stat", hospital="HF1", quantity=2, identifier="LAB-S1")
    r = requests.post(a.base + "/SupplyRequest", json=body, timeout=10,
                      headers={**headers, "If-None-Exist": "identifier=urn:oid:2.16.840.1.113883.2.1|LAB-S1"})
    step("replay_identifier", r.status_code == 200 and r.json()["id"] == stat.id, (r.status_code, r.text[:200]))
    key = "fhir-check-" + uuid.uuid4().hex
    first = requests.post(a.base + "/SupplyRequest", json=fhir_corpus.supply_request("urgent", hospital="HF1", quantity=1, needed_hours=5),
                          headers={**headers, "Idempotency-Key": key}, timeout=10)
    again = requests.post(a.base + "/SupplyRequest", json=fhir_corpus.supply_request("urgent", hospital="HF1", quantity=1, needed_hours=5),
                          headers={**headers, "Idempotency-Key": key}, timeout=10)
    step("replay_key", first.status_code == 201 and again.status_code == 200 and first.json()["id"] == again.json()["id"],
         (first.status_code, again.status_code))
    changed = requests.post(a.base + "/SupplyRequest", json=fhir_corpus.supply_request("urgent", hospital="HF1", quantity=3, needed_hours=5),
                            headers={**headers, "Idempotency-Key": key}, timeout=10)
    step("replay_key_changed_409", changed.status_code == 409, (changed.status_code, changed.text[:200]))
    validate(changed.json())

    # Another hospital sees neither the order nor its dispenses.
    try:
        other.reference("SupplyRequest", stat.id).to_resource()
        step("other_hospital_order", False, "read another hospital's order")
    except ForbiddenError as e:
        step("other_hospital_order", "belongs to another hospital" in str(e), str(e)[:200])
    theirs = other.resources("BiologicallyDerivedProductDispense").search().fetch_all()
    step("other_hospital_dispenses", len(theirs) == 0, len(theirs))

    # A dispatcher issues the held units (CLI); the hospital follows them and posts receipt and fate.
    reservation = sql(f"SELECT r.reservation_id FROM bm.reservations r JOIN bm.decisions d ON d.decision_id = r.decision_id "
                      f"WHERE d.request_id = 'order:{stat.id}'")
    out = subprocess.run([a.bm, "reservation", "issue", reservation, "--key", "fhir-issue-" + stat.id], capture_output=True, text=True)
    step("issue", out.returncode == 0, out.stderr[-300:] + out.stdout[-300:])
    dispense = client.resources("BiologicallyDerivedProductDispense").search(**{"supply-request": "SupplyRequest/" + stat.id}).fetch_all()[0]
    step("issued", dispense["status"] == "issued" and "whenHandedOver" in dispense, dispense.serialize().get("status"))
    dispense["extension"] = dispense.get("extension", []) + [{"url": BASE + "/StructureDefinition/received", "valueDateTime": fhir_corpus.now_iso()}]
    dispense.save()
    validate(dispense.serialize())
    unit = dispense["product"]["reference"].split("/")[1]
    din, code = unit.split("-")
    step("receipt_stored", sql(f"SELECT count(*) FROM bm.unit_fates WHERE din = '{din}' AND product_code = '{code}' AND event = 'received' "
                               "AND hospital = 'HF1'") == "1", "no receipt row")
    dispense.save()   # the same update again: nothing new is recorded
    step("receipt_once", sql(f"SELECT count(*) FROM bm.unit_fates WHERE din = '{din}' AND event = 'received'") == "1", "receipt recorded twice")
    dispense["extension"] = dispense["extension"] + [{"url": BASE + "/StructureDefinition/unit-fate",
                                                      "extension": [{"url": "event", "valueCode": "transfused"}]}]
    dispense.save()
    validate(dispense.serialize())
    step("fate_stored", sql(f"SELECT event FROM bm.unit_fates WHERE din = '{din}' AND product_code = '{code}' ORDER BY recorded_at DESC LIMIT 1")
         == "transfused", "no fate row")

    # The routine order is cancelled; the stat order, whose units are issued, cannot be.
    r = requests.delete(a.base + "/SupplyRequest/" + routine.id, headers=headers, timeout=10)
    step("cancel", r.status_code == 200 and sql(f"SELECT status FROM bm.orders WHERE order_id = '{routine.id}'") == "cancelled", r.text[:200])
    validate(r.json())
    r = requests.delete(a.base + "/SupplyRequest/" + stat.id, headers=headers, timeout=10)
    step("cancel_issued_409", r.status_code == 409 and "issued already" in r.text, (r.status_code, r.text[:200]))
    validate(r.json())

    # A routine order is decided by the next batch run: the run holds its unit, and the hospital
    # follows it through FHIR like any other.
    batch = client.resource("SupplyRequest", **fhir_corpus.supply_request("routine", hospital="HF1", quantity=1, needed_hours=30))
    batch.save()
    out = subprocess.run([a.bm, "batch", "run", "--run-key", "fhir-check-" + batch.id], capture_output=True, text=True)
    step("batch_run", out.returncode == 0, out.stderr[-300:] + out.stdout[-300:])
    batch.refresh()
    validate(batch.serialize())
    step("batch_decided", batch["status"] == "completed" and sql(f"SELECT status FROM bm.orders WHERE order_id = '{batch.id}'") == "allocated",
         batch.serialize().get("extension"))
    held = client.resources("BiologicallyDerivedProductDispense").search(**{"supply-request": "SupplyRequest/" + batch.id}).fetch_all()
    step("batch_dispense", len(held) == 1 and held[0]["status"] == "allocated", [d.serialize() for d in held][:1])
    validate(held[0].serialize())
    # The hospital cancels the batch-decided order: its unit is released, the order cancelled, the
    # dispense unfulfilled; a second DELETE says it was cancelled already.
    r = requests.delete(a.base + "/SupplyRequest/" + batch.id, headers=headers, timeout=10)
    validate(r.json())
    din, code = held[0]["product"]["reference"].split("/")[-1].rsplit("-", 1) if held[0].get("product") else ("", "")
    step("cancel_decided", r.status_code == 200 and "1 held unit(s) released" in r.text
         and sql(f"SELECT status FROM bm.orders WHERE order_id = '{batch.id}'") == "cancelled"
         and sql(f"SELECT state FROM bm.reservation_units WHERE din = '{din}' AND product_code = '{code}' ORDER BY state_changed_at DESC LIMIT 1") == "released",
         (r.status_code, r.text[:300], din, code))
    after = client.resources("BiologicallyDerivedProductDispense").search(**{"supply-request": "SupplyRequest/" + batch.id}).fetch_all()
    step("cancel_decided_dispense", len(after) == 1 and after[0]["status"] == "unfulfilled", [d.serialize().get("status") for d in after])
    r = requests.delete(a.base + "/SupplyRequest/" + batch.id, headers=headers, timeout=10)
    step("cancel_decided_again", r.status_code == 200 and "already cancelled" in r.text, r.text[:200])

    # The corpus: every document refused with its status and an OperationOutcome naming the element; nothing stored.
    orders_before = sql("SELECT count(*) FROM bm.orders")
    events_before = sql("SELECT count(*) FROM bm.event_log WHERE action LIKE 'order.%'")
    corpus = fhir_corpus.documents(hospital="HF1", other="HF2")
    for case in corpus:
        r = requests.request(case["method"], a.base + case["path"], data=case["body"], timeout=10,
                             headers={**headers, "Content-Type": "application/fhir+json", **case.get("headers", {})})
        try:
            outcome = r.json()
        except ValueError:
            step("corpus_" + case["name"], False, f"not JSON: {r.status_code} {r.text[:200]}")
        step("corpus_" + case["name"], r.status_code == case["status"] and outcome.get("resourceType") == "OperationOutcome",
             f"{r.status_code} (expected {case['status']}): {r.text[:300]}")
        validate(outcome)
        issue = outcome["issue"][0]
        if case.get("expression"):
            step("corpus_expression_" + case["name"], case["expression"] in " ".join(issue.get("expression", [])) + " " + issue.get("diagnostics", ""),
                 f"expected {case['expression']!r} in {issue}")
    step("corpus_nothing_stored", sql("SELECT count(*) FROM bm.orders") == orders_before
         and sql("SELECT count(*) FROM bm.event_log WHERE action LIKE 'order.%'") == events_before, "the corpus stored something")
    print(json.dumps({"steps": steps, "corpus": len(corpus), "validated": validated}))


if __name__ == "__main__":
    main()
