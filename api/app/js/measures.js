// Outcome measures: the questionnaires the patient's program asks them to answer. Today
// lists the due ones ("To answer": the measure's title, why it is asked, the last day),
// each with "Answer", which opens its screen (#answer/<task id>): the Questionnaire as
// a form (js/questionnaire.js); "Send" posts the QuestionnaireResponse (through the
// outbox, with its Idempotency-Key, so offline it waits on the device), then shows the
// score the server computed (the measure Task's score Observation) and whether it is an
// important improvement.

import * as fhir from "./fhir.js";
import * as outbox from "./outbox.js";
import { questionnaireForm } from "./questionnaire.js";
import { AccessEndedError, getJson, searchPages } from "./session.js";
import { keep, readJson, withCache } from "./store.js";
import { dayInWords, fill, h } from "./ui.js";

/** The answer screen as shown: {ctx, section, task, questionnaire, state}. */
let current = null;

/** The signed-in patient's context, as last given to this module. */
let shownCtx = null;

/** The keys of the answers the screen is sending now (their refusal is shown on the form). */
const delivering = new Set();

/** Measure Tasks answered since the app started (shown as answered until read again). */
const answered = new Set();

// ---------------------------------------------------------------------------------
// Loading

/** The patient's open measure Tasks (due now or later) and their Questionnaires, by URL. */
async function loadMeasures(patientId) {
  const pages = await searchPages(
    `Task?patient=Patient/${patientId}&code=${encodeURIComponent(fhir.ANSWER_MEASURE)}&status=requested&_sort=restriction-period&_count=100`,
  );
  const tasks = pages
    .flatMap((bundle) => fhir.resourcesOf(bundle))
    .filter((r) => r.resourceType === "Task" && fhir.isMeasureTask(r));
  const urls = [...new Set(tasks.map(fhir.measureCanonical).filter(Boolean))];
  const questionnaires = {};
  if (urls.length) {
    const found = await searchPages(`Questionnaire?url=${urls.map(encodeURIComponent).join(",")}`);
    for (const q of found.flatMap((bundle) => fhir.resourcesOf(bundle))) {
      if (q.resourceType === "Questionnaire") questionnaires[fhir.withoutVersion(q.url)] = q;
    }
  }
  return { tasks, questionnaires };
}

/** The measures, from the server, else (offline) as last read: {data, fromCache}. */
function measures(ctx) {
  return withCache(ctx.patientId, "measures", () => loadMeasures(ctx.patientId));
}

/** Forgets a measure Task in the copy kept on the device (once it is answered). */
function forgetTask(patientId, taskId) {
  const copy = readJson(`hep-app.cache.${patientId}`, {}).measures;
  if (!copy) return;
  keep(patientId, "measures", { ...copy, tasks: copy.tasks.filter((t) => t.id !== taskId) });
}

const titleOf = (task, questionnaire) =>
  questionnaire?.title ?? questionnaire?.name ?? task.code?.text ?? task.description ?? "Questionnaire";

/** "At the start of the program · by Wednesday 9 December". */
function whenWords(task) {
  const last = fhir.measureLastDay(task);
  return [fhir.occasionInWords(task), last ? `by ${dayInWords(last)}` : null].filter(Boolean).join(" · ");
}

// ---------------------------------------------------------------------------------
// Today: "To answer"

/**
 * The "To answer" part of Today: a heading and the list of due measures (null when none
 * is due). A failure to load them is said in a line, and Today shows its sessions.
 */
export async function toAnswer(ctx) {
  shownCtx = ctx;
  let loaded;
  try {
    loaded = await measures(ctx);
  } catch (error) {
    if (error instanceof AccessEndedError) throw error;
    return h("p", { class: "note", id: "measures-problem" }, "The questionnaires to answer could not be loaded.");
  }
  const { tasks, questionnaires } = loaded.data;
  const due = tasks.filter((t) => fhir.measureIsDue(t) || outbox.answerWaitingFor(ctx.patientId, t.id));
  if (!due.length) return null;
  return h(
    "section",
    { class: "to-answer", "aria-labelledby": "to-answer-title" },
    h("h2", { id: "to-answer-title" }, "To answer"),
    h("p", {}, "Your therapist asks you to answer these questions."),
    h(
      "ul",
      { id: "measures", class: "measures" },
      due.map((task) => measureItem(ctx, task, questionnaires[fhir.measureCanonical(task)])),
    ),
  );
}

function measureItem(ctx, task, questionnaire) {
  const headingId = `measure-${task.id}`;
  const queued = outbox.answerWaitingFor(ctx.patientId, task.id);
  const done = answered.has(task.id);
  const item = h(
    "li",
    {
      class: "measure",
      "data-task-id": task.id,
      "data-questionnaire": fhir.measureCanonical(task),
      "data-pending": queued ? "true" : null,
      "data-status": done ? "completed" : task.status,
    },
    h("h3", { id: headingId }, titleOf(task, questionnaire)),
    h("p", { class: "when" }, whenWords(task)),
  );
  if (done) {
    item.append(h("p", { class: "state" }, h("span", { class: "badge done" }, "Answered")));
  } else if (queued) {
    item.append(h("p", { class: "state" }, h("span", { class: "badge waiting" }, "Answered — waiting to be sent")));
  } else {
    const button = h("button", { type: "button", class: "answer primary", "aria-describedby": headingId }, "Answer");
    button.addEventListener("click", () => {
      location.hash = `#answer/${task.id}`;
    });
    item.append(h("div", { class: "actions" }, button));
  }
  return item;
}

/** Draws a measure of Today's list again, when Today shows it. */
function redrawItem(taskId) {
  const old = document.querySelector(`#measures > li.measure[data-task-id="${CSS.escape(taskId)}"]`);
  if (!old || !shownCtx) return;
  const copy = readJson(`hep-app.cache.${shownCtx.patientId}`, {}).measures;
  const task = copy?.tasks.find((t) => t.id === taskId) ?? { id: taskId, status: "completed" };
  const title = old.querySelector("h3")?.textContent ?? "";
  const item = measureItem(shownCtx, task, { title });
  item.querySelector(".when").textContent = old.querySelector(".when")?.textContent ?? "";
  old.replaceWith(item);
}

// ---------------------------------------------------------------------------------
// The answer screen

/** Renders the screen of the measure Task `taskId` into `section` (#view-answer). */
export async function showAnswer(section, ctx, taskId) {
  const body = section.querySelector(".view-body");
  const heading = section.querySelector("h1");
  shownCtx = ctx;
  current = { ctx, section, task: null, questionnaire: null, state: "loading" };
  const back = () => h("p", { class: "back" }, h("a", { href: "#today" }, "Back to Today"));
  const { data, fromCache } = await measures(ctx);
  let task = data.tasks.find((t) => t.id === taskId) ?? null;
  let questionnaire = task ? data.questionnaires[fhir.measureCanonical(task)] : null;
  if (!task && !fromCache) {
    // not open any more (answered, or its window has passed)?
    task = await getJson(`Task/${encodeURIComponent(taskId)}`).catch(() => null);
    if (task && !fhir.isMeasureTask(task)) task = null;
  }
  if (task && !questionnaire && fhir.measureCanonical(task)) {
    const found = await searchPages(`Questionnaire?url=${encodeURIComponent(fhir.measureCanonical(task))}`).catch(() => []);
    questionnaire = found.flatMap((b) => fhir.resourcesOf(b)).find((r) => r.resourceType === "Questionnaire") ?? null;
  }
  current = { ctx, section, task, questionnaire, state: "form" };
  heading.textContent = task ? titleOf(task, questionnaire) : "Questionnaire";
  document.title = `${heading.textContent} – Home exercises`;

  if (!task) {
    fill(body, h("p", {}, "This questionnaire is not waiting for your answers."), back());
    return;
  }
  const queued = outbox.answerWaitingFor(ctx.patientId, task.id);
  if (queued) {
    showQueued();
    return;
  }
  if (task.status !== "requested" || answered.has(task.id)) {
    fill(body, h("p", {}, "You have answered this questionnaire. Thank you."), back());
    return;
  }
  if (!questionnaire) {
    fill(
      body,
      h("p", { class: "error" }, "The questions could not be loaded. Please try again when you are online."),
      back(),
    );
    return;
  }
  drawForm(body, ctx, task, questionnaire, back);
}

function drawForm(body, ctx, task, questionnaire, back) {
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const cancel = h("a", { href: "#today", class: "button secondary" }, "Cancel");
  const status = h("p", { class: "sending", role: "status" });
  const q = questionnaireForm(questionnaire, {
    labelledBy: "answer-title",
    buttons: [status, h("div", { class: "actions" }, send, cancel)],
  });
  q.form.id = "measure-form";
  q.form.dataset.taskId = task.id;
  fill(
    body,
    back(),
    h("p", { class: "lead" }, whenWords(task)),
    q.form,
  );

  q.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (send.disabled) return;
    const problems = q.validate();
    if (problems.size) {
      q.showErrors(problems);
      return;
    }
    q.clearErrors();
    const response = fhir.questionnaireResponse(questionnaire, {
      patientId: ctx.patientId,
      basedOn: fhir.programOf(task),
      authored: fhir.localDateTime(),
      answerOf: q.answerOf,
      enabled: q.enabled,
    });
    send.disabled = true;
    status.textContent = "Sending…";
    const label = `${titleOf(task, questionnaire)}, answers (${dayInWords(ctx.today())})`;
    const item = outbox.addAnswer(ctx.patientId, task.id, response, label);
    const result = await deliver(ctx.patientId, item);
    status.textContent = "";
    send.disabled = false;
    if (current?.task?.id !== task.id) return; // the patient has left the screen
    if (result.state === "sent") await showSent(task.id);
    else if (result.state === "queued") showQueued();
    else showRefused(q, response, result);
  });
}

/**
 * Sends the answers now (the outbox in order): answers "sent" (with the server's
 * resource), "refused" (with its message and OperationOutcome) or "queued" (offline,
 * or the server is busy: the outbox sends them later).
 */
function deliver(patientId, item) {
  delivering.add(item.key);
  return new Promise((resolve) => {
    const finish = (result) => {
      outbox.events.removeEventListener("sent", onSent);
      outbox.events.removeEventListener("refused", onRefused);
      delivering.delete(item.key);
      resolve(result);
    };
    const onSent = ({ detail }) => detail.item.key === item.key && finish({ state: "sent", resource: detail.resource });
    const onRefused = ({ detail }) => detail.item.key === item.key && finish({ state: "refused", ...detail });
    outbox.events.addEventListener("sent", onSent);
    outbox.events.addEventListener("refused", onRefused);
    const stillWaiting = () => outbox.waiting(patientId).some((i) => i.key === item.key);
    (async () => {
      await outbox.flush(patientId);
      // a flush already under way may have ended before it reached this item
      if (stillWaiting()) await outbox.flush(patientId);
      if (stillWaiting()) finish({ state: "queued" });
    })();
  });
}

/** Forgets what the screens showed (at sign-out). */
export function forgetMeasures() {
  current = null;
  shownCtx = null;
  answered.clear();
}

/** Whether the answer screen shows the server's refusal of this item itself. */
export function showsRefusal(item) {
  return delivering.has(item.key);
}

/** The server refused the answers: its words under the questions they are about. */
function showRefused(q, response, { message, status, outcome }) {
  const byLinkId = new Map();
  const general = [];
  if (status === 403) {
    // a sign-in from before the app could send answers: the patient allows it anew
    q.showErrors(byLinkId, [
      "This app may not send your answers yet. Sign out, then sign in again and allow it to add your answers to questionnaires.",
    ]);
    return;
  }
  const issues = (outcome?.issue ?? []).filter((i) => i.severity !== "information" && i.severity !== "warning");
  for (const issue of issues) {
    const words = issue.diagnostics ?? issue.details?.text ?? message;
    const linkId = fhir.issueLinkId(issue, response, q.linkIds);
    if (linkId) byLinkId.set(linkId, [...(byLinkId.get(linkId) ?? []), q.inWords(words, linkId)]);
    else general.push(words);
  }
  if (!issues.length) general.push(`Your answers could not be sent. ${message}`);
  q.showErrors(byLinkId, general);
}

function confirmation(state, ...children) {
  return h("div", { class: "confirmation", id: "measure-confirmation", "data-state": state }, ...children);
}

/** Offline: the answers wait on the device. */
function showQueued() {
  if (!current) return;
  current.state = "queued";
  const body = current.section.querySelector(".view-body");
  fill(
    body,
    confirmation(
      "queued",
      h("h2", { tabindex: "-1" }, "Your answers are saved on this device"),
      h("p", {}, "They will be sent when you are back online, and your score will show here and under Progress."),
      h("a", { href: "#today", class: "button primary" }, "Back to Today"),
    ),
  );
  body.querySelector("h2").focus();
}

/** Sent: the score the server made of them (read from the completed Task). */
async function showSent(taskId) {
  if (!current) return;
  const { ctx, section, task } = current;
  current.state = "sent";
  answered.add(taskId);
  forgetTask(ctx.patientId, taskId);
  let score = null;
  try {
    const completed = await getJson(`Task/${encodeURIComponent(taskId)}`);
    const reference = fhir.scoreReference(completed);
    if (reference) score = fhir.scoreOf(await getJson(reference));
  } catch (error) {
    if (error instanceof AccessEndedError) return;
    // the answers are sent; the score shows under Progress
  }
  if (current?.task?.id !== taskId) return;
  const canonical = fhir.measureCanonical(task);
  const body = section.querySelector(".view-body");
  fill(
    body,
    confirmation(
      "sent",
      h("h2", { tabindex: "-1" }, "Thank you: your answers are sent"),
      score ? scoreWords(score, canonical) : h("p", {}, "Your therapist will see your answers. Your score will show under Progress."),
      h("a", { href: "#today", class: "button primary" }, "Back to Today"),
    ),
  );
  const box = body.querySelector("#measure-confirmation");
  if (score) {
    box.dataset.score = String(score.score);
    box.dataset.improved = String(score.improved);
  }
  body.querySelector("h2").focus();
}

/** "Your score: 6 (from 0 to 10, lower is better)", the change, and whether it is important. */
function scoreWords(score, canonical) {
  const scale = fhir.scaleOf(canonical);
  const range = scale
    ? ` (on a scale from ${fhir.signed(scale.min).replace("+", "")} to ${scale.max}, ${scale.better} is better)`
    : "";
  const lines = [h("p", { class: "score" }, "Your score: ", h("strong", {}, String(score.score)), range)];
  if (score.change !== null) {
    lines.push(h("p", { class: "change" }, `Change since your first answer: ${fhir.signed(score.change)}.`));
  } else if (!scale?.transition) {
    lines.push(h("p", { class: "change" }, "This is your first score: your next answers will be compared with it."));
  }
  if (score.improved) {
    lines.push(h("p", { class: "important" }, "This is an important improvement."));
  } else if (score.worsened) {
    lines.push(h("p", { class: "important worse" }, "This is an important change for the worse: your therapist will see it."));
  }
  return lines;
}

// ---------------------------------------------------------------------------------
// Answers sent later (they waited in the outbox)

outbox.events.addEventListener("sent", ({ detail }) => {
  if (!outbox.isAnswer(detail.item)) return;
  const taskId = detail.item.taskId;
  answered.add(taskId);
  if (shownCtx) forgetTask(shownCtx.patientId, taskId);
  redrawItem(taskId);
  if (current?.task?.id === taskId && current.state === "queued" && !current.section.hidden) showSent(taskId);
});

outbox.events.addEventListener("refused", ({ detail }) => {
  if (!outbox.isAnswer(detail.item) || delivering.has(detail.item.key)) return;
  // the app's notice says why; the measure can be answered again
  redrawItem(detail.item.taskId);
  if (current?.task?.id === detail.item.taskId && current.state === "queued" && !current.section.hidden) {
    showAnswer(current.section, current.ctx, detail.item.taskId).catch(() => {});
  }
});
