// Reading the server's FHIR resources the way this app needs them, and writing the
// patient's reports. Pure functions: no DOM, no network, no storage.

const HEP = "https://hep-fhir.org/fhir";
const TZ_EXTENSION = "http://hl7.org/fhir/StructureDefinition/tz-code";
const COMPLETED_LATE = `${HEP}/StructureDefinition/completed-late`;
const DOSAGE = `${HEP}/StructureDefinition/exercise-dosage`;
const STATUS_REASON = `${HEP}/CodeSystem/session-status-reason`;
const REPORT = `${HEP}/CodeSystem/exercise-report`;
const LOINC = "http://loinc.org";

/** LOINC 72514-3, "Pain severity - 0-10 verbal numeric rating [Score] - Reported". */
export const PAIN = `${LOINC}|72514-3`;

// ---------------------------------------------------------------------------------
// Days. A day is the patient's local date, "YYYY-MM-DD".

/** The patient's IANA time zone (tz-code extension), else the device's. */
export function timeZoneOf(patient) {
  const ext = (patient?.extension ?? []).find((e) => e.url === TZ_EXTENSION);
  return ext?.valueCode ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The date in `timeZone` at `when`. */
export function dayIn(timeZone, when = new Date()) {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(when);
}

/** `day` plus `count` days (negative: before). */
export function addDays(day, count) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + count);
  return date.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to`. */
function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000);
}

/** Now, as a FHIR dateTime with the device's offset: "2026-12-02T08:20:00-05:00". */
export function localDateTime(when = new Date()) {
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const offset = -when.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return (
    `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
    `T${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}` +
    `${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
  );
}

// ---------------------------------------------------------------------------------
// Search answers

/** The resources of a search Bundle's entries with this search mode. */
export function resourcesOf(bundle, mode = "match") {
  return (bundle.entry ?? [])
    .filter((e) => (e.search?.mode ?? "match") === mode)
    .map((e) => e.resource)
    .filter(Boolean);
}

/** The address of a search Bundle's next page, if any. */
export function nextPage(bundle) {
  return (bundle.link ?? []).find((l) => l.relation === "next")?.url ?? null;
}

// ---------------------------------------------------------------------------------
// The patient

/** The name to greet the patient with: the first given name, else the whole name. */
export function firstName(patient) {
  const name = patient?.name?.[0];
  return name?.given?.[0] ?? name?.text ?? "";
}

// ---------------------------------------------------------------------------------
// Sessions (Task) and their exercises (ServiceRequest, ActivityDefinition)

/** The patient's local day of a session: the date part of its window's start. */
export function sessionDay(task) {
  return task.restriction?.period?.start?.slice(0, 10) ?? null;
}

/** The id of the prescription (ServiceRequest) a session is for. */
export function prescriptionId(task) {
  return task.focus?.reference?.split("/").pop() ?? null;
}

function reasonOf(task) {
  return (task.statusReason?.coding ?? []).find((c) => c.system === STATUS_REASON)?.code ?? null;
}

/**
 * How a session shows: `status` (the Task status, or the one the patient saved and the
 * outbox still has to send), `pending`, `late` ("Late" for an open session whose window
 * has closed, "Missed" for one the server marked not performed, else null), `doneLate`
 * and, for "could not do it", the patient's `reason`.
 */
export function sessionState(task, queued, now = Date.now()) {
  if (queued) {
    const status = queued.ops[0].value;
    return { status, pending: true, late: null, doneLate: false, reason: queuedReason(queued) };
  }
  const reason = reasonOf(task);
  const windowClosed = Date.parse(task.restriction?.period?.end ?? "") < now;
  let late = null;
  if (task.status === "requested" && windowClosed) late = "Late";
  if (task.status === "failed" && reason === "not-performed") late = "Missed";
  return {
    status: task.status,
    pending: false,
    late,
    doneLate: (task.extension ?? []).some((e) => e.url === COMPLETED_LATE && e.valueBoolean),
    reason: reason === "could-not-do" ? task.statusReason.text ?? "" : null,
  };
}

function queuedReason(queued) {
  return queued.ops.find((op) => op.path === "/statusReason")?.value.text ?? null;
}

/** Whether the patient can still log a session (open, late, or missed). */
export function canLog(state) {
  return !state.pending && (state.status === "requested" || state.late === "Missed");
}

/**
 * The window of a session in words when it is not the whole day: "Between 08:00 and
 * 12:00" (times as the server wrote them, in the patient's offset).
 */
export function windowInWords(task) {
  const { start, end } = task.restriction?.period ?? {};
  if (!start || !end) return null;
  const day = start.slice(0, 10);
  const from = start.slice(11, 16);
  const untilMidnight = end.slice(0, 10) === addDays(day, 1) && end.slice(11, 16) === "00:00";
  if (from === "00:00" && untilMidnight) return null;
  return `Between ${from} and ${untilMidnight ? "midnight" : end.slice(11, 16)}`;
}

/** The prescribed sets and repetitions (exercise-dosage extension), when known. */
export function dosageOf(resource) {
  const parts = (resource?.extension ?? []).find((e) => e.url === DOSAGE)?.extension ?? [];
  const value = (name) => parts.find((p) => p.url === name)?.valuePositiveInt ?? null;
  return { sets: value("sets"), reps: value("repetitions") };
}

/** The library exercise's canonical URL, without its "|version". */
export function exerciseUrl(serviceRequest) {
  return serviceRequest?.instantiatesCanonical?.[0]?.split("|")[0] ?? null;
}

/** The numbered steps of a library exercise, one per line, without their numbers. */
export function stepsOf(activityDefinition) {
  return (activityDefinition?.description ?? "")
    .split("\n")
    .map((line) => line.replace(/^\s*\d+[.)]\s*/, "").trim())
    .filter(Boolean);
}

/** The server address ("Binary/<id>") of the exercise's picture, if it has one. */
export function pictureOf(activityDefinition) {
  const doc = (activityDefinition?.relatedArtifact ?? [])
    .map((a) => a.document)
    .find((d) => d?.contentType?.startsWith("image/") && /^Binary\/[A-Za-z0-9.-]+$/.test(d.url ?? ""));
  return doc?.url ?? null;
}

// ---------------------------------------------------------------------------------
// The patient's reports: JSON Patch operations on the session's Task

function output(system, code, value) {
  return { type: { coding: [{ system, code }] }, ...value };
}

/**
 * "Mark as done". `report`: end (dateTime), and sets, reps, pain, difficulty (numbers
 * or null when left empty) and note (a string, "" when empty). Empty ones are left out.
 */
export function completionOps(report) {
  const outputs = [
    report.sets !== null && output(REPORT, "sets-done", { valueInteger: report.sets }),
    report.reps !== null && output(REPORT, "reps-done", { valueInteger: report.reps }),
    report.pain !== null && output(LOINC, "72514-3", { valueInteger: report.pain }),
    report.difficulty !== null && output(REPORT, "difficulty", { valueInteger: report.difficulty }),
    report.note && output(REPORT, "note", { valueString: report.note }),
  ].filter(Boolean);
  const ops = [
    { op: "replace", path: "/status", value: "completed" },
    { op: "add", path: "/executionPeriod", value: { end: report.end } },
  ];
  if (outputs.length) ops.push({ op: "add", path: "/output", value: outputs });
  return ops;
}

/** "Could not do it", with the patient's reason. */
export function cannotDoOps(reason) {
  return [
    { op: "replace", path: "/status", value: "failed" },
    {
      op: "add",
      path: "/statusReason",
      value: { coding: [{ system: STATUS_REASON, code: "could-not-do" }], text: reason },
    },
  ];
}

/** What a report said (Task.output, or the outputs of a queued report), in words. */
export function reportInWords(outputs = []) {
  const value = (code) =>
    outputs.find((o) => o.type?.coding?.some((c) => c.code === code))?.valueInteger ?? null;
  const [sets, reps, pain, difficulty] = ["sets-done", "reps-done", "72514-3", "difficulty"].map(value);
  const words = [];
  if (sets !== null && reps !== null) words.push(`${sets} sets of ${reps}`);
  else if (sets !== null) words.push(`${sets} sets`);
  if (pain !== null) words.push(`pain ${pain} of 10`);
  if (difficulty !== null) words.push(`difficulty ${difficulty} of 10`);
  return words.join(", ");
}

/** The outputs of a queued report (to show what was saved before it is sent). */
export function queuedOutputs(queued) {
  return queued.ops.find((op) => op.path === "/output")?.value ?? [];
}

// ---------------------------------------------------------------------------------
// Progress

/**
 * The weeks of a program to show: counted from its start, up to the week of `today`,
 * the last `max` of them. Each: {number, start} (start: a day).
 */
export function programWeeks(programStart, today, max) {
  if (!programStart || today < programStart) return [];
  const current = Math.floor(daysBetween(programStart, today) / 7) + 1;
  const weeks = [];
  for (let n = Math.max(1, current - max + 1); n <= current; n += 1) {
    weeks.push({ number: n, start: addDays(programStart, (n - 1) * 7) });
  }
  return weeks;
}

function parts(parameter) {
  const out = {};
  for (const p of parameter.part ?? []) {
    out[p.name] = p.valueInteger ?? p.valueDate ?? p.valueDecimal ?? p.valueQuantity?.value;
  }
  return out;
}

/**
 * The figures of `$adherence`'s weeks, by the week's first day: {due, completed,
 * missed, late, percent}. `percent`: the exercise adherence the server computed (a %
 * quantity), else completed / due; null when nothing was due.
 */
export function adherenceByWeek(parameters) {
  const weeks = new Map();
  for (const p of (parameters.parameter ?? []).filter((x) => x.name === "week")) {
    const f = parts(p);
    const computed = f.due > 0 ? (100 * f.completed) / f.due : null;
    weeks.set(f.start, {
      due: f.due ?? 0,
      completed: f.completed ?? 0,
      missed: f.missed ?? 0,
      late: f.late ?? 0,
      percent: f.due > 0 ? Math.round(f.exerciseAdherence ?? computed) : null,
    });
  }
  return weeks;
}

/** Pain scores from Observations, oldest first: [{when, score}]. */
export function painScores(observations) {
  return observations
    .map((o) => ({
      when: o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued,
      score: o.valueInteger ?? o.valueQuantity?.value,
    }))
    .filter((p) => p.when && Number.isFinite(p.score))
    .sort((a, b) => Date.parse(a.when) - Date.parse(b.when));
}
