-- wrk script: POST the body in $BODY_FILE to the URL's path, each wrk thread to the next of the
-- gateways whose API ports $INSTANCE_PORTS lists (space-separated), so `-t N` over N ports
-- loads N instances evenly.
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
