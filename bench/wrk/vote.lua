-- POST /api/vote/{qid}/up, rotating over the question ids in $QIDS (comma-separated).
-- No cookie is sent, so every request is a new voter: every vote changes a count.
local qids = {}
for id in string.gmatch(os.getenv("QIDS") or "", "[^,]+") do
  table.insert(qids, id)
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/api/vote/" .. qids[(n % #qids) + 1] .. "/up")
end
