-- wrk script: every request creates one incident through the REST API, so that all
-- shipped on_create rules (categorise, prioritise, assign, recommend) run.
-- The token comes from the environment variable TEND_TOKEN.
local token = os.getenv("TEND_TOKEN")
local titles = {
  "cannot access oracle account after password change",
  "new laptop ordered please allocate monitor and keyboard",
  "vpn connection to production server drops",
  "deleted file on shared folder need it back",
  "access card does not open the door on floor 3",
}
local counter = 0

request = function()
  counter = counter + 1
  local title = titles[(counter % #titles) + 1]
  local body = string.format(
    '{"title":"%s","description":"benchmark request %d","fields":{"impact":"medium","urgency":"high"}}',
    title, counter)
  return wrk.format("POST", "/api/v1/records/incident", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors_status=%d errors_other=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
