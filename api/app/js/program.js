// My program: the take-home sheet of the patient's active program (CarePlan $handout),
// shown in a sandboxed frame, with its PDF to download (fetched when asked) and a way to
// print it.

import * as fhir from "./fhir.js";
import { getBlob, getJson } from "./session.js";
import { fill, h, longDate } from "./ui.js";

/** The object URLs the screen shows now (revoked when it is drawn again). */
let urls = [];

/** The patient's active program (CarePlan), or null when there is none. */
export async function activeProgram(patientId) {
  const bundle = await getJson(`CarePlan?patient=${patientId}&status=active`);
  return fhir.resourcesOf(bundle).find((r) => r.resourceType === "CarePlan") ?? null;
}

/** "From 26 November 2026 to 22 December 2026." */
function periodInWords(period = {}) {
  const { start, end } = period;
  if (start && end) return `From ${longDate(start)} to ${longDate(end)}.`;
  if (start) return `From ${longDate(start)}.`;
  return "";
}

/** Renders the program into `section` (its `.view-body`). */
export async function showProgram(section, ctx) {
  const body = section.querySelector(".view-body");
  const plan = await activeProgram(ctx.patientId);
  if (!plan) {
    fill(body, h("p", {}, "Your clinic has not given you a program yet."));
    return;
  }
  const handout = `CarePlan/${plan.id}/$handout`;
  const sheet = await getBlob(handout, "text/html");
  forgetUrls();
  const sheetUrl = URL.createObjectURL(new Blob([sheet], { type: "text/html" }));
  urls = [sheetUrl];

  // The PDF (several hundred kB: its fonts are embedded) is fetched when the patient
  // asks for it, not with every visit to this screen.
  const download = h("button", { type: "button", id: "handout-pdf", class: "primary" }, "Download PDF");
  download.addEventListener("click", async () => {
    download.disabled = true;
    try {
      const pdf = await getBlob(handout, "application/pdf");
      const pdfUrl = URL.createObjectURL(new Blob([pdf], { type: "application/pdf" }));
      urls.push(pdfUrl);
      h("a", { href: pdfUrl, download: "exercise-program.pdf" }).click();
    } catch {
      download.after(h("p", { class: "error", role: "alert" }, "The PDF could not be fetched. Try again when you are online."));
    } finally {
      download.disabled = false;
    }
  });

  const print = h("button", { type: "button", class: "secondary" }, "Print");
  // The frame's sandbox keeps the sheet away from the app, and the app away from the
  // frame (it cannot call its print()): the sheet prints from a tab of its own.
  print.addEventListener("click", () => {
    const tab = window.open(sheetUrl, "_blank");
    tab?.addEventListener("load", () => tab.print());
  });
  fill(
    body,
    h("p", { class: "lead" }, plan.title ?? "Your home exercise program"),
    h("p", {}, periodInWords(plan.period)),
    h(
      "div",
      { class: "actions" },
      download,
      print,
    ),
    h("iframe", { id: "handout-frame", title: "Take-home sheet", sandbox: "allow-modals", src: sheetUrl }),
  );
}

/** Revokes the sheet's object URLs (before drawing again, and at sign-out). */
export function forgetUrls() {
  urls.forEach(URL.revokeObjectURL);
  urls = [];
}
