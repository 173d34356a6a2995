-- wrk script: every request registers the next simulated device (tokens from sas_tokens).
-- Usage: TOKENS=file SCOPE=0ne... wrk -s register.lua https://127.0.0.1:PORT
local devices = {}
for line in io.lines(os.getenv("TOKENS")) do
  local id, tok = line:match("^(%S+) (.+)$")
  devices[#devices + 1] = { id = id, tok = tok }
end
local scope = os.getenv("SCOPE")
local n = 0

function setup(thread)
  thread:set("offset", math.random(#devices))
end

request = function()
  n = n + 1
  local d = devices[(n + (offset or 0)) % #devices + 1]
  return wrk.format("PUT", "/" .. scope .. "/registrations/" .. d.id .. "/register?api-version=2021-06-01",
    { ["Content-Type"] = "application/json; charset=utf-8", ["Authorization"] = d.tok },
    '{"registrationId":"' .. d.id .. '"}')
end

local bad = 0
response = function(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n") end
  end
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors_non2xx=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
