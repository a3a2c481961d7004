-- load.lua — wrk script for the polaimg load test (load.test.mjs runs it).
--
--   wrk -t1 -c16 -d20s --timeout 30s --latency -s load.lua URL -- MODE CONF
--
-- MODE is one of list, proxy, downloadurl, upload, mixed; CONF a file of
-- "key=value" lines written by load.test.mjs: token (a doctor's bearer
-- token), case (the case id), ids (space-separated image ids of that case),
-- body (path of a multipart body file holding one JPEG), ctype (its
-- Content-Type with the boundary). Every request is authenticated and valid,
-- so any status outside 2xx is an unexpected error. The summary line starts
-- with "LOAD" and is parsed by load.test.mjs: latencies in ms, errors by
-- kind, and the first and last second (epoch) an error was seen.

local conf, ids, body, token, case, ctype
local n = 0

local function read_conf(path)
	local t = {}
	for line in io.lines(path) do
		local k, v = line:match("^([%w_]+)=(.*)$")
		if k then t[k] = v end
	end
	return t
end

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	mode = args[1] or "mixed"
	local c = read_conf(args[2])
	token = c.token
	case = c.case
	ctype = c.ctype
	ids = {}
	for id in c.ids:gmatch("%S+") do table.insert(ids, id) end
	local f = assert(io.open(c.body, "rb"))
	body = f:read("*a")
	f:close()
	errors, c4xx, c5xx, c502, c503, first_err, last_err = 0, 0, 0, 0, 0, 0, 0
	-- Threads start at different points of the id list.
	n = math.random(1, 1000)
end

local auth

local function one(kind)
	auth = auth or { ["Authorization"] = "Bearer " .. token }
	local id = ids[(n % #ids) + 1]
	if kind == "list" then
		return wrk.format("GET", "/api/v1/images/cases/" .. case .. "?limit=50", auth)
	elseif kind == "proxy" then
		local q = (n % 3 == 0) and "?thumbnail=true" or ((n % 3 == 1) and "" or "?variant=original")
		return wrk.format("GET", "/api/v1/images/" .. id .. "/proxy" .. q, auth)
	elseif kind == "downloadurl" then
		return wrk.format("GET", "/api/v1/images/" .. id .. "/download-url?expiresIn=600", auth)
	else
		return wrk.format("POST", "/api/v1/images/upload",
			{ ["Authorization"] = "Bearer " .. token, ["Content-Type"] = ctype }, body)
	end
end

local mixed = { "list", "proxy", "proxy", "downloadurl", "proxy", "list", "downloadurl", "upload" }

function request()
	n = n + 1
	if mode == "mixed" then
		return one(mixed[(n % #mixed) + 1])
	end
	return one(mode)
end

function response(status, headers, resp_body)
	if status < 200 or status > 299 then
		errors = errors + 1
		if status >= 500 then c5xx = c5xx + 1 else c4xx = c4xx + 1 end
		if status == 502 then c502 = c502 + 1 end
		if status == 503 then c503 = c503 + 1 end
		local now = os.time()
		if first_err == 0 then first_err = now end
		last_err = now
	end
end

function done(summary, latency, requests)
	local e, e4, e5, e502, e503, fe, le = 0, 0, 0, 0, 0, 0, 0
	for _, t in ipairs(threads) do
		e = e + t:get("errors")
		e4 = e4 + t:get("c4xx")
		e5 = e5 + t:get("c5xx")
		e502 = e502 + t:get("c502")
		e503 = e503 + t:get("c503")
		local f, l = t:get("first_err"), t:get("last_err")
		if f ~= 0 and (fe == 0 or f < fe) then fe = f end
		if l > le then le = l end
	end
	local s = summary
	local mode = threads[1] and threads[1]:get("mode") or "?"
	io.write(string.format("LOAD mode=%s requests=%d seconds=%.2f rps=%.1f p50=%.2f p90=%.2f p99=%.2f p999=%.2f " ..
		"max=%.2f status_errors=%d c4xx=%d c5xx=%d c502=%d c503=%d connect=%d read=%d write=%d timeout=%d " ..
		"first_err=%d last_err=%d\n",
		mode, s.requests, s.duration / 1e6, s.requests / (s.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
		latency:percentile(99.9) / 1000, latency.max / 1000, e, e4, e5, e502, e503,
		s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout, fe, le))
end
