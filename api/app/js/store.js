// What the app keeps on the device, per patient, in localStorage: the last good answers
// of the server (so the app shows something when it is opened offline) and the outbox
// of reports not sent yet (js/outbox.js).

import { OfflineError } from "./session.js";

const cacheKey = (patientId) => `hep-app.cache.${patientId}`;

/** Reads a JSON value; a missing or unreadable one is `fallback`. */
export function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

/** Writes a JSON value (throws when the storage is full). */
export function writeJson(key, value) {
  localStorage.setItem(key, JSON.stringify(value));
}

/** The last good copy of `name` ("patient", "today", "week"), or null. */
function cached(patientId, name) {
  return readJson(cacheKey(patientId), {})[name] ?? null;
}

/** Keeps `data` as the last good copy of `name`. */
export function keep(patientId, name, data) {
  const all = readJson(cacheKey(patientId), {});
  all[name] = data;
  try {
    writeJson(cacheKey(patientId), all);
  } catch {
    // the storage is full: the app works on without this copy
  }
}

/** Forgets every copy kept, of every patient (at sign-out, when access has ended). */
export function forgetCaches() {
  const keys = Object.keys(localStorage).filter((k) => k.startsWith(cacheKey("")));
  keys.forEach((k) => localStorage.removeItem(k));
}

/**
 * Loads data with `load()` and keeps it as `name`; offline, answers the copy kept
 * earlier instead when `usable(copy)` says it still fits. Answers {data, fromCache}.
 */
export async function withCache(patientId, name, load, usable = () => true) {
  try {
    const data = await load();
    keep(patientId, name, data);
    return { data, fromCache: false };
  } catch (error) {
    const copy = cached(patientId, name);
    if (error instanceof OfflineError && copy && usable(copy)) return { data: copy, fromCache: true };
    throw error;
  }
}
