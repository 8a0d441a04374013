-- wrk script for scripts/bench: POST /v1/reports, a new report (unique external_id) per request.
-- Arguments after --: TOKEN PREFIX
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  token = args[1]
  prefix = args[2] .. "-" .. tostring(tid)
  counter = 0
end
function request()
  counter = counter + 1
  local body = string.format('{"external_id":"%s-%d","reporter":"u%d","text":"出租微信 V信: seller_%dx"}',
                             prefix, counter, counter % 50, counter % 300)
  return wrk.format("POST", "/v1/reports",
                    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
