// The patient app (served by hep-server at /app/) as a patient uses it, in headless
// Chromium on a phone (390×844, touch), end to end:
//
//   1. the therapist's system makes a program over the API (a Patient in New York time,
//      two exercises of the starter library, one given a picture, three sessions today)
//      and an invitation;
//   2. the patient opens /app/, signs in on the server's pages with the clinic's code,
//      allows the app and lands on Today (three sessions, their steps and the picture;
//      the skip link); a cold and a warm load of Today are measured;
//   3. reports the first session online: the Task is completed with what was typed, and
//      there is one pain Observation;
//   4. reports the second one offline: it waits in the outbox (also across a reload that
//      only the service worker can serve); when the network returns, the answer to the
//      first PATCH is lost on the way back (the server did commit), the app sends it
//      again with the same Idempotency-Key, and the server still has one completion;
//   5. could not do the third one (with a reason);
//   5b. answers the two outcome measures the program assigns, listed on Today under "To
//      answer": the pain scale (NPRS, a row of 0-10 radio buttons: 6), then the
//      Patient-Specific Functional Scale (the ratings appear as their activities are
//      named; two activities named are refused by the form, an answer the server refuses
//      (422) shows its words at the question, and the answers sent offline wait in the
//      outbox and show their score once sent); each with its confirmation and score, and
//      the QuestionnaireResponse, the score Observation and the completed Task on the
//      server;
//   6. Week (each day's counts against the server's Tasks), 7. My program (the sheet in
//      its frame, and "Download PDF" gives a PDF), 8. Progress (charts and tables against
//      the server's $adherence and pain scores, and the outcome measures against
//      $outcomes, with a later NPRS score the clinic records: an important improvement);
//   9. signs out: the stored sign-in and data are gone, and its tokens are revoked;
//  10. signs in again with username and password; the clinic revokes the access and the
//      app says so.
//
// Every screen (the app's and the server's sign-in pages) is scanned with axe-core (WCAG
// 2.0/2.1 A and AA; any serious or critical violation fails) and kept as a screenshot in
// --out (NN-name.png). A cold load of Today is measured (time to body[data-ready=today]
// and the bytes transferred) and printed as one line `PATIENT_APP_FIGURES {...}`, also
// written to --out/figures.json; figures are reported, never asserted.
//
// Two kinds of check: `expect` stops the test at once (the flow cannot go on, or the
// server's state is wrong); `check` is a detail of the DOM contract the app keeps for this
// test (the selectors and texts of each step below; its API is docs/patient-app.md): it is
// reported at once and the test goes on, but fails at the end, so that one run lists every
// broken detail.
//
// The browser's time zone is set to one whose date is not the patient's: the app must
// take "today" from the Patient's tz-code, as the spec says.
//
// Usage (see .ci/patient_app.sh, which builds and starts the server):
//   node .ci/browser/patient_app.mjs --server http://127.0.0.1:PORT --token SYSTEM_TOKEN \
//     --modules DIR_WITH_NODE_MODULES --out target/app [--chromium /usr/bin/chromium]

import { createRequire } from "node:module";
import { deflateSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const started = Date.now();

const { values: opt } = parseArgs({
  options: {
    server: { type: "string" },
    token: { type: "string" },
    modules: { type: "string", default: here },
    out: { type: "string", default: "target/app" },
    chromium: { type: "string" },
  },
});
for (const k of ["server", "token"]) {
  if (!opt[k]) {
    console.error(`patient_app.mjs: --${k} is required`);
    process.exit(2);
  }
}

const server = new URL(opt.server).origin;
const appUrl = `${server}/app/`;
const out = resolve(opt.out);
mkdirSync(out, { recursive: true });

const require = createRequire(join(resolve(opt.modules), "package.json"));
const puppeteer = require("puppeteer-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const PAIN = "http://loinc.org|72514-3";
const REPORT = "https://hep-fhir.org/fhir/CodeSystem/exercise-report";
const STATUS_REASON = "https://hep-fhir.org/fhir/CodeSystem/session-status-reason";
const HEP = "https://hep-fhir.org/fhir";
const QUESTIONNAIRE = `${HEP}/Questionnaire`;
const ANSWER_MEASURE = `${HEP}/CodeSystem/outcome-measure|answer-measure`;
const MEASURE_TASK = `${HEP}/StructureDefinition/hep-outcome-task`;
/** The scope the app needs to send answers to questionnaires. */
const ANSWER_SCOPE = "patient/QuestionnaireResponse.c";
const CLIENT_ID = "hep-app.default";
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const PHONE = { width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { width: 1280, height: 800, deviceScaleFactor: 1, isMobile: false, hasTouch: false };
const ACCESS_ENDED = "Your access to this app has ended";

// ---------------------------------------------------------------------------------
// Checks

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message);
};
/** A check the flow depends on: fails the test at once. */
const expect = (condition, message) => {
  if (!condition) fail(message);
};
/** A detail of the DOM contract: reported now, fails the test at the end. */
const defects = [];
const check = (condition, message) => {
  if (!condition) {
    defects.push(message);
    console.log(`DEFECT: ${message}`);
  }
  return condition;
};
const notes = [];
const note = (message) => {
  notes.push(message);
  console.log(`  note: ${message}`);
};
const ok = (message) => console.log(`ok: ${message}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const json = (v) => JSON.stringify(v);
const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

// ---------------------------------------------------------------------------------
// Dates: the patient's zone, and a device zone whose date is another one

/** `YYYY-MM-DD` in `timeZone` (the spec's own formula). */
function localDate(timeZone, at = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
}
function minutesOfDay(timeZone, at = new Date()) {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(at);
  const get = (t) => Number(parts.find((p) => p.type === t).value);
  return get("hour") * 60 + get("minute");
}
function addDays(ymd, n) {
  const d = new Date(`${ymd}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
/** New York time, unless its day ends within the test's minutes (then Tokyo: 14 h later). */
const patientZone = ["America/New_York", "Asia/Tokyo"].find((z) => minutesOfDay(z) < 23 * 60 + 30);
const today = localDate(patientZone);
/** The browser's zone: one where the date is not the patient's (UTC+14 or UTC−11). */
const deviceZone = ["Pacific/Kiritimati", "Pacific/Pago_Pago"].find((z) => localDate(z) !== today);

// ---------------------------------------------------------------------------------
// The server's API, as the therapist's system (a backend token): set-up and checks

async function api(method, path, { body, accept = "application/fhir+json", contentType = "application/fhir+json", token = opt.token } = {}) {
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = contentType;
  const res = await fetch(`${server}${path}`, {
    method,
    headers,
    body: body === undefined || typeof body === "string" || body instanceof Uint8Array ? body : json(body),
  });
  const text = await res.text();
  let parsed = text;
  if (/json/.test(res.headers.get("content-type") ?? "")) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A FHIR request that must succeed; answers the resource. */
async function fhir(method, path, body) {
  const res = await api(method, `/fhir/${path}`, { body });
  expect(
    res.status >= 200 && res.status < 300,
    `${method} /fhir/${path} answered ${res.status}: ${typeof res.body === "string" ? res.body : json(res.body)}`,
  );
  return res.body;
}

const resources = (bundle, type) => (bundle.entry ?? []).map((e) => e.resource).filter((r) => !type || r.resourceType === type);
/** Whether a Task is an outcome measure to answer (not an exercise session). */
const isMeasureTask = (t) => (t.meta?.profile ?? []).includes(MEASURE_TASK);
const tasksOfDay = async (patientId, day) =>
  resources(await fhir("GET", `Task?patient=${patientId}&session-day=${day}&_count=100`), "Task").filter((t) => !isMeasureTask(t));
/** The patient's outcome-measure Tasks (all statuses), as the server has them. */
const measureTasks = async (patientId) =>
  resources(await fhir("GET", `Task?patient=Patient/${patientId}&code=${encodeURIComponent(ANSWER_MEASURE)}&_count=100`), "Task");
const measureOf = (task) => task.input?.find((i) => i.valueCanonical)?.valueCanonical?.split("|")[0];
/** The pain scores of the sessions (the NPRS's scores have the same code: left out). */
const painScores = async (patientId) =>
  resources(await fhir("GET", `Observation?patient=${patientId}&code=${encodeURIComponent(PAIN)}&_count=100`), "Observation").filter(
    (o) => !(o.meta?.profile ?? []).includes(`${HEP}/StructureDefinition/hep-outcome-score`),
  );
/** A Task's outputs as { code: value }. */
const outputsOf = (task) =>
  Object.fromEntries(
    (task.output ?? []).map((o) => [o.type?.coding?.[0]?.code, o.valueInteger ?? o.valueString ?? o.valueDecimal ?? o.valueBoolean]),
  );

/** Polls the server until `test(value)` holds; answers the last value either way. */
async function serverState(read, test, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await read();
    if (test(value) || Date.now() > deadline) return value;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------
// Step 1: the therapist's system makes the program

/** A small PNG picture (an arch on a light ground), made here: no file to ship. */
function picturePng(width = 120, height = 80) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "latin1");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3); // filter 0, then RGB
    for (let x = 0; x < width; x++) {
      const dx = (x - width / 2) / (width * 0.4);
      const dy = (y - height * 0.9) / (height * 0.7);
      const arch = Math.abs(dx * dx + dy * dy - 1) < 0.12 && y < height * 0.9;
      row.set(arch ? [10, 88, 168] : [235, 241, 248], 1 + x * 3);
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const data = deflateSync(Buffer.concat(rows));
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", data), chunk("IEND", Buffer.alloc(0))]);
}

/** The clinic gives the Bridge of its library a picture (a Binary the exercise links to). */
async function bridgePicture() {
  const res = await api("POST", "/fhir/Binary", { body: picturePng(), contentType: "image/png" });
  expect(res.status === 201, `POST /fhir/Binary (image/png) answered ${res.status}: ${json(res.body)}`);
  const bridge = await fhir("GET", "ActivityDefinition/bridge");
  bridge.relatedArtifact = [
    { type: "documentation", label: "Picture", document: { contentType: "image/png", url: `Binary/${res.body.id}`, title: "Bridge" } },
  ];
  await fhir("PUT", "ActivityDefinition/bridge", bridge);
}

async function therapistMakesProgram() {
  for (const ad of ["bridge", "heel-slide"]) {
    const res = await api("GET", `/fhir/ActivityDefinition/${ad}`);
    expect(
      res.status === 200,
      `the starter library has no ActivityDefinition/${ad} (${res.status}): is the server started with --starter-library true?`,
    );
  }
  await bridgePicture();
  const start = addDays(today, -6);
  const end = addDays(today, 20);
  const birthDate = "1961-04-12";
  const patient = await fhir("POST", "Patient", {
    resourceType: "Patient",
    identifier: [{ system: "urn:test:mrn", value: `app-e2e-${Date.now()}` }],
    name: [{ family: "Okafor", given: ["Robin"] }],
    birthDate,
    extension: [{ url: "http://hl7.org/fhir/StructureDefinition/tz-code", valueCode: patientZone }],
  });
  const pid = patient.id;
  const prescribe = (ad, name, sets, frequency) =>
    fhir("POST", "ServiceRequest", {
      resourceType: "ServiceRequest",
      meta: { profile: [`${HEP}/StructureDefinition/hep-exercise-prescription`] },
      extension: [
        {
          url: `${HEP}/StructureDefinition/exercise-dosage`,
          extension: [
            { url: "sets", valuePositiveInt: sets },
            { url: "repetitions", valuePositiveInt: 10 },
          ],
        },
      ],
      instantiatesCanonical: [`${HEP}/ActivityDefinition/${ad}|1.0.0`],
      status: "active",
      intent: "order",
      code: { text: name },
      category: [{ coding: [{ system: "http://snomed.info/sct", code: "229065009" }] }],
      subject: { reference: `Patient/${pid}` },
      occurrenceTiming: { repeat: { boundsPeriod: { start, end }, frequency, period: 1, periodUnit: "d" } },
      performer: [{ reference: `Patient/${pid}` }],
    });
  const bridge = await prescribe("bridge", "Bridge", 3, 1);
  const heelSlide = await prescribe("heel-slide", "Heel slide", 2, 2);
  const title = "Knee, phase 1";
  const carePlan = await fhir("POST", "CarePlan", {
    resourceType: "CarePlan",
    meta: { profile: [`${HEP}/StructureDefinition/hep-program`] },
    status: "active",
    intent: "plan",
    category: [{ coding: [{ system: "http://snomed.info/sct", code: "229065009" }] }],
    title,
    subject: { reference: `Patient/${pid}` },
    period: { start, end },
    activity: [
      { reference: { reference: `ServiceRequest/${bridge.id}` } },
      { reference: { reference: `ServiceRequest/${heelSlide.id}` } },
      // two outcome measures: the pain scale every 2 weeks (and at discharge), and the
      // Patient-Specific Functional Scale
      {
        detail: {
          kind: "Task",
          status: "scheduled",
          instantiatesCanonical: [`${QUESTIONNAIRE}/nprs`],
          scheduledTiming: { repeat: { frequency: 1, period: 2, periodUnit: "wk" } },
          extension: [{ url: `${HEP}/StructureDefinition/measure-at-discharge`, valueBoolean: true }],
        },
      },
      { detail: { kind: "Task", status: "scheduled", instantiatesCanonical: [`${QUESTIONNAIRE}/psfs`] } },
    ],
  });
  const tasks = await serverState(() => tasksOfDay(pid, today), (t) => t.length === 3);
  expect(
    tasks.length === 3,
    `the program should give 3 sessions on ${today} (Bridge once, Heel slide twice), the server has ${tasks.length}`,
  );
  expect(
    tasks.every((t) => t.status === "requested"),
    `today's sessions are not all requested: ${json(tasks.map((t) => t.status))}`,
  );

  // the measures due now: the first answer (baseline) of each
  const dueMeasures = await serverState(
    () => measureTasks(pid),
    (t) => t.filter((x) => x.status === "requested" && Date.parse(x.restriction.period.start) <= Date.now()).length === 2,
  );
  const due = dueMeasures.filter((x) => x.status === "requested" && Date.parse(x.restriction.period.start) <= Date.now());
  expect(
    json(due.map(measureOf).sort()) === json([`${QUESTIONNAIRE}/nprs`, `${QUESTIONNAIRE}/psfs`]),
    `the program assigns NPRS and PSFS: the server should have one due measure Task of each, it has ${json(dueMeasures.map((t) => [measureOf(t), t.status, t.restriction?.period]))}`,
  );
  for (const id of ["nprs", "psfs"]) {
    const q = resources(await fhir("GET", `Questionnaire?url=${encodeURIComponent(`${QUESTIONNAIRE}/${id}`)}`), "Questionnaire");
    expect(q.length === 1, `the clinic has ${q.length} Questionnaire ${QUESTIONNAIRE}/${id} (the starter measures)`);
  }

  const invite = await fhir("POST", `Patient/${pid}/$invite`, { resourceType: "Parameters" });
  const code = (invite.parameter ?? []).find((p) => p.name === "code")?.valueString;
  expect(code, `$invite answered no code: ${json(invite)}`);

  // what the app should show for each prescription
  const dose = { [bridge.id]: { name: "Bridge", sets: 3, reps: 10 }, [heelSlide.id]: { name: "Heel slide", sets: 2, reps: 10 } };
  const steps = {};
  for (const [id, ad] of [[bridge.id, "bridge"], [heelSlide.id, "heel-slide"]]) {
    steps[id] = (await fhir("GET", `ActivityDefinition/${ad}`)).description.split("\n").filter((l) => l.trim()).length;
  }
  ok(
    `Patient/${pid} (${patientZone}, today ${today}; the browser is in ${deviceZone}, ${localDate(deviceZone)}), CarePlan/${carePlan.id} "${title}", 3 sessions today, the NPRS and PSFS due, invitation ${code}`,
  );
  return {
    pid,
    birthDate,
    code,
    carePlanId: carePlan.id,
    title,
    start,
    dose,
    steps,
    username: `robin-${Date.now().toString(36)}`,
    password: `Willow-harbor-${Math.random().toString(36).slice(2, 8)}-7!`,
  };
}

// ---------------------------------------------------------------------------------
// Browser helpers

/** The page's visible text, shortened, for failure messages. */
async function pageText(page) {
  try {
    const text = await page.evaluate(() => document.body?.innerText ?? "");
    return json(text.replace(/\s+/g, " ").trim().slice(0, 600));
  } catch (e) {
    return `(no text: ${e.message})`;
  }
}

/**
 * Polls `check` (run in the page) until it answers a truthy value, across navigations;
 * answers that value, or null after `timeout` ms. (Short evaluations, never one long
 * DevTools call: each call has the protocol's timeout.)
 */
async function poll(page, check, arg, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const value = await page.evaluate(check, arg);
      if (value) return value;
      page.lastPollError = null;
    } catch (e) {
      page.lastPollError = e.message; // the page is navigating: its context went away; try again
    }
    if (Date.now() > deadline) return null;
    await sleep(100);
  }
}

/** Like `poll`, but fails the test after `timeout`. */
async function waitInPage(page, what, check, arg, timeout = 30000) {
  const value = await poll(page, check, arg, timeout);
  if (value) return value;
  const ready = await page.evaluate(() => document.body?.dataset.ready).catch(() => "?");
  const last = page.lastPollError;
  fail(
    `${what}: not so after ${timeout / 1000}s; the browser is at ${page.url()} (body[data-ready=${json(ready)}])${last ? ` (${last})` : ""}: ${await pageText(page)}${appLog(page)}`,
  );
}

/** Waits for the app to finish rendering `view` (body[data-ready]). */
const ready = (page, view, timeout = 30000) =>
  waitInPage(page, `body[data-ready=${view}]`, (v) => location.pathname.startsWith("/app/") && document.body?.dataset.ready === v, view, timeout);

/** The app's last console messages and page errors, for failure messages. */
function appLog(page) {
  const lines = (page.log ?? []).slice(-15);
  return lines.length ? `\n  the page's console (last ${lines.length}):\n    ${lines.join("\n    ")}` : "";
}

async function newPage(context) {
  const page = await context.newPage();
  await page.setViewport(PHONE);
  await page.emulateTimezone(deviceZone);
  page.log = [];
  page.cspReports = [];
  page.patches = []; // PATCH requests the page made (method, url, headers)
  page.posts = []; // POST requests of QuestionnaireResponses the page made
  page.on("console", (m) => {
    page.log.push(`${m.type()}: ${m.text().slice(0, 300)}`);
    if (/Content Security Policy/i.test(m.text())) page.cspReports.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => page.log.push(`pageerror: ${String(e.message ?? e).slice(0, 300)}`));
  page.on("dialog", async (d) => {
    note(`the app opened a ${d.type()} dialog: ${json(d.message())}`);
    await d.dismiss().catch(() => {});
  });
  page.refused = [];
  page.on("response", (r) => {
    if (r.status() < 400) return;
    const line = `${r.status()} ${r.request().method()} ${r.url().replace(server, "").slice(0, 160)}`;
    page.log.push(`response ${line}`);
    page.refused.push(line);
  });
  page.on("requestfailed", (r) => page.log.push(`request failed (${r.failure()?.errorText}): ${r.method()} ${r.url().slice(0, 200)}`));
  page.on("request", (r) => {
    if (r.method() === "PATCH") page.patches.push({ at: Date.now(), url: r.url(), headers: r.headers(), body: r.postData() });
    if (r.method() === "POST" && r.url().includes("/fhir/QuestionnaireResponse")) {
      page.posts.push({ at: Date.now(), url: r.url(), headers: r.headers(), body: r.postData() });
    }
  });
  // When each value of body[data-ready] first appears, in ms since the navigation began;
  // and the Blob behind each blob: URL the app makes, for reading it in the test (the
  // app's CSP, connect-src 'self', rightly forbids fetching a blob: URL).
  await page.evaluateOnNewDocument(() => {
    window.__hepBlobs = new Map();
    const createObjectURL = URL.createObjectURL;
    URL.createObjectURL = function (blob) {
      const url = createObjectURL.call(URL, blob);
      window.__hepBlobs.set(url, blob);
      return url;
    };
    window.__hepReady = {};
    const seen = () => {
      const v = document.body?.dataset.ready;
      if (v && !(v in window.__hepReady)) window.__hepReady[v] = performance.now();
    };
    new MutationObserver(seen).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-ready"] });
  });
  return page;
}

/** Runs `action` and waits for the navigation it starts. */
async function navigate(page, what, action) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: "load", timeout: 30000 }).catch(async (e) => {
      fail(`${what}: no new page (${e.message}); the browser is at ${page.url()}: ${await pageText(page)}`);
    }),
    action(),
  ]);
  return response;
}

/** Waits for the server's page holding `selector` (a server page with an alert instead fails). */
async function serverPage(page, what, selector) {
  const found = await waitInPage(
    page,
    what,
    ({ server, selector }) => {
      if (location.origin !== server || location.pathname.startsWith("/app/") || document.readyState !== "complete") return null;
      if (document.querySelector(selector)) return { found: true };
      const alert = document.querySelector('[role="alert"]');
      return alert && alert.innerText.trim() ? { alert: alert.innerText.trim() } : null;
    },
    { server, selector },
  );
  if (!found.found) fail(`${what}: the server's page at ${page.url()} says ${json(found.alert)}: ${await pageText(page)}`);
}

/** Types into a field (a range input, which takes no typing, gets its value set). */
async function enter(page, selector, value) {
  const type = await page.$eval(selector, (e) => e.type).catch(() => null);
  expect(type !== null, `no field ${selector} at ${page.url()}: ${await pageText(page)}`);
  if (type === "range" || type === "date") {
    const now = await page.$eval(
      selector,
      (e, v) => {
        e.value = v;
        e.dispatchEvent(new Event("input", { bubbles: true }));
        e.dispatchEvent(new Event("change", { bubbles: true }));
        return e.value;
      },
      String(value),
    );
    expect(now === String(value), `${selector} does not take ${value} (it holds ${json(now)})`);
  } else {
    await page.$eval(selector, (e) => {
      e.value = "";
    });
    await page.type(selector, String(value));
  }
}

async function tap(page, selector) {
  const el = await page.$(selector);
  expect(el, `nothing to tap: no ${selector} at ${page.url()}: ${await pageText(page)}`);
  await el.tap();
}

const isVisible = (page, selector) => page.$eval(selector, (e) => e.checkVisibility()).catch(() => false);

// ---------------------------------------------------------------------------------
// Every screen: no CSP report, fits the phone, axe-core, a screenshot

let screenNumber = 0;

async function axeScan(frame) {
  await frame.evaluate(axeSource); // Runtime.evaluate: not subject to the page's CSP
  return frame.evaluate(
    (tags) =>
      window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"], iframes: false }).then((r) =>
        r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) })),
      ),
    AXE_TAGS,
  );
}

/**
 * axe over a frame's document. A sandboxed frame without allow-scripts (the take-home
 * sheet) runs no script, not even DevTools', so its document (a blob the page made) is
 * scanned in a tab of its own, at the frame's width.
 */
async function axeFrame(page, frame) {
  const sandbox = await frame
    .frameElement()
    .then((el) => el?.evaluate((e) => ({ sandbox: e.getAttribute("sandbox"), width: Math.round(e.getBoundingClientRect().width) })))
    .catch(() => null);
  if (sandbox?.sandbox === null || /allow-scripts/.test(sandbox?.sandbox ?? "")) {
    return Promise.race([axeScan(frame), sleep(20000).then(() => fail(`axe on the frame ${frame.url()}: no answer in 20 s`))]);
  }
  const html = await page.evaluate((url) => window.__hepBlobs?.get(url)?.text() ?? null, frame.url());
  if (html === null) throw new Error("a sandboxed frame whose document is not a blob the page made");
  const tab = await page.browserContext().newPage();
  try {
    await tab.setViewport({ ...PHONE, width: Math.max(sandbox.width, 320) });
    await tab.setContent(html, { waitUntil: "load" });
    return await axeScan(tab.mainFrame());
  } finally {
    await tab.close();
  }
}

/** axe over the page and each of its frames: a serious or critical violation fails. */
async function axeCheck(page, name) {
  const results = await axeScan(page.mainFrame());
  for (const frame of page.mainFrame().childFrames()) {
    try {
      for (const v of await axeFrame(page, frame)) results.push({ ...v, id: `${v.id} (in the frame ${frame.url().slice(0, 60)})` });
    } catch (e) {
      if (e instanceof Failure) throw e;
      note(`${name}: axe could not scan the frame ${frame.url().slice(0, 60)}: ${e.message.split("\n")[0]}`);
    }
  }
  const blocking = results.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of results.filter((v) => !blocking.includes(v))) {
    console.log(`  note (axe, ${v.impact}) ${name}: ${v.id}: ${v.help} [${v.nodes.join(", ")}]`);
  }
  if (blocking.length) {
    for (const v of blocking) console.log(`  axe ${v.impact}: ${v.id}: ${v.help} [${v.nodes.join(", ")}]`);
    fail(
      `${name}: accessibility violations (axe, ${AXE_TAGS.join(" ")}): ${blocking.map((v) => `${v.id} (${v.impact}) [${v.nodes.join(", ")}]`).join("; ")}`,
    );
  }
}

async function screen(page, name, { app = true } = {}) {
  const file = `${String(++screenNumber).padStart(2, "0")}-${name}`;
  const blocked = page.cspReports.splice(0);
  check(!blocked.length, `${file}: the browser blocked by the Content-Security-Policy: ${blocked.join(" | ")}`);
  const facts = await page.evaluate(() => ({
    wide: document.documentElement.scrollWidth > window.innerWidth + 1,
    scrollWidth: document.documentElement.scrollWidth,
    h1: [...document.querySelectorAll("h1")].filter((h) => h.checkVisibility()).length,
    small: [...document.querySelectorAll("a[href], button, input, select, textarea, summary")]
      .filter((e) => e.checkVisibility() && !e.closest("p, li > span") && e.type !== "hidden")
      .map((e) => ({ e, r: e.getBoundingClientRect() }))
      .filter(({ e, r }) => (r.width < 44 || r.height < 44) && !(e.type === "radio" || e.type === "checkbox"))
      .map(({ e, r }) => {
        const name = `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + String(e.className).split(" ")[0] : ""}`;
        return `${name} ${Math.round(r.width)}×${Math.round(r.height)}`;
      })
      .slice(0, 6),
  }));
  if (page.viewport()?.width === PHONE.width) {
    check(
      !facts.wide,
      `${file}: wider than the phone's screen: scrolls sideways (scrollWidth ${facts.scrollWidth} px at 390 px)`,
    );
  }
  if (app) {
    check(facts.h1 === 1, `${file}: ${facts.h1} visible h1 elements (the spec: one h1)`);
    if (facts.small.length) note(`${file}: touch targets under 44×44 px: ${facts.small.join(", ")}`);
  }
  await axeCheck(page, file);
  await page.screenshot({ path: join(out, `${file}.png`), fullPage: true });
  ok(`${file}: axe (no serious or critical violation), ${join(opt.out, file)}.png`);
}

// ---------------------------------------------------------------------------------
// The network, for the page and its service worker: the page's offline mode does not
// reach a service worker, whose fetch() of the API would still succeed, so each service
// worker of the app gets the same conditions through its own DevTools session.

class Network {
  constructor(page) {
    this.page = page;
    this.workers = new Map(); // target → CDP session
    this.offline = false;
  }

  async pageSession() {
    this.session ??= await this.page.createCDPSession();
    return this.session;
  }

  /** DevTools sessions of the app's service workers (new ones get the current conditions). */
  async workerSessions() {
    for (const target of this.page.browserContext().targets()) {
      if (target.type() !== "service_worker" || !target.url().startsWith(server) || this.workers.has(target)) continue;
      try {
        const session = await target.createCDPSession();
        await session.send("Network.enable");
        this.workers.set(target, session);
        if (this.offline) await this.emulate(session, true);
      } catch (e) {
        note(`the service worker ${target.url()} could not be reached through DevTools: ${e.message}`);
      }
    }
    return [...this.workers.values()];
  }

  emulate(session, offline) {
    return session.send("Network.emulateNetworkConditions", { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  }

  /** Cuts or restores the network; the service workers first, so that the page's `online` event finds them online. */
  async setOffline(offline) {
    this.offline = offline;
    for (const s of await this.workerSessions()) await this.emulate(s, offline).catch(() => {});
    await this.page.setOfflineMode(offline);
  }

  /** Does a request of the page (through its service worker, like the app's) reach the server? */
  async reachesServer() {
    return this.page.evaluate(() =>
      fetch(`/fhir/metadata?probe=${Date.now()}`, { cache: "no-store" }).then(
        () => true,
        () => false,
      ),
    );
  }

  /**
   * From now on, the answer to the first `method` request to a URL containing `part` is
   * lost: the request reaches the server, which answers, and the page gets a network
   * error instead. Later ones pass. Answers the list of those requests as seen.
   */
  async loseFirstAnswer(method, part) {
    const seen = [];
    const sessions = [await this.pageSession(), ...(await this.workerSessions())];
    const header = (list, name) => {
      const entries = Array.isArray(list) ? list.map((h) => [h.name, h.value]) : Object.entries(list ?? {});
      return entries.find(([k]) => k.toLowerCase() === name)?.[1];
    };
    this.intercepting = sessions.map((session) => {
      const onPaused = async (ev) => {
        const { requestId } = ev;
        const pass = () =>
          session.send("Fetch.continueResponse", { requestId }).catch(() => session.send("Fetch.continueRequest", { requestId }));
        try {
          if (ev.request.method !== method || ev.responseStatusCode === undefined) {
            await pass();
            return;
          }
          const lose = seen.length === 0;
          seen.push({
            at: Date.now(),
            key: header(ev.request.headers, "idempotency-key"),
            status: ev.responseStatusCode,
            replayed: header(ev.responseHeaders, "idempotent-replayed"),
            lost: lose,
          });
          if (lose) await session.send("Fetch.failRequest", { requestId: ev.requestId, errorReason: "ConnectionReset" });
          else await pass();
        } catch (e) {
          note(`interception: ${e.message}`);
        }
      };
      session.on("Fetch.requestPaused", onPaused);
      return { session, onPaused };
    });
    for (const { session } of this.intercepting) {
      await session.send("Fetch.enable", { patterns: [{ urlPattern: `*${part}*`, requestStage: "Response" }] });
    }
    return seen;
  }

  async stopIntercepting() {
    for (const { session, onPaused } of this.intercepting ?? []) {
      session.off("Fetch.requestPaused", onPaused);
      await session.send("Fetch.disable").catch(() => {});
    }
    this.intercepting = [];
  }
}

// ---------------------------------------------------------------------------------
// The app's screens

/** Navigates by the nav link `view` and checks the contract of the views and the nav. */
async function openView(page, view) {
  await tap(page, `nav a[href="#${view}"]`);
  await ready(page, view);
  const facts = await page.evaluate((view) => {
    const sections = ["today", "week", "program", "progress"].map((v) => [v, document.querySelector(`section#view-${v}`)?.checkVisibility() ?? null]);
    return {
      sections,
      current: [...document.querySelectorAll('nav[aria-label="Sections"] a[aria-current="page"]')].map((a) => a.getAttribute("href")),
      hash: location.hash,
      view,
    };
  }, view);
  for (const [v, visible] of facts.sections) {
    check(visible !== null, `#${view}: there is no section#view-${v}`);
    check(
      visible === null || visible === (v === view),
      `#${view}: section#view-${v} is ${visible ? "visible" : "hidden"} (only the active view is visible)`,
    );
  }
  check(
    json(facts.current) === json([`#${view}`]),
    `#${view}: nav links with aria-current="page": ${json(facts.current)}, not ["#${view}"]`,
  );
}

/** The sessions on Today as the DOM shows them. */
function sessionsInPage(page) {
  return page.$$eval("ul#sessions > li.session", (lis) =>
    lis.map((li) => ({
      taskId: li.dataset.taskId,
      status: li.dataset.status,
      pending: li.dataset.pending ?? null,
      name: li.querySelector("h3")?.textContent.trim() ?? null,
      dose: li.querySelector("p.dose")?.textContent.trim() ?? null,
      steps: li.querySelectorAll("ol.steps > li").length,
      img: li.querySelector("img") && {
        alt: li.querySelector("img").alt,
        src: li.querySelector("img").src.slice(0, 5),
        drawn: li.querySelector("img").complete && li.querySelector("img").naturalWidth > 0,
      },
      done: !!li.querySelector("button.done"),
      cannot: !!li.querySelector("button.cannot"),
      late: li.querySelector("span.late")?.textContent.trim() ?? null,
    })),
  );
}

const sessionLi = (taskId) => `ul#sessions > li.session[data-task-id="${taskId}"]`;

/** The outbox as the page shows it. */
const outbox = (page) =>
  page.evaluate(() => {
    const o = document.querySelector("#outbox");
    if (!o) return null;
    return { count: o.dataset.count ?? null, visible: o.checkVisibility(), hidden: o.hidden, text: o.textContent.trim(), role: o.getAttribute("role") };
  });

async function outboxIsEmpty(page) {
  const o = await outbox(page);
  return !!o && !o.visible && (o.count === "0" || o.count === null || o.count === "");
}

// ---------------------------------------------------------------------------------
// Step 2: open the app, sign in with the clinic's code, land on Today

async function appSignInScreen(page) {
  await page.goto(appUrl, { waitUntil: "load" });
  await ready(page, "signin");
  const facts = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    viewport: document.querySelector('meta[name="viewport"]')?.content ?? null,
    manifest: !!document.querySelector('link[rel="manifest"]'),
    button: document.querySelector("#signin-view button#sign-in")?.textContent.trim() ?? null,
    signinVisible: document.querySelector("#signin-view")?.checkVisibility() ?? null,
    mainVisible: document.querySelector("#main-view")?.checkVisibility() ?? null,
    message: document.querySelector("#signin-message") ? { role: document.querySelector("#signin-message").getAttribute("role") } : null,
  }));
  check(facts.lang === "en", `/app/: <html lang=${json(facts.lang)}>, not "en"`);
  check(facts.viewport?.includes("width=device-width"), `/app/: no viewport meta with width=device-width`);
  check(facts.manifest, `/app/: no <link rel="manifest">`);
  expect(facts.button !== null, `/app/: no #signin-view button#sign-in: ${await pageText(page)}`);
  check(facts.button === "Sign in", `/app/: #sign-in says ${json(facts.button)}, not "Sign in"`);
  check(facts.signinVisible === true, `/app/: #signin-view is not visible when signed out`);
  check(
    facts.mainVisible === false,
    `/app/: #main-view is ${facts.mainVisible === null ? "missing" : "visible"} when signed out (it must be hidden)`,
  );
  check(
    facts.message?.role === "alert",
    `/app/: #signin-message ${facts.message ? `has role=${json(facts.message.role)}` : "is missing"} (role="alert")`,
  );
  await screen(page, "app-sign-in");
}

async function signInWithCode(page, program) {
  await navigate(page, "Sign in", () => tap(page, "#sign-in"));
  await serverPage(page, "the server's sign-in page", 'form[action="/auth/login"]');
  const asked = new URL(page.url()).searchParams;
  check(asked.get("client_id") === CLIENT_ID, `the app asked client_id ${json(asked.get("client_id"))}, not ${CLIENT_ID}`);
  check(asked.get("redirect_uri") === appUrl, `the app asked redirect_uri ${json(asked.get("redirect_uri"))}, not ${appUrl}`);
  check(asked.get("code_challenge_method") === "S256", `the app sent no S256 PKCE challenge: ${page.url()}`);
  const scope = (asked.get("scope") ?? "").split(" ").sort().join(" ");
  const wanted = `launch/patient openid fhirUser offline_access patient/*.rs patient/Task.u ${ANSWER_SCOPE}`.split(" ").sort().join(" ");
  check(scope === wanted, `the app asked the scope ${json(asked.get("scope"))}, not ${json(wanted)}`);
  await screen(page, "server-sign-in", { app: false });

  const link = await page.$$eval("a", (as) =>
    as.filter((a) => a.textContent.trim() === "I have a code from my clinic").map((a) => a.getAttribute("href")),
  );
  expect(link.length === 1, `the sign-in page has no one link "I have a code from my clinic" (${json(link)})`);
  await navigate(page, "the code link", () => page.click(`a[href="${link[0].replaceAll('"', '\\"')}"]`));
  await serverPage(page, "the code page", 'form[action="/auth/redeem"]');
  await screen(page, "server-code", { app: false });

  await enter(page, "#code", program.code);
  await enter(page, "#birth_date", program.birthDate);
  await enter(page, "#username", program.username);
  await enter(page, "#password", program.password);
  await navigate(page, "Create my account", () => page.click('form[action="/auth/redeem"] button[type="submit"]'));
  await serverPage(page, "the consent page", 'form[action="/auth/consent"] button[name="decision"][value="allow"]');
  await screen(page, "server-consent", { app: false });

  await navigate(page, "Allow", () => page.click('button[name="decision"][value="allow"]'));
  await ready(page, "today", 45000);
  const after = await page.evaluate(() => ({
    search: location.search,
    path: location.pathname,
    readyAt: window.__hepReady?.today,
    stored: localStorage.getItem("hep-app.sign-in"),
  }));
  check(
    after.path === "/app/" && !/[?&](code|state)=/.test(after.search),
    `after the sign-in the address still has the code: ${page.url()} (history.replaceState to /app/)`,
  );
  expect(
    after.stored,
    `after the sign-in localStorage has no "hep-app.sign-in" (the spec: the sign-in persists across restarts)`,
  );
  ok(
    `signed in with the invitation as ${program.username}; Today after ${Math.round(after.readyAt)} ms from the return to /app/`,
  );
  return { signinReturnReadyMs: Math.round(after.readyAt) };
}

/** Today: the three sessions of the server, with their exercise, dose, steps and buttons. */
async function checkToday(page, program) {
  const onServer = await tasksOfDay(program.pid, today);
  let shown = await sessionsInPage(page);
  expect(
    shown.length === 3,
    `Today shows ${shown.length} li.session, not 3 (the server has ${onServer.length} Tasks on ${today}: ${json(onServer.map((t) => t.id))}): ${await pageText(page)}`,
  );
  expect(
    json(shown.map((s) => s.taskId).sort()) === json(onServer.map((t) => t.id).sort()),
    `Today's li.session[data-task-id] are ${json(shown.map((s) => s.taskId))}, the server's Tasks of ${today} are ${json(onServer.map((t) => t.id))}`,
  );
  // the picture is fetched after the list is shown: wait for it to be drawn
  await poll(page, () => [...document.querySelectorAll("li.session img")].some((i) => i.complete && i.naturalWidth > 0), undefined, 5000);
  shown = await sessionsInPage(page);
  for (const s of shown) {
    const task = onServer.find((t) => t.id === s.taskId);
    const rx = task.focus.reference.split("/")[1];
    const want = program.dose[rx];
    check(s.status === "requested", `Today: li[data-task-id=${s.taskId}] has data-status=${json(s.status)}, not "requested"`);
    check(s.name === want.name, `Today: li[data-task-id=${s.taskId}] h3 is ${json(s.name)}, not ${json(want.name)}`);
    check(!!s.dose, `Today: li[data-task-id=${s.taskId}] has no p.dose text`);
    check(
      s.steps === program.steps[rx],
      `Today: ${want.name}: ol.steps has ${s.steps} li, the exercise's description has ${program.steps[rx]} steps`,
    );
    check(
      s.done && s.cannot,
      `Today: ${want.name}: button.done ${s.done ? "present" : "missing"}, button.cannot ${s.cannot ? "present" : "missing"}`,
    );
    check(s.late === null, `Today: ${want.name} shows span.late ${json(s.late)}, but its window is today`);
    if (want.name === "Bridge") check(!!s.img, `Today: Bridge shows no img, but its exercise has a picture (relatedArtifact Binary/…)`);
    if (s.img) {
      check(
        s.img.alt === `Picture: ${want.name}` && s.img.src === "blob:" && s.img.drawn,
        `Today: ${want.name}: img ${json(s.img)} (alt "Picture: ${want.name}", a blob: URL, drawn)`,
      );
    }
  }
  // the heading says the patient's date in words (the browser's date is another one)
  const [y, m, d] = today.split("-").map(Number);
  const month = new Intl.DateTimeFormat("en", { month: "long", timeZone: "UTC" }).format(Date.UTC(y, m - 1, d));
  const headings = await page.$$eval("section#view-today h1, section#view-today h2, h1", (hs) => hs.map((h) => h.textContent.trim()));
  check(
    headings.some((h) => new RegExp(`\\b${d}\\b`).test(h) && (h.includes(month) || h.includes(month.slice(0, 3)))),
    `Today: no h1/h2 says the patient's date ${today} in words (day ${d}, ${month}); headings: ${json(headings)}`,
  );
  ok(`Today: the 3 sessions of ${today} (${shown.map((s) => s.name).join(", ")}), each with its dose, steps and buttons`);
  return shown;
}

/** The skip link: the first thing to focus; it moves the focus to the content, and the view stays (the #hash is the router's). */
async function skipLink(page) {
  const first = await page.evaluate(() => {
    const candidates = document.querySelectorAll("a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])");
    const focusable = [...candidates].find((e) => !e.disabled && !e.closest("[hidden]"));
    return focusable && { text: focusable.textContent.trim(), href: focusable.getAttribute("href") };
  });
  const isSkipLink = first?.href?.startsWith("#") && /skip/i.test(first.text);
  if (!check(isSkipLink, `Today: the first focusable element is ${json(first)}, not a skip link`)) return;
  await page.evaluate((href) => document.querySelector(`a[href="${href}"]`).focus(), first.href);
  await page.keyboard.press("Enter");
  await sleep(300);
  const after = await page.evaluate(() => ({
    hash: location.hash,
    ready: document.body.dataset.ready,
    focus: document.activeElement?.closest("main") ? "in main" : document.activeElement?.outerHTML.slice(0, 60),
    today: document.querySelector("section#view-today")?.checkVisibility(),
  }));
  check(
    after.focus === "in main" && after.today && after.ready === "today",
    `Today: after the skip link ${json(first.text)} the focus is ${json(after.focus)}, Today ${after.today ? "shown" : "hidden"}, body[data-ready=${json(after.ready)}], ${after.hash}`,
  );
}

async function desktopToday(page) {
  await page.setViewport(DESKTOP);
  await sleep(300);
  const file = `${String(++screenNumber).padStart(2, "0")}-today-desktop`;
  await page.screenshot({ path: join(out, `${file}.png`), fullPage: true });
  ok(`${file}: Today at 1280×800, ${join(opt.out, file)}.png`);
  await page.setViewport(PHONE);
  await sleep(300);
}

// ---------------------------------------------------------------------------------
// Figures: a cold load of Today (a new browser profile: no HTTP cache, no service worker,
// the sign-in copied over), then the same page loaded again (warm)

async function measureLoads(browser, page) {
  const signIn = await page.evaluate(() =>
    Object.fromEntries(Object.keys(localStorage).filter((k) => /sign-in|clinic/.test(k)).map((k) => [k, localStorage.getItem(k)])),
  );
  const context = await browser.createBrowserContext();
  try {
    const fresh = await newPage(context);
    await fresh.evaluateOnNewDocument((entries) => {
      if (location.pathname.startsWith("/app/")) {
        if (!sessionStorage.getItem("e2e-copied")) {
          for (const [k, v] of Object.entries(entries)) if (localStorage.getItem(k) === null) localStorage.setItem(k, v);
        }
        sessionStorage.setItem("e2e-copied", "1"); // once: the app's own changes stay
      }
    }, signIn);
    const cdp = await fresh.createCDPSession();
    await cdp.send("Network.enable");
    let bytes = 0;
    let requests = 0;
    const served = { network: 0, serviceWorker: 0, cache: 0 };
    cdp.on("Network.requestWillBeSent", () => requests++);
    cdp.on("Network.responseReceived", (e) => {
      if (e.response.fromServiceWorker) served.serviceWorker++;
      else if (e.response.fromDiskCache || e.response.status === 304) served.cache++;
      else served.network++;
    });
    cdp.on("Network.loadingFinished", (e) => (bytes += e.encodedDataLength));
    // (The service worker's own downloads at install, its precache, are not counted: its
    // DevTools session starts too late to see them all, and they are mostly revalidations
    // of what the page has just fetched.)

    const load = async (what, go) => {
      bytes = 0;
      requests = 0;
      Object.keys(served).forEach((k) => (served[k] = 0));
      await go();
      await ready(fresh, "today", 45000);
      const readyMs = await fresh.evaluate(() => window.__hepReady.today);
      const bytesToReady = bytes;
      await fresh
        .waitForNetworkIdle({ idleTime: 500, timeout: 15000 })
        .catch(() => note(`${what}: the network was not idle 15 s after Today was ready`));
      const figures = { readyMs: Math.round(readyMs), bytesToReady, bytes, requests };
      for (const [k, v] of Object.entries(served)) figures[`from_${k}`] = v;
      ok(`${what} of Today: ${json(figures)}`);
      return figures;
    };
    const cold = await load("a cold load", () => fresh.goto(appUrl, { waitUntil: "domcontentloaded" }));
    const shown = await sessionsInPage(fresh);
    check(
      shown.length === 3,
      `a cold load of Today (a new profile with the stored sign-in) shows ${shown.length} sessions, not 3`,
    );
    const controlled = !!(await poll(fresh, () => !!navigator.serviceWorker?.controller, undefined, 10000));
    if (!controlled) note("the warm load is not served by the service worker: no navigator.serviceWorker.controller 10 s after the first load");
    const warm = await load("a warm load", () => fresh.reload({ waitUntil: "domcontentloaded" }));
    warm.serviceWorkerControlled = controlled;
    return { cold, warm };
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------------------------
// Steps 3 and 4: reports

/** Opens the report form of a session; answers its selector. */
async function openReport(page, taskId, kind) {
  const [button, form] = kind === "done" ? ["button.done", "form.report"] : ["button.cannot", "form.cannot-form"];
  await tap(page, `${sessionLi(taskId)} ${button}`);
  const where = await waitInPage(
    page,
    `${form} open after tapping ${button} of Task ${taskId}`,
    ({ li, form }) => {
      if (document.querySelector(`${li} ${form}`)?.checkVisibility()) return `${li} ${form}`;
      if (document.querySelector(`dialog[open] ${form}`)?.checkVisibility()) return `dialog[open] ${form}`;
      return null;
    },
    { li: sessionLi(taskId), form },
    5000,
  );
  return where;
}

/** Fills and saves the report of a session (`values` as the patient types them). */
async function report(page, taskId, values, { shot, rx } = {}) {
  const form = await openReport(page, taskId, "done");
  const fields = await page.$eval(form, (f) =>
    Object.fromEntries(
      ["sets", "reps", "pain", "difficulty", "note"].map((n) => {
        const e = f.querySelector(`[name="${n}"]`);
        if (!e) return [n, null];
        const labelled = e.labels?.length > 0 || !!e.getAttribute("aria-label");
        return [n, { tag: e.tagName.toLowerCase(), type: e.type, value: e.value, min: e.min, max: e.max, required: e.required, labelled }];
      }),
    ),
  );
  for (const n of ["sets", "reps", "pain", "difficulty", "note"]) expect(fields[n], `${form}: no field name="${n}"`);
  for (const n of ["sets", "reps"]) check(fields[n].type === "number", `${form}: ${n} is type=${json(fields[n].type)}, not number`);
  for (const n of ["pain", "difficulty"]) {
    const f = fields[n];
    check(
      ["number", "range"].includes(f.type) && f.min === "0" && f.max === "10" && f.required,
      `${form}: ${n} is ${json(f)} (type number or range, min 0, max 10, required)`,
    );
  }
  check(fields.note.tag === "textarea", `${form}: note is a ${fields.note.tag}, not a textarea`);
  for (const [n, f] of Object.entries(fields)) check(f.labelled, `${form}: the field ${n} has no label`);
  if (rx) {
    check(
      fields.sets.value === String(rx.sets) && fields.reps.value === String(rx.reps),
      `${form}: sets/reps are prefilled ${json([fields.sets.value, fields.reps.value])}, the prescription says ${json([String(rx.sets), String(rx.reps)])}`,
    );
  }
  for (const n of ["sets", "reps", "pain", "difficulty", "note"]) await enter(page, `${form} [name="${n}"]`, values[n]);
  if (shot) await screen(page, shot);
  const submit = `${form} button[type="submit"]`;
  check((await page.$eval(submit, (b) => b.textContent.trim()).catch(() => null)) === "Save", `${submit} does not say "Save"`);
  await tap(page, submit);
  await afterSave(page, taskId, form);
}

/** After Save: the form closes and the focus is back in the session. */
async function afterSave(page, taskId, form) {
  await waitInPage(page, `${form} closed after Save`, (form) => !document.querySelector(form)?.checkVisibility(), form, 5000);
  const focus = await page.evaluate(() => ({
    task: document.activeElement?.closest("li.session")?.dataset.taskId ?? null,
    el: document.activeElement?.outerHTML.slice(0, 80),
  }));
  check(focus.task === taskId, `after Save the focus is on ${json(focus.el)}, not in the session's li (its heading or button)`);
}

/** Step 3: the first session, online. */
async function completeOnline(page, program, session) {
  const values = { sets: 3, reps: 8, pain: 4, difficulty: 5, note: "Felt fine, a little stiff" };
  const task = await fhir("GET", `Task/${session.taskId}`);
  const rx = program.dose[task.focus.reference.split("/")[1]];
  page.patches.length = 0;
  await report(page, session.taskId, values, { shot: "report-form", rx });
  await waitInPage(page, `li[data-task-id=${session.taskId}] completed and sent`, (li) => {
    const e = document.querySelector(li);
    return e?.dataset.status === "completed" && e.dataset.pending !== "true";
  }, sessionLi(session.taskId), 15000);
  check(await outboxIsEmpty(page), `after an online report #outbox is ${json(await outbox(page))} (hidden, data-count="0")`);

  const done = await serverState(() => fhir("GET", `Task/${session.taskId}`), (t) => t.status === "completed");
  expect(
    done.status === "completed",
    `the server's Task/${session.taskId} is ${done.status} after the online report, not completed`,
  );
  const outputs = outputsOf(done);
  const want = { "sets-done": values.sets, "reps-done": values.reps, "72514-3": values.pain, difficulty: values.difficulty, note: values.note };
  expect(
    json(sorted(outputs)) === json(sorted(want)),
    `Task/${session.taskId}'s outputs are ${json(outputs)}, the patient typed ${json(want)}`,
  );
  expect(
    done.executionPeriod?.end && Math.abs(Date.parse(done.executionPeriod.end) - Date.now()) < 10 * 60000,
    `Task/${session.taskId}'s executionPeriod.end is ${json(done.executionPeriod)}, not the time of Save`,
  );
  const pain = await painScores(program.pid);
  expect(pain.length === 1, `after one report the server has ${pain.length} pain Observations, not 1`);
  const score = pain[0].valueInteger ?? pain[0].valueQuantity?.value;
  expect(score === values.pain, `the pain Observation has ${score}, the patient typed ${values.pain}`);

  // the request as the app sent it (when the page's network log shows it)
  const patch = page.patches.find((p) => p.url.includes(`/fhir/Task/${session.taskId}`));
  if (patch) {
    const h = patch.headers;
    check(
      /^[0-9a-f-]{36}$/i.test(h["idempotency-key"] ?? ""),
      `the completion's PATCH has Idempotency-Key ${json(h["idempotency-key"])}, not a UUID`,
    );
    check(
      (h["content-type"] ?? "").startsWith("application/json-patch+json"),
      `the completion's PATCH has Content-Type ${json(h["content-type"])}`,
    );
    check(!h["if-match"], `the completion's PATCH sends If-Match ${json(h["if-match"])} (the spec: no If-Match)`);
  } else {
    note("the page's network log shows no PATCH (the service worker sent it?): its headers are checked in the retry step");
  }
  ok(`the first session, reported online: Task completed with ${json(outputs)}, one pain Observation (${score})`);
  return values;
}

/** Step 4: the second session, offline; sent when the network is back, its first answer lost. */
async function completeOffline(page, net, program, session, firstSession) {
  const values = { sets: 2, reps: 10, pain: 7, difficulty: 6, note: "Done on the train, offline" };
  const rx = program.dose[(await fhir("GET", `Task/${session.taskId}`)).focus.reference.split("/")[1]];
  const controlled = await poll(page, () => navigator.serviceWorker?.controller?.scriptURL, undefined, 15000);
  expect(controlled, "the app's page has no service worker in control 15 s after sign-in (navigator.serviceWorker.controller): the app cannot work offline");

  await net.setOffline(true);
  expect(!(await net.reachesServer()), "offline mode does not stop the page's requests (a fetch of /fhir/metadata still reached the server)");
  await report(page, session.taskId, values, { rx });
  const li = sessionLi(session.taskId);
  await waitInPage(page, `li[data-task-id=${session.taskId}] shown completed and pending`, (li) => {
    const e = document.querySelector(li);
    return e?.dataset.status === "completed" && e.dataset.pending === "true";
  }, li, 5000);
  const waiting = await outbox(page);
  expect(waiting, "offline: there is no #outbox");
  check(waiting.count === "1" && waiting.visible, `offline: #outbox is ${json(waiting)} (visible, data-count="1")`);
  check(
    /^1 completion waiting to be sent/.test(waiting.text),
    `offline: #outbox says ${json(waiting.text)}, not "1 completion waiting to be sent"`,
  );
  check(waiting.role === "status", `#outbox has role=${json(waiting.role)}, not "status"`);
  const status = await page
    .$eval("#app-status", (e) => ({ text: e.textContent.trim(), role: e.getAttribute("role"), visible: e.checkVisibility() }))
    .catch(() => null);
  check(
    status && /offline/i.test(status.text) && status.visible,
    `offline: #app-status is ${json(status)} (it should say "You are offline. What you log is kept on this device.")`,
  );
  check(!status || status.role === "status", `#app-status has role=${json(status?.role)}, not "status"`);
  const stored = await page.evaluate((pid) => JSON.parse(localStorage.getItem(`hep-app.outbox.${pid}`) ?? "null"), program.pid);
  check(Array.isArray(stored) && stored.length === 1 && stored[0].taskId === session.taskId && stored[0].key,
    `offline: localStorage "hep-app.outbox.${program.pid}" is ${json(stored)?.slice(0, 300)} (one item {key, taskId, ops, label, queuedAt})`);
  let onServer = await fhir("GET", `Task/${session.taskId}`);
  expect(onServer.status === "requested", `offline, yet the server's Task/${session.taskId} is ${onServer.status}`);
  await screen(page, "offline-outbox");

  // the app opens offline: its service worker serves the files, the outbox is kept
  const reloaded = await page.reload({ waitUntil: "load" }).then(() => null, (e) => e.message);
  expect(!reloaded, `reloading the app offline failed (${reloaded}): the service worker does not serve the app's files`);
  await ready(page, "today");
  const again = await sessionsInPage(page);
  const mine = again.find((s) => s.taskId === session.taskId);
  check(
    mine?.status === "completed" && mine?.pending === "true",
    `offline after a reload: the queued session's li is ${json(mine)} (data-status=completed, data-pending=true)`,
  );
  check(again.length === 3, `offline after a reload Today shows ${again.length} sessions (the last ones read: 3)`);
  const first = again.find((s) => s.taskId === firstSession.taskId);
  if (first?.status !== "completed") {
    note(`offline after a reload the session completed online shows data-status=${json(first?.status)} (the cached list is older than the report)`);
  }
  const kept = await outbox(page);
  check(kept?.count === "1" && kept.visible, `offline after a reload #outbox is ${json(kept)} (visible, data-count="1")`);
  await screen(page, "offline-reloaded");

  // back online; the first answer to the PATCH is lost on its way back
  const seen = await net.loseFirstAnswer("PATCH", `/fhir/Task/${session.taskId}`);
  const back = Date.now();
  await net.setOffline(false);
  const sent = !!(await poll(
    page,
    (li) => {
      const o = document.querySelector("#outbox");
      const e = document.querySelector(li);
      return o && !o.checkVisibility() && o.dataset.count !== "1" && e?.dataset.pending !== "true";
    },
    li,
    95000,
  ));
  await net.stopIntercepting();
  expect(
    seen.length > 0,
    `no PATCH of Task/${session.taskId} reached the server within 95 s of the network coming back (the app flushes on "online" and every 30 s): #outbox ${json(await outbox(page))}${appLog(page)}`,
  );
  expect(
    sent,
    `the outbox was not emptied within 95 s after the network came back (the PATCHes seen: ${json(seen)}): #outbox ${json(await outbox(page))}, li ${json((await sessionsInPage(page)).find((s) => s.taskId === session.taskId))}${appLog(page)}`,
  );
  const waitedMs = Date.now() - back;
  const emptied = await outbox(page);
  check(emptied.hidden && emptied.count === "0", `after sending, #outbox is ${json(emptied)} (hidden, data-count="0")`);
  // when the app tried (ms after the network came back; negative: while offline), and
  // which tries the server answered
  const attemptsMs = page.patches.filter((p) => p.url.includes(`/fhir/Task/${session.taskId}`)).map((p) => p.at - back);
  const answeredMs = seen.map((s) => s.at - back);
  console.log(`  the PATCH tries, in ms after the network came back: ${json(attemptsMs)}; the server answered those at ${json(answeredMs)} (the first answer lost)`);
  expect(seen.length >= 2, `the lost answer was not retried: ${seen.length} PATCH (${json(seen)}), yet the outbox is empty`);
  expect(seen[0].status === 200, `the first PATCH (its answer lost) was answered ${seen[0].status} by the server`);
  expect(
    seen.every((s) => s.key && s.key === seen[0].key),
    `the retries do not send the same Idempotency-Key: ${json(seen.map((s) => s.key))}`,
  );
  const last = seen[seen.length - 1];
  expect(
    last.status === 200 && last.replayed === "true",
    `the retry was answered ${last.status} with Idempotent-Replayed ${json(last.replayed)} (200, "true")`,
  );
  check(/^[0-9a-f-]{36}$/i.test(seen[0].key), `the Idempotency-Key ${json(seen[0].key)} is not a UUID (crypto.randomUUID())`);

  onServer = await fhir("GET", `Task/${session.taskId}`);
  expect(
    onServer.status === "completed" && onServer.meta.versionId === "2",
    `after the retry Task/${session.taskId} is ${onServer.status}, version ${onServer.meta.versionId} (completed, version 2: one completion)`,
  );
  const history = resources(await fhir("GET", `Task/${session.taskId}/_history`), "Task");
  expect(history.length === 2, `Task/${session.taskId} has ${history.length} versions, not 2 (made, completed once)`);
  const outputs = outputsOf(onServer);
  expect(
    outputs["72514-3"] === values.pain && outputs["sets-done"] === values.sets && outputs.note === values.note,
    `the offline report reached the server as ${json(outputs)}, the patient typed ${json(values)}`,
  );
  const pain = await painScores(program.pid);
  expect(
    pain.length === 2,
    `after the online report and the offline one (sent ${seen.length} times) the server has ${pain.length} pain Observations, not 2`,
  );
  ok(
    `the second session, reported offline: queued (outbox 1, data-pending), kept across an offline reload, sent ${seen.length} times with one Idempotency-Key when the network came back (the first answer lost, the retry replayed), completed once (version 2), 2 pain Observations in all; the outbox emptied ${Math.round(waitedMs / 1000)} s after the network returned`,
  );
  return { values, retry: { patchesAnswered: seen.length, attemptsMs, answeredMs, outboxEmptyAfterMs: waitedMs } };
}

/** Step 5: the third session, "Could not do it". */
async function couldNotDo(page, program, session) {
  const reason = "My knee was too sore today";
  const form = await openReport(page, session.taskId, "cannot");
  const field = await page
    .$eval(`${form} textarea[name="reason"]`, (e) => ({ required: e.required, labelled: e.labels?.length > 0 || !!e.getAttribute("aria-label") }))
    .catch(() => null);
  expect(field, `${form}: no textarea name="reason"`);
  check(field.required, `${form}: the reason is not required`);
  check(field.labelled, `${form}: the reason has no label`);
  await enter(page, `${form} textarea[name="reason"]`, reason);
  await screen(page, "could-not-do-form");
  await tap(page, `${form} button[type="submit"]`);
  await afterSave(page, session.taskId, form);
  await waitInPage(page, `li[data-task-id=${session.taskId}] failed and sent`, (li) => {
    const e = document.querySelector(li);
    return e?.dataset.status === "failed" && e.dataset.pending !== "true";
  }, sessionLi(session.taskId), 15000);
  const task = await serverState(() => fhir("GET", `Task/${session.taskId}`), (t) => t.status === "failed");
  expect(task.status === "failed", `after "Could not do it" the server's Task/${session.taskId} is ${task.status}, not failed`);
  const coding = task.statusReason?.coding?.[0];
  expect(
    coding?.system === STATUS_REASON && coding?.code === "could-not-do",
    `Task/${session.taskId}'s statusReason is ${json(task.statusReason)} (code could-not-do)`,
  );
  expect(
    task.statusReason.text === reason,
    `Task/${session.taskId}'s statusReason.text is ${json(task.statusReason.text)}, the patient typed ${json(reason)}`,
  );
  expect((await painScores(program.pid)).length === 2, `"Could not do it" made a pain Observation`);
  ok(`the third session: "Could not do it" → Task failed, could-not-do, ${json(reason)}`);
}

// ---------------------------------------------------------------------------------
// Step 5b: the outcome measures (To answer on Today, their forms, the scores)

/** The measures to answer on Today, as the DOM shows them. */
function measuresInPage(page) {
  return page.$$eval("ul#measures > li.measure", (lis) =>
    lis.map((li) => ({
      taskId: li.dataset.taskId,
      questionnaire: li.dataset.questionnaire ?? null,
      status: li.dataset.status ?? null,
      pending: li.dataset.pending ?? null,
      title: li.querySelector("h3")?.textContent.trim() ?? null,
      when: li.querySelector(".when")?.textContent.trim() ?? null,
      answer: li.querySelector("button.answer")?.textContent.trim() ?? null,
      heading: li.closest("section")?.querySelector("h2")?.textContent.trim() ?? null,
    })),
  );
}

const MEASURE_TITLES = {
  [`${QUESTIONNAIRE}/nprs`]: "Numeric Pain Rating Scale",
  [`${QUESTIONNAIRE}/psfs`]: "Patient-Specific Functional Scale",
};

/** Today: "To answer" lists the two due measures, each with why, the last day, and "Answer". */
async function checkMeasuresOnToday(page, program) {
  const due = (await measureTasks(program.pid)).filter(
    (t) => t.status === "requested" && Date.parse(t.restriction.period.start) <= Date.now(),
  );
  const shown = await measuresInPage(page);
  expect(
    shown.length === 2,
    `Today shows ${shown.length} ul#measures > li.measure, not 2 (the NPRS and the PSFS are due: ${json(due.map((t) => t.id))}): ${await pageText(page)}`,
  );
  expect(
    json(shown.map((s) => s.taskId).sort()) === json(due.map((t) => t.id).sort()),
    `Today's li.measure[data-task-id] are ${json(shown.map((s) => s.taskId))}, the server's due measure Tasks ${json(due.map((t) => t.id))}`,
  );
  for (const s of shown) {
    const task = due.find((t) => t.id === s.taskId);
    const canonical = measureOf(task);
    check(s.questionnaire === canonical, `Today: li.measure[data-task-id=${s.taskId}] has data-questionnaire ${json(s.questionnaire)}, not ${canonical}`);
    check(s.title === MEASURE_TITLES[canonical], `Today: the measure ${canonical} is titled ${json(s.title)}, not the Questionnaire's title ${json(MEASURE_TITLES[canonical])}`);
    const end = task.restriction.period.end;
    const lastDay = end.slice(11, 19) === "00:00:00" ? addDays(end.slice(0, 10), -1) : end.slice(0, 10);
    const [y, m, d] = lastDay.split("-").map(Number);
    const month = new Intl.DateTimeFormat("en", { month: "long", timeZone: "UTC" }).format(Date.UTC(y, m - 1, d));
    check(
      /At the start of the program/.test(s.when ?? "") && new RegExp(`\\bby \\w+ ${d} ${month}\\b`).test(s.when ?? ""),
      `Today: the measure ${canonical} says ${json(s.when)} (the occasion "At the start of the program" and "by <the day of ${end}>")`,
    );
    check(s.answer === "Answer", `Today: the measure ${canonical} has button.answer ${json(s.answer)}, not "Answer"`);
    check(s.heading === "To answer", `Today: the measures are under the heading ${json(s.heading)}, not "To answer"`);
  }
  ok(`Today: "To answer" lists the 2 due measures (${shown.map((s) => `${s.title}: ${s.when}`).join("; ")})`);
  return Object.fromEntries(shown.map((s) => [s.questionnaire.split("/").pop(), s.taskId]));
}

/** Whether the app's token lets it send answers (the scope the server granted it). */
async function canAnswer(page) {
  const granted = await page.evaluate(() => JSON.parse(localStorage.getItem("hep-app.sign-in") ?? "null")?.tokenResponse?.scope ?? "");
  return check(
    granted.split(" ").includes(ANSWER_SCOPE),
    `the server granted the app the scope ${json(granted)}, without ${ANSWER_SCOPE}: the patient cannot send answers to questionnaires (the server registers its own app, hep-app.<clinic>, without it); the answering steps are skipped`,
  );
}

async function openMeasure(page, taskId) {
  await tap(page, `ul#measures > li.measure[data-task-id="${taskId}"] button.answer`);
  await ready(page, "answer");
  await waitInPage(
    page,
    `form#measure-form of Task ${taskId}`,
    (id) => document.querySelector(`form#measure-form[data-task-id="${id}"]`)?.checkVisibility(),
    taskId,
    10000,
  );
  const facts = await page.evaluate(() => ({
    hash: location.hash,
    h1: document.querySelector("section#view-answer h1")?.textContent.trim(),
    focus: document.activeElement?.id ?? null,
  }));
  check(facts.hash === `#answer/${taskId}`, `the answer screen's address is ${json(facts.hash)}, not #answer/${taskId}`);
  check(facts.focus === "answer-title", `the answer screen opens with the focus on ${json(facts.focus)}, not its h1#answer-title`);
  return facts;
}

/** The questions of the form, by linkId, as the DOM shows them. */
function formQuestions(page) {
  return page.$$eval("form#measure-form [data-link-id]", (els) =>
    Object.fromEntries(
      els.map((e) => {
        const input = e.querySelector(":scope > input, :scope > textarea");
        return [
          e.dataset.linkId,
          {
            tag: e.tagName.toLowerCase(),
            visible: e.checkVisibility(),
            legend: e.querySelector(":scope > legend")?.textContent.trim() ?? null,
            label: e.querySelector(":scope > label")?.textContent.trim() ?? null,
            radios: [...e.querySelectorAll('input[type="radio"]')].map((r) => ({ labelled: r.labels?.length > 0, disabled: r.disabled })),
            options: [...e.querySelectorAll("label")].map((l) => l.textContent.trim()),
            input: input && { type: input.type, maxLength: input.maxLength, labelled: input.labels?.length > 0, disabled: input.disabled },
            error: e.querySelector(".q-error:not([hidden])")?.textContent.trim() ?? null,
            text: e.tagName === "P" ? e.textContent.trim() : null,
          },
        ];
      }),
    ),
  );
}

/** Taps the option of a question whose label says `words`. */
async function choose(page, linkId, words) {
  const id = await page.$$eval(
    `form#measure-form fieldset[data-link-id="${linkId}"] label`,
    (labels, w) => labels.find((l) => l.textContent.trim() === w)?.getAttribute("for") ?? null,
    String(words),
  );
  expect(id, `the question ${linkId} has no option labelled ${json(words)}`);
  await tap(page, `label[for="${id}"]`);
  const checked = await page.$eval(`#${id}`, (e) => e.checked);
  expect(checked, `tapping the label ${json(words)} of ${linkId} did not check its radio button`);
}

/** Empties a text field as a person does (an input event follows). */
const emptyField = (page, selector) =>
  page.$eval(selector, (e) => {
    e.value = "";
    e.dispatchEvent(new Event("input", { bubbles: true }));
  });

async function send(page) {
  const submit = "form#measure-form button[type=submit]";
  check((await page.$eval(submit, (b) => b.textContent.trim()).catch(() => null)) === "Send", `${submit} does not say "Send"`);
  await tap(page, submit);
}

/** Waits for the confirmation in `state` ("sent", "queued"); answers what it says. */
async function confirmationShown(page, state, timeout = 15000) {
  return waitInPage(
    page,
    `#measure-confirmation[data-state=${state}]`,
    (state) => {
      const c = document.querySelector("#measure-confirmation");
      if (!c?.checkVisibility() || c.dataset.state !== state) return null;
      return {
        score: c.dataset.score ?? null,
        improved: c.dataset.improved ?? null,
        text: c.innerText.replace(/\s+/g, " ").trim(),
        focus: c.contains(document.activeElement) ? document.activeElement.tagName.toLowerCase() : null,
      };
    },
    state,
    timeout,
  );
}

/** The patient's QuestionnaireResponses of a measure, as stored. */
const responsesTo = async (patientId, id) =>
  resources(await fhir("GET", `QuestionnaireResponse?subject=Patient/${patientId}&_count=100`), "QuestionnaireResponse").filter(
    (r) => r.questionnaire?.split("|")[0] === `${QUESTIONNAIRE}/${id}`,
  );

/** The answers of a response, by linkId (groups flattened). */
function answersOf(response) {
  const out = {};
  const walk = (items) => {
    for (const i of items ?? []) {
      if (i.answer?.length) out[i.linkId] = i.answer[0].valueInteger ?? i.answer[0].valueString ?? i.answer[0].valueCoding?.code;
      walk(i.item);
    }
  };
  walk(response.item);
  return out;
}

/** The server's side of an answered measure: one response, the Task completed, its score Observation. */
async function answeredOnServer(program, id, taskId, answers, score) {
  const responses = await responsesTo(program.pid, id);
  expect(responses.length === 1, `after answering ${id} the server has ${responses.length} QuestionnaireResponses of it, not 1`);
  const response = responses[0];
  expect(
    json(sorted(answersOf(response))) === json(sorted(answers)),
    `the ${id} QuestionnaireResponse's answers are ${json(answersOf(response))}, the patient gave ${json(answers)}`,
  );
  check(
    response.status === "completed" &&
      response.subject?.reference === `Patient/${program.pid}` &&
      response.basedOn?.[0]?.reference === `CarePlan/${program.carePlanId}` &&
      Math.abs(Date.parse(response.authored) - Date.now()) < 10 * 60000,
    `the ${id} QuestionnaireResponse is ${json({ status: response.status, subject: response.subject, basedOn: response.basedOn, authored: response.authored })} (completed, the patient, the program, authored now)`,
  );
  const task = await fhir("GET", `Task/${taskId}`);
  expect(task.status === "completed", `after answering ${id} its Task/${taskId} is ${task.status}, not completed`);
  expect(
    task.output?.[0]?.valueReference?.reference === `QuestionnaireResponse/${response.id}`,
    `Task/${taskId}'s output[0] is ${json(task.output?.[0])}, not QuestionnaireResponse/${response.id}`,
  );
  const reference = task.output?.[1]?.valueReference?.reference ?? "";
  expect(/^Observation\//.test(reference), `Task/${taskId}'s output[1] is ${json(task.output?.[1])}, not the score Observation`);
  const observation = await fhir("GET", reference);
  const value = observation.valueInteger ?? observation.valueQuantity?.value;
  expect(value === score, `the ${id} score Observation ${reference} has ${json(value)}, not ${score}`);
  check(
    observation.derivedFrom?.[0]?.reference === `QuestionnaireResponse/${response.id}`,
    `${reference}'s derivedFrom is ${json(observation.derivedFrom)}, not QuestionnaireResponse/${response.id}`,
  );
  return { response, task, observation };
}

/** The NPRS: one question, a row of 0-10 radio buttons; the patient picks 6. */
async function answerNprs(page, program, taskId) {
  await openMeasure(page, taskId);
  const qs = await formQuestions(page);
  const pain = qs.pain;
  expect(pain, `the NPRS form has no question [data-link-id=pain]: ${json(Object.keys(qs))}`);
  check(pain.tag === "fieldset" && /pain/i.test(pain.legend ?? ""), `the NPRS question is ${json(pain)} (a fieldset, its legend the question)`);
  check(/\(required\)/.test(pain.legend ?? ""), `the NPRS question's legend ${json(pain.legend)} does not say "(required)"`);
  check(
    pain.radios.length === 11 && pain.radios.every((r) => r.labelled) && json(pain.options) === json(Array.from({ length: 11 }, (_, i) => String(i))),
    `the NPRS question has ${pain.radios.length} radio buttons labelled ${json(pain.options)} (11, labelled 0 to 10)`,
  );
  const row = await page.$$eval('fieldset[data-link-id="pain"] label', (ls) => {
    const tops = [...new Set(ls.map((l) => Math.round(l.getBoundingClientRect().top)))];
    const small = ls.filter((l) => l.getBoundingClientRect().width < 44 || l.getBoundingClientRect().height < 44).length;
    return { rows: tops.length, small };
  });
  check(row.rows <= 2 && row.small === 0, `the NPRS options are on ${row.rows} lines, ${row.small} under 44×44 px (a row of at least 44 px boxes, two lines at most on a phone)`);
  await choose(page, "pain", 6);
  await screen(page, "measure-nprs");
  page.posts.length = 0;
  await send(page);
  const done = await confirmationShown(page, "sent");
  check(done.score === "6" && /Your score: 6\b/.test(done.text), `the NPRS confirmation says ${json(done.text)} (data-score ${json(done.score)}), not "Your score: 6"`);
  check(/first score/i.test(done.text), `the NPRS confirmation of the first answer does not say it is the first score: ${json(done.text)}`);
  check(done.improved === "false", `the first NPRS answer is shown as an important improvement (data-improved ${json(done.improved)})`);
  check(done.focus === "h2", `after Send the focus is ${json(done.focus)}, not the confirmation's heading`);
  await screen(page, "measure-nprs-sent");
  const post = page.posts[0];
  check(
    post && /^[0-9a-f-]{36}$/i.test(post.headers["idempotency-key"] ?? "") && (post.headers["content-type"] ?? "").startsWith("application/fhir+json"),
    `the answers' POST has ${json(post && { key: post.headers["idempotency-key"], type: post.headers["content-type"] })} (an Idempotency-Key UUID, application/fhir+json)`,
  );
  const server = await answeredOnServer(program, "nprs", taskId, { pain: 6 }, 6);
  // back on Today: the NPRS is answered, the PSFS still to answer
  await tap(page, "#measure-confirmation a[href='#today']");
  await ready(page, "today");
  const left = (await measuresInPage(page)).filter((m) => m.answer).map((m) => m.taskId);
  check(!left.includes(taskId) && left.length === 1, `after answering the NPRS Today offers ${json(left)} to answer (only the PSFS)`);
  ok(`NPRS answered (6): the confirmation ${json(done.text)}; QuestionnaireResponse/${server.response.id}, the Task completed, ${server.task.output[1].valueReference.reference} = 6`);
}

/**
 * The PSFS: the ratings appear as their activities are named; two activities are not
 * enough for the form; an activity the server refuses (over 200 characters, the field's
 * limit taken off) shows the server's words at its question; sent offline, the answers
 * wait in the outbox, then the score shows.
 */
async function answerPsfs(page, net, program, taskId) {
  await openMeasure(page, taskId);
  let qs = await formQuestions(page);
  const ids = (prefix) => [1, 2, 3, 4, 5].map((n) => `${prefix}-${n}`);
  check(qs.instructions?.tag === "p" && qs.instructions.visible, `the PSFS instructions are ${json(qs.instructions)} (a visible paragraph)`);
  for (const [n, id] of ids("activity").entries()) {
    const a = qs[id];
    expect(a?.input, `the PSFS form has no text field for ${id}: ${json(a)}`);
    check(a.input.type === "text" && a.input.maxLength === 200 && a.input.labelled, `the PSFS field ${id} is ${json(a.input)} (text, maxlength 200, labelled)`);
    check(/\(required\)/.test(a.label ?? "") === n < 3, `the PSFS field ${id} is labelled ${json(a.label)} (activities 1 to 3 say "(required)", 4 and 5 do not)`);
  }
  const hidden = (q) => ids("rating").filter((id) => !q[id]?.visible);
  check(json(hidden(qs)) === json(ids("rating")), `before any activity is named the shown ratings are ${json(ids("rating").filter((id) => qs[id]?.visible))} (none: enableWhen exists)`);

  // two activities named: their ratings show, the others stay hidden
  await enter(page, "#q-activity-1", "Climbing stairs");
  await enter(page, "#q-activity-2", "Kneeling in the garden");
  qs = await formQuestions(page);
  check(
    json(hidden(qs)) === json(["rating-3", "rating-4", "rating-5"]),
    `with activities 1 and 2 named the hidden ratings are ${json(hidden(qs))}, not rating-3 to rating-5`,
  );
  await choose(page, "rating-1", 4);
  await choose(page, "rating-2", 3);
  page.posts.length = 0;
  await send(page);
  await waitInPage(page, "the form says activity 3 is required", () => document.querySelector('[data-link-id="activity-3"] .q-error:not([hidden])')?.textContent, undefined, 5000);
  const refusedByForm = await page.evaluate(() => ({
    focus: document.activeElement?.id,
    alert: document.querySelector("form#measure-form .form-problem")?.textContent.trim(),
    invalid: document.querySelector("#q-activity-3")?.getAttribute("aria-invalid"),
  }));
  check(refusedByForm.focus === "q-activity-3" && refusedByForm.invalid === "true", `after Send with two activities the focus is on ${json(refusedByForm.focus)} (aria-invalid ${json(refusedByForm.invalid)}), not #q-activity-3`);
  check(/check the answer/i.test(refusedByForm.alert ?? ""), `the form's alert says ${json(refusedByForm.alert)}`);
  expect(page.posts.length === 0, `with a required activity left empty the app still sent ${page.posts.length} POST`);

  // an answer the server refuses: its words at the question
  const tooLong = "Walking to the shop and back again, ".repeat(7).slice(0, 201); // 201 characters, none of them space at the ends
  await page.$eval("#q-activity-3", (e, v) => {
    e.removeAttribute("maxlength");
    e.value = v;
    e.dispatchEvent(new Event("input", { bubbles: true }));
  }, tooLong);
  qs = await formQuestions(page);
  check(qs["rating-3"]?.visible && !qs["rating-4"]?.visible, `with activity 3 named rating-3 is ${qs["rating-3"]?.visible ? "shown" : "hidden"} and rating-4 ${qs["rating-4"]?.visible ? "shown" : "hidden"}`);
  await choose(page, "rating-3", 5);
  await send(page);
  const refused = await waitInPage(
    page,
    "the server's refusal shown at activity 3",
    () => document.querySelector('[data-link-id="activity-3"] .q-error:not([hidden])')?.textContent.match(/200/) && document.querySelector('[data-link-id="activity-3"] .q-error').textContent,
    undefined,
    10000,
  );
  expect((await responsesTo(program.pid, "psfs")).length === 0, "the server stored the PSFS answer it refused");
  check(!(await page.$("#notice .notice")), "the refused answers also show a notice above the screen (they are shown at their question)");
  await screen(page, "measure-psfs-refused");
  ok(`PSFS: two activities refused by the form (activity 3 required); an activity of 201 characters refused by the server, its words at the question: ${json(refused)}`);

  // the right answers; rating-4 shows only while activity 4 is named
  await enter(page, "#q-activity-3", "Walking to the shop");
  check(!(await formQuestions(page))["rating-4"]?.visible, "rating-4 shows before activity 4 is named");
  await enter(page, "#q-activity-4", "Running for the bus");
  qs = await formQuestions(page);
  check(qs["rating-4"]?.visible && !qs["rating-5"]?.visible, `with activity 4 named rating-4 is ${qs["rating-4"]?.visible ? "shown" : "hidden"}, rating-5 ${qs["rating-5"]?.visible ? "shown" : "hidden"}`);
  await emptyField(page, "#q-activity-4");
  check(!(await formQuestions(page))["rating-4"]?.visible, "rating-4 stays shown after activity 4 is emptied");
  await screen(page, "measure-psfs");

  // sent offline: the answers wait on the device
  await net.setOffline(true);
  await send(page);
  const queued = await confirmationShown(page, "queued", 10000);
  const waiting = await outbox(page);
  check(
    waiting?.visible && waiting.count === "1" && /^1 questionnaire waiting to be sent/.test(waiting.text),
    `offline, after Send #outbox is ${json(waiting)} (visible, "1 questionnaire waiting to be sent")`,
  );
  const stored = await page.evaluate((pid) => JSON.parse(localStorage.getItem(`hep-app.outbox.${pid}`) ?? "null"), program.pid);
  check(
    stored?.length === 1 && stored[0].kind === "answer" && stored[0].taskId === taskId && stored[0].response?.resourceType === "QuestionnaireResponse",
    `offline, the outbox holds ${json(stored)?.slice(0, 300)} (one answer for Task ${taskId})`,
  );
  await screen(page, "measure-psfs-offline");

  await net.setOffline(false);
  const done = await confirmationShown(page, "sent", 60000);
  check(done.score === "4" && /Your score: 4\b/.test(done.text), `the PSFS confirmation says ${json(done.text)} (data-score ${json(done.score)}), not "Your score: 4" (the mean of 4, 3 and 5)`);
  check(await outboxIsEmpty(page), `after the answers were sent #outbox is ${json(await outbox(page))}`);
  await screen(page, "measure-psfs-sent");
  const server = await answeredOnServer(
    program,
    "psfs",
    taskId,
    { "activity-1": "Climbing stairs", "activity-2": "Kneeling in the garden", "activity-3": "Walking to the shop", "rating-1": 4, "rating-2": 3, "rating-3": 5 },
    4,
  );
  ok(`PSFS answered offline and sent when back online (${json(queued.text.slice(0, 60))}…, then ${json(done.text)}); QuestionnaireResponse/${server.response.id}, ${server.task.output[1].valueReference.reference} = 4`);

  // back on Today: nothing left to answer
  await tap(page, "#measure-confirmation a[href='#today']");
  await ready(page, "today");
  const left = (await measuresInPage(page)).filter((m) => m.answer);
  check(left.length === 0, `after answering both, Today still offers ${json(left)} to answer`);
}

/** The clinic records a later NPRS (3, at a visit): down 3 from the first, an important improvement. */
async function clinicRecordsNprs(program) {
  await fhir("POST", "QuestionnaireResponse", {
    resourceType: "QuestionnaireResponse",
    questionnaire: `${QUESTIONNAIRE}/nprs|1.0.0`,
    status: "completed",
    subject: { reference: `Patient/${program.pid}` },
    basedOn: [{ reference: `CarePlan/${program.carePlanId}` }],
    authored: new Date(Date.now() + 1000).toISOString(),
    item: [{ linkId: "pain", answer: [{ valueInteger: 3 }] }],
  });
}

// ---------------------------------------------------------------------------------
// Steps 6 to 8: Week, My program, Progress

/** Week: each day's counts are the server's Tasks of that day (done = completed, missed = failed, to do = requested). */
async function checkWeek(page, program) {
  await openView(page, "week");
  const days = await page.$$eval("ul#days > li.day", (lis) =>
    lis.map((li) => {
      const { date, done, missed, todo } = li.dataset;
      return { date, done, missed, todo, text: li.textContent.replace(/\s+/g, " ").trim() };
    }),
  );
  const mine = days.find((d) => d.date === today);
  expect(mine, `Week: no ul#days > li.day[data-date=${today}] (days shown: ${json(days.map((d) => d.date))})`);
  const range = `session-day=ge${addDays(today, -6)}&session-day=le${addDays(today, 7)}`;
  // the measures to answer are not sessions: Week leaves them out
  const tasks = resources(await fhir("GET", `Task?patient=${program.pid}&${range}&_count=100`), "Task").filter((t) => !isMeasureTask(t));
  const dayOf = (t) => t.restriction.period.start.slice(0, 10); // the local date, as written in the patient's offset
  for (const d of days) {
    const of = tasks.filter((t) => dayOf(t) === d.date);
    const count = (status) => of.filter((t) => t.status === status).length;
    const want = { done: count("completed"), missed: count("failed"), todo: count("requested") };
    const got = { done: Number(d.done), missed: Number(d.missed), todo: Number(d.todo) };
    check(
      json(got) === json(want),
      `Week: li.day[data-date=${d.date}] has done/missed/todo ${json([d.done, d.missed, d.todo])}, the server's Tasks of that day: ${json(want)}`,
    );
  }
  expect(
    Number(mine.done) === 2 && Number(mine.missed) === 1 && Number(mine.todo) === 0,
    `Week: today (${today}) shows data-done=${mine.done} data-missed=${mine.missed} data-todo=${mine.todo}, not 2, 1, 0`,
  );
  check(
    /\b2 done\b/.test(mine.text) && /\b1 missed\b/.test(mine.text) && /\b0 to do\b/.test(mine.text),
    `Week: today's text is ${json(mine.text)} (like "Wed 2 Dec: 2 done, 1 missed, 0 to do")`,
  );
  const dates = days.map((d) => d.date);
  const expected = Array.from({ length: 14 }, (_, i) => addDays(today, i - 6));
  check(
    json(dates) === json(expected),
    `Week: the days shown are ${json(dates)}, not the 14 days ${expected[0]} to ${expected[13]} the week's search covers`,
  );
  await screen(page, "week");
  ok(`Week: ${days.length} days, today ${json(mine.text)}, every day's counts match the server's Tasks`);
}

/** Taps a download link; answers the path of the file once it has arrived. */
async function download(page, selector) {
  const dir = join(out, "downloads");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const cdp = await page.browser().target().createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir, eventsEnabled: true });
  const done = new Promise((res) => {
    cdp.on("Browser.downloadProgress", (e) => {
      if (e.state === "completed" || e.state === "canceled") res(e.state);
    });
  });
  await tap(page, selector);
  const state = await Promise.race([done, sleep(15000).then(() => "no download after 15 s")]);
  await cdp.detach();
  expect(state === "completed", `tapping ${selector}: ${state}`);
  const files = readdirSync(dir);
  expect(files.length === 1, `tapping ${selector} downloaded ${json(files)}`);
  return join(dir, files[0]);
}

/** My program: the take-home sheet in the frame and its PDF. */
async function checkProgram(page, program) {
  await openView(page, "program");
  const frame = await page
    .$eval("iframe#handout-frame", (f) => ({ src: f.src, title: f.title, sandbox: f.getAttribute("sandbox") }))
    .catch(() => null);
  expect(frame, `My program: no iframe#handout-frame: ${await pageText(page)}`);
  expect(frame.src.startsWith("blob:"), `My program: iframe#handout-frame src is ${json(frame.src)}, not a blob: URL`);
  check(frame.title === "Take-home sheet", `My program: the frame's title is ${json(frame.title)}, not "Take-home sheet"`);
  check(
    frame.sandbox !== null && !/allow-scripts/.test(frame.sandbox),
    `My program: the frame's sandbox is ${json(frame.sandbox)} (sandboxed, no scripts)`,
  );
  const sheet = await page.evaluate((src) => window.__hepBlobs.get(src)?.text() ?? "(not a blob the page made)", frame.src);
  expect(
    sheet.includes(`<title>${program.title}</title>`) && sheet.includes(`<h1>${program.title}</h1>`),
    `My program: the frame's document is not the sheet of "${program.title}": ${json(sheet.slice(0, 200))}`,
  );
  // the frame shows it: its document as Chromium rendered it (through DevTools: a
  // sandboxed frame is opaque to the page)
  let shownTitle = "(no frame loaded)";
  for (let i = 0; i < 50 && shownTitle !== program.title; i++) {
    const f = page.frames().find((x) => x.url() === frame.src);
    if (f) shownTitle = await f.evaluate(() => document.querySelector("h1")?.textContent ?? "(no h1)").catch((e) => `(${e.message.split("\n")[0]})`);
    if (shownTitle !== program.title) await sleep(100);
  }
  check(
    shownTitle === program.title,
    `My program: the frame shows ${json(shownTitle)}, not the sheet's h1 ${json(program.title)}`,
  );

  const pdf = await page
    .$eval("#handout-pdf", (e) => ({
      tag: e.tagName.toLowerCase(),
      href: e.getAttribute("href") === null ? null : e.href.slice(0, 30),
      download: e.getAttribute("download"),
      text: e.textContent.trim(),
    }))
    .catch(() => null);
  expect(pdf, `My program: no #handout-pdf`);
  // a button: the PDF (its fonts embedded: several hundred kB) is fetched when tapped,
  // not with every visit to the screen
  check(pdf.tag === "button", `My program: #handout-pdf is ${json(pdf)}, not a button`);
  check(pdf.text === "Download PDF", `My program: #handout-pdf says ${json(pdf.text)}, not "Download PDF"`);
  await screen(page, "program");
  // the patient taps "Download PDF": the file arrives, named as the spec says, and is a PDF
  const file = await download(page, "#handout-pdf");
  check(basename(file) === "exercise-program.pdf", `My program: "Download PDF" saved ${json(basename(file))}, not "exercise-program.pdf"`);
  const bytes = readFileSync(file);
  expect(
    bytes.subarray(0, 4).toString("latin1") === "%PDF",
    `My program: the downloaded ${basename(file)} starts with ${json(bytes.subarray(0, 8).toString("latin1"))}, not %PDF`,
  );
  ok(
    `My program: the sheet "${program.title}" in the frame (${frame.src.slice(0, 20)}…), and "Download PDF" gives ${basename(file)}, a PDF of ${bytes.length} bytes`,
  );
}

/** Progress: the adherence per program week and the pain scores, as charts and tables. */
async function checkProgress(page, program, painValues, answered) {
  await openView(page, "progress");
  const facts = await page.evaluate(() => {
    const svg = (id) => {
      const e = document.querySelector(`svg#${id}`);
      return e && { role: e.getAttribute("role"), label: e.getAttribute("aria-label"), visible: e.checkVisibility() };
    };
    const table = (id) => {
      const t = document.querySelector(`table#${id}`);
      if (!t) return null;
      const rows = [...t.querySelectorAll("tr")].filter((r) => r.querySelector("td"));
      return { visible: t.checkVisibility(), rows: rows.map((r) => [...r.children].map((c) => c.textContent.trim())) };
    };
    return { adherenceChart: svg("adherence-chart"), painChart: svg("pain-chart"), adherence: table("adherence-table"), pain: table("pain-table") };
  });
  for (const [name, chart] of [["svg#adherence-chart", facts.adherenceChart], ["svg#pain-chart", facts.painChart]]) {
    expect(chart, `Progress: no ${name}`);
    check(
      chart.role === "img" && chart.label?.trim(),
      `Progress: ${name} has role=${json(chart.role)} aria-label=${json(chart.label)} (role="img" and a label that says the gist)`,
    );
    check(chart.visible, `Progress: ${name} is not visible`);
  }
  expect(facts.adherence, "Progress: no table#adherence-table");
  expect(facts.pain, "Progress: no table#pain-table");
  check(
    facts.adherence.visible && facts.pain.visible,
    `Progress: the tables are not visible (visible, or in a <details> open by default)`,
  );
  // the program began 6 days ago: this is its first week, the only row
  const week = await fhir("GET", `CarePlan/${program.carePlanId}/$adherence?start=${program.start}&end=${addDays(program.start, 6)}`);
  const parts = week.parameter.find((p) => p.name === "overall")?.part ?? [];
  const overall = Object.fromEntries(parts.map((p) => [p.name, p.valueInteger ?? p.valueDecimal ?? p.valueQuantity?.value]));
  check(
    facts.adherence.rows.length === 1,
    `Progress: table#adherence-table has ${facts.adherence.rows.length} rows, not 1 (the program's first week is this week): ${json(facts.adherence.rows)}`,
  );
  const row = facts.adherence.rows.at(-1) ?? [];
  const shows = (n) => row.some((c) => new RegExp(`(^|\\D)${n}(\\D|$)`).test(c));
  check(
    shows(overall.completed) && shows(overall.due),
    `Progress: this week's row ${json(row)} does not show the server's ${overall.completed} completed of ${overall.due} due`,
  );
  const painRows = facts.pain.rows;
  check(
    painRows.length === painValues.length,
    `Progress: table#pain-table has ${painRows.length} rows, not ${painValues.length} (the pain scores): ${json(painRows)}`,
  );
  for (const [i, v] of painValues.entries()) {
    check(
      painRows[i]?.some((c) => c === String(v) || new RegExp(`^${v}(\\D|$)`).test(c)),
      `Progress: pain row ${i + 1} is ${json(painRows[i])}, not the score ${v}`,
    );
  }
  const measures = await checkOutcomes(page, program, answered);
  await screen(page, "progress");
  ok(`Progress: the charts and tables (this week: ${json(row)}; pain ${json(painRows)}; outcome measures ${json(measures)})`);
}

/** Progress, "Outcome measures": per measure a chart and a table of $outcomes' scores. */
async function checkOutcomes(page, program, answered) {
  const outcomes = await fhir("GET", `CarePlan/${program.carePlanId}/$outcomes`);
  const series = (outcomes.parameter ?? [])
    .filter((p) => p.name === "measure")
    .map((m) => {
      const part = (parts, name) => parts?.find((x) => x.name === name);
      const id = part(m.part, "questionnaire").valueCanonical.split("|")[0].split("/").pop();
      const scores = m.part
        .filter((x) => x.name === "score")
        .map((x) => ({ value: part(x.part, "value")?.valueDecimal, change: part(x.part, "change")?.valueDecimal ?? null, improved: part(x.part, "mcidReached")?.valueBoolean }));
      return { id, scores };
    });
  const shown = await page.evaluate(() => {
    const section = document.querySelector("#outcomes-title");
    const tables = [...document.querySelectorAll("table.outcome-table")].map((t) => ({
      id: t.id,
      caption: t.caption?.textContent.trim(),
      rows: [...t.querySelectorAll("tbody tr")].map((r) => [...r.children].map((c) => c.textContent.trim())),
    }));
    const charts = [...document.querySelectorAll("svg[id^='outcome-']")].map((c) => ({ id: c.id, role: c.getAttribute("role"), label: c.getAttribute("aria-label") }));
    return { heading: section?.textContent.trim() ?? null, tables, charts, none: document.querySelector("#no-outcomes")?.textContent.trim() ?? null };
  });
  check(shown.heading === "Outcome measures", `Progress: the outcome measures' heading is ${json(shown.heading)}, not "Outcome measures"`);
  if (!answered) {
    check(series.length === 0 && shown.tables.length === 0 && shown.none, `Progress: nothing answered, yet ${json(shown)}`);
    return [];
  }
  check(
    json(series.map((m) => m.id).sort()) === json(["nprs", "psfs"]),
    `$outcomes of the program has the measures ${json(series.map((m) => m.id))}, not nprs and psfs`,
  );
  const number = (text) => Number(String(text).replace("−", "-").replace(/^\+/, ""));
  for (const m of series) {
    const table = shown.tables.find((t) => t.id === `outcome-${m.id}-table`);
    if (!check(table, `Progress: no table#outcome-${m.id}-table (tables: ${json(shown.tables.map((t) => t.id))})`)) continue;
    check(
      table.rows.length === m.scores.length,
      `Progress: table#outcome-${m.id}-table has ${table.rows.length} rows, $outcomes ${m.scores.length} scores: ${json(table.rows)}`,
    );
    for (const [i, score] of m.scores.entries()) {
      const [, value, change] = table.rows[i] ?? [];
      check(number(value) === score.value, `Progress: ${m.id} row ${i + 1} shows the score ${json(value)}, $outcomes ${score.value}`);
      if (score.change === null) check(/first/i.test(change ?? ""), `Progress: ${m.id} row ${i + 1} (the first score) shows the change ${json(change)}`);
      else check(number((change ?? "").split(":")[0]) === score.change, `Progress: ${m.id} row ${i + 1} shows the change ${json(change)}, $outcomes ${score.change}`);
      if (score.improved) check(/important improvement/.test(change ?? ""), `Progress: ${m.id} row ${i + 1} (MCID reached) does not say "an important improvement": ${json(change)}`);
    }
    const chart = shown.charts.find((c) => c.id === `outcome-${m.id}-chart`);
    check(chart?.role === "img" && chart.label, `Progress: svg#outcome-${m.id}-chart is ${json(chart)} (role="img", a label)`);
  }
  const nprs = series.find((m) => m.id === "nprs");
  check(
    json(nprs?.scores.map((s) => [s.value, s.change, s.improved])) === json([[6, null, false], [3, -3, true]]),
    `$outcomes' NPRS scores are ${json(nprs?.scores)}, not 6 then 3 (−3, an important improvement)`,
  );
  return shown.tables.map((t) => ({ [t.id]: t.rows }));
}

// ---------------------------------------------------------------------------------
// Steps 9 and 10: sign out, sign in again, access ended

/** What the app stores of its sign-in (fhirclient's state in "hep-app.sign-in"). */
async function storedSignIn(page) {
  const state = await page.evaluate(() => JSON.parse(localStorage.getItem("hep-app.sign-in") ?? "null"));
  expect(
    state?.tokenResponse?.access_token && state.tokenResponse.refresh_token,
    `localStorage "hep-app.sign-in" has no access and refresh token: ${json(state)?.slice(0, 200)}`,
  );
  return state.tokenResponse;
}

async function signOut(page, program) {
  const tokens = await storedSignIn(page);
  // the app's POST /auth/revoke, as the browser saw it: its answer (the app does not read
  // the empty body, so Chromium then reports the request as canceled: no matter)
  const revoke = new Promise((res) => {
    page.on("response", (r) => r.url().endsWith("/auth/revoke") && res({ outcome: r.status(), body: r.request().postData() ?? "" }));
    page.on("requestfailed", (r) => r.url().endsWith("/auth/revoke") && !r.response() && res({ outcome: r.failure()?.errorText, body: r.postData() ?? "" }));
  });
  const tapped = Date.now();
  await tap(page, "#sign-out");
  await ready(page, "signin");
  const signOutMs = Date.now() - tapped;
  const revoked = await Promise.race([revoke, sleep(1000).then(() => ({ outcome: "no request" }))]);
  const form = new URLSearchParams(revoked.body ?? "");
  check(
    revoked.outcome === 200 && form.get("token") === tokens.refresh_token && form.get("client_id") === CLIENT_ID,
    `Sign out: the app's POST /auth/revoke ended ${json(revoked.outcome)} after ${signOutMs} ms (200, with token=<the refresh token>&client_id=${CLIENT_ID}: ${form.get("token") === tokens.refresh_token ? "the refresh token" : "not the refresh token"})`,
  );
  check(!(await isVisible(page, "#main-view")), "after Sign out #main-view is visible");
  const left = await page.evaluate((secrets) => {
    const find = (store) => Object.keys(store).filter((k) => secrets.some((s) => k.includes(s) || (store.getItem(k) ?? "").includes(s)));
    return {
      signIn: localStorage.getItem("hep-app.sign-in"),
      local: find(localStorage),
      session: find(sessionStorage),
      keys: Object.keys(localStorage),
    };
  }, [tokens.access_token, tokens.refresh_token]);
  expect(
    left.signIn === null && left.local.length === 0,
    `after Sign out localStorage still holds the sign-in: ${json(left.local)}`,
  );
  if (left.session.length) {
    note(`after Sign out sessionStorage still holds the (revoked) tokens under ${json(left.session)} (fhirclient's own state)`);
  }
  const cached = await page.evaluate(
    (words) =>
      Object.keys(localStorage)
        .filter((k) => words.some((w) => (localStorage.getItem(k) ?? "").includes(w)))
        .map((k) => `${k} = ${localStorage.getItem(k).slice(0, 100)}…`),
    ["Okafor", "Heel slide", program.pid],
  );
  check(
    cached.length === 0,
    `after Sign out localStorage still holds the patient's data under ${json(cached)} (the spec: clear the cached data)`,
  );
  const read = await api("GET", `/fhir/Patient/${program.pid}`, { token: tokens.access_token });
  expect(read.status === 401, `after Sign out the app's old access token reads the Patient: ${read.status}, not 401`);
  const refresh = await api("POST", "/auth/token", {
    token: null,
    accept: "application/json",
    contentType: "application/x-www-form-urlencoded",
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, client_id: CLIENT_ID }).toString(),
  });
  expect(
    refresh.status === 400 && refresh.body?.error === "invalid_grant",
    `after Sign out the app's refresh token answers ${refresh.status} ${json(refresh.body)}, not 400 invalid_grant`,
  );
  await screen(page, "signed-out");
  ok(
    `Sign out (${signOutMs} ms): the sign-in view, nothing of the sign-in in localStorage (keys left: ${json(left.keys)}), the old access token 401, its refresh token invalid_grant`,
  );
}

async function signInWithPassword(page, program) {
  // The app's sign-out also ends the server's own sign-in in this browser (its cookie),
  // so that the next person on the phone is asked for a password. If that cookie were
  // left, it is cleared here: this step is about signing in with username and password.
  const cdp = await page.createCDPSession();
  const { cookies } = await cdp.send("Network.getAllCookies");
  if (cookies.some((c) => c.name === "hep_session")) {
    note("after Sign out the server's sign-in cookie (hep_session) is still there: a Sign in on this device would skip the password (the test clears it)");
    await cdp.send("Network.clearBrowserCookies");
  }
  await cdp.detach();

  await navigate(page, "Sign in (again)", () => tap(page, "#sign-in"));
  await serverPage(page, "the server's sign-in page (again)", 'form[action="/auth/login"]');
  await enter(page, "#username", program.username);
  await enter(page, "#password", program.password);
  await screen(page, "server-sign-in-password", { app: false });
  await navigate(page, "Sign in with the password", () => page.click('form[action="/auth/login"] button[type="submit"]'));
  await serverPage(page, "the consent page (again)", 'form[action="/auth/consent"] button[name="decision"][value="allow"]');
  await navigate(page, "Allow (again)", () => page.click('button[name="decision"][value="allow"]'));
  await ready(page, "today", 45000);
  const shown = await sessionsInPage(page);
  expect(shown.length === 3, `after signing in again Today shows ${shown.length} sessions, not 3`);
  const statuses = shown.map((s) => s.status).sort();
  check(
    json(statuses) === json(["completed", "completed", "failed"]),
    `after signing in again Today's statuses are ${json(statuses)}, not 2 completed and 1 failed`,
  );
  ok(`signed in again with username and password: Today (${json(statuses)})`);
}

async function accessEnds(page, program) {
  await fhir("POST", `Patient/${program.pid}/$revoke-access`, { resourceType: "Parameters" });
  await tap(page, 'nav a[href="#week"]');
  const signedOut = !!(await poll(page, () => document.body?.dataset.ready === "signin", undefined, 20000));
  if (!signedOut) {
    const where = await page.evaluate(() => document.body?.dataset.ready);
    check(
      false,
      `after $revoke-access, opening Week shows body[data-ready=${json(where)}] for 20 s, not the sign-in view: the 401 is not handled there (a reload is tried)`,
    );
    await sleep(500);
    await page.reload({ waitUntil: "load" });
    await ready(page, "signin");
  }
  const message = await page
    .$eval("#signin-message", (e) => ({ text: e.textContent.trim(), role: e.getAttribute("role"), visible: e.checkVisibility() }))
    .catch(() => null);
  expect(
    message?.text.includes(ACCESS_ENDED),
    `after $revoke-access #signin-message is ${json(message)}, not "${ACCESS_ENDED}. Sign in again, or ask your clinic for a new invitation."`,
  );
  check(message.visible && message.role === "alert", `#signin-message is ${json(message)} (visible, role="alert")`);
  check(await isVisible(page, "#signin-view"), "after $revoke-access #signin-view is not visible");
  check(!(await isVisible(page, "#main-view")), "after $revoke-access #main-view is still visible");
  const left = await page.evaluate(() => localStorage.getItem("hep-app.sign-in"));
  check(left === null, `after the access ended localStorage still has "hep-app.sign-in"`);
  await screen(page, "access-ended");
  ok(`access revoked by the clinic: the app says ${json(message.text)}`);
}

// ---------------------------------------------------------------------------------

async function main(browser) {
  const program = await therapistMakesProgram();
  const page = await newPage(browser.defaultBrowserContext());
  const net = new Network(page);
  const figures = { timeZone: { patient: patientZone, device: deviceZone } };

  // 2
  await appSignInScreen(page);
  Object.assign(figures, await signInWithCode(page, program));
  const sessions = await checkToday(page, program);
  const measureTaskIds = await checkMeasuresOnToday(page, program);
  await screen(page, "today");
  await skipLink(page);
  await desktopToday(page);
  Object.assign(figures, await measureLoads(browser, page));

  // 3, 4, 5
  const first = await completeOnline(page, program, sessions[0]);
  const second = await completeOffline(page, net, program, sessions[1], sessions[0]);
  figures.retry = second.retry;
  await couldNotDo(page, program, sessions[2]);

  // 5b
  const answering = await canAnswer(page);
  if (answering) {
    await answerNprs(page, program, measureTaskIds.nprs);
    await answerPsfs(page, net, program, measureTaskIds.psfs);
    await clinicRecordsNprs(program);
  }

  // 6, 7, 8
  await checkWeek(page, program);
  await checkProgram(page, program);
  await checkProgress(page, program, [first.pain, second.values.pain], answering);

  // 9, 10
  await signOut(page, program);
  await signInWithPassword(page, program);
  await accessEnds(page, program);
  // what the server refused the app (the 401s after the revocation are expected)
  if (page.refused.length) note(`the server's 4xx/5xx answers to the app's page: ${json(page.refused)}`);
  return figures;
}

const executablePath = opt.chromium ?? execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  protocolTimeout: 60000,
  defaultViewport: PHONE,
  args: [
    ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
  ],
});
let code = 0;
try {
  const figures = await main(browser);
  figures.testSeconds = Math.round((Date.now() - started) / 1000);
  figures.screens = screenNumber;
  writeFileSync(join(out, "figures.json"), JSON.stringify(figures, null, 1) + "\n");
  console.log(`PATIENT_APP_FIGURES ${json(figures)}`);
  if (notes.length) console.log(`${notes.length} note(s) above`);
  if (defects.length) {
    code = 1;
    console.error(`FAILED: the flow works, but ${defects.length} detail(s) of the app's contract are broken:\n  - ${defects.join("\n  - ")}`);
  } else {
    console.log(`the patient app passed end to end in ${figures.testSeconds} s (screenshots in ${out})`);
  }
} catch (e) {
  code = 1;
  console.error(e instanceof Failure ? `FAILED: ${e.message}` : `FAILED: ${e.stack ?? e}`);
  if (defects.length) console.error(`  and before that, ${defects.length} detail(s) of the contract:\n  - ${defects.join("\n  - ")}`);
  try {
    for (const [i, p] of (await browser.pages()).entries()) {
      await p.screenshot({ path: join(out, `failure-${i}.png`), fullPage: true });
      if (p.log?.length) console.error(`  the console of ${p.url()}:\n    ${p.log.slice(-20).join("\n    ")}`);
    }
    writeFileSync(join(out, "failure.txt"), String(e.message ?? e) + "\n");
    console.error(`  screenshots of the open pages: ${out}/failure-*.png`);
  } catch {
    // nothing more to keep
  }
} finally {
  await browser.close();
}
process.exit(code);
