-- wrk script for Jobs/bench/http.sh: 90 % GET /v1/availability across components and groups,
-- 10 % POST /v1/matches with a unique Idempotency-Key. BM_KEY is the bearer token; BM_PATH
-- replaces the mix with one GET path (the anchor run); BM_DELAY_MS paces each connection
-- (a fixed-rate run); BM_RUN makes idempotency keys unique across runs; BM_MATCH_ONLY=1 makes every
-- request a match (Jobs/bench/audit-throughput.sh).
local key = os.getenv("BM_KEY") or ""
local only = os.getenv("BM_PATH")
local pause = tonumber(os.getenv("BM_DELAY_MS") or "0")
local run = os.getenv("BM_RUN") or tostring(os.time())
local match_every = os.getenv("BM_MATCH_ONLY") == "1" and 1 or 10
local components = {"RBC", "RBC", "RBC", "PLT", "PLASMA"}
local groups = {{"O", "NEG"}, {"O", "POS"}, {"A", "POS"}, {"A", "NEG"}, {"B", "POS"}, {"AB", "POS"}, {"UNKNOWN", "UNKNOWN"}}
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local auth = {["Authorization"] = "Bearer " .. key}
  if only then return wrk.format("GET", only, auth) end
  local g = groups[(counter % #groups) + 1]
  if counter % match_every == 0 then
    auth["Content-Type"] = "application/json"
    auth["Idempotency-Key"] = string.format("bench-%s-%s-%d", run, tostring(tid), counter)
    local body = string.format('{"component":"RBC","recipient":{"abo":"%s","rhd":"%s","sex":"male","age":60},"quantity":1}', g[1], g[2])
    return wrk.format("POST", "/v1/matches", auth, body)
  end
  local c = components[(counter % #components) + 1]
  return wrk.format("GET", string.format("/v1/availability?component=%s&abo=%s&rhd=%s", c, g[1], g[2]), auth)
end

if pause > 0 then
  function delay() return pause end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('JSON {"requests":%d,"duration_s":%.2f,"rps":%.1f,"socket_errors":%d,"non_2xx":%d,"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
