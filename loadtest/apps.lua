-- wrk script: POST the body in $BODY_FILE, each request to the next path of
-- target/bench-paths-PORT.txt in turn (PORT the URL's: one msgSecCheck path per app, each with
-- that app's access_token from the gateway on that port), so the load is spread evenly over
-- every app.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local paths = {}
local file = "target/bench-paths-" .. wrk.port .. ".txt"
for line in io.lines(file) do
    paths[#paths + 1] = line
end
assert(#paths > 0, "no paths in " .. file)
local next_path = 0
local headers = { ["Content-Type"] = "application/json" }

function request()
    next_path = next_path % #paths + 1
    return wrk.format("POST", paths[next_path], headers, body)
end
