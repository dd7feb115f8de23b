-- wrk script: POSTs the GraphQL request in $BODY_FILE with the bearer token in $TOKEN, and
-- counts answers that are not 200 or carry GraphQL errors. Each wrk thread runs its own Lua
-- state, so the counts are read back from every thread in done().
local file = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
-- ACCEPT_ENCODING=gzip (or br) asks for a compressed answer.
if os.getenv("ACCEPT_ENCODING") and os.getenv("ACCEPT_ENCODING") ~= "" then
  wrk.headers["Accept-Encoding"] = os.getenv("ACCEPT_ENCODING")
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

failures = 0

function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("failures")
  end
  io.write(string.format("bad answers (not 200, or with errors): %d\n", total))
end
