-- POST /fhir: a 6-entry referral transaction as an EHR pushes it (Patient, Practitioner,
-- Organization, Condition, referral ServiceRequest, referral Task), each a conditional
-- create on its identifier, references as urn:uuid (fixed UUIDs: they name entries of
-- their own Bundle only); new identifiers each time.
local n = 0
local headers = { ["Content-Type"] = "application/fhir+json" }
headers["Authorization"] = "Bearer " .. TOKEN
local template = [[
{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"http://ehr.example.org/mrn","value":"@K"}],"name":[{"family":"Lindqvist","given":["Maren"]}],"gender":"female","birthDate":"1961-03-14","telecom":[{"system":"phone","value":"+1 555 0142"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://ehr.example.org/mrn|@K"}},
{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000002","resource":{"resourceType":"Practitioner","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"@K"}],"name":[{"family":"Okafor","given":["Chidi"]}]},"request":{"method":"POST","url":"Practitioner","ifNoneExist":"identifier=http://hl7.org/fhir/sid/us-npi|@K"}},
{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000003","resource":{"resourceType":"Organization","identifier":[{"system":"http://ehr.example.org/org","value":"@K"}],"name":"Riverside Hospital Orthopaedics"},"request":{"method":"POST","url":"Organization","ifNoneExist":"identifier=http://ehr.example.org/org|@K"}},
{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000004","resource":{"resourceType":"Condition","identifier":[{"system":"http://ehr.example.org/problem","value":"@K"}],"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"239873007","display":"Osteoarthritis of knee"}]},"subject":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000001"}},"request":{"method":"POST","url":"Condition","ifNoneExist":"identifier=http://ehr.example.org/problem|@K"}},
{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000005","resource":{"resourceType":"ServiceRequest","identifier":[{"system":"http://ehr.example.org/referral","value":"@K"}],"status":"active","intent":"order","category":[{"coding":[{"system":"http://snomed.info/sct","code":"3457005"}]}],"code":{"coding":[{"system":"http://snomed.info/sct","code":"91251008","display":"Physical therapy procedure"}]},"subject":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000001"},"requester":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000002"},"reasonReference":[{"reference":"urn:uuid:00000000-0000-4000-8000-000000000004"}],"authoredOn":"2026-11-20T09:30:00Z"},"request":{"method":"POST","url":"ServiceRequest","ifNoneExist":"identifier=http://ehr.example.org/referral|@K"}},
{"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000006","resource":{"resourceType":"Task","identifier":[{"system":"http://ehr.example.org/referral-task","value":"@K"}],"status":"requested","intent":"order","code":{"coding":[{"system":"http://hl7.org/fhir/CodeSystem/task-code","code":"fulfill"}]},"focus":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000005"},"for":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000001"},"requester":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000003"},"authoredOn":"2026-11-20T09:31:00Z"},"request":{"method":"POST","url":"Task","ifNoneExist":"identifier=http://ehr.example.org/referral-task|@K"}}
]}]]
function request()
  n = n + 1
  local key = string.format("%s-%d-%d", RUN, tid, n)
  local body = template:gsub("@K", key)
  return wrk.format("POST", "/fhir", headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("referral transaction answered " .. status .. "\n")
  end
end
