"""Malformed and hostile FHIR documents for the FHIR face (Jobs/checks/fhir.sh), with the answer
each must get: the HTTP status and the element the OperationOutcome names. Each is built from a
valid SupplyRequest (or Dispense update) by one change, so each tests one rule. None may store
anything."""
import copy
import datetime
import json

BASE = "https://bloodmatch.example/fhir"
CLIENT_SYSTEM = "urn:oid:2.16.840.1.113883.2.1"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ahead(days):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).strftime("%Y-%m-%d")


def hours_ahead(hours):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def supply_request(priority, hospital, quantity=1, needed_hours=None, identifier=None, group="278148006"):
    """A valid SupplyRequest: red cells for an O RhD negative recipient (SNOMED CT)."""
    body = {
        "resourceType": "SupplyRequest",
        "status": "active",
        "priority": priority,
        "item": {"concept": {"coding": [{"system": BASE + "/CodeSystem/component", "code": "RBC"}]}},
        "quantity": {"value": quantity, "unit": "unit"},
        "deliverTo": {"reference": "Organization/" + hospital},
        "parameter": [{"code": {"coding": [{"system": BASE + "/CodeSystem/order-parameter", "code": "recipient-group"}]},
                       "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": group}]}}],
    }
    if needed_hours is not None:
        body["occurrenceDateTime"] = hours_ahead(needed_hours)
    if identifier:
        body["identifier"] = [{"system": CLIENT_SYSTEM, "value": identifier}]
    return body


def documents(hospital, other):
    """Every case: name, method, path, body (text), expected status, expected element."""
    valid = supply_request("routine", hospital, quantity=2, needed_hours=30)
    cases = []

    def add(name, change, status=400, expression=None, headers=None, raw=None, method="POST", path="/SupplyRequest"):
        body = copy.deepcopy(valid)
        if change:
            change(body)
        cases.append({"name": name, "method": method, "path": path, "status": status, "expression": expression,
                      "headers": headers or {}, "body": raw if raw is not None else json.dumps(body)})

    def setter(path, value):
        def change(body):
            target = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return change

    def remover(key):
        return lambda body: body.pop(key)

    # The document itself.
    add("not_json", None, raw="{resourceType: SupplyRequest", expression="body")
    add("json_array", None, raw="[]", expression="SupplyRequest")
    add("empty_body", None, raw="", expression="body")
    add("duplicate_key", None, raw='{"resourceType":"SupplyRequest","priority":"routine","priority":"stat"}', expression="body")
    add("deep_nesting", None, raw='{"resourceType":"SupplyRequest","extension":' + "[" * 40 + "]" * 40 + "}", expression="body")
    add("huge_body", None, raw=json.dumps({**valid, "text": {"status": "generated", "div": "x" * 70000}}), status=413, expression="body")
    add("invalid_utf8", None, raw=b'{"resourceType":"SupplyRequest","priority":"\xff"}', expression="body")
    # Wrong resource or version.
    add("wrong_resource_type", setter(["resourceType"], "MedicationRequest"), expression="resourceType")
    add("missing_resource_type", remover("resourceType"), expression="resourceType")
    add("bundle_posted", None, raw=json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": valid}]}),
        expression="resourceType")
    add("r4_item_codeable_concept", lambda b: (b.pop("item"), b.update({"itemCodeableConcept": {"text": "red cells"}})),
        expression="itemCodeableConcept")
    add("fhir_version_4", None, status=415, headers={"Content-Type": "application/fhir+json; fhirVersion=4.0"}, expression="Content-Type")
    add("xml_body", None, status=415, headers={"Content-Type": "application/fhir+xml"}, raw="<SupplyRequest/>", expression="Content-Type")
    add("id_on_create", setter(["id"], "mine"), expression="SupplyRequest.id")
    # Unknown and refused elements.
    add("unknown_element", setter(["unitPrice"], 3), expression="unitPrice")
    add("modifier_extension", setter(["modifierExtension"], [{"url": "http://example.org/x", "valueBoolean": True}]), expression="modifierExtension")
    add("patient_data", setter(["deliverFor"], {"reference": "Patient/123"}), expression="deliverFor")
    add("deliver_from_centre", setter(["deliverFrom"], {"reference": "Location/DCF1"}), expression="deliverFrom")
    add("unknown_parameter", lambda b: b["parameter"].append({"code": {"coding": [{"system": BASE + "/CodeSystem/order-parameter", "code": "price"}]},
                                                              "valueString": "low"}), expression="parameter[1].code")
    add("parameter_value_boolean", lambda b: b["parameter"].append({"code": {"coding": [{"system": BASE + "/CodeSystem/order-parameter", "code": "requirement"}]},
                                                                    "valueBoolean": True}), expression="parameter[1].valueBoolean")
    # Status and priority.
    add("status_draft", setter(["status"], "draft"), expression="SupplyRequest.status")
    add("priority_missing", remover("priority"), expression="SupplyRequest.priority")
    add("priority_unknown", setter(["priority"], "whenever"), expression="SupplyRequest.priority")
    add("priority_array", setter(["priority"], ["stat"]), expression="SupplyRequest.priority")
    add("contradictory_stat_next_week", lambda b: b.update({"priority": "stat", "occurrenceDateTime": hours_ahead(24 * 7)}), status=422,
        expression="SupplyRequest.priority")
    add("contradictory_routine_in_20_minutes", setter(["occurrenceDateTime"], hours_ahead(1 / 3)), status=422, expression="SupplyRequest.priority")
    add("occurrence_in_past", setter(["occurrenceDateTime"], hours_ahead(-5)), expression="SupplyRequest.occurrenceDateTime")
    add("occurrence_date_only", setter(["occurrenceDateTime"], days_ahead(3)), expression="SupplyRequest.occurrenceDateTime")
    add("occurrence_no_zone", setter(["occurrenceDateTime"], hours_ahead(30)[:-1]), expression="SupplyRequest.occurrenceDateTime")
    add("occurrence_period", lambda b: (b.pop("occurrenceDateTime"), b.update({"occurrencePeriod": {"start": hours_ahead(30)}})),
        expression="occurrencePeriod")
    # Item and quantity.
    add("item_missing", remover("item"), expression="SupplyRequest.item")
    add("item_reference", setter(["item"], {"reference": {"reference": "BiologicallyDerivedProduct/T000126100001-E0398V00"}}), expression="SupplyRequest.item")
    add("item_unknown_component", setter(["item", "concept", "coding", 0, "code"], "LIVER"), expression="SupplyRequest.item.concept")
    add("item_wrong_system", setter(["item", "concept", "coding", 0, "system"], "http://snomed.info/sct"), expression="SupplyRequest.item.concept")
    add("quantity_zero", setter(["quantity", "value"], 0), expression="SupplyRequest.quantity.value")
    add("quantity_negative", setter(["quantity", "value"], -2), expression="SupplyRequest.quantity.value")
    add("quantity_fraction", setter(["quantity", "value"], 1.5), expression="SupplyRequest.quantity.value")
    add("quantity_huge", setter(["quantity", "value"], 10 ** 30), expression="SupplyRequest.quantity.value")
    add("quantity_string", setter(["quantity", "value"], "2"), expression="SupplyRequest.quantity.value")
    add("quantity_comparator", setter(["quantity", "comparator"], ">="), expression="SupplyRequest.quantity.comparator")
    # Recipient group, requirements, context.
    add("group_unknown_snomed", setter(["parameter", 0, "valueCodeableConcept", "coding", 0, "code"], "12345"), expression="parameter[0].valueCodeableConcept")
    add("group_isbt_special_message", lambda b: b["parameter"][0]["valueCodeableConcept"].update(
        {"coding": [{"system": "https://www.isbt128.org/uri/ABORhD", "code": "Md"}]}), expression="parameter[0].valueCodeableConcept")
    add("group_two_codings", lambda b: b["parameter"][0]["valueCodeableConcept"]["coding"].append(
        {"system": "http://snomed.info/sct", "code": "278147001"}), expression="parameter[0].valueCodeableConcept")
    add("group_twice", lambda b: b["parameter"].append(copy.deepcopy(b["parameter"][0])), expression="parameter[1]")
    add("requirement_unknown", lambda b: b["parameter"].append({"code": {"coding": [{"system": BASE + "/CodeSystem/order-parameter", "code": "requirement"}]},
                                                                "valueCodeableConcept": {"coding": [{"system": BASE + "/CodeSystem/requirement", "code": "GLOWING"}]}}),
        expression="parameter[1].valueCodeableConcept")
    add("context_contradictory", lambda b: b["parameter"].append({"code": {"coding": [{"system": BASE + "/CodeSystem/order-parameter", "code": "recipient-context"}]},
                                                                  "valueString": "female,male"}), expression="parameter[1].valueString")
    add("max_age_out_of_range", lambda b: b["parameter"].append({"code": {"coding": [{"system": BASE + "/CodeSystem/order-parameter", "code": "max-unit-age-days"}]},
                                                                 "valueQuantity": {"value": 9000, "code": "d"}}), expression="parameter[1].valueQuantity.value")
    # Other hospitals.
    add("deliver_to_other_hospital", setter(["deliverTo"], {"reference": "Organization/" + other}), status=403, expression="SupplyRequest.deliverTo")
    add("requester_other_hospital", setter(["requester"], {"reference": "Organization/" + other}), status=403, expression="SupplyRequest.requester")
    add("deliver_to_patient", setter(["deliverTo"], {"reference": "Patient/123"}), expression="SupplyRequest.deliverTo.reference")
    add("deliver_to_missing", remover("deliverTo"), expression="SupplyRequest.deliverTo")
    add("dispense_search_bad_reference", None, method="GET", path="/BiologicallyDerivedProductDispense?supply-request=SupplyRequest/x%2Fy",
        raw="", expression="supply-request")
    # Identifiers and conditional create.
    add("identifier_two", setter(["identifier"], [{"system": CLIENT_SYSTEM, "value": "A"}, {"system": CLIENT_SYSTEM, "value": "B"}]),
        expression="SupplyRequest.identifier")
    add("if_none_exist_other_criteria", None, headers={"If-None-Exist": "status=active"}, expression="If-None-Exist")
    add("if_none_exist_disagrees", setter(["identifier"], [{"system": CLIENT_SYSTEM, "value": "A"}]),
        headers={"If-None-Exist": "identifier=" + CLIENT_SYSTEM + "|B"}, expression="If-None-Exist")
    add("idempotency_key_bad", None, headers={"Idempotency-Key": "has spaces in it"}, expression="Idempotency-Key")
    # Searches.
    add("search_unknown_parameter", None, method="GET", path="/BiologicallyDerivedProduct?colour=red", raw="", expression="colour")
    add("search_bad_abo_rhd", None, method="GET", path="/BiologicallyDerivedProduct?abo-rhd=Md", raw="", expression="abo-rhd")
    add("search_bad_expiry_prefix", None, method="GET", path="/BiologicallyDerivedProduct?expiration-date=2026-12-10", raw="", expression="expiration-date")
    add("search_count_huge", None, method="GET", path="/BiologicallyDerivedProduct?_count=100000", raw="", expression="_count")
    add("search_unavailable_status", None, method="GET", path="/BiologicallyDerivedProduct?product-status=unavailable", raw="", expression="product-status")
    add("search_wrong_system", None, method="GET", path="/BiologicallyDerivedProduct?code=http://snomed.info/sct%7CE0398", raw="", expression="code")
    add("read_bad_id", None, method="GET", path="/BiologicallyDerivedProduct/..%2F..%2Fetc", raw="", expression="id")
    add("accept_r4", None, method="GET", path="/BiologicallyDerivedProduct", raw="", status=406,
        headers={"Accept": "application/fhir+json; fhirVersion=4.0"}, expression="Accept")
    # Dispense updates that are not reports.
    add("dispense_put_unknown", None, method="PUT", path="/BiologicallyDerivedProductDispense/00000000-0000-0000-0000-000000000000-T000126100002-E0336V00",
        raw=json.dumps({"resourceType": "SupplyRequest"}), status=404, expression="id")
    return cases
