// Small helpers shared by the views: building elements and putting dates in words.
// Every text goes in with textContent (never innerHTML), so nothing from the server can
// become markup.

/**
 * Makes an element: h("p", {class: "dose"}, "3 sets"). Attributes whose value is null,
 * undefined or false are left out; children are nodes or strings (null is skipped).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  element.append(...present(children));
  return element;
}

/** The same for SVG elements (the charts). */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttributes(element, attributes);
  element.append(...present(children));
  return element;
}

/** Replaces the children of `element` (null ones are skipped, as in h()). */
export function fill(element, ...children) {
  element.replaceChildren(...present(children));
}

function present(children) {
  return children.flat().filter((c) => c !== null && c !== undefined);
}

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
}

/**
 * A labelled form field: its label, an optional hint (the control's description), and
 * the control itself, which must have an id.
 */
export function field(control, label, hint = null) {
  const hintId = hint ? `${control.id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    hint && h("p", { class: "hint", id: hintId }, hint),
    control,
  );
}

/** "1 completion" / "2 completions". */
export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

// Dates. A day is a "YYYY-MM-DD" string (the patient's local date); it is put in words at
// noon UTC in the UTC zone, so the device's own time zone can never shift it by a day.

function formatDay(day, options) {
  return new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" }).format(
    new Date(`${day}T12:00:00Z`),
  );
}

/** "Wednesday 2 December". */
export function dayInWords(day) {
  return formatDay(day, { weekday: "long", day: "numeric", month: "long" });
}

/** "Wed 2 Dec". */
export function shortDay(day) {
  return formatDay(day, { weekday: "short", day: "numeric", month: "short" });
}

/** "2 Dec". */
export function dayMonth(day) {
  return formatDay(day, { day: "numeric", month: "short" });
}

/** "2 December 2026". */
export function longDate(day) {
  return formatDay(day, { day: "numeric", month: "long", year: "numeric" });
}

/** An instant in the patient's zone: "Wed 2 Dec, 08:20". */
export function momentInWords(instant, timeZone) {
  return new Intl.DateTimeFormat("en-GB", {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    timeZone,
  }).format(new Date(instant));
}
