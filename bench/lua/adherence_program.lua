-- GET /fhir/CarePlan/{PLAN}/$adherence: a 12-week program of 10 daily exercises
-- (840 sessions; PLAN is defined by the harness).
local headers = { ["Accept"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
function request()
  return wrk.format("GET", "/fhir/CarePlan/" .. PLAN .. "/$adherence", headers)
end
