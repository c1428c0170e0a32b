-- GET /fhir/Patient/{id} over the seeded ids (IDS is defined by the harness).
local headers = { ["Accept"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
function request()
  return wrk.format("GET", PATH_PREFIX .. IDS[math.random(#IDS)], headers)
end
