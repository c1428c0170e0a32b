// Progress: the share of sessions done in each week of the program (CarePlan
// $adherence), the pain scores the patient reported with their sessions (Observations),
// and the scores of the questionnaires they answered (CarePlan $outcomes), each as a
// chart with a table of the same numbers.

import { barChart, lineChart } from "./charts.js";
import * as fhir from "./fhir.js";
import { activeProgram } from "./program.js";
import { ApiError, getJson, searchPages } from "./session.js";
import { dayMonth, fill, h, momentInWords, shortDay } from "./ui.js";

const MAX_WEEKS = 12;

/** Renders Progress into `section` (its `.view-body`). */
export async function showProgress(section, ctx) {
  const plan = await activeProgram(ctx.patientId);
  const [weeks, scores, measures] = await Promise.all([loadWeeks(ctx, plan), loadPain(ctx.patientId), loadOutcomes(plan)]);
  fill(
    section.querySelector(".view-body"),
    h("h2", {}, "Sessions done each week"),
    adherenceChart(weeks),
    adherenceTable(weeks),
    h("h2", {}, "Pain during the exercises"),
    painChart(scores, ctx.timeZone),
    painTable(scores, ctx.timeZone),
    h("h2", { id: "outcomes-title" }, "Outcome measures"),
    outcomes(measures, ctx.timeZone),
  );
}

// ---------------------------------------------------------------------------------
// Loading

/**
 * The program's weeks up to this one (the last 12), each with its figures. One
 * $adherence call covers them all: its "week" parts are counted from `start`, which is
 * the first day of a program week, so they are the program's weeks.
 */
async function loadWeeks(ctx, plan) {
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
  // the pain scale among the questionnaires (its score has the same code) is shown
  // with the outcome measures
  const observations = pages.flatMap((bundle) => fhir.resourcesOf(bundle)).filter((o) => !fhir.isOutcomeScore(o));
  return fhir.painScores(observations);
}

/** The scores of each questionnaire answered in the program (`$outcomes`). */
async function loadOutcomes(plan) {
  if (!plan) return [];
  try {
    return fhir.outcomeSeries(await getJson(`CarePlan/${plan.id}/$outcomes`));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return null; // the rest of Progress shows all the same
  }
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

// ---------------------------------------------------------------------------------
// Outcome measures

/** "nprs" of ".../Questionnaire/nprs", for element ids. */
const measureId = (canonical) => (canonical ?? "measure").split("/").pop().replace(/[^A-Za-z0-9_-]/g, "_");

function outcomes(measures, timeZone) {
  if (measures === null) return h("p", { class: "error" }, "The scores of your questionnaires could not be loaded.");
  const answered = measures.filter((m) => m.scores.length);
  if (!answered.length) {
    return h("p", { id: "no-outcomes" }, "No questionnaires answered yet. The ones to answer show on Today.");
  }
  return h(
    "div",
    { class: "outcomes" },
    answered.map((m) => {
      const id = measureId(m.canonical);
      const scale = fhir.scaleOf(m.canonical);
      return h(
        "section",
        { class: "outcome", "data-questionnaire": m.canonical, "aria-labelledby": `outcome-${id}-title` },
        h("h3", { id: `outcome-${id}-title` }, m.title ?? "Questionnaire"),
        outcomeSummary(m, scale),
        scale ? outcomeChart(m, id, scale) : null,
        outcomeTable(m, id, timeZone),
      );
    }),
  );
}

/** "Your latest score: 4 (on a scale from 0 to 10, lower is better): an important improvement." */
function outcomeSummary(m, scale) {
  const latest = m.scores[m.scores.length - 1];
  const better =
    m.direction === "lower-is-better" ? "lower is better" : m.direction === "higher-is-better" ? "higher is better" : null;
  const range = scale ? `on a scale from ${scale.min} to ${scale.max}` : null;
  const about = [range, better].filter(Boolean).join(", ");
  const words = [`Your latest score: ${latest.value}${about ? ` (${about})` : ""}.`];
  if (latest.change !== null) words.push(`Change since your first answer: ${fhir.signed(latest.change)}.`);
  if (latest.improved) words.push("This is an important improvement.");
  else if (latest.worsened) words.push("This is an important change for the worse.");
  return h("p", { class: "outcome-summary" }, words.join(" "));
}

/** The dates of `$outcomes` are in the patient's zone already: their day is their first 10 characters. */
function outcomeChart(m, id, scale) {
  const points = m.scores.map((s) => ({ time: Date.parse(s.date), score: s.value }));
  const day = (s) => shortDay(s.date.slice(0, 10));
  const first = m.scores[0];
  const last = m.scores[m.scores.length - 1];
  const label =
    `Line chart of your ${m.title ?? "questionnaire"} scores, from ${scale.min} to ${scale.max}: ` +
    `${m.scores.length} ${m.scores.length === 1 ? "score" : "scores"} from ${day(first)} to ${day(last)}, ` +
    `the first ${first.value}, the latest ${last.value}.`;
  const lastLabel = day(last) !== day(first) ? day(last) : null;
  return lineChart(`outcome-${id}-chart`, label, points, day(first), lastLabel, "No scores yet", scale);
}

function changeWords(s) {
  if (s.change === null) return "First answer";
  const words = fhir.signed(s.change);
  if (s.improved) return `${words}: an important improvement`;
  if (s.worsened) return `${words}: an important change for the worse`;
  return words;
}

function outcomeTable(m, id, timeZone) {
  const rows = m.scores.map((s) =>
    h(
      "tr",
      { "data-score": s.value },
      h("td", {}, momentInWords(s.date, timeZone)),
      h("td", {}, String(s.value)),
      h("td", {}, changeWords(s)),
    ),
  );
  return tableBox(
    `${m.title ?? "Questionnaire"} scores, table`,
    h(
      "table",
      { id: `outcome-${id}-table`, class: "outcome-table" },
      h("caption", {}, `${m.title ?? "Questionnaire"}: your scores`),
      h(
        "thead",
        {},
        h("tr", {}, ["When", "Score", "Change from the first"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h("tbody", {}, rows),
    ),
  );
}
