// Progress: the share of sessions done in each week of the program (CarePlan
// $adherence), and the pain scores the patient reported (Observations), each as a chart
// with a table of the same numbers.

import { barChart, lineChart } from "./charts.js";
import * as fhir from "./fhir.js";
import { activeProgram } from "./program.js";
import { getJson, searchPages } from "./session.js";
import { dayMonth, fill, h, momentInWords, shortDay } from "./ui.js";

const MAX_WEEKS = 12;

/** Renders Progress into `section` (its `.view-body`). */
export async function showProgress(section, ctx) {
  const [weeks, scores] = await Promise.all([loadWeeks(ctx), loadPain(ctx.patientId)]);
  fill(
    section.querySelector(".view-body"),
    h("h2", {}, "Sessions done each week"),
    adherenceChart(weeks),
    adherenceTable(weeks),
    h("h2", {}, "Pain"),
    painChart(scores, ctx.timeZone),
    painTable(scores, ctx.timeZone),
  );
}

// ---------------------------------------------------------------------------------
// Loading

/**
 * The program's weeks up to this one (the last 12), each with its figures. One
 * $adherence call covers them all: its "week" parts are counted from `start`, which is
 * the first day of a program week, so they are the program's weeks.
 */
async function loadWeeks(ctx) {
  const plan = await activeProgram(ctx.patientId);
  const today = ctx.today();
  const end = plan?.period?.end && plan.period.end < today ? plan.period.end : today;
  const weeks = fhir.programWeeks(plan?.period?.start, end, MAX_WEEKS);
  if (!weeks.length) return [];
  const figures = fhir.adherenceByWeek(
    await getJson(`CarePlan/${plan.id}/$adherence?start=${weeks[0].start}&end=${end}`),
  );
  const nothing = { due: 0, completed: 0, missed: 0, late: 0, percent: null };
  return weeks.map((week) => ({ ...week, ...(figures.get(week.start) ?? nothing) }));
}

async function loadPain(patientId) {
  const pages = await searchPages(
    `Observation?patient=${patientId}&code=${encodeURIComponent(fhir.PAIN)}&_sort=date&_count=200`,
  );
  return fhir.painScores(pages.flatMap((bundle) => fhir.resourcesOf(bundle)));
}

// ---------------------------------------------------------------------------------
// Drawing

const percentWords = (week) => (week.percent === null ? "nothing due" : `${week.percent}%`);

function adherenceChart(weeks) {
  const label = weeks.length
    ? `Bar chart of the sessions done each week, as a share of those due: ${weeks
        .map((w) => `week ${w.number} ${percentWords(w)}`)
        .join(", ")}.`
    : "No weeks of your program yet.";
  const bars = weeks.map((w) => ({ label: `W${w.number}`, percent: w.percent }));
  return barChart("adherence-chart", label, bars, "No weeks yet");
}

/** A table in a box that scrolls sideways on a narrow screen (focusable, labelled). */
function tableBox(label, table) {
  return h("div", { class: "table-box", role: "region", "aria-label": label, tabindex: "0" }, table);
}

function adherenceTable(weeks) {
  const rows = weeks.length
    ? weeks.map((w) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, `Week ${w.number} (from ${dayMonth(w.start)})`),
          h("td", {}, w.late ? `${w.completed} (${w.late} late)` : String(w.completed)),
          h("td", {}, String(w.missed)),
          h("td", {}, String(w.due)),
          h("td", {}, percentWords(w)),
        ),
      )
    : [h("tr", {}, h("td", { colspan: 5 }, "No weeks of your program yet."))];
  return tableBox(
    "Sessions each week, table",
    h(
      "table",
      { id: "adherence-table" },
      h("caption", {}, "Sessions each week"),
      h(
        "thead",
        {},
        h("tr", {}, ["Week", "Done", "Missed", "Due", "Done (%)"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function painChart(scores, timeZone) {
  const points = scores.map((s) => ({ time: Date.parse(s.when), score: s.score }));
  const day = (s) => shortDay(fhir.dayIn(timeZone, new Date(s.when)));
  const first = scores[0];
  const last = scores[scores.length - 1];
  const label = scores.length
    ? `Line chart of your pain scores, from 0 (no pain) to 10 (the worst): ${scores.length} ` +
      `${scores.length === 1 ? "score" : "scores"} from ${day(first)} to ${day(last)}, ` +
      `the first ${first.score}, the latest ${last.score}.`
    : "No pain scores yet.";
  const lastLabel = last && day(last) !== day(first) ? day(last) : null;
  return lineChart("pain-chart", label, points, first && day(first), lastLabel, "No pain scores yet");
}

function painTable(scores, timeZone) {
  const rows = scores.length
    ? scores.map((s) => h("tr", {}, h("td", {}, momentInWords(s.when, timeZone)), h("td", {}, String(s.score))))
    : [h("tr", {}, h("td", { colspan: 2 }, "No pain scores yet"))];
  return tableBox(
    "Pain scores, table",
    h(
      "table",
      { id: "pain-table" },
      h("caption", {}, "Your pain scores (0 means no pain, 10 the worst)"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Pain"))),
      h("tbody", {}, rows),
    ),
  );
}
