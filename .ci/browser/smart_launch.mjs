// A patient's SMART standalone launch in headless Chromium, end to end: a test app built
// on fhirclient (SMART's JS client library) is served from its own origin; the patient
// redeems the clinic's invitation code on the server's pages, allows the app, and the
// app reads the patient's Tasks and Patient resource with the token it got. Then the
// refusals as a browser sees them: Deny returns error=access_denied to the app, and a
// wrong password shows an alert. Every server page is checked with axe-core (any
// serious or critical violation fails) and kept as a screenshot in --out.
//
// Usage (see .ci/smart_launch.sh, which starts the server and makes the data):
//   node .ci/browser/smart_launch.mjs --server http://127.0.0.1:PORT --app-port PORT \
//     --client-id ID --invite CODE --patient ID --tasks N --birth-date 1961-04-12 \
//     --modules DIR_WITH_NODE_MODULES --out target/browser
//
// axe-core and the server's Content-Security-Policy: the server's pages forbid every
// script (`default-src 'none'`), so axe is not added as a <script> element. Its source
// is evaluated through the DevTools protocol (puppeteer's page.evaluate, which is
// Runtime.evaluate), which the page's CSP does not govern. The CSP stays in force for
// the pages themselves (no setBypassCSP): the consent form's `form-action`, which
// Chromium also applies to the redirect that follows the post, is part of the test.

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));

const { values: opt } = parseArgs({
  options: {
    server: { type: "string" },
    "app-port": { type: "string" },
    "client-id": { type: "string" },
    invite: { type: "string" },
    patient: { type: "string" },
    tasks: { type: "string" },
    "birth-date": { type: "string", default: "1961-04-12" },
    "app-name": { type: "string", default: "HEP test app" },
    modules: { type: "string", default: here },
    out: { type: "string", default: "target/browser" },
    chromium: { type: "string" },
  },
});
for (const k of ["server", "app-port", "client-id", "invite", "patient", "tasks"]) {
  if (!opt[k]) {
    console.error(`smart_launch.mjs: --${k} is required`);
    process.exit(2);
  }
}

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message);
};
const ok = (message) => console.log(`ok: ${message}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const serverOrigin = new URL(opt.server).origin;
const iss = `${serverOrigin}/fhir`;
const appPort = Number(opt["app-port"]);
const appOrigin = `http://127.0.0.1:${appPort}`;
const expectedTasks = Number(opt.tasks);
const out = resolve(opt.out);
mkdirSync(out, { recursive: true });

const require = createRequire(join(resolve(opt.modules), "package.json"));
const puppeteer = require("puppeteer-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const fhirclientBuild = dirname(require.resolve("fhirclient/build/fhir-client.js"));

// ---------------------------------------------------------------------------------
// The app's origin: .ci/browser/app at /, fhirclient's browser bundle at /lib/.

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".css": "text/css; charset=utf-8",
};

function staticServer(roots) {
  return createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, appOrigin).pathname);
    const [prefix, root] = roots.find(([p]) => path.startsWith(p)) ?? [];
    let file = root && resolve(root, "." + sep + path.slice(prefix.length));
    if (file && !(file + sep).startsWith(resolve(root) + sep)) file = undefined;
    try {
      if (!file || req.method !== "GET" || !statSync(file).isFile()) throw new Error();
      res.writeHead(200, {
        "Content-Type": types[extname(file)] ?? "application/octet-stream",
        "Cache-Control": "no-store",
      });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found");
    }
  });
}

// ---------------------------------------------------------------------------------
// Page helpers

/** The page's visible text, shortened, for failure messages. */
async function pageText(page) {
  try {
    const text = await page.evaluate(() => document.body?.innerText ?? "");
    return JSON.stringify(text.replace(/\s+/g, " ").trim().slice(0, 600));
  } catch (e) {
    return `(no text: ${e.message})`;
  }
}

/** Waits until `check` (run in the page) answers a value, across navigations. */
async function waitInPage(page, what, check, arg, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const value = await page.evaluate(check, arg);
      if (value) return value;
    } catch {
      // the page is navigating: its context went away; try again
    }
    if (Date.now() > deadline) {
      fail(`${what}: not there after ${timeout / 1000}s; the browser is at ${page.url()}: ${await pageText(page)}`);
    }
    await sleep(100);
  }
}

/** Waits for the server's page holding `selector`; a server page with an alert instead fails at once. */
async function serverPage(page, what, selector) {
  const found = await waitInPage(
    page,
    what,
    ({ origin, selector }) => {
      if (document.body?.dataset.status === "error") return { app: document.body.innerText.trim() };
      if (location.origin !== origin || document.readyState !== "complete") return null;
      if (document.querySelector(selector)) return { found: true };
      const alert = document.querySelector('[role="alert"]');
      return alert ? { alert: alert.innerText.trim() } : null;
    },
    { origin: serverOrigin, selector },
  );
  if (found.app) fail(`${what}: the app stopped at ${page.url()}: ${JSON.stringify(found.app)}`);
  if (!found.found) {
    fail(`${what}: the server answered ${page.lastDocument?.status} at ${page.url()} with the alert ${JSON.stringify(found.alert)}: ${await pageText(page)}`);
  }
  return page.lastDocument;
}

/** Waits for the app's index.html to finish (ready or error) and answers its result. */
async function appResult(page, what) {
  const status = await waitInPage(
    page,
    what,
    ({ origin }) => location.origin === origin && location.pathname === "/index.html" && document.body?.dataset.status,
    { origin: appOrigin },
    45000,
  );
  const result = JSON.parse(await page.$eval("#result", (e) => e.textContent));
  return { status, ...result };
}

/** Runs `action` and waits for the navigation it starts. */
async function navigate(page, what, action) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: "load", timeout: 30000 }).catch(async (e) => {
      fail(`${what}: no new page (${e.message}); the browser is at ${page.url()}: ${await pageText(page)}`);
    }),
    action(),
  ]);
  return response;
}

async function fill(page, selector, value) {
  if (!(await page.$(selector))) fail(`${page.url()}: no field ${selector}: ${await pageText(page)}`);
  await page.$eval(selector, (e) => {
    e.value = "";
  });
  await page.type(selector, value);
}

/** Sets a field's value directly (a date input's typed form depends on the locale). */
async function setValue(page, selector, value) {
  if (!(await page.$(selector))) fail(`${page.url()}: no field ${selector}: ${await pageText(page)}`);
  const now = await page.$eval(
    selector,
    (e, v) => {
      e.value = v;
      e.dispatchEvent(new Event("input", { bubbles: true }));
      e.dispatchEvent(new Event("change", { bubbles: true }));
      return e.value;
    },
    value,
  );
  if (now !== value) fail(`${selector} does not take ${value} (it holds ${JSON.stringify(now)})`);
}

async function expectAttributes(page, what, selector, attributes) {
  const actual = await page.$eval(selector, (e, names) => Object.fromEntries(names.map((n) => [n, e.getAttribute(n)])), Object.keys(attributes)).catch(() => null);
  if (!actual) fail(`${what}: no ${selector}`);
  for (const [name, value] of Object.entries(attributes)) {
    if (actual[name] !== value) fail(`${what}: ${selector} has ${name}=${JSON.stringify(actual[name])}, not ${JSON.stringify(value)}`);
  }
}

async function screenshot(page, name) {
  const path = join(out, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** axe-core over the page: a serious or critical violation fails, others are listed. */
async function axeCheck(page, name) {
  await page.evaluate(axeSource); // Runtime.evaluate: not subject to the page's CSP
  const results = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
      })),
    ),
  );
  const blocking = results.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of results.filter((v) => !blocking.includes(v))) {
    console.log(`  note (axe, ${v.impact}) ${name}: ${v.id}: ${v.help} [${v.nodes.join(", ")}]`);
  }
  if (blocking.length) {
    const list = blocking.map((v) => `${v.id} (${v.impact}): ${v.help} [${v.nodes.join(", ")}]`).join("; ");
    fail(`${name}: accessibility violations: ${list}`);
  }
}

/** The checks every server page gets: headers, no script, no CSP report, axe, a screenshot. */
async function checkServerPage(page, name, { formActionApp = false } = {}) {
  const doc = page.lastDocument;
  if (!doc || new URL(doc.url).origin !== serverOrigin) fail(`${name}: no answer of the server recorded (at ${page.url()})`);
  const h = doc.headers;
  const csp = h["content-security-policy"] ?? "";
  for (const d of ["default-src 'none'", "frame-ancestors 'none'"]) {
    if (!csp.includes(d)) fail(`${name}: Content-Security-Policy ${JSON.stringify(csp)} lacks ${d}`);
  }
  if (/unsafe-inline|unsafe-eval/.test(csp)) fail(`${name}: Content-Security-Policy allows ${csp}`);
  if (formActionApp) {
    const formAction = csp.split(";").map((d) => d.trim()).find((d) => d.startsWith("form-action")) ?? "";
    if (!formAction.split(/\s+/).includes(appOrigin)) {
      fail(`${name}: the CSP's form-action (${JSON.stringify(formAction)}) does not name the app's origin ${appOrigin}: Chromium would block the redirect to the app`);
    }
  }
  if (!/no-store/.test(h["cache-control"] ?? "")) fail(`${name}: Cache-Control is ${JSON.stringify(h["cache-control"])}, not no-store`);
  if ((h["x-frame-options"] ?? "").toUpperCase() !== "DENY") fail(`${name}: X-Frame-Options is ${JSON.stringify(h["x-frame-options"])}`);
  const facts = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    scripts: document.scripts.length,
    viewport: document.querySelector('meta[name="viewport"]')?.content ?? null,
    styles: [...document.querySelectorAll('link[rel="stylesheet"]')].map((l) => new URL(l.href).pathname),
    inlineStyles: document.querySelectorAll("style, [style]").length,
    wide: document.documentElement.scrollWidth > window.innerWidth + 1,
  }));
  if (facts.lang !== "en") fail(`${name}: <html lang> is ${JSON.stringify(facts.lang)}`);
  if (facts.scripts) fail(`${name}: the page has ${facts.scripts} script element(s)`);
  if (!facts.viewport?.includes("width=device-width")) fail(`${name}: no viewport meta with width=device-width`);
  if (facts.inlineStyles) fail(`${name}: ${facts.inlineStyles} inline style(s)`);
  if (facts.wide) fail(`${name}: wider than the phone's screen (scrolls sideways at 390 px)`);
  const blocked = page.cspReports.splice(0);
  if (blocked.length) fail(`${name}: the browser blocked by CSP: ${blocked.join(" | ")}`);
  await axeCheck(page, name);
  const shot = await screenshot(page, name);
  ok(`${name}: headers, markup, axe (no serious or critical violation), ${shot}`);
}

async function newPage(context) {
  const page = await context.newPage();
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  page.cspReports = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) page.cspReports.push(`${page.url()}: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.request().resourceType() === "document" && r.frame() === page.mainFrame() && !(r.status() >= 300 && r.status() < 400)) {
      page.lastDocument = { url: r.url(), status: r.status(), headers: r.headers() };
    }
  });
  return page;
}

function launchUrl() {
  return `${appOrigin}/launch.html?iss=${encodeURIComponent(iss)}&client_id=${encodeURIComponent(opt["client-id"])}`;
}

/** Opens launch.html and waits for the server's page `selector` (through fhirclient's redirect). */
async function launch(page, what, selector) {
  await page.goto(launchUrl(), { waitUntil: "load" });
  return serverPage(page, what, selector);
}

function checkAppResult(result, what) {
  if (result.status !== "ready") fail(`${what}: the app says ${JSON.stringify(result.error)} (it arrived at ${result.arrivedAt})`);
  if (result.patientId !== opt.patient) fail(`${what}: client.patient.id is ${JSON.stringify(result.patientId)}, not ${opt.patient}`);
  if (result.patient.id !== opt.patient) fail(`${what}: client.patient.read() gave Patient/${result.patient.id}`);
  if (result.patient.birthDate !== opt["birth-date"]) fail(`${what}: the Patient's birthDate is ${result.patient.birthDate}`);
  if (result.tasks.length !== expectedTasks) {
    fail(`${what}: Task?patient= gave ${result.tasks.length} Task(s), not ${expectedTasks}: ${JSON.stringify(result.tasks)}`);
  }
  const strays = result.tasks.filter((t) => t.for !== `Patient/${opt.patient}`);
  if (strays.length) fail(`${what}: Tasks not for Patient/${opt.patient}: ${JSON.stringify(strays)}`);
  if (result.tokenType?.toLowerCase() !== "bearer") fail(`${what}: token_type ${JSON.stringify(result.tokenType)}`);
  if (!result.refreshToken) fail(`${what}: no refresh_token although offline_access was asked and allowed`);
  if (!result.idToken) fail(`${what}: no id_token although openid fhirUser were asked and allowed`);
  if (!String(result.fhirUser ?? "").endsWith(`Patient/${opt.patient}`)) {
    fail(`${what}: the id_token's fhirUser is ${JSON.stringify(result.fhirUser)}, not the patient`);
  }
}

// ---------------------------------------------------------------------------------

async function main(browser) {
  const username = `pat-${Date.now().toString(36)}`;
  const password = `Willow-harbor-${Math.random().toString(36).slice(2, 8)}-7!`;

  // 1. The standalone launch: the sign-in page, then the code page.
  const context = browser.defaultBrowserContext();
  const page = await newPage(context);
  const signIn = await launch(page, "the sign-in page after launch.html", 'form[action="/auth/login"]');
  if (signIn.status !== 200) fail(`the sign-in page answered ${signIn.status}`);
  if (!new URL(signIn.url).pathname.startsWith("/auth/authorize")) fail(`the sign-in page is at ${signIn.url}, not /auth/authorize`);
  const asked = new URL(signIn.url).searchParams;
  if (asked.get("code_challenge_method") !== "S256" || !asked.get("code_challenge")) fail(`fhirclient sent no S256 code challenge: ${signIn.url}`);
  await expectAttributes(page, "sign-in page", "#username", { name: "username", autocomplete: "username" });
  await expectAttributes(page, "sign-in page", "#password", { name: "password", type: "password", autocomplete: "current-password" });
  await checkServerPage(page, "01-sign-in");

  const link = await page.$$eval("a", (as) => as.filter((a) => a.textContent.trim() === "I have a code from my clinic").map((a) => a.getAttribute("href")));
  if (link.length !== 1 || !link[0].startsWith("/auth/redeem")) fail(`sign-in page: no one link "I have a code from my clinic" to /auth/redeem (${JSON.stringify(link)})`);
  await navigate(page, "the code link", () => page.click(`a[href="${link[0].replaceAll('"', '\\"')}"]`));
  await serverPage(page, "the code page", 'form[action="/auth/redeem"]');
  await expectAttributes(page, "code page", "#code", { name: "code", autocomplete: "one-time-code" });
  await expectAttributes(page, "code page", "#birth_date", { name: "birth_date", type: "date", autocomplete: "bday" });
  await expectAttributes(page, "code page", "#username", { name: "username", autocomplete: "username" });
  await expectAttributes(page, "code page", "#password", { name: "password", type: "password", autocomplete: "new-password" });
  await checkServerPage(page, "02-code");

  // 2. Redeem the invitation: the consent page names the app.
  await fill(page, "#code", opt.invite);
  await setValue(page, "#birth_date", opt["birth-date"]);
  await fill(page, "#username", username);
  await fill(page, "#password", password);
  await navigate(page, "Create my account", () => page.click('form[action="/auth/redeem"] button[type="submit"]'));
  const consent = await serverPage(page, "the consent page after the code", 'form[action="/auth/consent"] button[name="decision"][value="allow"]');
  if (consent.status !== 200) fail(`the consent page answered ${consent.status}`);
  const consentText = await page.evaluate(() => document.body.innerText);
  if (!consentText.includes(opt["app-name"])) fail(`the consent page does not name the app "${opt["app-name"]}": ${await pageText(page)}`);
  if (!(await page.$('form[action="/auth/consent"] button[name="decision"][value="deny"]'))) fail("the consent page has no Deny button");
  await checkServerPage(page, "03-consent", { formActionApp: true });

  // 3. Allow: back to the app, which reads the patient's Tasks and Patient.
  await navigate(page, "Allow", () => page.click('button[name="decision"][value="allow"]'));
  const result = await appResult(page, "the app after Allow");
  checkAppResult(result, "the app after Allow");
  await screenshot(page, "04-app");
  ok(`the app has a token for Patient/${result.patientId}, read ${result.tasks.length} Tasks and the Patient (scope ${result.scope})`);

  // 4. A second launch in the same browser: signed in, so straight to consent; Deny.
  await launch(page, "the consent page on a second launch (signed in)", 'form[action="/auth/consent"] button[name="decision"][value="deny"]');
  await checkServerPage(page, "05-consent-signed-in", { formActionApp: true });
  await navigate(page, "Deny", () => page.click('button[name="decision"][value="deny"]'));
  const denied = await appResult(page, "the app after Deny");
  const back = new URL(denied.arrivedAt).searchParams;
  if (back.get("error") !== "access_denied") fail(`after Deny the app got ${denied.arrivedAt}, not error=access_denied`);
  if (!back.get("state")) fail(`after Deny the app got no state: ${denied.arrivedAt}`);
  if (back.get("code")) fail(`after Deny the app got a code: ${denied.arrivedAt}`);
  if (denied.status !== "error" || !String(denied.error).includes("access_denied")) fail(`after Deny the app says ${JSON.stringify(denied)}`);
  await screenshot(page, "06-denied");
  ok("Deny leads back to the app with error=access_denied and the state, no code");

  // 5. Another browser profile (no session): a wrong password, then the right one.
  const fresh = await browser.createBrowserContext();
  const other = await newPage(fresh);
  await launch(other, "the sign-in page in a new profile", 'form[action="/auth/login"]');
  await fill(other, "#username", username);
  await fill(other, "#password", `${password}x`);
  const refused = await navigate(other, "Sign in (wrong password)", () => other.click('form[action="/auth/login"] button[type="submit"]'));
  await serverPage(other, "the sign-in page after a wrong password", '[role="alert"]');
  if (refused?.status() !== 401) fail(`a wrong password answered ${refused?.status()}, not 401`);
  const alert = await other.$eval('[role="alert"]', (e) => e.innerText.trim());
  if (!/username or password is not right/i.test(alert)) fail(`the alert after a wrong password says ${JSON.stringify(alert)}`);
  if (!(await other.$('form[action="/auth/login"] #password'))) fail("after a wrong password the sign-in form is gone");
  await checkServerPage(other, "07-wrong-password");
  ok(`a wrong password: 401 and role=alert ${JSON.stringify(alert)}`);

  await fill(other, "#username", username);
  await fill(other, "#password", password);
  await navigate(other, "Sign in", () => other.click('form[action="/auth/login"] button[type="submit"]'));
  await serverPage(other, "the consent page after signing in", 'form[action="/auth/consent"] button[name="decision"][value="allow"]');
  await navigate(other, "Allow (after signing in)", () => other.click('button[name="decision"][value="allow"]'));
  const again = await appResult(other, "the app after signing in and Allow");
  checkAppResult(again, "the app after signing in and Allow");
  await screenshot(other, "08-app-after-sign-in");
  ok("the account the code made signs in with its password and the app gets the same Tasks");
  await fresh.close();
}

const executablePath = opt.chromium ?? execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
const app = staticServer([
  ["/lib/", fhirclientBuild],
  ["/", join(here, "app")],
]);
await new Promise((res, rej) => app.once("error", rej).listen(appPort, "127.0.0.1", res));
const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  defaultViewport: { width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  args: [
    ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
  ],
});
let code = 0;
try {
  await main(browser);
  console.log(`the SMART launch in Chromium passed (screenshots in ${out})`);
} catch (e) {
  code = 1;
  console.error(e instanceof Failure ? `FAILED: ${e.message}` : `FAILED: ${e.stack ?? e}`);
  try {
    for (const [i, p] of (await browser.pages()).entries()) await p.screenshot({ path: join(out, `failure-${i}.png`), fullPage: true });
    writeFileSync(join(out, "failure.txt"), String(e.message ?? e) + "\n");
    console.error(`  screenshots of the open pages: ${out}/failure-*.png`);
  } catch {
    // nothing more to keep
  }
} finally {
  await browser.close();
  app.close();
}
process.exit(code);
