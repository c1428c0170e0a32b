#!/usr/bin/env python3
"""Imports Synthea transaction Bundles into a running server and checks the result.

Usage: synthea.py BASE_URL DIR [EXPORT_DIR]

Posts every Bundle of DIR (hospitals and practitioners first, as Synthea writes them to
be loaded), then checks that every entry was created, that the server holds as many
resources of each type as the Bundles carry, and that every reference of every stored
resource resolves to a stored resource (no `urn:uuid:` left). Exits non-zero on the
first problem. With EXPORT_DIR, then exports the imported types with Bulk Data
`$export`, checks that the NDJSON files hold exactly the stored resources, and writes
each exported resource to EXPORT_DIR as a JSON file for the validators. Standard
library only.
"""

import collections
import glob
import json
import os
import sys
import time
import urllib.request

FHIR_JSON = "application/fhir+json"


def request(method, url, body=None, headers=None, raw=False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", FHIR_JSON)
    req.add_header("Authorization", "Bearer " + os.environ["HEP_TOKEN"])
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if data is not None:
        req.add_header("Content-Type", FHIR_JSON)
    with urllib.request.urlopen(req, timeout=600) as res:
        content = res.read()
        if raw:
            return res.status, res.headers, content
        return res.status, json.loads(content) if content else None


def export(base, types, stored, out_dir):
    """Bulk-exports `types` and checks the files against the stored resources."""
    url = f"{base}/$export?_type={','.join(types)}"
    status, headers, _ = request("GET", url, headers={"Prefer": "respond-async"}, raw=True)
    if status != 202:
        sys.exit(f"$export answered {status}")
    status_url = headers["Content-Location"]
    started = time.monotonic()
    while True:
        status, headers, content = request("GET", status_url, raw=True)
        if status == 200:
            manifest = json.loads(content)
            break
        if time.monotonic() - started > 300:
            sys.exit("the export did not finish in 5 minutes")
        time.sleep(0.2)
    exported = {}
    for f in manifest["output"]:
        _, _, content = request("GET", f["url"], raw=True)
        lines = content.decode().splitlines()
        if len(lines) != f["count"]:
            sys.exit(f"{f['url']}: {len(lines)} lines, the manifest says {f['count']}")
        for line in lines:
            r = json.loads(line)
            exported[f"{r['resourceType']}/{r['id']}"] = r
    if exported != stored:
        missing = set(stored) - set(exported)
        extra = set(exported) - set(stored)
        sys.exit(f"the export differs from the store: {len(missing)} missing, {len(extra)} extra")
    os.makedirs(out_dir, exist_ok=True)
    for key, r in exported.items():
        with open(os.path.join(out_dir, key.replace("/", "-") + ".json"), "w") as f:
            json.dump(r, f)
    print(f"$export: {len(exported)} resources in {len(manifest['output'])} files, "
          f"identical to the stored ones")


def references(value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                out.append(v)
            else:
                references(v, out)
    elif isinstance(value, list):
        for v in value:
            references(v, out)


def main():
    base, folder = sys.argv[1].rstrip("/"), sys.argv[2]
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    files.sort(key=lambda f: 0 if os.path.basename(f).startswith(("hospital", "practitioner")) else 1)
    expected = collections.Counter()
    started = time.monotonic()
    for path in files:
        with open(path) as f:
            bundle = json.load(f)
        for e in bundle.get("entry", []):
            expected[e["resource"]["resourceType"]] += 1
        status, answer = request("POST", base, bundle)
        if status != 200 or answer.get("type") != "transaction-response":
            sys.exit(f"{path}: answered {status}")
        entries = answer.get("entry", [])
        if len(entries) != len(bundle.get("entry", [])):
            sys.exit(f"{path}: {len(entries)} response entries for {len(bundle['entry'])}")
        bad = [e["response"]["status"] for e in entries if not e["response"]["status"].startswith("201")]
        if bad:
            sys.exit(f"{path}: entries not created: {bad[:5]}")
    elapsed = time.monotonic() - started
    total = sum(expected.values())
    print(f"imported {total} resources of {len(expected)} types from {len(files)} Bundles "
          f"in {elapsed:.1f} s ({total / elapsed:.0f} resources/s, unoptimised build)")

    stored = {}
    for res_type, count in sorted(expected.items()):
        url = f"{base}/{res_type}?_count=1000"
        found = 0
        while url:
            _, page = request("GET", url)
            for e in page.get("entry", []):
                r = e["resource"]
                stored[f"{res_type}/{r['id']}"] = r
                found += 1
            url = next((l["url"] for l in page.get("link", []) if l["relation"] == "next"), None)
        if found != count:
            sys.exit(f"{res_type}: {found} stored, {count} in the Bundles")
    print(f"counts per type match: {dict(sorted(expected.items()))}")

    checked = 0
    for key, r in stored.items():
        refs = []
        references(r, refs)
        for ref in refs:
            if ref.startswith("#"):
                continue
            if ref not in stored:
                sys.exit(f"{key}: reference {ref} does not resolve")
            checked += 1
    print(f"all {checked} references of the {len(stored)} stored resources resolve")

    if len(sys.argv) > 3:
        export(base, sorted(expected), stored, sys.argv[3])


if __name__ == "__main__":
    main()
