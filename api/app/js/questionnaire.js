// A Questionnaire as a form on a phone: each question with answer options is a fieldset
// (its legend the question, a radio button for each option: numbers in a row, words one
// under the other), a string is a text field (with its maxLength), a group is a section
// with its heading, a display item a paragraph. Questions with an enableWhen are shown
// and hidden as the patient answers (a hidden one is disabled, and not sent); required
// ones say so in words. Errors (the app's own check, or the server's) show under their
// question.

import * as fhir from "./fhir.js";
import { h } from "./ui.js";

/** A linkId as a part of an element id. */
const idPart = (linkId) => String(linkId).replace(/[^A-Za-z0-9_-]/g, "_");

/** The widest a row of number options gets before they are listed one under another. */
const ROW_MAX = 11;

/**
 * Builds the form of `questionnaire`. Answers {form, answerOf, enabled, validate,
 * showErrors, clearErrors, linkIds}; `buttons` go at its end.
 */
export function questionnaireForm(questionnaire, { labelledBy, buttons }) {
  const blocks = new Map(); // linkId → {item, parent, block, controls, error}
  const summary = h("div", { class: "form-problem", role: "alert" });
  const required = fhir.allItems(questionnaire).some(({ item }) => item.required && isQuestion(item));

  const form = h(
    "form",
    { class: "measure-form", novalidate: true, "aria-labelledby": labelledBy },
    required ? h("p", { class: "hint" }, "Questions marked “required” need an answer.") : null,
    summary,
    renderItems(questionnaire.item, null, 2),
    buttons,
  );

  function renderItems(items, parent, level) {
    return (items ?? []).map((item) => renderItem(item, parent, level));
  }

  function renderItem(item, parent, level) {
    const base = `q-${idPart(item.linkId)}`;
    const error = h("p", { class: "q-error", id: `${base}-error`, hidden: true });
    let block;
    let controls = [];
    if (item.type === "display") {
      block = h("p", { class: "q-display", "data-link-id": item.linkId }, item.text ?? "");
    } else if (item.type === "group") {
      const heading = h(`h${Math.min(level, 6)}`, { id: `${base}-title` }, item.text ?? "");
      block = h(
        "section",
        { class: "q-group", "data-link-id": item.linkId, "aria-labelledby": `${base}-title` },
        heading,
        renderItems(item.item, item, level + 1),
      );
    } else if (optionsOf(item).length) {
      const options = optionsOf(item);
      const numbers = options.every((o) => o.valueInteger !== undefined) && options.length <= ROW_MAX;
      controls = options.map((option, i) =>
        h("input", {
          type: "radio",
          id: `${base}-${i}`,
          name: base,
          value: String(i),
          required: item.required,
        }),
      );
      const choices = options.map((option, i) =>
        h("label", { class: numbers ? "scale-option" : "choice", for: `${base}-${i}` }, controls[i], h("span", {}, optionWords(option))),
      );
      block = h(
        "fieldset",
        { class: "question", "data-link-id": item.linkId, "data-type": item.type, "aria-describedby": `${base}-error` },
        h("legend", {}, item.text ?? item.linkId, requiredWords(item)),
        h("div", { class: numbers ? "scale" : "choices" }, choices),
        error,
      );
    } else {
      const control = textControl(item, base);
      controls = [control];
      control.setAttribute("aria-describedby", `${base}-error`);
      block = h(
        "div",
        { class: "question", "data-link-id": item.linkId, "data-type": item.type },
        h("label", { for: control.id }, item.text ?? item.linkId, requiredWords(item)),
        item.maxLength ? h("p", { class: "hint", id: `${base}-hint` }, `At most ${item.maxLength} characters.`) : null,
        control,
        error,
      );
      if (item.maxLength) control.setAttribute("aria-describedby", `${base}-hint ${base}-error`);
      // inside the question's own items (rare): they follow it
      if (item.item?.length) block.append(...renderItems(item.item, item, level + 1));
    }
    blocks.set(item.linkId, { item, parent, block, controls, error });
    return block;
  }

  // ------------------------------------------------------------------------------
  // Answers and what is shown

  /** The answer the patient gave (as a QuestionnaireResponse answer), ignoring enableWhen. */
  function rawAnswer(linkId) {
    const entry = blocks.get(linkId);
    if (!entry || !isQuestion(entry.item)) return null;
    const { item, controls } = entry;
    const options = optionsOf(item);
    if (options.length) {
      const checked = controls.find((c) => c.checked);
      return checked ? optionAnswer(options[Number(checked.value)]) : null;
    }
    return typedAnswer(item, controls[0]);
  }

  /** Whether an item is shown: its parents are, and its own enableWhen holds. */
  function enabled(item, seen = new Set()) {
    if (seen.has(item.linkId)) return true; // a loop of conditions: shown
    seen.add(item.linkId);
    const entry = blocks.get(item.linkId);
    if (entry?.parent && !enabled(entry.parent, seen)) return false;
    return fhir.conditionsHold(item, (linkId) => {
      const other = blocks.get(linkId);
      return other && enabled(other.item, new Set(seen)) ? rawAnswer(linkId) : null;
    });
  }

  /** The answer of an enabled question, else null. */
  function answerOf(linkId) {
    const entry = blocks.get(linkId);
    return entry && enabled(entry.item) ? rawAnswer(linkId) : null;
  }

  /** Shows the enabled items and hides (and disables) the others. */
  function update() {
    for (const { item, block, controls } of blocks.values()) {
      if (!item.enableWhen?.length) continue;
      const on = enabled(item);
      block.hidden = !on;
      if (block.tagName === "FIELDSET") block.disabled = !on;
      else controls.forEach((c) => (c.disabled = !on));
    }
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();

  // ------------------------------------------------------------------------------
  // Errors

  function clearErrors() {
    summary.replaceChildren();
    for (const { error, controls } of blocks.values()) {
      error.hidden = true;
      error.textContent = "";
      controls.forEach((c) => c.removeAttribute("aria-invalid"));
    }
  }

  /**
   * Shows errors: `byLinkId` (Map linkId → [words]) under their questions, `general`
   * (words about the whole form) at the top; the focus goes to the first question
   * with an error, else to the words at the top.
   */
  function showErrors(byLinkId, general = []) {
    clearErrors();
    let first = null;
    for (const [linkId, words] of byLinkId) {
      const entry = blocks.get(linkId);
      if (!entry) {
        general.push(...words);
        continue;
      }
      entry.error.textContent = words.join(" ");
      entry.error.hidden = false;
      entry.controls.forEach((c) => c.setAttribute("aria-invalid", "true"));
      first ??= entry;
    }
    const count = [...byLinkId.keys()].filter((k) => blocks.has(k)).length;
    const lines = [];
    if (count) lines.push(`Please check ${count === 1 ? "the answer" : `the ${count} answers`} marked below.`);
    lines.push(...general);
    summary.replaceChildren(...lines.map((line) => h("p", {}, line)));
    const target = first ? first.controls.find((c) => c.checked) ?? first.controls[0] : null;
    if (target && !target.disabled) target.focus();
    else {
      summary.setAttribute("tabindex", "-1");
      summary.focus();
    }
  }

  /** The app's own check before sending: every shown required question has an answer. */
  function validate() {
    const errors = new Map();
    for (const { item, controls } of blocks.values()) {
      if (!isQuestion(item) || !enabled(item)) continue;
      const control = controls[0];
      if (control && !optionsOf(item).length && control.value.trim() !== "" && rawAnswer(item.linkId) === null) {
        errors.set(item.linkId, [invalidWords(item)]);
      } else if (item.required && rawAnswer(item.linkId) === null) {
        errors.set(item.linkId, ["This question needs an answer."]);
      }
    }
    return errors;
  }

  /**
   * The server's words about a question, for the patient: its linkId ("activity-3")
   * said as the question's own short text ("Activity 3"), else as "this question".
   */
  function inWords(words, linkId) {
    const text = blocks.get(linkId)?.item.text;
    const name = text && text.length <= 40 ? text : "this question";
    const escaped = linkId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return words.replace(new RegExp(`(^|[^A-Za-z0-9_-])${escaped}(?![A-Za-z0-9_-])`, "g"), `$1${name}`);
  }

  return {
    form,
    inWords,
    answerOf,
    enabled: (item) => enabled(item),
    validate,
    showErrors,
    clearErrors,
    linkIds: [...blocks.keys()],
  };
}

// ---------------------------------------------------------------------------------

function isQuestion(item) {
  return item.type !== "group" && item.type !== "display";
}

function optionsOf(item) {
  if (item.answerOption?.length) return item.answerOption;
  if (item.type === "boolean") return [{ valueBoolean: true }, { valueBoolean: false }];
  return [];
}

function optionWords(option) {
  if (option.valueCoding) return option.valueCoding.display ?? option.valueCoding.code ?? "";
  if (option.valueBoolean !== undefined) return option.valueBoolean ? "Yes" : "No";
  const value = Object.entries(option).find(([k]) => k.startsWith("value"))?.[1];
  return value === undefined ? "" : String(value);
}

/** An option as an answer: its value[x] (a coding without its extensions). */
function optionAnswer(option) {
  if (option.valueCoding) {
    const { system, code, display } = option.valueCoding;
    return { valueCoding: { system, code, display } };
  }
  const key = Object.keys(option).find((k) => k.startsWith("value"));
  return key ? { [key]: option[key] } : null;
}

function requiredWords(item) {
  return item.required ? [" ", h("span", { class: "required" }, "(required)")] : null;
}

function textControl(item, id) {
  const common = { id, name: id, required: item.required };
  switch (item.type) {
    case "text":
      return h("textarea", { ...common, rows: 3, maxlength: item.maxLength });
    case "integer":
      return h("input", { ...common, type: "number", inputmode: "numeric", step: 1 });
    case "decimal":
      return h("input", { ...common, type: "text", inputmode: "decimal", autocomplete: "off" });
    case "date":
      return h("input", { ...common, type: "date" });
    default:
      return h("input", { ...common, type: "text", maxlength: item.maxLength, autocomplete: "off" });
  }
}

/** A typed answer: valueString, valueInteger, valueDecimal or valueDate; null when empty or not valid. */
function typedAnswer(item, control) {
  const text = control.value.trim();
  if (text === "") return null;
  switch (item.type) {
    case "integer":
      return /^-?\d+$/.test(text) ? { valueInteger: Number(text) } : null;
    case "decimal": {
      const number = Number(text.replace(",", "."));
      return Number.isFinite(number) ? { valueDecimal: number } : null;
    }
    case "date":
      return /^\d{4}-\d{2}-\d{2}$/.test(text) ? { valueDate: text } : null;
    default:
      return { valueString: text };
  }
}

function invalidWords(item) {
  if (item.type === "integer") return "Please give a whole number.";
  if (item.type === "decimal") return "Please give a number.";
  if (item.type === "date") return "Please give a date.";
  return "This answer is not valid.";
}
