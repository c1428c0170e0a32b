"""Validates FHIR R4 JSON files with fhir.resources (pydantic models of R4 4.0.1).

Usage: python validate.py FILE...   Exit status 1 when any file is invalid.
"""
import json
import sys

from fhir.resources import construct_fhir_element

failed = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        resource = json.load(f)
    try:
        construct_fhir_element(resource["resourceType"], resource)
    except Exception as e:  # the library raises pydantic and lookup errors
        failed += 1
        print(f"fhir.resources: {path}: {e}")
print(f"fhir.resources: {len(sys.argv) - 1 - failed} valid, {failed} invalid")
sys.exit(1 if failed else 0)
