-- PATCH /fhir/Task/{id}: the patient's app completes a session with what was done
-- (JSON Patch). Each thread completes its own slice of the seeded sessions (TASKS is
-- defined by the harness), each once.
local mine = {}
local next_one = 0
function init(args)
  for i, id in ipairs(TASKS) do
    if (i - 1) % THREADS == tid then
      table.insert(mine, id)
    end
  end
end

local body = '[{"op":"replace","path":"/status","value":"completed"},' ..
  '{"op":"add","path":"/executionPeriod","value":{"end":"2026-11-27T08:20:00Z"}},' ..
  '{"op":"add","path":"/output","value":[' ..
  '{"type":{"coding":[{"system":"https://hep-fhir.org/fhir/CodeSystem/exercise-report","code":"sets-done"}]},"valueInteger":3},' ..
  '{"type":{"coding":[{"system":"https://hep-fhir.org/fhir/CodeSystem/exercise-report","code":"reps-done"}]},"valueInteger":10},' ..
  '{"type":{"coding":[{"system":"http://loinc.org","code":"72514-3"}]},"valueInteger":2}]}]'
local headers = { ["Content-Type"] = "application/json-patch+json", ["Accept"] = "application/fhir+json",
                  ["Prefer"] = "return=minimal" }
headers["Authorization"] = "Bearer " .. TOKEN

function request()
  next_one = next_one + 1
  local id = mine[next_one]
  if id == nil then
    -- every session of this thread is done: the harness seeds more than a run needs
    id = "exhausted"
  end
  return wrk.format("PATCH", "/fhir/Task/" .. id, headers, body)
end
