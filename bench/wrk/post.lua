-- wrk script for Switchboard's benchmark: POSTs one JSON body with a bearer credential, using the paths in turn,
-- and prints the exact latency distribution and error counts as one JSON line ("BENCH_JSON {...}") when done.
-- Configured through the environment: BENCH_BODY_FILE, BENCH_PATHS (comma-separated), BENCH_AUTH (optional).

local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
local body = file:read("*a")
file:close()

local paths = {}
for path in string.gmatch(os.getenv("BENCH_PATHS") or "/", "[^,]+") do
  paths[#paths + 1] = path
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. auth
end
wrk.path = paths[1]

if #paths > 1 then
  local turn = 0
  function request()
    turn = turn + 1
    return wrk.format(nil, paths[(turn % #paths) + 1])
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.3f,"p50":%d,"p90":%d,"p99":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
