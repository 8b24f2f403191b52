-- wrk script: DEPTH requests back to back per write (HTTP pipelining;
-- DEPTH 1 is plain keep-alive). With BODY, each is a POST of BODY.
-- Usage: wrk ... -s pipeline.lua -- DEPTH [BODY]
init = function(args)
  local depth = tonumber(args[1]) or 1
  if args[2] then
    wrk.method = "POST"
    wrk.body = args[2]
  end
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
