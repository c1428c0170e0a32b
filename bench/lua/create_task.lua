-- POST /fhir/Task: a scheduled exercise occurrence for a seeded patient (IDS).
local n = 0
local headers = { ["Content-Type"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
function request()
  n = n + 1
  local patient = IDS[math.random(#IDS)]
  local body = string.format(
    '{"resourceType":"Task","identifier":[{"system":"urn:bench:task","value":"%s-%d-%d"}],' ..
    '"status":"requested","intent":"order","code":{"coding":[{"system":"http://snomed.info/sct",' ..
    '"code":"229065009","display":"Exercise therapy"}]},"for":{"reference":"Patient/%s"},' ..
    '"owner":{"reference":"Patient/%s"},"authoredOn":"2026-11-27T08:00:00Z",' ..
    '"restriction":{"period":{"start":"2026-11-28T00:00:00Z","end":"2026-11-29T00:00:00Z"}}}',
    RUN, tid, n, patient, patient)
  return wrk.format("POST", "/fhir/Task", headers, body)
end
