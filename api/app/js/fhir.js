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

// ---------------------------------------------------------------------------------
// Outcome measures: the due measure Tasks, their Questionnaires, the patient's answers
// (QuestionnaireResponse) and the scores (Observation, $outcomes)

const OUTCOME = `${HEP}/CodeSystem/outcome-measure`;
const MEASURE_TASK = `${HEP}/StructureDefinition/hep-outcome-task`;
const OUTCOME_SCORE = `${HEP}/StructureDefinition/hep-outcome-score`;

/** The code of a measure Task, for a token search: `code=<this>`. */
export const ANSWER_MEASURE = `${OUTCOME}|answer-measure`;

/**
 * The range and direction of the starter measures' scores (for the words and the
 * charts); a measure not listed here is shown without them. `transition`: the score is
 * itself a change (it has no first score to compare with).
 */
const SCALES = {
  [`${HEP}/Questionnaire/nprs`]: { min: 0, max: 10, better: "lower" },
  [`${HEP}/Questionnaire/psfs`]: { min: 0, max: 10, better: "higher" },
  [`${HEP}/Questionnaire/lefs`]: { min: 0, max: 80, better: "higher" },
  [`${HEP}/Questionnaire/groc`]: { min: -7, max: 7, better: "higher", transition: true },
};

const profiles = (resource) => resource?.meta?.profile ?? [];

/** Whether a Task is a measure to answer (not an exercise session). */
export function isMeasureTask(task) {
  return (
    profiles(task).includes(MEASURE_TASK) ||
    (task?.code?.coding ?? []).some((c) => c.system === OUTCOME && c.code === "answer-measure")
  );
}

/** Whether an Observation is the score of an answered measure (not a session's pain). */
export function isOutcomeScore(observation) {
  return (
    profiles(observation).includes(OUTCOME_SCORE) ||
    (observation?.derivedFrom ?? []).some((r) => r.reference?.startsWith("QuestionnaireResponse/"))
  );
}

/** A canonical URL without its "|version". */
export function withoutVersion(canonical) {
  return canonical?.split("|")[0] ?? null;
}

/** The Questionnaire a measure Task asks to answer (its canonical URL, no version). */
export function measureCanonical(task) {
  return withoutVersion((task.input ?? []).find((i) => i.valueCanonical)?.valueCanonical);
}

/** Whether a measure is open to answer now: requested, and its window has begun. */
export function measureIsDue(task, now = Date.now()) {
  const start = Date.parse(task.restriction?.period?.start ?? "");
  return task.status === "requested" && !(start > now);
}

/** Why it is asked, in words: "At the start of the program". */
export function occasionInWords(task) {
  const coding = task.reasonCode?.coding?.[0];
  return coding?.display ?? task.reasonCode?.text ?? coding?.code ?? null;
}

/**
 * The last day to answer (the patient's date, as the server wrote it in their offset):
 * the day of the window's end, or the day before when it ends at midnight.
 */
export function measureLastDay(task) {
  const end = task.restriction?.period?.end;
  if (!end) return null;
  const day = end.slice(0, 10);
  return end.slice(11, 19) === "00:00:00" ? addDays(day, -1) : day;
}

/** The program (CarePlan references) a measure Task belongs to. */
export function programOf(task) {
  return (task.basedOn ?? []).filter((r) => r.reference?.startsWith("CarePlan/"));
}

/** The score Observation a completed measure Task points to ("Observation/<id>"), if any. */
export function scoreReference(task) {
  const outputs = task?.output ?? [];
  const scored = outputs.find((o) => o.type?.coding?.some((c) => c.system === OUTCOME && c.code === "score"));
  const reference = (scored ?? outputs[1])?.valueReference?.reference;
  return /^Observation\/[A-Za-z0-9.-]+$/.test(reference ?? "") ? reference : null;
}

/** The range of a measure's scores, when known: {min, max, better, transition}. */
export function scaleOf(canonical) {
  return SCALES[withoutVersion(canonical)] ?? null;
}

/** What a score Observation says: {title, score, change, improved, worsened}. */
export function scoreOf(observation) {
  const value = (o) => o?.valueInteger ?? o?.valueQuantity?.value ?? o?.valueDecimal ?? null;
  const interpretation = (observation.interpretation ?? []).flatMap((i) => i.coding ?? []).map((c) => c.code);
  const change = (observation.component ?? []).find((c) =>
    c.code?.coding?.some((x) => x.code === "change-from-baseline"),
  );
  return {
    title: observation.code?.text ?? observation.code?.coding?.[0]?.display ?? null,
    score: value(observation),
    change: change ? value(change) : null,
    improved: interpretation.includes("mcid-reached"),
    worsened: interpretation.includes("worsened"),
  };
}

/** A change in words, with its sign: "+1.5", "−2", "0". */
export function signed(number) {
  if (number === null || number === undefined) return "";
  if (number > 0) return `+${number}`;
  if (number < 0) return `−${Math.abs(number)}`;
  return "0";
}

/**
 * The measures of `$outcomes`: [{canonical, title, direction, mcid, scores: [{date,
 * value, change, improved, worsened}]}], the scores oldest first.
 */
export function outcomeSeries(parameters) {
  const value = (p) =>
    p.valueDecimal ?? p.valueInteger ?? p.valueString ?? p.valueCode ?? p.valueCanonical ?? p.valueDateTime ?? p.valueBoolean;
  const named = (parts, name) => {
    const p = (parts ?? []).find((x) => x.name === name);
    return p ? value(p) : null;
  };
  return (parameters.parameter ?? [])
    .filter((p) => p.name === "measure")
    .map((m) => ({
      canonical: withoutVersion(named(m.part, "questionnaire")),
      title: named(m.part, "title"),
      direction: named(m.part, "direction"),
      mcid: named(m.part, "mcid"),
      scores: (m.part ?? [])
        .filter((p) => p.name === "score")
        .map((s) => ({
          date: named(s.part, "date"),
          value: named(s.part, "value"),
          change: named(s.part, "change"),
          improved: named(s.part, "mcidReached") === true,
          worsened: named(s.part, "worsened") === true,
        }))
        .filter((s) => s.date && Number.isFinite(s.value)),
    }));
}

// ---------------------------------------------------------------------------------
// Questionnaires: which items are enabled, and the response from the answers

/** The value of an answer or of an enableWhen's answer[x] ({valueInteger: 3} → 3). */
function answerValue(answer, prefix) {
  const key = Object.keys(answer ?? {}).find((k) => k.startsWith(prefix) && k.length > prefix.length);
  return key ? { type: key.slice(prefix.length), value: answer[key] } : null;
}

function compare(a, b) {
  if (a.type === "Coding" || b.type === "Coding") {
    const same = a.value?.code === b.value?.code && (!a.value?.system || !b.value?.system || a.value.system === b.value.system);
    return same ? 0 : NaN;
  }
  if (typeof a.value === "number" && typeof b.value === "number") return a.value - b.value;
  if (a.value === b.value) return 0;
  return typeof a.value === "string" && typeof b.value === "string" ? a.value.localeCompare(b.value) : NaN;
}

/** One enableWhen condition, given the answer to its question (null: unanswered). */
function conditionHolds(condition, answer) {
  const wanted = answerValue(condition, "answer");
  if (condition.operator === "exists") return (answer !== null) === (wanted?.value === true);
  if (answer === null || !wanted) return condition.operator === "!=";
  const order = compare(answerValue(answer, "value"), wanted);
  switch (condition.operator) {
    case "=":
      return order === 0;
    case "!=":
      return order !== 0;
    case ">":
      return order > 0;
    case "<":
      return order < 0;
    case ">=":
      return order >= 0;
    case "<=":
      return order <= 0;
    default:
      return true;
  }
}

/**
 * Whether an item's own enableWhen holds (`enableBehavior` all, or any). `answerOf(linkId)`
 * answers the current answer of an enabled question, else null.
 */
export function conditionsHold(item, answerOf) {
  const conditions = item.enableWhen ?? [];
  if (!conditions.length) return true;
  const results = conditions.map((c) => conditionHolds(c, answerOf(c.question)));
  return item.enableBehavior === "any" ? results.some(Boolean) : results.every(Boolean);
}

/** Every item of a Questionnaire, depth first, with its parent item (null at the top). */
export function allItems(questionnaire) {
  const out = [];
  const walk = (items, parent) => {
    for (const item of items ?? []) {
      out.push({ item, parent });
      walk(item.item, item);
    }
  };
  walk(questionnaire.item, null);
  return out;
}

/** The canonical a response names: `url|version` when the Questionnaire has a version. */
export function responseCanonical(questionnaire) {
  return questionnaire.version ? `${questionnaire.url}|${questionnaire.version}` : questionnaire.url;
}

/**
 * The QuestionnaireResponse of a form: the items nested as in the Questionnaire (a
 * group's items inside it, a question's items inside its answer), only enabled ones
 * with an answer. `answerOf(linkId)`: the answer ({valueInteger: 6}) or null;
 * `enabled(item)`: whether it is shown.
 */
export function questionnaireResponse(questionnaire, { patientId, basedOn, authored, answerOf, enabled }) {
  const items = (list) => {
    const out = [];
    for (const item of list ?? []) {
      if (!enabled(item) || item.type === "display") continue;
      const inner = items(item.item);
      if (item.type === "group") {
        if (inner.length) out.push({ linkId: item.linkId, text: item.text, item: inner });
        continue;
      }
      const answer = answerOf(item.linkId);
      if (answer) out.push({ linkId: item.linkId, text: item.text, answer: [inner.length ? { ...answer, item: inner } : answer] });
    }
    return out;
  };
  const response = {
    resourceType: "QuestionnaireResponse",
    questionnaire: responseCanonical(questionnaire),
    status: "completed",
    subject: { reference: `Patient/${patientId}` },
    authored,
    item: items(questionnaire.item),
  };
  if (basedOn?.length) response.basedOn = basedOn;
  return response;
}

/**
 * The question an issue of the server is about: the linkId of the deepest item its
 * FHIRPath `expression` reaches in the response sent ("QuestionnaireResponse.item[1].
 * item[0].answer[0].value.ofType(Coding)"), else a linkId its words name; null when it
 * is about the whole form.
 */
export function issueLinkId(issue, response, linkIds) {
  const words = issue.diagnostics ?? issue.details?.text ?? "";
  // the longest first, so that "lefs-1" is not found inside "lefs-10"
  const named = [...linkIds]
    .sort((a, b) => b.length - a.length)
    .find((id) => new RegExp(`(^|[\\s"'(\`])${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[\\s"'),:\`])`).test(words));
  for (const expression of [...(issue.expression ?? []), ...(issue.location ?? [])]) {
    let node = response;
    let linkId = null;
    for (const step of expression.split(".").slice(1)) {
      const m = /^(item|answer)\[(\d+)\]$/.exec(step);
      // "….item": an item missing inside this one: the words name it
      if (step === "item" && named) return named;
      if (!m) break;
      node = node?.[m[1]]?.[Number(m[2])];
      if (!node) break;
      if (m[1] === "item") linkId = node.linkId ?? linkId;
    }
    if (linkId) return linkId;
  }
  return named ?? null;
}
