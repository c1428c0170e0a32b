-- POST /fhir/Patient with a new identifier each time.
local n = 0
local headers = { ["Content-Type"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
function request()
  n = n + 1
  local body = string.format(
    '{"resourceType":"Patient","identifier":[{"system":"urn:bench:mrn","value":"%s-%d-%d"}],' ..
    '"name":[{"family":"Benchmark","given":["Pat"]}],"gender":"female","birthDate":"1980-05-17",' ..
    '"telecom":[{"system":"phone","value":"555-0100"}],"address":[{"city":"Springfield","postalCode":"01101"}]}',
    RUN, tid, n)
  return wrk.format("POST", "/fhir/Patient", headers, body)
end
