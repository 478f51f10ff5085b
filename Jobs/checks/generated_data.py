#!/usr/bin/env python3
"""Checks a dataset written by `bloodmatch generate` (Jobs/checks/generator.sh).

Sites: the 7-column header, every site a non-empty city-level address of the form the site-list
decoder reads (no control characters or surrounding spaces, at most 200 bytes).
Stock: every control record matches its CSV (row count, SHA-256); no (DIN, product code) twice
anywhere; a DIN at one centre only; the units of one DIN share group and collection time and have
distinct product codes; the bags of a split product share the product code but its division
characters (A0, B0, ...); each unit's expiry within its component's shelf life; and the dataset
holds donations with two or more components, red cells with plasma and platelets under one DIN,
and divided products. Prints one JSON object of facts; `--expect-units N` also checks the total.
"""
import argparse
import collections
import csv
import glob
import hashlib
import json
import os
import re
import sys
from datetime import datetime

SITE_HEADER = ["site_id", "name", "kind", "latitude", "longitude", "region", "address"]
STOCK_HEADER = ["din", "product_code", "component", "abo", "rhd", "collected_at", "expires_at", "site_id", "status",
                "attributes"]
DIN = re.compile(r"^[A-NP-Z1-9][0-9]{4}[0-9]{2}[0-9]{6}$")
PRODUCT_CODE = re.compile(r"^[A-F][A-Z0-9]{4}[A-Z0-9][A-Z0-9][a-z0-9]$")
# The generator's shelf lives in days (SyntheticDataGenerator): the longest of each component.
SHELF_DAYS = {"RBC": 42, "PLT": 7, "PLASMA": 365, "CRYO": 365, "WB": 21}


def instant(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def check(folder, expect_units):
    problems = []

    def problem(text):
        if len(problems) < 20:
            problems.append(text)

    with open(os.path.join(folder, "sites.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows[0] != SITE_HEADER:
        problem(f"sites.csv header {rows[0]}")
    sites = {}
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(SITE_HEADER):
            problem(f"sites.csv:{n}: {len(row)} fields")
            continue
        site = dict(zip(SITE_HEADER, row))
        sites[site["site_id"]] = site
        address = site["address"]
        if (not address or address != address.strip() or len(address.encode()) > 200
                or any(ord(c) < 0x20 or ord(c) == 0x7F for c in address)):
            problem(f"sites.csv:{n}: address {address!r} is not one the site-list decoder reads")
        elif address.count(",") < 1:
            problem(f"sites.csv:{n}: address {address!r} names no region or country")
    hospitals = [s for s in sites.values() if s["kind"] == "hospital"]

    units = {}
    din_centre = {}
    by_din = collections.defaultdict(list)
    components = collections.Counter()
    files = sorted(glob.glob(os.path.join(folder, "snapshots", "*.csv")))
    for path in files:
        raw = open(path, "rb").read()
        control = json.load(open(path[:-4] + ".ctl.json"))
        lines = raw.decode("utf-8").splitlines()
        if control["sha256"] != hashlib.sha256(raw).hexdigest():
            problem(f"{path}: sha256 does not match the control record")
        if control["row_count"] != len(lines) - 1:
            problem(f"{path}: row_count {control['row_count']} but {len(lines) - 1} rows")
        if lines[0].split(",") != STOCK_HEADER:
            problem(f"{path}: header {lines[0]}")
        for n, line in enumerate(lines[1:], start=2):
            row = dict(zip(STOCK_HEADER, line.split(",")))
            din, code, centre = row["din"], row["product_code"], row["site_id"]
            if not DIN.match(din) or not PRODUCT_CODE.match(code):
                problem(f"{path}:{n}: DIN {din!r} or product code {code!r} malformed")
            if centre not in sites or sites[centre]["kind"] != "distribution_centre":
                problem(f"{path}:{n}: site {centre} is not a distribution centre of sites.csv")
            if (din, code) in units:
                problem(f"{path}:{n}: {din}/{code} already at {units[(din, code)]}")
            units[(din, code)] = f"{os.path.basename(path)}:{n}"
            if din_centre.setdefault(din, centre) != centre:
                problem(f"{path}:{n}: DIN {din} at {centre} and at {din_centre[din]}")
            collected, expires = instant(row["collected_at"]), instant(row["expires_at"])
            shelf = (expires - collected).total_seconds() / 86400
            if not 0 < shelf <= SHELF_DAYS[row["component"]]:
                problem(f"{path}:{n}: {row['component']} shelf life {shelf:.2f} days")
            components[row["component"]] += 1
            by_din[din].append(row)

    multi = 0
    full_split = 0
    divided = 0
    for din, rows in by_din.items():
        if len(rows) < 2:
            continue
        multi += 1
        first = rows[0]
        for row in rows[1:]:
            for field in ("abo", "rhd", "collected_at"):
                if row[field] != first[field]:
                    problem(f"DIN {din}: {field} {row[field]} and {first[field]}")
        codes = [r["product_code"] for r in rows]
        if len(set(codes)) != len(codes):
            problem(f"DIN {din}: product codes {codes} repeat")
        kinds = collections.Counter(r["component"] for r in rows)
        if {"RBC", "PLASMA", "PLT"} <= set(kinds):
            full_split += 1
        for kind, count in kinds.items():
            if count < 2:
                continue
            bags = sorted(r["product_code"] for r in rows if r["component"] == kind)
            if len({b[:6] for b in bags}) != 1 or [b[6:] for b in bags] != [c + "0" for c in "ABCD"[:count]]:
                problem(f"DIN {din}: {kind} bags {bags} are not divisions A0, B0, ... of one product")
            divided += 1

    total = len(units)
    if expect_units is not None and total != expect_units:
        problem(f"{total} units, expected {expect_units}")
    if multi == 0 or full_split == 0 or divided == 0:
        problem(f"no shared DINs of each kind: {multi} with 2+ units, {full_split} RBC+PLASMA+PLT, {divided} divided")
    if any(not h["address"] for h in hospitals):
        problem("a hospital without an address")
    return {
        "sites": len(sites), "hospitals": len(hospitals), "snapshots": len(files), "units": total,
        "dins": len(by_din), "dins_with_2_plus_units": multi, "units_sharing_a_din": sum(len(r) for r in by_din.values() if len(r) > 1),
        "dins_rbc_plasma_plt": full_split, "divided_products": divided,
        "component_shares": {k: round(v / max(1, total), 3) for k, v in sorted(components.items())},
        "problems": problems,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--expect-units", type=int)
    args = parser.parse_args()
    facts = check(args.folder, args.expect_units)
    print(json.dumps(facts, sort_keys=True))
    sys.exit(1 if facts["problems"] else 0)


if __name__ == "__main__":
    main()
