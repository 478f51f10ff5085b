#!/usr/bin/env python3
"""Writes the inventory-snapshot bad-input corpus and the example snapshot.

Each case folder corpus/NN-name/ holds inventory.csv, inventory.ctl.json and expect.json.
Control records get the true SHA-256 and row count of the CSV unless a case overrides them.
Cases follow Data/SOURCES.md §S22 (bad-input corpus, items 1-45); expect.json names the item.

Run from anywhere: python3 Tests/BloodMatchIngestTests/Fixtures/generate_corpus.py
It rewrites corpus/ and Data/examples/ completely; the output is deterministic.
"""
import hashlib
import json
import pathlib
import re
import shutil

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
EXAMPLES = HERE.parent.parent.parent / "Data" / "examples"

HEADER = "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes"
CENTRE = "DC-SYD-01"
AS_OF = "2025-06-01T06:00:00Z"
NOW = "2025-06-01T12:00:00Z"


def check_character(din):
    """ISO 7064 Mod 37-2 keyboard check character (ST-001 Appendix A.3)."""
    p = 0
    for ch in din:
        v = int(ch) if ch.isdigit() else ord(ch) - 55
        p = ((p + v) * 2) % 37
    k = (38 - p) % 37
    return str(k) if k < 10 else ("*" if k == 36 else chr(55 + k))


assert check_character("G123417654321") == "A"
assert check_character("ABCDE27000069") == "C"  # a published check-value sample; not itself a DIN
assert check_character("W000017000001") == "W"

# ISBT 128 ST-001, Data Structure 001: alpha A-N, P-Z or 1-9, then FIN digits pppp, year yy, sequence nnnnnn.
DIN_PATTERN = re.compile(r"[A-NP-Z1-9][0-9]{12}")


def din(n):
    text = f"W000025{n:06d}"
    assert DIN_PATTERN.fullmatch(text), text
    return text


def row(n, product="E0382V00", component="RBC", abo="O", rhd="NEG",
        collected="2025-05-20T08:00:00Z", expires="2025-07-01T08:00:00Z",
        site=CENTRE, status="AVAILABLE", attributes="IRRADIATED;CMV_NEG", din_text=None):
    return ",".join([din_text if din_text is not None else din(n), product, component, abo, rhd,
                     collected, expires, site, status, attributes])


GOOD = [
    row(1),
    row(2, product="E3072V00", component="PLT", abo="A", rhd="POS",
        collected="2025-05-29T10:00:00+10:00", expires="2025-06-03T10:00:00+10:00", attributes=""),
    row(3, product="E2555V00", component="PLASMA", abo="AB", rhd="POS",
        collected="2025-01-10T09:30:00.250Z", expires="2026-01-10T09:30:00Z", status="RESERVED", attributes="LOW_TITRE"),
]


def lines(*rows, end="\n", header=HEADER):
    return (header + end + "".join(r + end for r in rows)).encode("utf-8")


cases = []


def case(name, csv, expect, rows=None, control=None, control_raw=None):
    cases.append((name, csv, expect, rows, control, control_raw))


def decoded(accepted, rejected, verdict, rejections=(), **extra):
    result = {"outcome": "decoded", "accepted": accepted, "rejected": rejected, "verdict": verdict,
              "rejections": [dict(zip(("line", "field", "reason", "message_contains"), r)) for r in rejections]}
    result.update(extra)
    return result


def file_error(kind, message, line=None, field=None, file="inventory.csv"):
    return {"outcome": "file_error",
            "file_error": {"kind": kind, "file": file, "line": line, "field": field, "message_contains": message}}


# --- accepted shapes --------------------------------------------------------------------------
EXAMPLE_ROWS = GOOD + [
    row(4, product="E5165V00", component="CRYO", abo="B", rhd="NEG",
        collected="2025-03-02T14:00:00+11:00", expires="2026-03-02T14:00:00+11:00", status="QUARANTINED", attributes=""),
    row(5, product="E0001V00", component="WB", abo="O", rhd="POS",
        collected="2025-05-25T07:15:00Z", expires="2025-06-15T07:15:00Z", attributes="LOW_TITRE;K_NEG"),
]
# The example file adds units that share a DIN: one whole-blood donation's red cells, plasma and
# platelets, and an apheresis platelet collection divided into two bags (division A0, B0 of one
# product code; ISBT 128 ST-001). Case 01 keeps the one-unit-per-DIN rows, which every decoder reads.
EXAMPLE_DONATION_ROWS = [
    row(6, product=p, component=c, abo="A", rhd="NEG", collected="2025-05-28T09:00:00Z", expires=e, attributes=a)
    for p, c, e, a in [("E0336V00", "RBC", "2025-07-09T09:00:00Z", "CMV_NEG;LEUKOREDUCED"),
                       ("E2555V00", "PLASMA", "2026-05-28T09:00:00Z", ""),
                       ("E3085V00", "PLT", "2025-06-02T09:00:00Z", "CMV_NEG;LEUKOREDUCED")]
] + [
    row(7, product=p, component="PLT", abo="O", rhd="POS", collected="2025-05-30T13:30:00Z",
        expires="2025-06-06T13:30:00Z", attributes="LEUKOREDUCED;LOW_TITRE")
    for p in ["E3085VA0", "E3085VB0"]
]
case("01-valid-example", lines(*EXAMPLE_ROWS),
     decoded(5, 0, "load", title="the example snapshot in Data/examples, without its rows that share a DIN", source="format reference"),
     rows=5)
case("02-utf8-bom", b"\xef\xbb\xbf" + lines(*GOOD),
     decoded(3, 0, "load", bom_skipped=True, title="UTF-8 byte-order mark is skipped", source="§2(f) item 1"))
case("03-utf16le-bom", b"\xff\xfe" + lines(*GOOD).decode().encode("utf-16-le"),
     file_error("utf16Encoding", "UTF-16", line=1) | {"title": "UTF-16LE with BOM (Excel)", "source": "§2(f) item 2"}, rows=3)
case("04-windows-1252-byte", lines(GOOD[0], row(2, attributes="IRRADIATED\udce9".encode("utf-8", "surrogateescape").decode("latin-1"))).replace(b"IRRADIATED\xc3\xa9", b"IRRADIATED\xe9"),
     file_error("invalidUTF8", "0xE9", line=3, field="attributes") | {"title": "Windows-1252 byte 0xE9", "source": "§2(f) item 3"}, rows=2)
case("05-overlong-utf8-c0-af", lines(row(1, din_text="W0000250\xc0\xaf001")).replace("W0000250\xc0\xaf001".encode("utf-8"), b"W0000250\xc0\xaf001"),
     file_error("invalidUTF8", "overlong", line=2, field="din") | {"title": "overlong/invalid UTF-8 C0 AF", "source": "§2(f) item 4"}, rows=1)
case("06-nul-byte", lines(GOOD[0], row(2, product="E03\x0082V00")),
     file_error("nulByte", "NUL", line=3, field="product_code") | {"title": "NUL byte inside a field", "source": "§2(f) item 5"}, rows=2)
case("07-crlf", lines(*GOOD, end="\r\n"),
     decoded(3, 0, "load", title="CRLF line ends are accepted", source="§2(f) item 6"))
case("08-mixed-crlf-lf", (HEADER + "\r\n" + GOOD[0] + "\n" + GOOD[1] + "\r\n" + GOOD[2] + "\n").encode(),
     decoded(3, 0, "load", title="mixed CRLF and LF are accepted line by line", source="§2(f) item 7"), rows=3)
case("09-bare-cr", (HEADER + "\n" + GOOD[0] + "\r" + GOOD[1] + "\n").encode(),
     file_error("bareCarriageReturn", "not followed by a line feed", line=2, field="attributes") | {"title": "bare CR line end", "source": "§2(f) item 8"}, rows=2)
case("10-no-final-newline", lines(*GOOD)[:-1],
     decoded(3, 0, "load", title="last row without a line end still counts", source="§2(f) item 9"), rows=3)
case("11-zero-byte-file", b"",
     file_error("emptyFile", "0 bytes") | {"title": "0-byte file is never an empty stock", "source": "§2(f) item 10"}, rows=0)
case("12-header-only-declared-empty", lines(),
     decoded(0, 0, "load", title="header only with empty_stock true is an empty stock", source="§2(f) item 11"), rows=0)
case("13-header-only-not-declared-empty", lines(),
     file_error("controlRecordInvalid", "empty_stock", field="empty_stock", file="inventory.ctl.json") | {"title": "header only, control says row_count 0 without empty_stock", "source": "§2(f) item 11"},
     rows=0, control={"empty_stock": False})
case("14-header-only-control-claims-rows", lines(),
     file_error("rowCountMismatch", "row_count is 3") | {"title": "header only but control record counts 3 rows", "source": "§2(f) item 11"},
     rows=3, control={"empty_stock": False})
FULL = lines(*GOOD)
case("15-truncated-mid-row", FULL[:len(FULL) - 40],
     file_error("checksumMismatch", "truncated") | {"title": "file cut mid-row; control describes the whole file", "source": "§2(f) item 12"},
     rows=3, control={"sha256": hashlib.sha256(FULL).hexdigest()})
case("16-truncated-at-line-end", lines(*GOOD[:2]),
     file_error("checksumMismatch", "SHA-256") | {"title": "file cut after a whole row", "source": "§2(f) items 12, 45"},
     rows=3, control={"sha256": hashlib.sha256(FULL).hexdigest()})
case("17-control-missing-sha256", lines(*GOOD),
     file_error("controlRecordInvalid", "missing", field="sha256", file="inventory.ctl.json") | {"title": "trailer without its checksum", "source": "§2(f) item 12"},
     control={"sha256": None})
case("18-missing-column", lines(*[",".join(r.split(",")[:4] + r.split(",")[5:]) for r in GOOD], header=HEADER.replace(",rhd", "")),
     file_error("missingColumn", "'rhd' is missing", line=1, field="rhd") | {"title": "missing column", "source": "§2(f) item 13"})
case("19-extra-column", lines(*[r + ",1" for r in GOOD], header=HEADER + ",quantity"),
     file_error("unknownColumn", "quantity", line=1, field="quantity") | {"title": "extra column", "source": "§2(f) item 13"})


def swap(text, a, b):
    parts = text.split(",")
    parts[a], parts[b] = parts[b], parts[a]
    return ",".join(parts)


case("20-reordered-columns", lines(*[swap(r, 2, 3) for r in GOOD], header=swap(HEADER, 2, 3)),
     file_error("columnOrder", "'component' belongs there", line=1, field="abo") | {"title": "reordered columns", "source": "§2(f) item 13"})
case("21-duplicated-column", lines(*GOOD, header=HEADER.replace("rhd", "abo")),
     file_error("duplicateColumn", "appears twice", line=1, field="abo") | {"title": "duplicated column", "source": "§2(f) item 13"})
case("22-header-whitespace", lines(*GOOD, header=HEADER.replace("din,", " din,")),
     file_error("columnNameNotExact", "whitespace", line=1, field="din") | {"title": "header name with a leading space", "source": "§2(f) item 14"})
case("23-header-upper-case", lines(*GOOD, header=HEADER.upper()),
     file_error("columnNameNotExact", "letter case", line=1, field="din") | {"title": "header in upper case", "source": "§2(f) item 14"})
case("24-quoted-plain-values", lines(*['"' + r.replace(",", '","') + '"' for r in GOOD]),
     decoded(3, 0, "load", title="RFC 4180 quotes around every field are accepted", source="§2(f) item 15"))
case("25-quoted-comma-newline-quote",
     lines(row(1, attributes='"IRRADIATED,CMV_NEG"'), row(2, attributes='"IRRADIATED\nCMV_NEG"'),
           row(3, attributes='"IRRADIATED""CMV_NEG"'), GOOD[1].replace(din(2), din(4))),
     decoded(1, 3, "refuse", [
         (2, "attributes", "unknownAttribute", "IRRADIATED,CMV_NEG"),
         (3, "attributes", "unknownAttribute", "IRRADIATED\\u{000A}CMV_NEG"),
         (5, "attributes", "unknownAttribute", 'IRRADIATED"CMV_NEG'),
     ], title="quoted comma, line feed and doubled quote are parsed as data (then refused by attribute rules); line numbers stay physical", source="§2(f) item 15"),
     rows=4)
case("26-unbalanced-quote", lines(GOOD[0], row(2, product='"E0382V00'), GOOD[2]),
     file_error("unbalancedQuote", "never closed", line=3, field="product_code") | {"title": "quote opened and never closed", "source": "§2(f) item 16"}, rows=3)
case("27-text-after-closing-quote", lines(GOOD[0], row(2, product='"E0382"V00')),
     file_error("malformedQuotedField", "after a closing quote", line=3, field="product_code") | {"title": "quoted field followed by more text", "source": "§2(f) item 16"}, rows=2)
case("28-semicolon-delimiter", lines(*[r.replace(",", ";").replace("IRRADIATED;CMV_NEG", "IRRADIATED") for r in GOOD], header=HEADER.replace(",", ";")),
     file_error("wrongDelimiter", "';' (semicolon)", line=1) | {"title": "EU Excel semicolon delimiter", "source": "§2(f) item 19"})
case("29-ragged-rows", lines(GOOD[0], row(2).rsplit(",", 1)[0], row(3) + ",EXTRA", GOOD[2].replace(din(3), din(4))),
     decoded(2, 2, "refuse", [
         (3, None, "wrongFieldCount", "9 fields"),
         (4, None, "wrongFieldCount", "11 fields"),
     ], title="rows with too few and too many fields", source="§2(f) item 20"), rows=4)
case("30-blank-line", lines(GOOD[0], "", GOOD[1]),
     decoded(2, 1, "refuse", [(3, None, "blankLine", "blank line")], title="blank line between rows", source="§2(f) item 20"), rows=3)
case("31-din-nbsp", lines(row(1, din_text="W0000\u00a025000001"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "din", "dinInvisibleCharacter", "U+00A0 NO-BREAK SPACE")], title="NBSP inside a DIN", source="§2(f) item 21"))
case("32-din-zero-width-space", lines(row(1, din_text="W000025\u200b000001"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "din", "dinInvisibleCharacter", "U+200B ZERO WIDTH SPACE")], title="zero-width space inside a DIN", source="§2(f) item 21"))
case("33-gzip-bytes", bytes([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]) + b"compressed",
     file_error("compressedFile", "gzip", line=1) | {"title": "gzip stream instead of CSV (no decompression, so no bomb)", "source": "§2(f) item 22"}, rows=3)
case("34-duplicate-din", lines(GOOD[0], GOOD[1], row(1, attributes=""), GOOD[2]),
     decoded(3, 1, "refuse", [(4, "din", "duplicateUnit", "product code E0382V00 already appears at line 2")],
             title="same unit (DIN and product code) twice in one file", source="§2(f) item 23"), rows=4)
case("35-bad-check-character", lines(row(1, din_text="G1234176543219"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "din", "dinBadCheckCharacter", "ISO 7064 Mod 37-2 gives 'A'")], title="14-character DIN with a wrong check character", source="§2(f) item 25"))
case("36-din-with-check-character", lines(row(1, din_text="G123417654321A"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "din", "dinCheckCharacterPresent", "13-character DIN")], title="feeds carry the 13-character DIN only", source="§2(f) item 25"))
case("37-din-lower-case", lines(row(1, din_text=din(1).lower()), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "din", "dinLowercase", "upper case")], title="lower-case DIN", source="§2(f) item 26"))
case("38-din-wrong-length", lines(row(1, din_text=din(1)[:12]), row(2, din_text="O00002500000"+"2")),
     decoded(0, 2, "refuse", [(2, "din", "dinWrongLength", "12 characters"), (3, "din", "dinInvalidCharacter", "first character")],
             title="DIN of 12 characters; DIN starting with letter O", source="§2(f) item 26"))
case("39-expiry-before-collection", lines(row(1, expires="2025-05-19T08:00:00Z"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "expires_at", "expiryNotAfterCollection", "not after collected_at")], title="expiry before collection", source="§2(f) item 27"))
case("40-expiry-1970", lines(row(1, expires="1970-01-01T00:00:00Z"),
                             row(2, product="E2555V00", component="PLASMA", collected="1969-12-31T00:00:00Z", expires="1970-01-01T00:00:00Z", attributes=""),
                             GOOD[2]),
     decoded(1, 2, "refuse", [(2, "expires_at", "expiryNotAfterCollection", "1970-01-01"),
                              (3, "expires_at", "expiredLongAgo", "days before as_of")],
             title="epoch-zero expiry, with and without an epoch collection date", source="§2(f) item 28"))
case("41-expiry-sentinel-2099-9999", lines(row(1, expires="2099-12-31T00:00:00Z"), row(2, expires="9999-12-31T23:59:59Z"), GOOD[2]),
     decoded(1, 2, "refuse", [(2, "expires_at", "shelfLifeExceeded", "at most 49 days"),
                              (3, "expires_at", "shelfLifeExceeded", "at most 49 days")],
             title="sentinel expiry dates refused by the shelf-life bound", source="§2(f) item 29"))
case("42-already-expired", lines(row(1, collected="2025-04-10T08:00:00Z", expires="2025-05-22T08:00:00Z"), *GOOD[1:]),
     decoded(3, 0, "load", expired_at_as_of=1, title="an expired unit is stored (never offered)", source="§2(f) item 30"))
case("43-ambiguous-slashed-date", lines(row(1, collected="03/04/2025"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "collected_at", "timestampFormat", "ambiguous")], title="03/04/2025", source="§2(f) item 31"))
case("44-two-digit-year", lines(row(1, collected="25-05-20T08:00:00Z"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "collected_at", "timestampFormat", "two-digit year")], title="two-digit year", source="§2(f) item 31"))
case("45-impossible-2025-02-29", lines(row(1, collected="2025-02-29T08:00:00Z", expires="2025-04-01T08:00:00Z"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "collected_at", "timestampImpossible", "day 29")], title="29 February in a common year", source="§2(f) item 31"))
case("46-hour-24", lines(row(1, collected="2025-05-20T24:00:00Z"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "collected_at", "timestampImpossible", "hour 24")], title="24:00", source="§2(f) item 31"))
case("47-missing-zone", lines(row(1, expires="2025-07-01T08:00:00"), GOOD[1]),
     decoded(1, 1, "refuse", [(2, "expires_at", "timestampMissingZone", "no time-zone offset")], title="local time without offset (also covers DST-gap local times: an explicit offset is required)", source="§2(f) item 31"))
case("48-abo-zero-c-empty", lines(row(1, abo="0"), row(2, abo="C"), row(3, abo=""), row(4)),
     decoded(1, 3, "refuse", [(2, "abo", "unknownABO", "digit zero"), (3, "abo", "unknownABO", "not one of"), (4, "abo", "unknownABO", "empty")],
             title="ABO 0 (zero), C and empty", source="§2(f) item 35"))
case("49-abo-ab-pos", lines(row(1, abo="AB Pos"), row(2)),
     decoded(1, 1, "refuse", [(2, "abo", "unknownABO", "mixes ABO group and RhD")], title="AB Pos in the abo column", source="§2(f) item 35"))
case("50-rhd-missing-unknown", lines(row(1, rhd=""), row(2, rhd="+"), row(3, rhd="POSITIVE"), row(4)),
     decoded(1, 3, "refuse", [(2, "rhd", "unknownRhD", "empty"), (3, "rhd", "unknownRhD", "not POS or NEG"), (4, "rhd", "unknownRhD", "not POS or NEG")],
             title="RhD empty, + and POSITIVE", source="§2(f) item 36"))
case("51-unknown-component", lines(row(1, component="FFP"), row(2)),
     decoded(1, 1, "refuse", [(2, "component", "unknownComponent", "not one of RBC")], title="unknown component", source="§2(f) item 37"))
case("52-unknown-product-code", lines(row(1, product="E038"), row(2, product="=<E0382V00"), row(3, product="T0001V00"), row(4)),
     decoded(1, 3, "refuse", [(2, "product_code", "productCodeShape", "not an ISBT 128 product code"),
                              (3, "product_code", "productCodeShape", "'=<' data identifier"),
                              (4, "product_code", "productCodeNotBloodComponent", "E or F")],
             title="product codes of the wrong shape or class", source="§2(f) item 37"))
case("53-formula-injection",
     lines(row(1, din_text="=CMD|' /C calc'!A0"), row(2, product="+1+1"), row(3, abo="-2+3"), row(4, status="@SUM(1)"),
           row(5, din_text="\t" + din(5)), '"\r' + din(6) + '"' + row(6)[len(din(6)):], row(7)),
     decoded(1, 6, "refuse", [(2, "din", "dinWrongLength", "18 characters"), (3, "product_code", "productCodeShape", "+1+1"),
                              (4, "abo", "unknownABO", "-2+3"), (5, "status", "unknownStatus", "@SUM(1)"),
                              (6, "din", "dinInvisibleCharacter", "U+0009 TAB"), (7, "din", "dinInvisibleCharacter", "U+000D")],
             title="formula-injection text is inert data and fails field rules", source="§2(f) item 41"))
case("54-sql-text", lines(row(1, status="'; DROP TABLE unit;--"), row(2, attributes="\\'"), row(3)),
     decoded(1, 2, "refuse", [(2, "status", "unknownStatus", "DROP TABLE"), (3, "attributes", "unknownAttribute", "\\'")],
             title="SQL-looking text is inert data", source="§2(f) item 42"))
case("55-centre-mismatch", lines(row(1, site="DC-MEL-01"), row(2)),
     decoded(1, 1, "refuse", [(2, "site_id", "centreMismatch", "DC-SYD-01")], title="row names another centre than the control record", source="§2(f) item 44"))
case("56-as-of-in-future", lines(*GOOD),
     file_error("asOfInFuture", "after the importer's clock", field="as_of", file="inventory.ctl.json") | {"title": "as_of beyond clock-skew tolerance", "source": "§2(f) item 39"},
     control={"as_of": "2025-06-01T12:10:00Z"})
case("57-collected-after-as-of", lines(row(1, collected="2025-06-01T07:00:00Z", expires="2025-07-01T07:00:00Z"), row(2)),
     decoded(1, 1, "refuse", [(2, "collected_at", "collectedAfterAsOf", "after the snapshot's as_of")], title="unit collected after the stock was counted", source="§2(f) items 31, 39"))
case("58-attribute-problems", lines(row(1, attributes="irradiated"), row(2, attributes="IRRADIATED;IRRADIATED"),
                                     row(3, attributes="IRRADIATED;"), row(4, attributes="IRRADIATED; CMV_NEG"),
                                     row(5, attributes="IRRADIATED\u2713"), row(6, attributes="C_NEG;c_NEG")),
     decoded(1, 5, "refuse", [(2, "attributes", "unknownAttribute", "case-sensitive"), (3, "attributes", "duplicateAttribute", "twice"),
                              (4, "attributes", "emptyAttribute", "empty entry"), (5, "attributes", "unknownAttribute", "surrounding spaces"),
                              (6, "attributes", "unknownAttribute", "\\u{2713}")],
             title="unknown, duplicated, empty and padded attributes; C_NEG and c_NEG are different attributes", source="field rules"))
case("59-unknown-status", lines(row(1, status="ISSUED"), row(2)),
     decoded(1, 1, "refuse", [(2, "status", "unknownStatus", "ISSUED")], title="status outside the list", source="field rules"))
case("60-control-unknown-field", lines(*GOOD),
     file_error("controlRecordInvalid", "unknown field 'comment'", field="comment", file="inventory.ctl.json") | {"title": "control record with an unknown field", "source": "control record rules"},
     control={"comment": "hello"})
case("61-control-wrong-type", lines(*GOOD),
     file_error("controlRecordInvalid", "non-negative integer", field="row_count", file="inventory.ctl.json") | {"title": "row_count given as a string", "source": "control record rules"},
     control={"row_count": "3"})
case("62-control-duplicate-key", lines(*GOOD),
     file_error("controlRecordInvalid", "duplicate key", field="row_count", file="inventory.ctl.json") | {"title": "control record with a duplicated key", "source": "control record rules (§2(f) item 48 analogue)"},
     control_raw=lambda c: json.dumps(c)[:-1] + ', "row_count": 4}')
case("63-control-fractional-row-count", lines(*GOOD),
     file_error("controlRecordInvalid", "number 3.0", field="row_count", file="inventory.ctl.json") | {"title": "row_count 3.0", "source": "§2(f) item 34"},
     control_raw=lambda c: json.dumps(c).replace('"row_count": 3', '"row_count": 3.0'))
case("64-control-wrong-format", lines(*GOOD),
     file_error("controlRecordInvalid", "not supported", field="format", file="inventory.ctl.json") | {"title": "unknown format version", "source": "control record rules"},
     control={"format": "bloodmatch-inventory/2"})
case("65-control-not-json", lines(*GOOD),
     file_error("controlRecordInvalid", "not a flat JSON object", file="inventory.ctl.json", field="format") | {"title": "half-written control record (cut inside the value of format)", "source": "§2(f) item 45"},
     control_raw=lambda c: json.dumps(c)[:30])
case("66-platelets-beyond-7-days", lines(row(1, product="E3072V00", component="PLT", collected="2025-05-20T08:00:00Z", expires="2025-05-28T08:00:00Z", attributes=""), row(2)),
     decoded(1, 1, "refuse", [(2, "expires_at", "shelfLifeExceeded", "PLT keeps at most 7 days")], title="platelets dated 8 days", source="§2(f) item 29"))
case("67-utf16le-without-bom", lines(*GOOD).decode().encode("utf-16-le"),
     file_error("utf16Encoding", "UTF-16LE text without a byte-order mark", line=1) | {"title": "UTF-16LE without BOM", "source": "§2(f) item 2"})
case("68-timestamp-forms", lines(row(1, collected="2025-05-20T18:00:00.123456789+10:00", expires="2025-07-01T08:00:00Z"),
                                  row(2, collected="2025-05-20 08:00:00Z"), row(3, collected="2025-05-20T08:00:00z"),
                                  row(4, collected="2025-05-20T08:00:00+1000"), row(5, collected="1747728000")),
     decoded(1, 4, "refuse", [(3, "collected_at", "timestampFormat", "space"), (4, "collected_at", "timestampFormat", "lower-case 'z'"),
                              (5, "collected_at", "timestampFormat", "±hh:mm"), (6, "collected_at", "timestampFormat", "bare number")],
             title="offset with fraction accepted; space separator, lower-case z, offset without colon and epoch seconds refused", source="§2(f) item 31"))
case("69-one-bad-row-in-150", lines(*[row(n, attributes="") for n in range(1, 150)], row(150, abo="0")),
     decoded(149, 1, "load", [(151, "abo", "unknownABO", "digit zero")], title="1 rejected row in 150 stays under the 1 % policy: load without it", source="rejection policy"))
case("70-two-bad-rows-in-150", lines(*[row(n, attributes="") for n in range(1, 149)], row(149, abo="0"), row(150, rhd="X")),
     decoded(148, 2, "refuse", [(150, "abo", "unknownABO", "digit zero"), (151, "rhd", "unknownRhD", "'X'")], title="2 rejected rows in 150 exceed 1 %: refuse the whole file", source="rejection policy"))
case("71-bom-only", b"\xef\xbb\xbf",
     file_error("missingHeader", "no header", line=1) | {"title": "a byte-order mark and nothing else", "source": "§2(f) items 1, 10"}, rows=0)
case("72-control-sha256-upper-case", lines(*GOOD),
     file_error("controlRecordInvalid", "lower-case hex", field="sha256", file="inventory.ctl.json") | {"title": "checksum in upper-case hex", "source": "control record rules"},
     control_raw=lambda c: json.dumps(c).replace(c["sha256"], c["sha256"].upper()))
case("73-same-din-different-product-codes",
     lines(*[row(1, product=p, component=c, collected="2025-05-29T08:00:00Z", expires=e, attributes="")
             for p, c, e in [("E0382V00", "RBC", "2025-07-10T08:00:00Z"), ("E2555V00", "PLASMA", "2026-05-29T08:00:00Z"),
                             ("E3072VA0", "PLT", "2025-06-03T08:00:00Z"), ("E3072VB0", "PLT", "2025-06-03T08:00:00Z")]]),
     decoded(4, 0, "load", title="same DIN, different product codes: accepted (one donation's red cells and plasma, "
             "and the two divisions of its split platelets, are four units)", source="ISBT 128 ST-001 (Data/SOURCES.md)"))
case("74-din-letter-where-digit-belongs",
     lines(row(1, din_text="GARBAGEGARBAG"), row(2, din_text="W00002X000002"), row(3, din_text="=" + din(3) + "00"), GOOD[1].replace(din(2), din(4))),
     decoded(1, 3, "refuse", [(2, "din", "dinInvalidCharacter", "position 2, in the facility identification number"),
                              (3, "din", "dinInvalidCharacter", "position 7, in the year"),
                              (4, "din", "dinWrongLength", "drop the '=' data identifier")],
             title="letters where the DIN's digits belong (FIN pppp, year yy, sequence nnnnnn); the barcode form with '=' and flags",
             source="field rules (ISBT 128 ST-001, Data Structure 001)"), rows=4)


def control_for(csv, rows, overrides):
    control = {"format": "bloodmatch-inventory/1", "centre": CENTRE, "as_of": AS_OF,
               "row_count": rows, "sha256": hashlib.sha256(csv).hexdigest(), "empty_stock": rows == 0}
    for key, value in (overrides or {}).items():
        if value is None:
            control.pop(key, None)
        else:
            control[key] = value
    return control


def default_rows(csv):
    text = csv.decode("utf-8", "replace")
    return max(0, text.count("\n") - 1 + (0 if text.endswith("\n") else 1)) if text else 0


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    names = set()
    for name, csv, expect, rows, control_overrides, control_raw in cases:
        assert name[:2] not in names, f"duplicate number {name}"
        names.add(name[:2])
        folder = CORPUS / name
        folder.mkdir(parents=True)
        (folder / "inventory.csv").write_bytes(csv)
        control = control_for(csv, default_rows(csv) if rows is None else rows, control_overrides)
        text = control_raw(control) if control_raw else json.dumps(control, indent=2) + "\n"
        (folder / "inventory.ctl.json").write_text(text)
        expect = {"now": NOW} | expect
        (folder / "expect.json").write_text(json.dumps(expect, indent=2, ensure_ascii=False) + "\n")
    (CORPUS / "README.md").write_text(README)

    EXAMPLES.mkdir(parents=True, exist_ok=True)
    example_rows = EXAMPLE_ROWS + EXAMPLE_DONATION_ROWS
    example_csv = lines(*[r.replace(CENTRE, "DC-EXAMPLE") for r in example_rows])
    (EXAMPLES / "DC-EXAMPLE.csv").write_bytes(example_csv)
    example_control = control_for(example_csv, len(example_rows), {"centre": "DC-EXAMPLE"})
    (EXAMPLES / "DC-EXAMPLE.ctl.json").write_text(json.dumps(example_control, indent=2) + "\n")
    print(f"wrote {len(cases)} cases to {CORPUS} and the example to {EXAMPLES}")


README = """# Inventory snapshot bad-input corpus

One folder per case: `inventory.csv` (the exact bytes), `inventory.ctl.json` (the control record)
and `expect.json` (the expected outcome). `generate_corpus.py` in the parent folder writes every
case; edit it and rerun rather than editing the files. `InventorySnapshotCorpusTests` decodes each
case whole and in 1-, 7- and 64-byte chunks and checks the outcome exactly.

`expect.json`:
- `now`: the importer clock passed to the decoder.
- `outcome`: `decoded` or `file_error`.
- `decoded`: `accepted`, `rejected`, `verdict` under the default `RejectionPolicy` (`load` or
  `refuse`), and `rejections`: every rejected row in file order with `line`, `field`, `reason`
  and a `message_contains` substring. Optional `expired_at_as_of`, `bom_skipped`.
- `file_error`: `kind` (a `SnapshotFileError.Kind`), `file`, `line`, `field` (null when the
  problem has none) and `message_contains`.
- `title` and `source`: what the case is and which bad-input corpus item of Data/SOURCES.md §S22 it covers.

Generated at test run time instead of committed (too large): a 10 MB line, a file of 1 GB-scale
without any line end (fed until refused, memory stays bounded), and the row cap
(`InventorySnapshotDecoderTests`).

Covered by Store tests (database side, not by this pure decoder):
- §2(f) item 24: the same unit (DIN and product code) in two centres' current snapshots.
- §2(f) item 38: a snapshot whose `as_of` is older than the centre's current one (replay, stale).
- §2(f) item 40: the snapshot in force sent again, same `as_of` and bytes (idempotent no-op);
  the same bytes with a newer `as_of` are a new snapshot (a heartbeat), and with an older
  `as_of` a replay.
- §2(f) items 43 and 45: spool file names (`../`, NUL, symlinks, over-long names) and files still
  being written (write-to-temporary then rename); the checksum and row count in the control record
  are this decoder's share of item 45.

Not applicable to this format: §2(f) items 32–34 (quantity: the format has one row per unit and
no quantity column; integer forms are exercised through the control record's `row_count`).
"""

if __name__ == "__main__":
    main()
