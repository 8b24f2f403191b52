-- wrk script: a 13-byte POST ("Hello, World!"), DEPTH of them back to back
-- per write (HTTP pipelining; DEPTH 1 is plain keep-alive).
wrk.method = "POST"
wrk.body = "Hello, World!"

init = function(args)
  local depth = tonumber(args[1]) or 1
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
