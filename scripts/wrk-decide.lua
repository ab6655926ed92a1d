-- wrk script for the decide endpoint: cycles through JSON bodies, one per line of $WRK_BODIES (made by
-- scripts/loadtest-wrk.sh from the Banking77 training texts), with the key in $MICROSCALE_API_KEY.
local bodies = {}
local index = 0

function init(args)
  for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
  index = math.random(#bodies)
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("MICROSCALE_API_KEY") or ""),
  }, bodies[index])
end

function done(summary, latency, requests)
  io.write(string.format("wrk: %d requests, %.1f req/s, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, errors %d (status %d)\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
