#!/usr/bin/env python3
"""Durability under kill -9, seen from outside (driven by .ci/crash.sh).

Starts hep-server on DATABASE_URL, drives concurrent writers (Patient creates, each with
a unique identifier, and transaction Bundles of a Patient and two Observations that
reference it by urn:uuid), kills the server with SIGKILL several times while they run,
restarts it on the same database each time and lets the writers go on. Then checks:

- every acknowledged write (201 create, 200 transaction: its 3 entries) reads back by id
  with the identifier it was written with, and a search finds it;
- no transaction is torn: every transaction Patient that a search finds (acknowledged
  or not: one in flight at the kill may have committed) has both its Observations, and
  every Observation of the run has its Patient;
- no answer other than the expected ones (a 5xx other than a 503 with Retry-After, an
  unexpected 4xx) at any point.

Usage: crash.py BIN DATABASE_URL WORKDIR BACKEND CYCLES
Prints one summary line on success; the details and the server log's tail on failure.
Exit status 0 when nothing was lost or torn. Standard library only.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

WRITERS = 8
READY_TIMEOUT = 60.0  # seconds for a (re)started server to answer /health/ready 200
REQUEST_TIMEOUT = 15.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One hep-server process at a time, on a fixed port and database; its output is
    appended to WORKDIR/server.log and its pid kept in WORKDIR/server.pid (for the
    shell's trap)."""

    def __init__(self, bin_, database_url, work):
        self.bin = bin_
        self.database_url = database_url
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(work, "server.log")
        self.pid_path = os.path.join(work, "server.pid")
        self.proc = None

    def start(self, note):
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== crash.py: {note} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.bin, "--database-url", self.database_url,
                 "--bind", f"127.0.0.1:{self.port}",
                 "--export-dir", os.path.join(self.work, "exports"),
                 "--starter-library", "false",
                 # 8 writers of one client pass the default 500 requests/s: not what this checks
                 "--rate-limit-per-second", "100000", "--rate-limit-burst", "100000",
                 # the background jobs are not what this checks: keep them out of the way
                 "--job-interval-ms", "600000"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(self.pid_path, "w") as f:
            f.write(str(self.proc.pid))

    def wait_ready(self):
        """Seconds until /health/ready answers 200; raises if it does not in time."""
        began = time.monotonic()
        while time.monotonic() - began < READY_TIMEOUT:
            if self.proc.poll() is not None:
                raise Failure(f"the server exited with {self.proc.returncode} while starting")
            try:
                with urllib.request.urlopen(self.base + "/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - began
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise Failure(f"/health/ready not 200 within {READY_TIMEOUT:.0f} s of a start")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        os.unlink(self.pid_path)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if os.path.exists(self.pid_path):
            os.unlink(self.pid_path)

    def log_tail(self, n=40):
        """The server log's last lines other than the 2xx/4xx request lines (the ones
        that say what happened: starts, warnings, errors, 5xx)."""
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in lines]
        keep = [ln for ln in lines
                if "request completed" not in ln or re.search(r"status=5\d\d", ln)]
        return "\n".join(keep[-n:]) + f"\n({len(lines)} lines in all)"


class Failure(Exception):
    pass


class Client:
    def __init__(self, base, token):
        self.base = base
        self.token = token

    def request(self, method, path, body=None):
        """(status, headers, parsed JSON body or None); raises OSError/URLError when the
        server does not answer (refused, reset, timed out)."""
        if path.startswith("http"):
            url = path
        else:
            url = f"{self.base}/fhir" + (f"/{path}" if path else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/fhir+json",
            **({"Content-Type": "application/fhir+json"} if data is not None else {}),
        })
        for _ in range(50):
            try:
                with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as r:
                    status, headers, raw = r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                status, headers, raw = e.code, e.headers, e.read()
            if status != 429:
                break
            # throttled (nothing done): wait as told, at most a second, and send it again
            time.sleep(min(float(headers.get("Retry-After") or 1), 1.0))
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, headers, parsed


def id_of(location):
    """`Patient/<id>/_history/1` or an absolute URL of it: the id."""
    parts = location.split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    return parts[-1]


class Run:
    def __init__(self, client, marker):
        self.client = client
        self.marker = marker
        self.sys_create = f"urn:hep-ci:crash:{marker}:create"
        self.sys_tx = f"urn:hep-ci:crash:{marker}:tx"
        self.sys_obs = f"urn:hep-ci:crash:{marker}:tx-obs"
        self.lock = threading.Lock()
        self.creates = []       # (patient id, identifier value), acknowledged
        self.transactions = []  # (value, patient id, [obs ids]), acknowledged
        self.refused = 0        # connections refused (the server is down)
        self.unanswered = 0     # requests sent that got no answer (killed meanwhile)
        self.unavailable = 0    # 503 with Retry-After (a server that is starting)
        self.unexpected = []    # anything else: a defect
        self.stop = threading.Event()

    def patient(self, system, value):
        return {"resourceType": "Patient", "identifier": [{"system": system, "value": value}],
                "name": [{"family": "Crashtest", "given": [value]}], "birthDate": "1970-01-01"}

    def create(self, value):
        status, headers, body = self.client.request(
            "POST", "Patient", self.patient(self.sys_create, value))
        if status == 201:
            loc = headers.get("Location") or ""
            pid = id_of(loc) if loc else (body or {}).get("id")
            if not pid:
                raise Failure(f"create {value}: 201 without Location or id")
            with self.lock:
                self.creates.append((pid, value))
            return None
        return status, headers, body

    def transaction(self, value):
        ref = f"urn:uuid:{uuid.uuid4()}"
        obs = [{"resourceType": "Observation", "status": "final",
                "identifier": [{"system": self.sys_obs, "value": f"{value}-o{k}"}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
                "subject": {"reference": ref}, "valueInteger": k} for k in (1, 2)]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": ref, "resource": self.patient(self.sys_tx, value),
             "request": {"method": "POST", "url": "Patient"}},
            *({"resource": o, "request": {"method": "POST", "url": "Observation"}} for o in obs),
        ]}
        status, headers, body = self.client.request("POST", "", bundle)
        if status == 200:
            entries = (body or {}).get("entry") or []
            ids = [id_of(((e.get("response") or {}).get("location")) or "") for e in entries]
            if len(ids) != 3 or not all(ids):
                raise Failure(f"transaction {value}: 200 without 3 locations: {body}")
            with self.lock:
                self.transactions.append((value, ids[0], ids[1:]))
            return None
        return status, headers, body

    def writer(self, w):
        n = 0
        rnd = random.Random(w)
        while not self.stop.is_set():
            n += 1
            kind = "create" if rnd.random() < 0.5 else "tx"
            value = f"{self.marker}-w{w}-{kind}-{n}"
            try:
                bad = (self.create if kind == "create" else self.transaction)(value)
            except Failure as e:
                with self.lock:
                    self.unexpected.append(str(e))
                continue
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
                # refused (the server is down), or reset or cut short (killed while it
                # ran): not acknowledged, so it may or may not have been kept
                refused = isinstance(getattr(e, "reason", e), ConnectionRefusedError)
                with self.lock:
                    if refused:
                        self.refused += 1
                    else:
                        self.unanswered += 1
                time.sleep(0.02)
                continue
            if bad is None:
                continue
            status, headers, body = bad
            if status == 503 and headers.get("Retry-After"):
                with self.lock:
                    self.unavailable += 1
                time.sleep(0.05)
                continue
            with self.lock:
                self.unexpected.append(f"{kind} {value}: {status} {json.dumps(body)[:400]}")

    def writer_thread(self, w):
        try:
            self.writer(w)
        except Exception as e:  # noqa: BLE001 - a writer that dies must fail the run
            with self.lock:
                self.unexpected.append(f"writer {w} stopped: {e!r}")

    # ---- the checks after the crashes ----

    def search_all(self, query):
        """Every resource a search finds, page by page (`next` links)."""
        found = []
        url = query
        for _ in range(1000):
            status, _, body = self.client.request("GET", url)
            if status != 200:
                raise Failure(f"search {url}: {status} {json.dumps(body)[:400]}")
            found += [e["resource"] for e in body.get("entry") or []
                      if (e.get("search") or {}).get("mode", "match") == "match"]
            nxt = [lk["url"] for lk in body.get("link") or [] if lk.get("relation") == "next"]
            if not nxt:
                return found
            url = nxt[0]
        raise Failure(f"search {query}: more than 1000 pages")

    def verify(self):
        problems = []

        def read(kind, rid, system, value, subject=None):
            status, _, body = self.client.request("GET", f"{kind}/{rid}")
            if status != 200:
                return f"lost: {kind}/{rid} ({value}) answers {status}"
            ident = (body.get("identifier") or [{}])[0]
            if (ident.get("system"), ident.get("value")) != (system, value):
                return f"wrong: {kind}/{rid} has identifier {ident}, not {system}|{value}"
            if subject and (body.get("subject") or {}).get("reference") != subject:
                return f"wrong: {kind}/{rid} has subject {body.get('subject')}, not {subject}"
            return None

        jobs = [("Patient", pid, self.sys_create, v, None) for pid, v in self.creates]
        for v, pid, oids in self.transactions:
            jobs.append(("Patient", pid, self.sys_tx, v, None))
            jobs += [("Observation", oid, self.sys_obs, f"{v}-o{k}", f"Patient/{pid}")
                     for k, oid in enumerate(oids, 1)]
        with ThreadPoolExecutor(WRITERS) as pool:
            problems += [p for p in pool.map(lambda j: read(*j), jobs) if p]

        # what the searches see: the acknowledged writes, and whole transactions only
        created = self.search_all(
            f"Patient?identifier={urllib.parse.quote(self.sys_create)}|&_count=1000&_elements=identifier")
        tx_patients = self.search_all(
            f"Patient?identifier={urllib.parse.quote(self.sys_tx)}|&_count=1000&_elements=identifier")
        tx_obs = self.search_all(
            f"Observation?identifier={urllib.parse.quote(self.sys_obs)}|&_count=1000"
            "&_elements=identifier,subject")
        created_values = [p["identifier"][0]["value"] for p in created]
        found_values = set(created_values)
        for pid, v in self.creates:
            if v not in found_values:
                problems.append(f"not found by search: Patient/{pid} ({v})")
        if len(set(created_values)) != len(created_values):
            problems.append("a create's identifier is stored twice")
        patients = {}
        for p in tx_patients:
            v = p["identifier"][0]["value"]
            if v in patients:
                problems.append(f"a transaction's Patient is stored twice: {v}")
            patients[v] = p["id"]
        for v, pid, _ in self.transactions:
            if patients.get(v) != pid:
                problems.append(f"not found by search: transaction {v} (Patient/{pid})")
        obs_of = {}
        for o in tx_obs:
            obs_of.setdefault((o.get("subject") or {}).get("reference"), []).append(
                o["identifier"][0]["value"])
        torn = 0
        for v, pid in patients.items():
            have = sorted(obs_of.pop(f"Patient/{pid}", []))
            if have != [f"{v}-o1", f"{v}-o2"]:
                torn += 1
                problems.append(f"torn: transaction {v} (Patient/{pid}) has Observations {have}")
        for subject, values in obs_of.items():
            torn += 1
            problems.append(f"torn: Observations {values} of {subject}, a Patient no search finds")
        return problems, torn, len(patients)


def main():
    bin_, database_url, work, backend, cycles = sys.argv[1:6]
    cycles = int(cycles)
    began = time.monotonic()
    server = Server(bin_, database_url, work)
    run = None
    threads = []
    try:
        server.start("first start")
        server.wait_ready()
        token = subprocess.run(
            [bin_, "dev-token", "--database-url", database_url, "--scope", "system/*.cruds"],
            check=True, capture_output=True, text=True, timeout=60).stdout.strip()
        run = Run(Client(server.base, token), uuid.uuid4().hex[:10])
        threads = [threading.Thread(target=run.writer_thread, args=(w,), daemon=True)
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        load_began = time.monotonic()

        # kill -9 under load, restart on the same database, go on
        restarts = []
        for c in range(1, cycles + 1):
            time.sleep(random.uniform(0.5, 2.0))
            server.kill9()
            server.start(f"restart after kill -9 number {c}")
            restarts.append(server.wait_ready())
        time.sleep(random.uniform(0.5, 1.0))  # some load after the last restart too
        run.stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT + 5)
        if any(t.is_alive() for t in threads):
            raise Failure("a writer did not stop")
        load_secs = time.monotonic() - load_began

        problems, torn, found_tx = run.verify()
        problems = run.unexpected + problems
        lost = sum(p.startswith(("lost", "wrong")) for p in problems)
        unfound = sum(p.startswith("not found") for p in problems)
        acked = len(run.creates) + 3 * len(run.transactions)
        if not run.creates or not run.transactions:
            problems.append("no write was acknowledged: the load did not run")
        if problems:
            print(f"crash {backend}: FAILED: {acked} acknowledged writes, "
                  f"{len(run.transactions)} transactions, {cycles} kill -9 cycles, "
                  f"{lost} lost, {torn} torn, {unfound} not found by search, "
                  f"{len(run.unexpected)} unexpected answers")
            for p in problems[:50]:
                print("  " + p)
            if len(problems) > 50:
                print(f"  ... and {len(problems) - 50} more")
            print("--- server log (tail) ---")
            print(server.log_tail())
            return 1
        print(f"crash {backend}: {acked} acknowledged writes, {len(run.transactions)} transactions, "
              f"{cycles} kill -9 cycles, 0 lost, 0 torn ({len(run.creates)} creates; "
              f"{found_tx} transactions found whole by search; {run.unanswered} requests "
              f"cut by a kill, {run.refused} refused while down, {run.unavailable} 503; "
              f"ready again {max(restarts) * 1000:.0f} ms after a restart at most; "
              f"{load_secs:.1f} s of load, {time.monotonic() - began:.1f} s in all)")
        return 0
    except Failure as e:
        print(f"crash {backend}: FAILED: {e}")
        print("--- server log (tail) ---")
        print(server.log_tail())
        return 1
    finally:
        if run is not None:
            run.stop.set()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
