#!/usr/bin/env python3
"""A full disk under an SQLite database, seen from outside (driven by .ci/disk_full.sh).

MOUNT is a small file system (a 24 MiB tmpfs) that holds the database and the export
directory; WORKDIR (elsewhere) holds the server's log. Steps and checks:

1. the server starts and /health/ready answers 200;
2. a filler file (dd) takes all the free space but a little; Patients of ~100 kB are
   posted until one answers 503. That answer has Retry-After, an OperationOutcome
   `no-store` whose text starts with "disk full"; no answer is a 500, ever;
3. while full: more writes answer 503 the same way (their times are measured), reads go
   on (200), /health/ready answers 503, and the log says `database outage began` once
   (not once per request);
4. the filler is deleted: writes answer 201 again within a few seconds (no restart),
   /health/ready is 200 again, the log says `database outage ended`;
5. every write acknowledged before, while and after the disk was full reads back (200,
   the same identifier).

Usage: disk_full.py BIN MOUNT WORKDIR
Prints one summary line on success; the details and the server log on failure.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

READY_TIMEOUT = 60.0
RECOVERY_TIMEOUT = 10.0  # seconds after the space is freed for a write to succeed again
LEAVE_FREE = 1 << 20  # what the filler leaves: room for a few ~100 kB Patients
MAX_WRITES = 300  # writes to post at most before the disk must be full (~30 MB)
WHILE_FULL = 10  # further writes (each with a read and a readiness probe) once full
SYSTEM = "urn:hep-ci:disk-full"


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def big_patient(value):
    """A Patient of about 100 kB: its narrative (a valid XHTML div)."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": "Fulldisk", "given": ["Alex"]}],
        "birthDate": "1970-01-01",
        "text": {"status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
                        + "exercise notes " * 6700 + "</div>"},
    }


class Server:
    def __init__(self, bin_, mount, work):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = os.path.join(mount, "hep.db")
        self.log_path = os.path.join(work, "server.log")
        self.pid_path = os.path.join(work, "server.pid")
        self.bin = bin_
        self.mount = mount
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.bin, "--database-url", self.db, "--bind", f"127.0.0.1:{self.port}",
                 "--export-dir", os.path.join(self.mount, "exports"),
                 "--starter-library", "false",
                 # readiness wants 256 MiB free by default: more than this file system has
                 "--health-min-free-disk-mb", "1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(self.pid_path, "w") as f:
            f.write(str(self.proc.pid))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if os.path.exists(self.pid_path):
            os.unlink(self.pid_path)

    def log_lines(self):
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in text.splitlines()]

    def log_tail(self, n=40):
        lines = self.log_lines()
        keep = [ln for ln in lines
                if "request completed" not in ln or re.search(r"status=5\d\d", ln)]
        return "\n".join(keep[-n:]) + f"\n({len(lines)} lines in all)"


class Client:
    def __init__(self, base):
        self.base = base
        self.token = None
        self.statuses = []  # (what, status) of every answer, to find any 500

    def request(self, method, path, body=None, what=None):
        """(status, headers, JSON body or None, milliseconds)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/fhir+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if data is not None:
            headers["Content-Type"] = "application/fhir+json"
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers)
        began = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, hdrs, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        ms = (time.monotonic() - began) * 1000
        self.statuses.append((what or f"{method} {path}", status))
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, hdrs, parsed, ms

    def ready(self):
        return self.request("GET", "/health/ready", what="readiness")

    def create(self, value):
        return self.request("POST", "/fhir/Patient", big_patient(value), what=f"create {value}")


def wait_for(what, probe, timeout):
    """Polls `probe` (true when done) every 0.1 s; the seconds it took, or Failure."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if probe():
            return time.monotonic() - began
        time.sleep(0.1)
    raise Failure(f"{what}: not within {timeout:.0f} s")


def location_id(headers, body):
    loc = headers.get("Location") or ""
    parts = loc.split("/")
    if "_history" in parts:
        return parts[parts.index("_history") - 1]
    return (body or {}).get("id")


def check_disk_full_answer(status, headers, body, what):
    """A 503 as the README says: Retry-After, OperationOutcome no-store, "disk full"."""
    if status != 503:
        raise Failure(f"{what}: {status}, not 503: {json.dumps(body)[:500]}")
    if not headers.get("Retry-After"):
        raise Failure(f"{what}: a 503 without Retry-After")
    issue = ((body or {}).get("issue") or [{}])[0]
    text = f"{issue.get('diagnostics') or ''} {(issue.get('details') or {}).get('text') or ''}"
    if (body or {}).get("resourceType") != "OperationOutcome" or "disk full" not in text:
        raise Failure(f"{what}: a 503 that does not say disk full: {json.dumps(body)[:500]}")
    if issue.get("code") != "no-store":
        raise Failure(f"{what}: a 503 of code {issue.get('code')}, not no-store")
    return headers.get("Retry-After")


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    bin_, mount, work = sys.argv[1:4]
    filler = os.path.join(mount, "filler")
    server = Server(bin_, mount, work)
    client = Client(server.base)
    acked = []  # (id, identifier value, phase)
    problems = []  # checks that failed but let the run go on to the next steps
    try:
        # 1. the server starts on the small file system and is ready
        server.start()
        def started():
            if server.proc.poll() is not None:
                raise Failure(f"the server exited with {server.proc.returncode} at start")
            return _quiet(lambda: client.ready()[0] == 200)
        wait_for("/health/ready 200 at start", started, READY_TIMEOUT)
        client.token = subprocess.run(
            [bin_, "dev-token", "--database-url", server.db, "--scope", "system/*.cruds"],
            check=True, capture_output=True, text=True, timeout=60).stdout.strip()
        for i in range(3):
            status, headers, body, _ = client.create(f"before-{i}")
            if status != 201:
                raise Failure(f"a write before the disk is full: {status} {json.dumps(body)[:500]}")
            acked.append((location_id(headers, body), f"before-{i}", "before"))

        # 2. fill the file system but a little, then write until a write answers 503
        count = max(0, (free_bytes(mount) - LEAVE_FREE) // 65536)
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", f"count={count}",
                        "status=none"], check=True, timeout=60)
        full_at = None
        answers_503 = []  # milliseconds
        retry_after = None
        for i in range(MAX_WRITES):
            value = f"filling-{i}"
            status, headers, body, ms = client.create(value)
            if status == 201:
                acked.append((location_id(headers, body), value, "while filling"))
                continue
            retry_after = check_disk_full_answer(status, headers, body, f"create {value}")
            answers_503.append(ms)
            full_at = i
            full_since = time.monotonic()
            break
        if full_at is None:
            raise Failure(f"{MAX_WRITES} writes of ~100 kB and no 503: is the disk full? "
                          f"{free_bytes(mount)} bytes free")

        # 3. while full: further writes answer 503 the same way (timed), and the log says
        # the outage began once, not once per request
        def began_lines():
            return [ln for ln in server.log_lines() if "database outage began" in ln]

        def ended_lines():
            return [ln for ln in server.log_lines() if "database outage ended" in ln]

        late_201 = 0

        def write_while_full(value):
            nonlocal late_201
            status, headers, body, ms = client.create(value)
            if status == 201:  # room found after all (a page freed): kept, so checked
                late_201 += 1
                acked.append((location_id(headers, body), value, "while full"))
            else:
                check_disk_full_answer(status, headers, body, f"create {value} while full")
                answers_503.append(ms)

        for i in range(WHILE_FULL):
            write_while_full(f"full-{i}")
        if late_201 > WHILE_FULL // 2:
            raise Failure(f"{late_201} of {WHILE_FULL} writes succeeded once the disk was full")
        writes_only = (len(began_lines()), len(ended_lines()))

        # reads go on (200) while only writes fail; /health/ready answers 503; neither
        # ends the outage in the log, so the writes after them log nothing new
        read_id = acked[0][0]
        not_ready = {}

        def unready():
            status, _, body, _ = client.ready()
            if status == 503:
                not_ready.update({k: v[0].get("output") for k, v in
                                  ((body or {}).get("checks") or {}).items()
                                  if v and v[0].get("status") != "pass"})
            return status == 503
        wait_for("/health/ready 503 while the disk is full", unready, 5)
        for i in range(3):
            status, _, body, _ = client.request("GET", f"/fhir/Patient/{read_id}",
                                                what="read while full")
            if status != 200:
                raise Failure(f"a read while the disk is full: {status} {json.dumps(body)[:500]}")
            write_while_full(f"full-after-read-{i}")
        # the log of the whole time the disk was full: one 'began' (saying disk full),
        # no 'ended'
        began, ended = began_lines(), ended_lines()
        if len(began) != 1 or ended:
            where = {"a GET": 0, "a POST": 0, "no request (a background thread)": 0}
            for ln in ended:
                key = ("a GET" if "request{method=GET" in ln else
                       "a POST" if "request{method=POST" in ln else
                       "no request (a background thread)")
                where[key] += 1
            problems.append(
                f"the outage is logged per request: while the disk stayed full, "
                f"{len(began)} 'database outage began' and {len(ended)} 'database outage "
                f"ended' lines for {len(answers_503)} writes answered 503 (one 'began' and "
                f"no 'ended' expected); {writes_only[0]} 'began' / {writes_only[1]} 'ended' "
                f"after the first {WHILE_FULL + 1} writes alone, the rest once 3 reads (200) "
                f"came in between; 'ended' logged within: "
                + ", ".join(f"{k}: {v}" for k, v in where.items())
                + (f"; e.g. {ended[-1]}" if ended else ""))
        elif "disk full" not in began[0]:
            problems.append(f"the outage line does not say disk full: {began[0]}")
        full_secs = time.monotonic() - full_since
        checkpoint_warnings = sum("WAL checkpoints fail" in ln for ln in server.log_lines())

        # 4. free the space: writes succeed again, without a restart, and readiness passes
        os.unlink(filler)
        freed = time.monotonic()
        recovered = None
        n = 0
        while time.monotonic() - freed < RECOVERY_TIMEOUT:
            value = f"after-{n}"
            n += 1
            status, headers, body, _ = client.create(value)
            if status == 201:
                recovered = time.monotonic() - freed
                acked.append((location_id(headers, body), value, "after"))
                break
            check_disk_full_answer(status, headers, body, f"create {value} after freeing")
            time.sleep(0.1)
        if recovered is None:
            raise Failure(f"writes still fail {RECOVERY_TIMEOUT:.0f} s after the space was freed")
        for i in range(3):
            value = f"after-ok-{i}"
            status, headers, body, _ = client.create(value)
            if status != 201:
                raise Failure(f"a write after recovery: {status} {json.dumps(body)[:500]}")
            acked.append((location_id(headers, body), value, "after"))
        wait_for("/health/ready 200 after the space was freed",
                 lambda: client.ready()[0] == 200, RECOVERY_TIMEOUT)
        ready_again = time.monotonic() - freed  # (readiness runs its checks once a second)
        if server.proc.poll() is not None:
            raise Failure(f"the server exited ({server.proc.returncode})")
        # the end is logged by a write served once no write has met the full disk for a
        # quiet second (small writes may fit between refused ones while it is full)
        deadline = time.monotonic() + 5
        while len(ended_lines()) == len(ended) and time.monotonic() < deadline:
            value = f"after-quiet-{len(acked)}"
            status, headers, body, _ = client.create(value)
            if status != 201:
                raise Failure(f"a write after recovery: {status} {json.dumps(body)[:500]}")
            acked.append((location_id(headers, body), value, "after"))
            time.sleep(0.3)
        if len(ended_lines()) != len(ended) + 1:
            problems.append(f"{len(ended_lines()) - len(ended)} 'database outage ended' lines once writes succeed again (one expected)")

        # 5. every acknowledged write reads back, whole
        for rid, value, phase in acked:
            status, _, body, _ = client.request("GET", f"/fhir/Patient/{rid}", what="read back")
            ident = ((body or {}).get("identifier") or [{}])[0].get("value")
            if status != 200 or ident != value:
                raise Failure(f"lost: Patient/{rid} ({value}, acknowledged {phase}) "
                              f"answers {status} with identifier {ident}")

        # no 500 (or any 5xx but the 503s) at any point, in the answers or the log
        bad = [f"{w}: {s}" for w, s in client.statuses if s >= 500 and s != 503]
        bad += [ln for ln in server.log_lines() if re.search(r"status=5(?!03)\d\d", ln)]
        if bad:
            problems.append("5xx answers other than 503:\n" + "\n".join(bad[:20]))
        phases = {p: sum(1 for a in acked if a[2] == p) for p in
                  ("before", "while filling", "while full", "after")}
        figures = (
            f"503 after {phases['while filling']} writes on the filled disk; "
            f"{len(answers_503)} answers 503 'disk full' Retry-After {retry_after} in "
            f"p50 {percentile(answers_503, 50):.0f} ms / max {max(answers_503):.0f} ms; "
            f"reads 200 and /health/ready 503 ({', '.join(sorted(not_ready))}) while full; "
            f"{len(began_lines())} 'outage began' line(s), {checkpoint_warnings} "
            f"'WAL checkpoints fail' warnings in {full_secs:.1f} s full; writes back "
            f"{recovered * 1000:.0f} ms and ready {ready_again * 1000:.0f} ms after the space "
            f"was freed; {len(acked)} acknowledged writes read back ({phases['before']} "
            f"before, {phases['while filling'] + phases['while full']} while filling, "
            f"{phases['after']} after)")
        if problems:
            raise Failure("\n  ".join([figures] + problems))
        print(f"disk full: {figures}; no 500")
        return 0
    except Failure as e:
        print(f"disk full: FAILED: {e}")
        print("--- server log (tail) ---")
        try:
            print(server.log_tail())
        except OSError:
            print("(no server log)")
        return 1
    finally:
        server.stop()


def _quiet(probe):
    """`probe()`, false when the server does not answer yet."""
    try:
        return probe()
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    sys.exit(main())
