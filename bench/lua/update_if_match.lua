-- PUT /fhir/Patient/{id} with If-Match. Each thread owns a slice of the seeded ids and
-- never has two requests in flight for one id, so a 412 would be a server error.
local mine, free, version = {}, {}, {}
local n = 0
function init(args)
  for i, id in ipairs(IDS) do
    if (i - 1) % THREADS == tid then
      table.insert(mine, id)
      table.insert(free, id)
      version[id] = 1
    end
  end
end

function request()
  local id = table.remove(free, 1)
  n = n + 1
  local body = string.format(
    '{"resourceType":"Patient","id":"%s","identifier":[{"system":"urn:bench:seed","value":"%s"}],' ..
    '"name":[{"family":"Benchmark","given":["Pat"]}],"gender":"female","birthDate":"1980-05-17",' ..
    '"multipleBirthInteger":%d}', id, id, n)
  return wrk.format("PUT", PATH_PREFIX .. id, {
    ["Content-Type"] = "application/fhir+json",
    ["If-Match"] = string.format('W/"%d"', version[id]),
    ["Authorization"] = "Bearer " .. TOKEN,
  }, body)
end

function response(status, headers, body)
  -- Responses of a thread's connections interleave: the body names the resource.
  local id = string.match(body, '"id":"([^"]+)"')
  if not id then return end
  local etag = headers["ETag"] or headers["etag"]
  if etag then
    local v = tonumber(string.match(etag, '"(%d+)"'))
    if v then version[id] = v end
  end
  table.insert(free, id)
end
