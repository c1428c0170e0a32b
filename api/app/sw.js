// The app's service worker (scope /app/): keeps the app's own files so that it opens
// offline. It serves them from its cache at once and fetches them again in the
// background, so a new version shows on the next start.
//
// It never touches the API (/fhir/*) or the sign-in (/auth/*): the patient's data and
// tokens are not kept here (the app keeps its own copies, see js/store.js).
//
// Bump VERSION whenever a file of the app changes: the new worker then fetches the
// whole set again at install, and removes the old copies once it takes over.

const VERSION = "7";
const CACHE = `hep-app-v${VERSION}`;

/** Every file the page needs, relative to this worker (so, under /app/). */
const SHELL = [
  "./",
  "app.css",
  "app.js",
  "js/charts.js",
  "js/fhir.js",
  "js/measures.js",
  "js/outbox.js",
  "js/program.js",
  "js/progress.js",
  "js/questionnaire.js",
  "js/session.js",
  "js/store.js",
  "js/today.js",
  "js/ui.js",
  "js/week.js",
  "lib/fhir-client.pure.min.js",
  "manifest.webmanifest",
  "icon.svg",
  "icon-192.png",
  "icon-512.png",
];

const scopePath = new URL("./", self.location).pathname;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => names.filter((n) => n.startsWith("hep-app-") && n !== CACHE))
      .then((old) => Promise.all(old.map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const ours = url.origin === self.location.origin && url.pathname.startsWith(scopePath);
  if (event.request.method !== "GET" || !ours) return; // to the network, untouched
  event.respondWith(fromCache(event));
});

/**
 * The cached copy at once, refreshed in the background; the network when there is no
 * copy. The page itself is one file whatever its query (the sign-in comes back to
 * /app/?code=...&state=...), so the query is ignored.
 */
async function fromCache(event) {
  const cache = await caches.open(CACHE);
  const copy = await cache.match(event.request, { ignoreSearch: true });
  const fresh = fetch(event.request).then((response) => {
    if (response.ok) {
      const url = new URL(event.request.url);
      url.search = "";
      return cache.put(url, response.clone()).then(() => response);
    }
    return response;
  });
  if (copy) {
    event.waitUntil(fresh.catch(() => {})); // offline: the copy will do
    return copy;
  }
  return fresh;
}
