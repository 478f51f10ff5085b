#!/usr/bin/env python3
"""A centre's FHIR feed for Jobs/checks/fhir-feed.sh and feed-https.sh.

  fhir_feed.py bundle SNAPSHOT.csv OUT.json [--extra hl7|none ...] [--validate]
      Writes the CSV snapshot's units as an R5 collection Bundle of BiologicallyDerivedProduct
      (Data/FHIR.md), plus OUT's control record (NAME.ctl.json: same centre and as_of, row_count
      = entries, SHA-256 of the Bundle). --extra appends one more entry: `hl7` HL7's red-cell
      example as published, `hl7-complete` the same with what the stock model needs, `no-group`
      a unit without an ABO/RhD property. --validate checks the Bundle against the R5 models of
      fhir.resources. Prints {"entries": N, "validated": bool}.
  fhir_feed.py stock SNAPSHOT.csv
      Prints the CSV's units as the database stores them (for comparing with what a Bundle loaded).
"""
import csv
import hashlib
import json
import sys

BASE = "https://bloodmatch.example/fhir"
DIN = "https://www.isbt128.org/uri/DonationIdentificationNumber"
PDC = "https://www.isbt128.org/uri/ProductDescriptionCode"
ABORHD = "https://www.isbt128.org/uri/ABORhD"
COLLECTION_TYPE = "https://www.isbt128.org/uri/CollectionType"
ISBT_PROPERTY = "https://www.isbt128.org/uri"
STATUS = "http://hl7.org/fhir/biologicallyderived-product-status"
# ISBT 128 ST-001 Table 4, intended use not specified (Data/SOURCES.md).
DEFAULT_GG = {("O", "NEG"): "95", ("O", "POS"): "51", ("A", "NEG"): "06", ("A", "POS"): "62",
              ("B", "NEG"): "17", ("B", "POS"): "73", ("AB", "NEG"): "28", ("AB", "POS"): "84"}


def prop(type_system, type_code, system, code):
    coding = {"code": type_code}
    if type_system:
        coding["system"] = type_system
    return {"type": {"coding": [coding]}, "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


def resource(row):
    props = [prop(ISBT_PROPERTY, "ABORhD", ABORHD, DEFAULT_GG[(row["abo"], row["rhd"])]),
             prop(BASE + "/CodeSystem/property", "component", BASE + "/CodeSystem/component", row["component"])]
    for a in filter(None, row["attributes"].split(";")):
        props.append(prop(BASE + "/CodeSystem/property", "attribute", BASE + "/CodeSystem/requirement", a))
    return {
        "resourceType": "BiologicallyDerivedProduct",
        "biologicalSourceEvent": {"system": DIN, "value": row["din"]},
        "productCode": {"coding": [{"system": PDC, "code": row["product_code"]}]},
        "productStatus": {"system": STATUS, "code": "available" if row["status"] == "AVAILABLE" else "unavailable"},
        "collection": {"collectedDateTime": row["collected_at"]},
        "expirationDate": row["expires_at"],
        "property": props,
        "extension": [{"url": BASE + "/StructureDefinition/distribution-centre",
                       "valueIdentifier": {"system": BASE + "/sid/site", "value": row["site_id"]}}],
    }


def hl7_red_cells():
    """HL7 FHIR R5 `biologicallyderivedproduct-example`, written out from the specification's
    example: red cells E0398, DIN A999921123456, ABO/RhD 62 (A RhD positive), type of collection
    V under a property named Donor, division A00000, expiry 2021-08-02T23:59:00-05:00."""
    return {
        "resourceType": "BiologicallyDerivedProduct", "id": "example",
        "identifier": [{"system": "https://www.isbt128.org/uri/MPHOUniqueIdentifier", "value": "A9999E0398A999921123456A00000"}],
        "productCode": {"coding": [{"code": "E0398"}]},
        "biologicalSourceEvent": {"system": DIN, "value": "A999921123456"},
        "processingFacility": [{"reference": "Organization/A9999"}],
        "division": "A00000",
        "productStatus": {"code": "available"},
        "expirationDate": "2021-08-02T23:59:00-05:00",
        "storageTempRequirements": {"low": {"value": 1, "unit": "degrees C", "system": "http://unitsofmeasure.org"},
                                    "high": {"value": 6, "unit": "degrees C", "system": "http://unitsofmeasure.org"}},
        "property": [
            {"type": {"coding": [{"code": "ABORhD"}]},
             "valueCodeableConcept": {"coding": [{"system": ABORHD, "code": "62", "display": "A RhD Positive"}]}},
            {"type": {"coding": [{"code": "Donor"}]},
             "valueCodeableConcept": {"coding": [{"system": COLLECTION_TYPE, "code": "V", "display": "Volunteer"}]}},
        ],
    }


def hl7_complete(row):
    """The HL7 example with what the stock model needs and the published one lacks: the
    two-character ISBT 128 division, a component, a collection time, and dates within this
    snapshot's window (taken from a generated unit)."""
    r = hl7_red_cells()
    r["division"] = "00"
    r["collection"] = {"collectedDateTime": row["collected_at"]}
    r["expirationDate"] = row["expires_at"]
    r["property"].append(prop(BASE + "/CodeSystem/property", "component", BASE + "/CodeSystem/component", "RBC"))
    r["extension"] = [{"url": BASE + "/StructureDefinition/distribution-centre",
                       "valueIdentifier": {"system": BASE + "/sid/site", "value": row["site_id"]}}]
    return r


def bundle(args):
    src, out = args[0], args[1]
    extras = [args[i + 1] for i, a in enumerate(args) if a == "--extra"]
    rows = list(csv.DictReader(open(src, newline="")))
    control = json.load(open(src[:-4] + ".ctl.json"))
    resources = [resource(r) for r in rows]
    red = next((r for r in rows if r["component"] == "RBC"), rows[0])
    for extra in extras:
        if extra == "hl7":
            resources.append(hl7_red_cells())
        elif extra == "hl7-complete":
            resources.append(hl7_complete(red))
        elif extra == "no-group":
            r = resource(dict(red, din=red["din"][:-3] + "999"))
            r["property"] = [p for p in r["property"] if p["type"]["coding"][0]["code"] != "ABORhD"]
            resources.append(r)
    doc = {"resourceType": "Bundle", "type": "collection", "timestamp": control["as_of"],
           "entry": [{"fullUrl": "urn:uuid:%032x" % (i + 1), "resource": r} for i, r in enumerate(resources)]}
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    open(out, "wb").write(data)
    stem = out[:-10] if out.endswith(".fhir.json") else out[:-5]
    json.dump({"format": "bloodmatch-inventory/1", "centre": control["centre"], "as_of": control["as_of"],
               "row_count": len(resources), "sha256": hashlib.sha256(data).hexdigest(), "empty_stock": not resources},
              open(stem + ".ctl.json", "w"))
    validated = False
    if "--validate" in args:
        from fhir.resources.bundle import Bundle
        from pydantic import ValidationError
        try:
            Bundle.model_validate_json(data)
        except ValidationError as e:
            sys.exit("not valid R5: %s" % "; ".join("%s: %s" % (".".join(map(str, x["loc"])), x["msg"]) for x in e.errors()[:3]))
        validated = True
    print(json.dumps({"entries": len(resources), "validated": validated}))


def stock(args):
    for r in csv.DictReader(open(args[0], newline="")):
        status = "AVAILABLE" if r["status"] == "AVAILABLE" else "QUARANTINED"
        print("|".join([r["din"], r["product_code"], r["component"], r["abo"], r["rhd"], status]))


if __name__ == "__main__":
    {"bundle": bundle, "stock": stock}[sys.argv[1]](sys.argv[2:])
