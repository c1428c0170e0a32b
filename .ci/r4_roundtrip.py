#!/usr/bin/env python3
"""Round-trips the official FHIR R4 examples through a running server and measures fidelity.

Usage: r4_roundtrip.py BASE_URL EXAMPLES_DIR [--figures FILE]

EXAMPLES_DIR is the unpacked `package` directory of the npm package
`hl7.fhir.r4.examples` 4.0.1 (one JSON resource per file). The bearer token is read from
HEP_TOKEN (system/*.cruds).

1. Load: PUTs every example with its own id (POST when it has none), in passes: an
   example refused only because a reference does not resolve yet is retried in the next
   pass, until a pass accepts nothing new; the examples still blocked by references are
   then sent together as one transaction Bundle (reference cycles), dropping the entries
   the server names as unresolvable and retrying a few times.
2. JSON: reads every accepted resource back as JSON and compares it with the example as
   sent (numbers compared by their text), ignoring meta.versionId and meta.lastUpdated.
3. XML: reads every accepted resource as XML, PUTs that XML back, reads it as JSON and
   compares again; also counts the narratives (text.div) that survive the XML trip
   byte for byte.
4. Prints a summary and, with --figures FILE, writes the figures as JSON.

Exits 0 whatever the figures are (they are for a report); exits 1 when the server is
unreachable or answers 5xx to any request. Standard library only.
"""

import collections
import concurrent.futures
import glob
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
WORKERS = 8
TRANSACTION_TRIES = 12

BASE = ""
server_errors = []
server_errors_lock = threading.Lock()


class Unreachable(Exception):
    pass


def request(method, url, body=None, content_type=FHIR_JSON, accept=FHIR_JSON, timeout=300):
    """Sends `body` (bytes) and answers (status, headers, content bytes), 4xx included.

    A 429 is retried after its Retry-After. A 5xx is recorded (and printed) as a server
    bug; an unreachable server raises Unreachable.
    """
    for attempt in range(60):
        status, headers, content = send(method, url, body, content_type, accept, timeout)
        if status != 429:
            break
        time.sleep(min(float(headers.get("Retry-After") or 1), 10))
    if status >= 500:
        message = f"{method} {url} answered {status}: {content[:500].decode(errors='replace')}"
        print("SERVER ERROR: " + message, file=sys.stderr, flush=True)
        with server_errors_lock:
            server_errors.append(message)
    return status, headers, content


def send(method, url, body, content_type, accept, timeout):
    parts = urllib.parse.urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    headers = {"Accept": accept, "Authorization": "Bearer " + os.environ["HEP_TOKEN"]}
    if body is not None:
        headers["Content-Type"] = content_type
    connection_type = (http.client.HTTPSConnection if parts.scheme == "https"
                       else http.client.HTTPConnection)
    conn = connection_type(parts.netloc, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (413) and close before the whole body is sent.
            pass
        try:
            res = conn.getresponse()
            return res.status, res.headers, res.read()
        except (http.client.HTTPException, OSError) as e:
            if body is None or not alive(parts):
                raise Unreachable(f"{method} {url}: {e}") from e
            return 0, {}, (f"the connection closed while a body of {len(body)} bytes was "
                           f"sent, without an answer").encode()
    except (ConnectionRefusedError, TimeoutError, OSError) as e:
        raise Unreachable(f"{method} {url}: {e}") from e
    finally:
        conn.close()


def alive(parts):
    try:
        conn = http.client.HTTPConnection(parts.netloc, timeout=30)
        conn.request("GET", urllib.parse.urlsplit(BASE).path + "/metadata")
        return conn.getresponse().status < 500
    except (http.client.HTTPException, OSError):
        return False


def issues_of(content):
    try:
        outcome = json.loads(content)
    except ValueError:
        return []
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return []
    return outcome.get("issue", [])


def first_diagnostics(status, content):
    issues = issues_of(content)
    if issues:
        i = issues[0]
        return i.get("diagnostics") or i.get("details", {}).get("text") or i.get("code", "")
    return content[:200].decode(errors="replace")


def unresolved_references(status, content):
    """The references a 422 names as not resolving (None when it names none)."""
    if status != 422:
        return None
    refs = []
    for i in issues_of(content):
        m = re.search(r"reference `([^`]*)` does not resolve", i.get("diagnostics", ""))
        if m:
            refs.append(m.group(1))
    return refs or None


def only_reference_issues(content):
    issues = issues_of(content)
    return bool(issues) and all("does not resolve" in i.get("diagnostics", "") for i in issues)


# ---------------------------------------------------------------- comparison


def num(s):
    return ("num", s)


def parse_text_numbers(content):
    """Parses JSON keeping every number as its text, so that `1E-22` differs from `1e-22`."""
    return json.loads(content, parse_float=num, parse_int=num)


def normalise(resource, ignore_id=False):
    resource = dict(resource)
    meta = resource.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if meta:
            resource["meta"] = meta
        else:
            del resource["meta"]
    if ignore_id:
        resource.pop("id", None)
    return resource


def first_difference(a, b, path):
    """The path of the first difference between `a` (the example) and `b`, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b:
                return f"{path}.{k} (missing)"
            if k not in a:
                return f"{path}.{k} (added)"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        if len(a) != len(b):
            return f"{path} ({len(a)} items, {len(b)} read back)"
        return None
    if a != b:
        return f"{path} ({show(a)} vs {show(b)})"
    return None


def show(v):
    if isinstance(v, tuple):
        v = v[1]
    text = json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


def narratives(resource, path, out):
    """Every text.div of `resource`, its contained resources and its Bundle entries."""
    if not isinstance(resource, dict):
        return
    text = resource.get("text")
    if isinstance(text, dict) and isinstance(text.get("div"), str):
        out[path] = text["div"]
    for i, c in enumerate(resource.get("contained") or []):
        narratives(c, f"{path}.contained[{i}]", out)
    if resource.get("resourceType") == "Bundle":
        for i, e in enumerate(resource.get("entry") or []):
            if isinstance(e, dict):
                narratives(e.get("resource"), f"{path}.entry[{i}].resource", out)


# ---------------------------------------------------------------- loading


class Example:
    def __init__(self, path):
        self.file = os.path.basename(path)
        with open(path, "rb") as f:
            self.content = f.read()
        self.json = json.loads(self.content)
        self.type = self.json["resourceType"]
        self.id = self.json.get("id")
        self.key = f"{self.type}/{self.id}" if self.id else None
        self.status = None  # "accepted", "not_storable", "refused"
        self.http = None
        self.why = None
        self.missing = None  # references the last 422 named as not resolving
        self.stored_id = self.id

    def refuse(self, status, content):
        self.status, self.http, self.why = "refused", status, first_diagnostics(status, content)


def put(base, ex):
    if ex.id:
        url = f"{base}/{ex.type}/{urllib.parse.quote(ex.id, safe='')}"
        status, headers, content = request("PUT", url, ex.content)
    else:
        status, headers, content = request("POST", f"{base}/{ex.type}", ex.content)
    if status in (200, 201):
        ex.status, ex.missing = "accepted", None
        if not ex.id:
            location = headers.get("Location", "")
            m = re.search(rf"{ex.type}/([^/]+)", location)
            ex.stored_id = m.group(1) if m else None
            if ex.stored_id is None:
                body = json.loads(content) if content else {}
                ex.stored_id = body.get("id")
        return
    if status == 404 and ex.type == "Parameters":
        ex.status, ex.http, ex.why = "not_storable", status, first_diagnostics(status, content)
        return
    ex.refuse(status, content)
    refs = unresolved_references(status, content)
    if refs is not None:
        ex.missing = refs
        ex.only_refs = only_reference_issues(content)


def target_key(reference):
    parts = reference.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else reference


def load(base, examples, pool):
    todo = list(examples)
    passes = 0
    while todo:
        passes += 1
        started = time.monotonic()
        list(pool.map(lambda ex: put(base, ex), todo))
        accepted = sum(1 for ex in todo if ex.status == "accepted")
        blocked = [ex for ex in todo if ex.status == "refused" and ex.missing is not None]
        print(f"pass {passes}: {len(todo)} sent, {accepted} accepted, {len(blocked)} waiting "
              f"on references ({time.monotonic() - started:.0f} s)", flush=True)
        if accepted == 0:
            break
        todo = blocked
    transaction(base, [ex for ex in examples if ex.status == "refused" and ex.missing is not None])


def prune(entries):
    candidates = {ex.key: ex for ex in entries}
    changed = True
    while changed:
        changed = False
        for key, ex in list(candidates.items()):
            if any("/_history/" in ref or target_key(ref) not in candidates for ref in ex.missing):
                del candidates[key]
                changed = True
    return [ex for ex in entries if ex.key in candidates]


def transaction(base, blocked):
    """Loads the reference-blocked examples that only wait on each other as one transaction."""
    # A reference to a resource that exists nowhere (neither stored nor among the blocked
    # ones) can never resolve: such examples, and those that wait on them, stay out.
    entries = prune([ex for ex in blocked if ex.id and getattr(ex, "only_refs", False)])
    print(f"transaction: {len(blocked)} examples wait on references, {len(entries)} of them "
          f"only on each other", flush=True)
    for attempt in range(1, TRANSACTION_TRIES + 1):
        if not entries:
            return
        body = ('{"resourceType":"Bundle","type":"transaction","entry":['
                + ",".join('{"resource":' + ex.content.decode() + ',"request":{"method":"PUT",'
                           '"url":' + json.dumps(f"{ex.type}/{ex.id}") + '}}' for ex in entries)
                + "]}").encode()
        started = time.monotonic()
        status, _, content = request("POST", base, body, timeout=900)
        elapsed = time.monotonic() - started
        if status == 200:
            answer = json.loads(content)
            answers = answer.get("entry", [])
            for ex, e in zip(entries, answers):
                s = e.get("response", {}).get("status", "")
                if s.startswith(("200", "201")):
                    ex.status, ex.http, ex.why, ex.missing = "accepted", None, None, None
            print(f"transaction {attempt}: {len(entries)} entries accepted ({elapsed:.0f} s)",
                  flush=True)
            return
        named = {}  # entry index: the diagnostics naming it
        for i in issues_of(content):
            diagnostics = i.get("diagnostics", "")
            for where in (i.get("expression") or []) + [diagnostics]:
                m = re.match(r"Bundle\.entry\[(\d+)\]", where)
                if m:
                    named.setdefault(int(m.group(1)),
                                     re.sub(r"^Bundle\.entry\[\d+\] \([^)]*\): ", "", diagnostics))
        print(f"transaction {attempt}: {status}, {len(named) or 'no'} entries named: "
              f"{first_diagnostics(status, content)[:150]} ({elapsed:.0f} s)", flush=True)
        if named:
            for n, why in named.items():
                if n < len(entries):
                    entries[n].status, entries[n].http, entries[n].why = "refused", status, why
            entries = prune([ex for n, ex in enumerate(entries) if n not in named])
        elif len(entries) > 1:
            # Nothing named: keep the half that may still load together (a guess).
            half = entries[len(entries) // 2:]
            for ex in half:
                ex.refuse(status, content)
            entries = entries[:len(entries) // 2]
        else:
            entries[0].refuse(status, content)
            return


# ---------------------------------------------------------------- round trips


def read_json(base, ex):
    status, _, content = request("GET", f"{base}/{ex.type}/{urllib.parse.quote(ex.stored_id, safe='')}")
    if status != 200:
        return None, f"(read answered {status})"
    return parse_text_numbers(content), None


def compare(ex, back):
    want = normalise(parse_text_numbers(ex.content), ignore_id=not ex.id)
    got = normalise(back, ignore_id=not ex.id)
    return first_difference(want, got, ex.type)


def json_trip(base, ex):
    back, error = read_json(base, ex)
    return error or compare(ex, back)


def xml_trip(base, ex):
    """Answers (first difference or None, {narrative path: exact?})."""
    url = f"{base}/{ex.type}/{urllib.parse.quote(ex.stored_id, safe='')}"
    wanted = {}
    narratives(ex.json, ex.type, wanted)
    status, _, xml = request("GET", url + "?_format=xml", accept=FHIR_XML)
    if status != 200:
        return f"(XML read answered {status})", {p: False for p in wanted}
    status, _, content = request("PUT", url, xml, content_type=FHIR_XML)
    if status not in (200, 201):
        return (f"(XML write answered {status}: {first_diagnostics(status, content)[:120]})",
                {p: False for p in wanted})
    back, error = read_json(base, ex)
    if error:
        return error, {p: False for p in wanted}
    got = {}
    narratives(back, ex.type, got)
    exact = {p: got.get(p) == div for p, div in wanted.items()}
    return compare(ex, back), exact


# ---------------------------------------------------------------- main


def main():
    args = sys.argv[1:]
    figures_file = None
    if "--figures" in args:
        i = args.index("--figures")
        figures_file = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    global BASE
    base, folder = args[0].rstrip("/"), args[1]
    BASE = base
    files = sorted(f for f in glob.glob(os.path.join(folder, "*.json"))
                   if os.path.basename(f) not in ("package.json", ".index.json"))
    examples = [Example(f) for f in files]
    started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            load(base, examples, pool)
            accepted = [ex for ex in examples if ex.status == "accepted"]
            print(f"loaded in {time.monotonic() - started:.0f} s", flush=True)

            t = time.monotonic()
            json_diffs = list(pool.map(lambda ex: json_trip(base, ex), accepted))
            print(f"JSON read back in {time.monotonic() - t:.0f} s", flush=True)

            t = time.monotonic()
            xml_results = list(pool.map(lambda ex: xml_trip(base, ex), accepted))
            print(f"XML round trip in {time.monotonic() - t:.0f} s", flush=True)
    except Unreachable as e:
        print(f"the server is unreachable: {e}", file=sys.stderr)
        sys.exit(1)

    refused = [ex for ex in examples if ex.status == "refused"]
    not_storable = [ex for ex in examples if ex.status == "not_storable"]
    different_json = [{"file": ex.file, "path": d} for ex, d in zip(accepted, json_diffs) if d]
    different_xml = [{"file": ex.file, "path": d} for ex, (d, _) in zip(accepted, xml_results) if d]
    exact = [ok for _, n in xml_results for ok in n.values()]
    figures = {
        "examples": len(examples),
        "accepted": len(accepted),
        "not_storable": len(not_storable),
        "refused": len(refused),
        "equal_json": len(accepted) - len(different_json),
        "equal_xml": len(accepted) - len(different_xml),
        "narratives": len(exact),
        "narratives_exact_xml": sum(exact),
        "refused_examples": [{"file": ex.file, "status": ex.http, "why": ex.why} for ex in refused],
        "different_json": different_json[:50],
        "different_xml": different_xml[:50],
    }

    print(f"\n{len(examples)} examples: {len(accepted)} accepted, {len(not_storable)} not "
          f"storable, {len(refused)} refused ({time.monotonic() - started:.0f} s in all)")
    print(f"JSON: {figures['equal_json']} of {len(accepted)} read back equal")
    print(f"XML:  {figures['equal_xml']} of {len(accepted)} equal after the XML round trip")
    print(f"narratives: {figures['narratives_exact_xml']} of {len(exact)} exact after the XML "
          f"round trip")
    reasons = collections.Counter(
        f"{ex.http} {re.sub(r'`[^`]*`', '`…`', ex.why or '')[:100]}" for ex in refused)
    if reasons:
        print("refusals, most common first:")
        for why, n in reasons.most_common(15):
            print(f"  {n:5}  {why}")
    for title, diffs in (("JSON", different_json), ("XML", different_xml)):
        if diffs:
            print(f"first {title} differences:")
            for d in diffs[:10]:
                print(f"  {d['file']}: {d['path']}")
    if figures_file:
        with open(figures_file, "w") as f:
            json.dump(figures, f, indent=1, ensure_ascii=False)
            f.write("\n")
    if server_errors:
        print(f"\n{len(server_errors)} requests answered 5xx (bugs), the first: {server_errors[0]}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
