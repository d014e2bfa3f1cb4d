-- wrk script: POST the body in $BODY_FILE to the URL's path, each wrk thread to the next of the
-- gateways whose API ports $INSTANCE_PORTS lists (space-separated), so `-t N` over N ports
-- loads N instances evenly. With $APP_PATHS (a file of one path per line: one msgSecCheck path
-- per app, with its token, which every instance accepts) each thread sends its requests to those
-- paths in turn.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local ports = {}
for port in string.gmatch(assert(os.getenv("INSTANCE_PORTS")), "%d+") do
    ports[#ports + 1] = port
end
local threads = 0

function setup(thread)
    threads = threads + 1
    thread.addr = wrk.lookup("127.0.0.1", ports[(threads - 1) % #ports + 1])[1]
end

-- Defined only with $APP_PATHS: without it wrk sends its prepared request, with no Lua call.
local file = os.getenv("APP_PATHS")
if file then
    local paths = {}
    for line in io.lines(file) do
        paths[#paths + 1] = line
    end
    assert(#paths > 0, "no paths in " .. file)
    local next_path = 0
    function request()
        next_path = next_path % #paths + 1
        return wrk.format(nil, paths[next_path])
    end
end
