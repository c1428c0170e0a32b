#!/usr/bin/env python3
"""Writes fhir-mapping/src/validate/r4.txt: the elements of every R4 type, and the codes
of every required binding, that the value validator checks.

Input, from HL7's own npm packages of FHIR R4 (4.0.1):
  - `hl7.fhir.r4.corexml`: the core definitions in XML (the StructureDefinitions of
    every resource, complex and primitive datatype; the same content as
    `hl7.fhir.r4.core`, which is published on packages.fhir.org, not on npm);
  - `hl7.fhir.r4.expansions`: the expansion of every ValueSet of the core.

Output, one record per line, fields separated by tabs:
  T  <type> <kind: resource | complex | primitive> <base type or ->
  E  <path below the type> <min> <max: 1 | *> <types> [<binding>]
       types: `code`, `Reference:Patient|Group` (its target types), `#path` (the
       element's definition is that of another element of the same type);
       binding: the key of a V record (a required binding whose codes are known).
  V  <key> <system> <code> <code> ...   (one line per code system of the value set)
  U  <value set>                         (a required binding whose codes cannot be
                                          listed: an external or a filtered code system)

Usage, from the repository root:
    python3 fhir-mapping/generate/r4_definitions.py            # npm pack into a temp dir
    python3 fhir-mapping/generate/r4_definitions.py --core DIR --expansions DIR
                                             # the unpacked `package` directories
Re-run it only to change what is generated; the output is committed, so builds and
tests need no network.
"""

import argparse
import glob
import json
import os
import tempfile
import xml.etree.ElementTree as ET

from r4_package import fail, fetch

CORE = "hl7.fhir.r4.corexml"
EXPANSIONS = "hl7.fhir.r4.expansions"
FHIR_VERSION = "4.0.1"
NS = {"f": "http://hl7.org/fhir"}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "validate", "r4.txt")
FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
SD = "http://hl7.org/fhir/StructureDefinition/"


def val(node, path):
    """The `value` attribute of the first element at `path` under `node`."""
    found = node.find(path, NS)
    return None if found is None else found.get("value")


def vals(node, path):
    return [n.get("value") for n in node.findall(path, NS)]


def type_code(t):
    """The FHIR type of an ElementDefinition.type entry."""
    for ext in t.findall("f:extension", NS):
        if ext.get("url") == FHIR_TYPE:
            return val(ext, "f:valueUrl")
    code = val(t, "f:code")
    if code in SYSTEM_TYPES:
        return SYSTEM_TYPES[code]
    if "/" in code:
        fail(f"unknown type code {code}")
    return code


def target_types(t):
    out = []
    for p in vals(t, "f:targetProfile"):
        if not p.startswith(SD):
            fail(f"target profile {p} is not a core type")
        out.append(p[len(SD):])
    return out


class Expansions:
    """The expansions of the core's ValueSets, by URL."""

    def __init__(self, directory):
        self.by_url = {}
        for path in glob.glob(os.path.join(directory, "ValueSet-*.json")):
            with open(path, encoding="utf-8") as f:
                vs = json.load(f)
            self.by_url[vs["url"]] = vs

    def codes(self, url):
        """{system: [codes]} of a value set, or None when its expansion is not complete."""
        vs = self.by_url.get(url)
        if vs is None or "expansion" not in vs:
            return None
        expansion = vs["expansion"]
        out = {}

        def walk(contains):
            for c in contains:
                if "code" in c and not c.get("abstract"):
                    out.setdefault(c["system"], set()).add(c["code"])
                walk(c.get("contains", []))

        walk(expansion.get("contains", []))
        count = sum(len(c) for c in out.values())
        if not out or ("total" in expansion and expansion["total"] > count) \
                or "offset" in expansion:
            return None
        return {s: sorted(c) for s, c in out.items()}


def structure_definitions(core):
    out = []
    for path in sorted(glob.glob(os.path.join(core, "StructureDefinition-*.xml"))):
        sd = ET.parse(path).getroot()
        kind = val(sd, "f:kind")
        if kind not in ("resource", "complex-type", "primitive-type"):
            continue
        if val(sd, "f:derivation") == "constraint" and kind == "resource":
            continue  # profiles of resources (vital signs...) are not types
        url = val(sd, "f:url")
        if not url.startswith(SD) or val(sd, "f:type") != url[len(SD):] and kind != "complex-type":
            continue
        if kind == "complex-type" and val(sd, "f:derivation") == "constraint" \
                and val(sd, "f:type") != "Quantity":
            continue  # extensions and other datatype profiles; SimpleQuantity stays
        if val(sd, "f:fhirVersion") != FHIR_VERSION:
            fail(f"{url} is not FHIR {FHIR_VERSION}")
        out.append(sd)
    return out


def generate(core, expansions):
    terms = Expansions(expansions)
    lines, keys, unlisted = [], {}, set()
    for sd in structure_definitions(core):
        name = val(sd, "f:id")
        kind = {"resource": "resource", "complex-type": "complex",
                "primitive-type": "primitive"}[val(sd, "f:kind")]
        base = val(sd, "f:baseDefinition") or ""
        base = base[len(SD):] if base.startswith(SD) else "-"
        lines.append(f"T\t{name}\t{kind}\t{base}")
        if kind == "primitive":
            continue
        elements = sd.findall("f:snapshot/f:element", NS)
        root = val(elements[0], "f:path")
        for el in elements[1:]:
            path = val(el, "f:path")
            if not path.startswith(root + "."):
                fail(f"{name}: element {path} outside {root}")
            rel = path[len(root) + 1:]
            ref = val(el, "f:contentReference")
            if ref is not None:
                if not ref.startswith("#" + root + "."):
                    fail(f"{name}: contentReference {ref}")
                types = "#" + ref[len(root) + 2:]
            else:
                parts = []
                for t in el.findall("f:type", NS):
                    code = type_code(t)
                    targets = target_types(t) if code == "Reference" else []
                    parts.append(code + ":" + "|".join(targets) if targets else code)
                if not parts:
                    fail(f"{name}: {path} has no type")
                types = ",".join(parts)
            record = f"E\t{rel}\t{val(el, 'f:min')}\t{val(el, 'f:max')}\t{types}"
            strength = val(el, "f:binding/f:strength")
            vs = val(el, "f:binding/f:valueSet")
            if strength == "required" and vs:
                vs = vs.split("|")[0]
                if vs not in keys and vs not in unlisted:
                    codes = terms.codes(vs)
                    if codes:
                        keys[vs] = codes
                    else:
                        unlisted.add(vs)
                if vs in keys:
                    record += f"\t{vs}"
            lines.append(record)
    for vs, codes in sorted(keys.items()):
        for system, cs in sorted(codes.items()):
            lines.append("V\t" + vs + "\t" + system + "\t" + "\t".join(cs))
    for vs in sorted(unlisted):
        lines.append(f"U\t{vs}")
    return lines, len(keys), len(unlisted)


def version_of(directory, name):
    with open(os.path.join(directory, "package.json"), encoding="utf-8") as f:
        package = json.load(f)
    if package.get("name") != name or package.get("version") != FHIR_VERSION:
        fail(f"{directory} is not {name} {FHIR_VERSION}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", help=f"the unpacked package directory of {CORE}")
    ap.add_argument("--expansions", help=f"the unpacked package directory of {EXPANSIONS}")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        core = args.core or fetch(tmp, CORE, FHIR_VERSION)
        expansions = args.expansions or fetch(tmp, EXPANSIONS, FHIR_VERSION)
        version_of(core, CORE)
        version_of(expansions, EXPANSIONS)
        lines, listed, unlisted = generate(core, expansions)
    header = [
        f"# The elements and required bindings of FHIR R4 {FHIR_VERSION}, from HL7's npm",
        f"# packages {CORE} and {EXPANSIONS} {FHIR_VERSION}.",
        "# Generated by fhir-mapping/generate/r4_definitions.py. Do not edit: run the generator.",
    ]
    for line in lines:
        if "\n" in line:
            fail(f"a record holds a line break: {line[:80]}")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(header + lines) + "\n")
    types = sum(1 for l in lines if l.startswith("T\t"))
    elements = sum(1 for l in lines if l.startswith("E\t"))
    print(f"{args.out}: {types} types, {elements} elements, {listed} required value sets "
          f"listed, {unlisted} not listable")


if __name__ == "__main__":
    main()
