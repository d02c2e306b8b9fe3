-- wrk script for the notify load: POST pre-generated signed notify bodies.
-- BODIES (env) names a file with one body per line, in the order they must be
-- sent (every other body repeats an earlier order's notify). Each wrk thread
-- walks its own stride of the file, so "sent" is exactly known per thread.
-- wrk_json (the result line) comes from report.lua, next to this file; this
-- file's done() replaces the one report.lua defines.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local bodies = {}
local threads = {}

local function load()
  local path = os.getenv("BODIES")
  for line in io.lines(path) do
    bodies[#bodies + 1] = line
  end
end

function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  load()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/xml"
  nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  sent = 0
end

function request()
  local i = tid + sent * nthreads
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end

function done(summary, latency, requests)
  local sent_per_thread = {}
  for _, t in ipairs(threads) do
    sent_per_thread[#sent_per_thread + 1] = tostring(t:get("sent"))
  end
  wrk_json(summary, latency, sent_per_thread)
end
