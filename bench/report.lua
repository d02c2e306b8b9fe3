-- wrk script for GET loads (hello-world, checkout): only reports a JSON line.
-- Extra headers (the openid cookie) come from wrk's -H option.
-- notify.lua loads this file for wrk_json, the one writer of that line.

function wrk_json(summary, latency, sent)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "sent": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, table.concat(sent, ",")))
end

function done(summary, latency, requests)
  wrk_json(summary, latency, {})
end
