// The patient's sign-in (SMART App Launch, with SMART's fhirclient library, global
// `FHIR`) and every request to the server.
//
// fhirclient sends the patient to the server's sign-in pages, exchanges the code for
// tokens, and refreshes the access token. The app then makes its requests itself with
// fetch, because it needs what `client.request()` hides or does differently: the
// status and headers of every answer (the outbox decides by status), a network failure
// told apart from a refusal (offline, the patient's reports wait on the device), and
// one retry after a refresh when the server answers 401 (client.request() clears the
// whole sign-in on a 401 instead).
//
// The sign-in is kept across restarts in localStorage ("hep-app.sign-in": fhirclient's
// `client.state`). A refresh rotates the refresh token, and the server ends the whole
// sign-in when an old one is sent again, so the newest state is saved after every
// refresh, and tabs share it: each reads the tokens from localStorage before use, and
// refreshes under a Web Lock so that two tabs never refresh with the same token.

import { nextPage } from "./fhir.js";

const SIGN_IN_KEY = "hep-app.sign-in";
const CLINIC_KEY = "hep-app.clinic";
const SCOPE =
  "launch/patient openid fhirUser offline_access patient/*.rs patient/Task.u patient/QuestionnaireResponse.c";

/** The network did not answer (the device is offline, or the server is out of reach). */
export class OfflineError extends Error {
  constructor() {
    super("You are offline.");
  }
}

/** The sign-in has ended (revoked, expired, or the clinic ended the patient's access). */
export class AccessEndedError extends Error {
  constructor() {
    super("Your access to this app has ended.");
  }
}

/** The server refused or failed a request; `message` is its own text when it has one. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * What happens to the sign-in, for the rest of the app: "network" (detail: {online})
 * after every request, and "ended" when access has ended.
 */
export const events = new EventTarget();

let client = null;

// ---------------------------------------------------------------------------------
// Signing in and out

/** The clinic (tenant): ?clinic= in the address, else the one remembered, else "default". */
function clinic() {
  return (
    new URLSearchParams(location.search).get("clinic") ??
    localStorage.getItem(CLINIC_KEY) ??
    "default"
  );
}

/** The app's client id at the server: the server registers "hep-app.<clinic>" itself. */
function clientId() {
  return `hep-app.${clinic()}`;
}

/** Sends the patient to the server's sign-in pages; they come back to /app/ with a code. */
export async function signIn() {
  localStorage.setItem(CLINIC_KEY, clinic());
  await FHIR.oauth2.authorize({
    clientId: clientId(),
    scope: SCOPE,
    redirectUri: `${location.origin}/app/`,
    iss: `${location.origin}/fhir`,
    pkceMode: "required",
  });
}

/**
 * Resumes the sign-in at start-up: completes it when the server sent the patient back
 * (code and state, or an error, in the address), else rebuilds the one kept on the
 * device. Answers the patient's id, or null when signed out. Throws (with the server's
 * words) when the patient came back without a sign-in, e.g. after "Deny".
 */
export async function resume() {
  // fhirclient sends client_id with a refresh only when asked; public apps need it
  FHIR.oauth2.settings.refreshTokenWithClientId = true;
  const params = new URLSearchParams(location.search);
  if (params.has("state") && (params.has("code") || params.has("error"))) {
    try {
      client = await FHIR.oauth2.ready();
      saveState();
    } finally {
      history.replaceState(null, "", "/app/");
    }
  } else {
    const stored = storedState();
    client = stored ? FHIR.client(stored) : null;
  }
  return client?.patient.id ?? null;
}

/** The `state` the server's sign-out page sends the patient back to the app with. */
export const SIGNED_OUT = "signed-out";

/**
 * Ends the sign-in at the server (when reachable) and forgets it on this device. Answers
 * where to send the browser next when the server was reached: its sign-out page
 * (OpenID Connect RP-Initiated Logout), which ends the server's own sign-in in this
 * browser, so that the next person on a shared phone is asked for their password, and
 * comes back to `/app/` with `state=signed-out`. Offline: null.
 */
export async function signOut() {
  // the newest refresh token (another tab may have rotated it), which ends the sign-in
  const state = storedState() ?? client?.state;
  const refreshToken = state?.tokenResponse?.refresh_token;
  let reached = false;
  if (refreshToken) {
    const body = new URLSearchParams({ token: refreshToken, client_id: state.clientId });
    // best effort, for 5 s at most: offline, the tokens are forgotten all the same
    reached = await fetch("/auth/revoke", { method: "POST", body, signal: AbortSignal.timeout(5000) })
      .then((res) => res.ok, () => false);
  }
  forget();
  if (!reached) return null;
  const query = new URLSearchParams({
    client_id: state.clientId,
    post_logout_redirect_uri: `${location.origin}/app/`,
    state: SIGNED_OUT,
  });
  return `/auth/logout?${query}`;
}

/** Called when a 401 or a refresh cannot be fixed: forget the sign-in, tell the app. */
function accessEnded() {
  forget();
  events.dispatchEvent(new Event("ended"));
  return new AccessEndedError();
}

function forget() {
  client = null;
  localStorage.removeItem(SIGN_IN_KEY);
  // fhirclient's own copy of the launch, kept for this tab
  sessionStorage.clear();
}

function storedState() {
  try {
    return JSON.parse(localStorage.getItem(SIGN_IN_KEY));
  } catch {
    return null;
  }
}

function saveState() {
  if (client) localStorage.setItem(SIGN_IN_KEY, JSON.stringify(client.state));
}

// ---------------------------------------------------------------------------------
// Tokens

/** Runs `task` while no other tab of the app refreshes (Web Locks, where available). */
function exclusively(task) {
  return navigator.locks ? navigator.locks.request("hep-app.tokens", task) : task();
}

/**
 * An access token to send: refreshed first when it expires within 10 seconds, or when
 * `rejected` (a token the server just answered 401 to) is still the current one.
 */
function accessToken(rejected = null) {
  return exclusively(async () => {
    // another tab may have refreshed (or signed out) since
    const stored = storedState();
    if (!stored?.tokenResponse?.access_token) throw accessEnded();
    client.state.tokenResponse = stored.tokenResponse;
    client.state.expiresAt = stored.expiresAt;
    const token = stored.tokenResponse.access_token;
    const expiring = (stored.expiresAt ?? 0) - 10 < Date.now() / 1000;
    if (expiring || token === rejected) await refresh();
    return client.state.tokenResponse.access_token;
  });
}

async function refresh() {
  const refreshToken = client.state.tokenResponse.refresh_token;
  if (!refreshToken) throw accessEnded();
  try {
    await client.refresh();
  } catch (error) {
    // 400 invalid_grant (revoked, reused or expired) or 401 invalid_client: for good
    if (error.status === 400 || error.status === 401) throw accessEnded();
    // fhirclient forgets the refresh token after any failure; a network failure or a
    // server error must not sign the patient out, so it is put back to try again later
    client.state.tokenResponse.refresh_token = refreshToken;
    throw error.status ? new ApiError(error.status, "The server could not renew your sign-in.") : offline();
  }
  saveState();
}

// ---------------------------------------------------------------------------------
// Requests

function offline() {
  events.dispatchEvent(new CustomEvent("network", { detail: { online: false } }));
  return new OfflineError();
}

/**
 * A request to the FHIR API (`path` relative to /fhir/, e.g. "Task?patient=1").
 * Answers the Response, whatever its status but 401; a 401 gets one retry with a
 * refreshed token, and a second one ends the sign-in. Throws OfflineError when the
 * network fails, AccessEndedError when access has ended.
 */
export async function request(path, options = {}) {
  const { method = "GET", accept = "application/fhir+json", headers = {}, body } = options;
  if (!client) throw new AccessEndedError();
  const url = new URL(path, `${client.state.serverUrl.replace(/\/$/, "")}/`);
  const send = async (token) => {
    try {
      return await fetch(url, {
        method,
        body,
        cache: "no-store",
        headers: { Accept: accept, ...headers, Authorization: `Bearer ${token}` },
      });
    } catch {
      throw offline();
    }
  };
  const token = await accessToken();
  let response = await send(token);
  if (response.status === 401) {
    response = await send(await accessToken(token));
    if (response.status === 401) throw accessEnded();
  }
  events.dispatchEvent(new CustomEvent("network", { detail: { online: true } }));
  return response;
}

/** The server's words for a failed answer: an OperationOutcome's first diagnostics. */
export async function problemOf(response) {
  let text = "";
  try {
    const outcome = await response.json();
    text = outcome.issue?.[0]?.diagnostics ?? outcome.issue?.[0]?.details?.text ?? "";
  } catch {
    // not JSON: no words of the server's own
  }
  return new ApiError(response.status, text || `The server answered ${response.status}.`);
}

/** GET a JSON resource; throws ApiError with the server's words when it is refused. */
export async function getJson(path) {
  const response = await request(path);
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

/** GET a file (a picture, the take-home sheet) as a Blob. */
export async function getBlob(path, accept) {
  const response = await request(path, { accept });
  if (!response.ok) throw await problemOf(response);
  return response.blob();
}

/** Every page of a search (following "next", at most `maxPages`): the Bundles. */
export async function searchPages(path, maxPages = 10) {
  const pages = [];
  let next = path;
  while (next && pages.length < maxPages) {
    const bundle = await getJson(next);
    pages.push(bundle);
    next = nextPage(bundle);
  }
  return pages;
}
