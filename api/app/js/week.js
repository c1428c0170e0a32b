// Week: the last 7 days and the next 7, each with how many sessions were done, missed
// and are still to do ("Wed 2 Dec: 2 done, 1 missed, 0 to do"). The questionnaires to
// answer (measure Tasks) are not sessions: they are left out.

import * as fhir from "./fhir.js";
import * as outbox from "./outbox.js";
import { searchPages } from "./session.js";
import { withCache } from "./store.js";
import { fill, h, shortDay } from "./ui.js";

const DAYS_BEFORE = 6;
const DAYS_AFTER = 7;

/** Renders the week into `section` (its `.view-body`). */
export async function showWeek(section, ctx) {
  const today = ctx.today();
  const from = fhir.addDays(today, -DAYS_BEFORE);
  const to = fhir.addDays(today, DAYS_AFTER);
  const { data, fromCache } = await withCache(
    ctx.patientId,
    "week",
    () => loadWeek(ctx.patientId, from, to),
    (copy) => copy.from === from,
  );
  const byDay = new Map();
  for (const task of data.tasks) {
    const day = fhir.sessionDay(task);
    byDay.set(day, [...(byDay.get(day) ?? []), task]);
  }
  const days = [];
  for (let day = from; day <= to; day = fhir.addDays(day, 1)) {
    days.push(dayItem(day, byDay.get(day) ?? [], day === today, ctx.patientId));
  }
  fill(
    section.querySelector(".view-body"),
    fromCache ? h("p", { class: "note" }, "Shown as it was on your last visit.") : null,
    h("p", {}, `From ${shortDay(from)} to ${shortDay(to)}.`),
    h("ul", { id: "days", class: "days" }, days),
  );
}

async function loadWeek(patientId, from, to) {
  const pages = await searchPages(
    `Task?patient=${patientId}&session-day=ge${from}&session-day=le${to}&_sort=restriction-period&_count=100`,
  );
  const tasks = pages
    .flatMap((bundle) => fhir.resourcesOf(bundle))
    .filter((r) => r.resourceType === "Task" && r.status !== "cancelled" && !fhir.isMeasureTask(r));
  return { from, tasks };
}

/**
 * One day: its counts as attributes and in words. Done: completed; missed: failed
 * (missed, or could not do it); to do: requested, late ones too, since they can still
 * be logged. A report in the outbox counts as what it says.
 */
function dayItem(day, tasks, isToday, patientId) {
  const count = { done: 0, missed: 0, todo: 0 };
  for (const task of tasks) {
    const { status } = fhir.sessionState(task, outbox.waitingFor(patientId, task.id));
    if (status === "completed") count.done += 1;
    else if (status === "failed") count.missed += 1;
    else count.todo += 1;
  }
  const words = tasks.length
    ? `${count.done} done, ${count.missed} missed, ${count.todo} to do`
    : "nothing planned";
  return h(
    "li",
    {
      class: isToday ? "day today" : "day",
      "data-date": day,
      "data-done": count.done,
      "data-missed": count.missed,
      "data-todo": count.todo,
      "aria-current": isToday ? "date" : null,
    },
    h("span", { class: "day-name" }, `${shortDay(day)}:`),
    " ",
    h("span", {}, words),
  );
}
