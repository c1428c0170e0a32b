-- GET /fhir/Task?patient=..&status=completed&period=ge<30 days ago>: a patient's
-- completed Tasks of the last 30 days, first page with its total (IDS and SINCE are
-- defined by the harness).
local headers = { ["Accept"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
local n = 0
function request()
  n = n + 1
  local id = IDS[((n * 7919 + tid * 104729) % #IDS) + 1]
  return wrk.format("GET", "/fhir/Task?patient=" .. id .. "&status=completed&period=ge" .. SINCE, headers)
end
