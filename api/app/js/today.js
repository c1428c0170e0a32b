// Today: the questionnaires to answer (js/measures.js), then the sessions of the
// patient's day, each with its exercise (name, dose, steps, picture), and the two ways
// to log it: "Mark as done" (sets, repetitions, pain, difficulty, a note) or "Could not
// do it" (a reason). A report goes to the outbox at once, so the screen shows it at
// once, online or not.

import * as fhir from "./fhir.js";
import { toAnswer } from "./measures.js";
import * as outbox from "./outbox.js";
import { getBlob, getJson, searchPages } from "./session.js";
import { keep, withCache } from "./store.js";
import { dayInWords, field, fill, h } from "./ui.js";

/** What the screen shows: {ctx, data, list, summary}, to update it after a save or a send. */
let shown = null;

/** Object URLs of the exercises' pictures, by server address (fetched once). */
const pictures = new Map();

/** Renders Today into `section` (its `.view-body`). */
export async function showToday(section, ctx) {
  const day = ctx.today();
  const body = section.querySelector(".view-body");
  const [{ data, fromCache }, measures] = await Promise.all([
    withCache(ctx.patientId, "today", () => loadDay(ctx.patientId, day), (copy) => copy.day === day),
    toAnswer(ctx),
  ]);
  const list = h("ul", { id: "sessions", class: "sessions" });
  // read out when it changes (after a save), not when the screen is drawn
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  shown = { ctx, data, list, summary };
  list.append(...data.tasks.map((task) => sessionItem(task)));
  updateSummary();
  fill(
    body,
    h("h2", {}, dayInWords(day)),
    greeting(ctx.patient),
    fromCache ? h("p", { class: "note" }, "Shown as it was on your last visit.") : null,
    measures,
    measures?.tagName === "SECTION" ? h("h2", { id: "exercises-title" }, "Exercises") : null,
    summary,
    data.tasks.length ? list : h("p", { id: "no-sessions" }, "Nothing to do today."),
  );
}

function greeting(patient) {
  const name = fhir.firstName(patient);
  return name ? h("p", { class: "greeting" }, `Hello, ${name}.`) : null;
}

/** Forgets the pictures (at sign-out). */
export function forgetPictures() {
  for (const url of pictures.values()) url.then(URL.revokeObjectURL, () => {});
  pictures.clear();
}

// ---------------------------------------------------------------------------------
// Loading

/** The day's sessions, their prescriptions (by id) and library exercises (by URL). */
async function loadDay(patientId, day) {
  const pages = await searchPages(
    `Task?patient=${patientId}&session-day=${day}&_include=Task:focus&_sort=restriction-period&_count=100`,
  );
  const tasks = pages
    .flatMap((bundle) => fhir.resourcesOf(bundle))
    // the questionnaires to answer are Tasks too: they are listed apart
    .filter((r) => r.resourceType === "Task" && r.status !== "cancelled" && !fhir.isMeasureTask(r));
  const prescriptions = {};
  for (const r of pages.flatMap((bundle) => fhir.resourcesOf(bundle, "include"))) {
    if (r.resourceType === "ServiceRequest") prescriptions[r.id] = r;
  }
  const urls = [...new Set(Object.values(prescriptions).map(fhir.exerciseUrl).filter(Boolean))];
  const exercises = {};
  if (urls.length) {
    const found = await searchPages(`ActivityDefinition?url=${urls.map(encodeURIComponent).join(",")}`);
    for (const ad of found.flatMap((bundle) => fhir.resourcesOf(bundle))) exercises[ad.url] = ad;
  }
  return { day, tasks, prescriptions, exercises };
}

// ---------------------------------------------------------------------------------
// A session

/** The exercise of a session: {name, prescription, exercise}. */
function exerciseOf(task) {
  const prescription = shown.data.prescriptions[fhir.prescriptionId(task)];
  const exercise = shown.data.exercises[fhir.exerciseUrl(prescription)];
  return { name: prescription?.code?.text ?? exercise?.title ?? "Exercise", prescription, exercise };
}

function sessionItem(task) {
  const { name, prescription, exercise } = exerciseOf(task);
  const queued = outbox.waitingFor(shown.ctx.patientId, task.id);
  const state = fhir.sessionState(task, queued);
  const headingId = `session-${task.id}`;
  const steps = fhir.stepsOf(exercise);
  const item = h(
    "li",
    {
      class: "session",
      "data-task-id": task.id,
      "data-status": state.status,
      "data-pending": state.pending ? "true" : null,
    },
    h("h3", { id: headingId, tabindex: "-1" }, name),
    whenLine(task),
    stateLine(state, task, queued),
    h("p", { class: "dose" }, task.description ?? prescription?.patientInstruction ?? ""),
    steps.length ? h("ol", { class: "steps" }, steps.map((step) => h("li", {}, step))) : null,
  );
  const picture = fhir.pictureOf(exercise);
  if (picture) showPicture(item, picture, name);
  if (fhir.canLog(state)) item.append(actions(task, headingId));
  return item;
}

/** "Session 1 of 2 · Between 08:00 and 12:00" when an exercise is due more than once. */
function whenLine(task) {
  const same = shown.data.tasks.filter((t) => fhir.prescriptionId(t) === fhir.prescriptionId(task));
  const words = [
    same.length > 1 ? `Session ${same.indexOf(task) + 1} of ${same.length}` : null,
    fhir.windowInWords(task),
  ].filter(Boolean);
  return words.length ? h("p", { class: "when" }, words.join(" · ")) : null;
}

/** Where the session stands, in words (nothing for one still to do). */
function stateLine(state, task, queued) {
  const line = (badgeClass, badge, words) =>
    h("p", { class: "state" }, h("span", { class: badgeClass }, badge), words ? ` ${words}` : null);
  if (state.pending && state.status === "completed") {
    return line("badge waiting", "Done — waiting to be sent", fhir.reportInWords(fhir.queuedOutputs(queued)));
  }
  if (state.pending) return line("badge waiting", "Could not do it — waiting to be sent", state.reason);
  if (state.status === "completed") {
    return line("badge done", state.doneLate ? "Done late" : "Done", fhir.reportInWords(task.output));
  }
  if (state.reason !== null) return line("badge", "Could not do it", state.reason);
  if (state.late) return line("late", state.late, "You can still log it.");
  return null;
}

/** Fetches the exercise's picture once, then shows it after the dose. */
function showPicture(item, address, name) {
  if (!pictures.has(address)) {
    const url = getBlob(address, "image/*").then((blob) => URL.createObjectURL(blob));
    url.catch(() => pictures.delete(address)); // no picture this time; try again next time
    pictures.set(address, url);
  }
  pictures.get(address).then(
    (src) => item.querySelector(".dose").after(h("img", { class: "picture", src, alt: `Picture: ${name}` })),
    () => {}, // the exercise shows without its picture
  );
}

// ---------------------------------------------------------------------------------
// Logging a session

/** "Mark as done" and "Could not do it", each opening its form. */
function actions(task, headingId) {
  // described by the session's heading: "Mark as done, Bridge"
  const button = (cls, words) => h("button", { type: "button", class: cls, "aria-describedby": headingId }, words);
  const done = button("done primary", "Mark as done");
  const cannot = button("cannot secondary", "Could not do it");
  const box = h("div", { class: "actions" }, done, cannot);
  done.addEventListener("click", () => openForm(box, reportForm(task), done));
  cannot.addEventListener("click", () => openForm(box, cannotForm(task), cannot));
  return box;
}

/** Shows `form` in place of the buttons; Cancel (or Escape) puts them back. */
function openForm(box, form, opener) {
  const close = () => {
    form.remove();
    box.hidden = false;
    opener.focus();
  };
  form.querySelector(".cancel").addEventListener("click", close);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  box.hidden = true;
  box.after(form);
  form.querySelector("input, textarea").focus();
}

function numberInput(name, taskId, { min, max, value = null, required = false }) {
  return h("input", {
    id: `${name}-${taskId}`,
    name,
    type: "number",
    inputmode: "numeric",
    min,
    max,
    step: 1,
    value,
    required,
  });
}

function formButtons() {
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "submit", class: "primary" }, "Save"),
    h("button", { type: "button", class: "cancel secondary" }, "Cancel"),
  );
}

/** "Mark as done": what the patient did, how it felt. */
function reportForm(task) {
  const { name, prescription } = exerciseOf(task);
  const dose = fhir.dosageOf(prescription);
  const form = h(
    "form",
    { class: "report", "aria-label": `Log ${name}` },
    h("h4", {}, "How did it go?"),
    field(numberInput("sets", task.id, { min: 0, max: 99, value: dose.sets }), "Sets done"),
    field(numberInput("reps", task.id, { min: 0, max: 999, value: dose.reps }), "Repetitions in each set"),
    field(
      numberInput("pain", task.id, { min: 0, max: 10, required: true }),
      "Pain during the exercise (0 to 10)",
      "0 means no pain, 10 the worst pain you can imagine.",
    ),
    field(
      numberInput("difficulty", task.id, { min: 0, max: 10, required: true }),
      "How hard was it? (0 to 10)",
      "0 means very easy, 10 too hard to do.",
    ),
    field(
      h("textarea", { id: `note-${task.id}`, name: "note", rows: 3 }),
      "Anything to tell your therapist? (optional)",
    ),
    formButtons(),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const number = (input) => (form.elements[input].value === "" ? null : Number(form.elements[input].value));
    const ops = fhir.completionOps({
      end: fhir.localDateTime(),
      sets: number("sets"),
      reps: number("reps"),
      pain: number("pain"),
      difficulty: number("difficulty"),
      note: form.elements.note.value.trim(),
    });
    save(task, ops, `${name}, done`);
  });
  return form;
}

/** "Could not do it": why. */
function cannotForm(task) {
  const { name } = exerciseOf(task);
  const form = h(
    "form",
    { class: "cannot-form", "aria-label": `Could not do ${name}` },
    field(
      h("textarea", { id: `reason-${task.id}`, name: "reason", rows: 3, required: true }),
      "What stopped you?",
      "For example: it hurt, I felt unwell, I had no time.",
    ),
    formButtons(),
  );
  const reason = form.elements.reason;
  reason.addEventListener("input", () => reason.setCustomValidity(""));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      // only spaces: "required" let it through
      reason.setCustomValidity("Please say what stopped you.");
      reason.reportValidity();
      return;
    }
    save(task, fhir.cannotDoOps(reason.value.trim()), `${name}, could not do it`);
  });
  return form;
}

/** Queues the report, shows it at once (the focus on the session's heading), and sends it. */
function save(task, ops, label) {
  const { ctx, data } = shown;
  outbox.add(ctx.patientId, task.id, ops, `${label} (${dayInWords(data.day)})`);
  redraw(task.id).querySelector("h3").focus();
  outbox.flush(ctx.patientId);
}

/**
 * Draws one session again (after a change), and the summary; answers its new item. A
 * focus inside the old item moves to the new one's heading.
 */
function redraw(taskId) {
  const task = shown.data.tasks.find((t) => t.id === taskId);
  const item = sessionItem(task);
  const old = shown.list.querySelector(`[data-task-id="${taskId}"]`);
  const hadFocus = old?.contains(document.activeElement);
  old?.replaceWith(item);
  if (hadFocus) item.querySelector("h3").focus();
  updateSummary();
  return item;
}

/** "1 of 3 done." above the list. */
function updateSummary() {
  const states = shown.data.tasks.map((t) => fhir.sessionState(t, outbox.waitingFor(shown.ctx.patientId, t.id)));
  const done = states.filter((s) => s.status === "completed").length;
  shown.summary.textContent = states.length ? `${done} of ${states.length} done.` : "";
}

/** A session the server now has in a new state: keep it, and draw it again. */
function update(task) {
  if (!shown || task?.resourceType !== "Task") return;
  const i = shown.data.tasks.findIndex((t) => t.id === task.id);
  if (i < 0) return;
  if (task.status === "cancelled") {
    // the clinic cancelled it: it is no longer the patient's to do
    shown.data.tasks.splice(i, 1);
    shown.list.querySelector(`[data-task-id="${task.id}"]`)?.remove();
    updateSummary();
  } else {
    shown.data.tasks[i] = task;
    redraw(task.id);
  }
  keep(shown.ctx.patientId, "today", shown.data);
}

/** Reads a session again and updates it (when the server's answer did not carry it). */
function reload(taskId) {
  if (shown) getJson(`Task/${taskId}`).then(update, () => {});
}

outbox.events.addEventListener("sent", ({ detail }) => {
  if (outbox.isAnswer(detail.item)) return; // js/measures.js
  if (detail.task?.id === detail.item.taskId) update(detail.task);
  else reload(detail.item.taskId);
});
// a refused report: show the session as the server has it
outbox.events.addEventListener("refused", ({ detail }) => {
  if (!outbox.isAnswer(detail.item)) reload(detail.item.taskId);
});
