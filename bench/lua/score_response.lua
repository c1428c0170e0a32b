-- POST /fhir/QuestionnaireResponse: a seeded patient answers the Lower Extremity
-- Functional Scale (20 items); the server checks the answers against the clinic's
-- Questionnaire and writes the response and its score Observation in one transaction.
local n = 0
local headers = { ["Content-Type"] = "application/fhir+json", ["Prefer"] = "return=minimal" }
headers["Authorization"] = "Bearer " .. TOKEN
local system = "https://hep-fhir.org/fhir/CodeSystem/lefs-difficulty"
function request()
  n = n + 1
  local patient = IDS[math.random(#IDS)]
  local items = {}
  for i = 1, 20 do
    items[i] = string.format('{"linkId":"lefs-%d","answer":[{"valueCoding":{"system":"%s","code":"%d"}}]}',
      i, system, (i + n) % 5)
  end
  local body = string.format(
    '{"resourceType":"QuestionnaireResponse","status":"completed",' ..
    '"questionnaire":"https://hep-fhir.org/fhir/Questionnaire/lefs|1.0.0",' ..
    '"subject":{"reference":"Patient/%s"},"authored":"2026-11-27T08:%02d:00Z",' ..
    '"item":[{"linkId":"activities","item":[%s]}]}',
    patient, n % 60, table.concat(items, ","))
  return wrk.format("POST", "/fhir/QuestionnaireResponse", headers, body)
end
