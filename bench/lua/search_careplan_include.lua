-- GET /fhir/CarePlan?patient=..&_include=CarePlan:activity-reference: a patient's
-- programs with their prescriptions (IDS is defined by the harness).
local headers = { ["Accept"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
local n = 0
function request()
  n = n + 1
  local id = IDS[((n * 7919 + tid * 104729) % #IDS) + 1]
  return wrk.format("GET", "/fhir/CarePlan?patient=" .. id .. "&_include=CarePlan:activity-reference", headers)
end
