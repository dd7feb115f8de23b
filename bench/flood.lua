-- wrk script: an anonymous flood of the operations that hash passwords, from one address:
-- failed logins, password resets with made-up tokens and registrations, in turn. Every
-- answer is counted by status and by error code; none is expected to succeed.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local bodies = {
  '{"query":"mutation { login(input: { email: \\"nobody@example.com\\", password: \\"wrong password\\" }) { accessToken } }"}',
  '{"query":"mutation { resetPassword(input: { token: \\"made-up\\", newPassword: \\"a long new password\\" }) }"}',
  '{"query":"mutation($i: RegisterInput!) { register(input: $i) { accessToken } }","variables":{"i":{"email":"flood@example.com","password":"flood password","name":"Flood"}}}',
}
local n = 0

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

limited = 0
other = 0

function response(status, headers, body)
  if body:find('RATE_LIMITED', 1, true) then
    limited = limited + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local l, o = 0, 0
  for _, thread in ipairs(threads) do
    l = l + thread:get("limited")
    o = o + thread:get("other")
  end
  io.write(string.format("flood answers: %d RATE_LIMITED, %d other\n", l, o))
end
