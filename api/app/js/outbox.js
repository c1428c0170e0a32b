// The outbox: the patient's reports ("done", "could not do it") and their answers to
// outcome measures wait here until the server has them, so that nothing logged offline
// is lost. Kept in localStorage ("hep-app.outbox.<patient id>") as [{key, taskId, ops,
// label, queuedAt}] (a report: JSON Patch operations on the session's Task) and [{key,
// kind: "answer", taskId, response, label, queuedAt}] (a QuestionnaireResponse to
// create, for the measure Task `taskId`).
//
// Each one has its Idempotency-Key, made once when the patient taps Save (or Send) and
// sent with every try: if an answer is lost on the way, the next try gets the first
// answer again (Idempotent-Replayed: true) and the session is never completed twice, nor
// a questionnaire answered twice.

import { problemOf, request } from "./session.js";
import { readJson, writeJson } from "./store.js";

/**
 * "change" (the list changed), "sent" (detail: {item, task?, resource?}: the server's
 * answer) and "refused" (detail: {item, message, status, outcome?}: the server's words,
 * its status, and its OperationOutcome when it sent one).
 */
export const events = new EventTarget();

const key = (patientId) => `hep-app.outbox.${patientId}`;

/** The reports waiting, oldest first. */
export function waiting(patientId) {
  return readJson(key(patientId), []);
}

/** Whether a waiting item is an answer to a measure (else a session's report). */
export const isAnswer = (item) => item.kind === "answer";

/** The report waiting for this session, if any (the newest one). */
export function waitingFor(patientId, taskId) {
  const mine = waiting(patientId).filter((item) => !isAnswer(item) && item.taskId === taskId);
  return mine[mine.length - 1] ?? null;
}

/** The answers waiting for this measure Task, if any (the newest one). */
export function answerWaitingFor(patientId, taskId) {
  const mine = waiting(patientId).filter((item) => isAnswer(item) && item.taskId === taskId);
  return mine[mine.length - 1] ?? null;
}

function queue(patientId, item) {
  const full = { key: crypto.randomUUID(), ...item, queuedAt: new Date().toISOString() };
  writeJson(key(patientId), [...waiting(patientId), full]);
  events.dispatchEvent(new Event("change"));
  return full;
}

/** Queues a report: `ops` are the JSON Patch operations on Task/`taskId`. */
export function add(patientId, taskId, ops, label) {
  return queue(patientId, { taskId, ops, label });
}

/** Queues the answers to a measure: `response` (a QuestionnaireResponse) for Task/`taskId`. */
export function addAnswer(patientId, taskId, response, label) {
  return queue(patientId, { kind: "answer", taskId, response, label });
}

function remove(patientId, itemKey) {
  const left = waiting(patientId).filter((item) => item.key !== itemKey);
  // an empty outbox leaves nothing of the patient's on the device
  if (left.length) writeJson(key(patientId), left);
  else localStorage.removeItem(key(patientId));
  events.dispatchEvent(new Event("change"));
}

let flushing = null;

// After a try that failed (offline, a lost answer, a busy server), the next one comes
// soon, then less and less often: 2, 4, 8, 16 seconds, then at the app's 30 s round.
let failedTries = 0;
let retryTimer = null;

function retrySoon(patientId) {
  failedTries += 1;
  if (failedTries > 4) return;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => flush(patientId), 1000 * 2 ** failedTries);
}

/** Sends what waits, in order (one flush at a time; a call during one joins it). */
export function flush(patientId) {
  if (!flushing) {
    flushing = sendAll(patientId).finally(() => {
      flushing = null;
    });
  }
  return flushing;
}

/** Answers worth another try later: the server failed or is busy, or timed out. */
function tryAgainLater(status) {
  return status >= 500 || status === 408 || status === 429;
}

async function sendAll(patientId) {
  for (let item = waiting(patientId)[0]; item; item = waiting(patientId)[0]) {
    let response;
    try {
      response = await request(
        isAnswer(item) ? "QuestionnaireResponse" : `Task/${item.taskId}`,
        isAnswer(item)
          ? {
              method: "POST",
              headers: { "Content-Type": "application/fhir+json", "Idempotency-Key": item.key },
              body: JSON.stringify(item.response),
            }
          : {
              method: "PATCH",
              headers: { "Content-Type": "application/json-patch+json", "Idempotency-Key": item.key },
              body: JSON.stringify(item.ops),
            },
      );
    } catch {
      // offline, or the sign-in could not be renewed now: try again later; access
      // ended: kept for the next sign-in
      retrySoon(patientId);
      return;
    }
    if (tryAgainLater(response.status)) {
      retrySoon(patientId);
      return;
    }
    failedTries = 0;
    if (response.ok) {
      const resource = await response.json().catch(() => null);
      remove(patientId, item.key);
      const detail = isAnswer(item) ? { item, resource } : { item, task: resource, resource };
      events.dispatchEvent(new CustomEvent("sent", { detail }));
    } else {
      // refused for good (the session was cancelled, the report or the answers are not
      // valid, ...)
      const copy = response.clone();
      const { message } = await problemOf(response);
      const outcome = await copy.json().catch(() => null);
      remove(patientId, item.key);
      const detail = {
        item,
        message,
        status: response.status,
        outcome: outcome?.resourceType === "OperationOutcome" ? outcome : null,
      };
      events.dispatchEvent(new CustomEvent("refused", { detail }));
    }
  }
}
