// The patient app's start: the sign-in, the four screens of the tabs and the answer
// screen of a questionnaire (chosen by the address's #hash: #today, ..., #answer/<task
// id>), the status lines above them, and when the outbox is sent.
//
// The screens are in js/: today.js, week.js, program.js, progress.js, measures.js. The
// sign-in and every request are in js/session.js, the outbox in js/outbox.js.

import { dayIn, timeZoneOf } from "./js/fhir.js";
import { forgetMeasures, showAnswer, showsRefusal } from "./js/measures.js";
import * as outbox from "./js/outbox.js";
import { forgetUrls, showProgram } from "./js/program.js";
import { showProgress } from "./js/progress.js";
import * as session from "./js/session.js";
import { forgetCaches, withCache } from "./js/store.js";
import { forgetPictures, showToday } from "./js/today.js";
import { fill, h, plural } from "./js/ui.js";
import { showWeek } from "./js/week.js";

const VIEWS = {
  today: { title: "Today", show: showToday },
  week: { title: "Week", show: showWeek },
  program: { title: "My program", show: showProgram },
  progress: { title: "Progress", show: showProgress },
  // a questionnaire of Today (#answer/<task id>): no tab of its own
  answer: { title: "Questionnaire", show: showAnswer, tab: false },
};

const ACCESS_ENDED =
  "Your access to this app has ended. Sign in again, or ask your clinic for a new invitation.";
const OFFLINE = "You are offline. What you log is kept on this device.";
const FLUSH_EVERY_MS = 30000;

const $ = (selector) => document.querySelector(selector);

/** The signed-in patient: {patientId, patient, timeZone, today()}; null when signed out. */
let ctx = null;
let flushTimer = null;
/** Counts navigations: only the latest one marks the page ready. */
let navigation = 0;
/** The patient's date when the screen was drawn (to redraw after midnight). */
let drawnOn = null;

wireControls();
start();

async function start() {
  if ("serviceWorker" in navigator) {
    // without it the app works the same, only not offline
    navigator.serviceWorker.register("sw.js").catch(() => {});
  }
  let patientId;
  try {
    patientId = await session.resume();
  } catch (error) {
    showSignIn(signInProblem(error));
    return;
  }
  if (patientId) await enter(patientId);
  else if (new URLSearchParams(location.search).get("state") === session.SIGNED_OUT) {
    history.replaceState(null, "", "/app/");
    showSignIn("You have signed out.", "info");
  } else showSignIn("");
}

/** The words for a sign-in that did not complete. */
function signInProblem(error) {
  return /access_denied/.test(error.message)
    ? "You did not allow the app to see your exercises. You can sign in again at any time."
    : "Signing in did not work. Please try again.";
}

/** Opens the app for the patient: their name and time zone, then the screen asked for. */
async function enter(patientId) {
  let patient = null;
  try {
    const loaded = await withCache(patientId, "patient", () => session.getJson(`Patient/${patientId}`));
    patient = loaded.data;
  } catch (error) {
    // access ended: the sign-in view is shown already; otherwise go on without the
    // name, in the device's time zone (each screen says what it could not load)
    if (error instanceof session.AccessEndedError) return;
  }
  const timeZone = timeZoneOf(patient);
  ctx = { patientId, patient, timeZone, today: () => dayIn(timeZone) };
  $("#loading").hidden = true;
  $("#signin-view").hidden = true;
  $("#main-view").hidden = false;
  route(false);
  updateOutbox();
  outbox.flush(patientId);
  flushTimer = setInterval(() => outbox.flush(patientId), FLUSH_EVERY_MS);
}

/** The sign-in view, with `message`: a problem (in the alert's colours), or `info`. */
function showSignIn(message, kind = "problem") {
  $("#loading").hidden = true;
  $("#main-view").hidden = true;
  $("#signin-view").hidden = false;
  $("#signin-message").textContent = message;
  $("#signin-message").dataset.kind = kind;
  document.title = "Sign in – Home exercises";
  document.body.dataset.ready = "signin";
}

/** Leaves the patient's screens: nothing of theirs stays on screen or in the cache. */
function leave(message, kind = "problem") {
  ctx = null;
  clearInterval(flushTimer);
  forgetCaches();
  forgetPictures();
  forgetUrls();
  forgetMeasures();
  document.querySelectorAll(".view-body").forEach((body) => body.replaceChildren());
  $("#notice").replaceChildren();
  showSignIn(message, kind);
}

// ---------------------------------------------------------------------------------
// Screens

/** Shows the screen of the address's #hash (Today by default). */
async function route(moveFocus) {
  if (!ctx) return;
  const [asked, arg = null] = location.hash.slice(1).split("/");
  const name = Object.keys(VIEWS).includes(asked) && (VIEWS[asked].tab !== false || arg) ? asked : "today";
  const run = ++navigation;
  document.body.dataset.ready = "";
  for (const key of Object.keys(VIEWS)) {
    $(`#view-${key}`).hidden = key !== name;
    const link = $(`nav a[href="#${key}"]`);
    if (!link) continue;
    if (key === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${VIEWS[name].title} – Home exercises`;
  const section = $(`#view-${name}`);
  if (moveFocus) section.querySelector("h1").focus();
  drawnOn = ctx.today();
  try {
    await VIEWS[name].show(section, ctx, arg && decodeURIComponent(arg));
  } catch (error) {
    if (error instanceof session.AccessEndedError) return;
    if (run === navigation) showProblem(section, error);
  }
  if (run === navigation && ctx) document.body.dataset.ready = name;
}

/** What a screen says when its data could not be loaded. */
function showProblem(section, error) {
  const words =
    error instanceof session.OfflineError
      ? "You are offline, and this page was not saved on this device yet. It will show when you are back online."
      : `This page could not be loaded. ${error.message}`;
  const retry = h("button", { type: "button", class: "secondary" }, "Try again");
  retry.addEventListener("click", () => route(true));
  fill(section.querySelector(".view-body"), h("p", { class: "error" }, words), retry);
}

// ---------------------------------------------------------------------------------
// Status lines

function setOffline(offline) {
  $("#app-status").textContent = offline ? OFFLINE : "";
}

/** "2 completions waiting to be sent", "1 completion and 1 questionnaire ..." (hidden when none wait). */
function updateOutbox() {
  const items = ctx ? outbox.waiting(ctx.patientId) : [];
  const answers = items.filter(outbox.isAnswer).length;
  const reports = items.length - answers;
  const line = $("#outbox");
  line.dataset.count = String(items.length);
  line.hidden = items.length === 0;
  const words = [
    reports ? plural(reports, "completion", "completions") : null,
    answers ? plural(answers, "questionnaire", "questionnaires") : null,
  ].filter(Boolean);
  line.textContent = items.length ? `${words.join(" and ")} waiting to be sent` : "";
}

/** A message that stays until the patient closes it (a report the server refused). */
function showNotice(text) {
  const close = h("button", { type: "button", class: "secondary" }, "Close");
  const notice = h("div", { class: "notice" }, h("p", {}, text), close);
  close.addEventListener("click", () => {
    notice.remove();
    $("#content").focus();
  });
  $("#notice").append(notice);
}

// ---------------------------------------------------------------------------------
// Wiring

function wireControls() {
  $(".skip-link").addEventListener("click", (event) => {
    // the #hash is the screen's: focus the content without changing it
    event.preventDefault();
    $(ctx ? "#content" : "#signin-main").focus();
  });
  $("#sign-in").addEventListener("click", async (event) => {
    event.target.disabled = true;
    try {
      await session.signIn();
    } catch {
      event.target.disabled = false;
      showSignIn("We could not reach your clinic's server. Check your connection and try again.");
    }
  });
  $("#sign-out").addEventListener("click", async () => {
    const serverSignOut = await session.signOut();
    leave("You have signed out.", "info");
    // online, the server's sign-out page sends the browser back to a fresh start
    if (serverSignOut) location.assign(serverSignOut);
  });
  window.addEventListener("hashchange", () => route(true));

  session.events.addEventListener("ended", () => leave(ACCESS_ENDED));
  session.events.addEventListener("network", (event) => setOffline(!event.detail.online));
  window.addEventListener("offline", () => setOffline(true));
  window.addEventListener("online", () => {
    setOffline(false);
    if (!ctx) return;
    outbox.flush(ctx.patientId);
    // a screen that could only show an old copy, or nothing, is drawn again
    if ($("section:not([hidden]) .error, section:not([hidden]) .note")) route(false);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !ctx) return;
    outbox.flush(ctx.patientId);
    if (ctx.today() !== drawnOn) route(false);
  });
  setOffline(!navigator.onLine);

  outbox.events.addEventListener("change", updateOutbox);
  outbox.events.addEventListener("refused", (event) => {
    const { item, message } = event.detail;
    // answers refused while their screen is sending them: it shows why, at each question
    if (showsRefusal(item)) return;
    showNotice(`We could not save “${item.label}”. ${message}`);
  });
}
