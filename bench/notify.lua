-- wrk script for the notify load: POST pre-generated signed notify bodies.
-- BODIES (env) names a file with one body per line, in the order they must be
-- sent (every other body repeats an earlier order's notify). Each wrk thread
-- walks its own stride of the file, so "sent" is exactly known per thread.
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
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "sent": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, table.concat(sent_per_thread, ",")))
end
