-- bench/post.lua — the wrk script of the HTTP workloads (bench/run.sh).
--
-- POSTs the same body on every request: the file BENCH_BODY (a task, or a
-- JSON array of tasks) with Content-Type BENCH_CTYPE. Tasks carry no name,
-- so each request stores new tasks (the module gives each its own id).
-- BENCH_MAX_REQ (optional) bounds the requests: each thread stops after its
-- share, so a run is bounded in task count as well as in time.
-- done() prints one machine-readable line that run.sh parses:
--   wrk_result requests=.. duration_us=.. p50_us=.. p99_us=.. max_us=..
--              connect=.. read=.. write=.. status=.. timeout=..

local body_path = os.getenv("BENCH_BODY")
if body_path then
    local f = assert(io.open(body_path, "rb"))
    wrk.body = f:read("*a")
    f:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/json"
end

local max_req = tonumber(os.getenv("BENCH_MAX_REQ") or "0")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local per_thread = 0
if max_req > 0 then per_thread = math.ceil(max_req / nthreads) end
local count = 0
local request_cached

-- wrk's summary.duration is the -d time even when every thread stopped
-- early, so a bounded run times itself: monotonic clock via LuaJIT's FFI
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
    ffi.C.clock_gettime(1, ts)   -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    request_cached = wrk.format()
    t_start = now_us()
    t_end = 0
end

function request()
    return request_cached
end

if per_thread > 0 then
    function response(status, headers, body)
        count = count + 1
        if count == per_thread then
            t_end = now_us()
            wrk.thread:stop()
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    -- every thread stopped at its bound: the run lasted until the last one
    local duration = summary.duration
    local first, last = nil, 0
    for _, t in ipairs(threads) do
        local s, f = t:get("t_start"), t:get("t_end")
        if not f or f == 0 then first = nil; break end
        if not first or s < first then first = s end
        if f > last then last = f end
    end
    if first then duration = last - first end
    io.write(string.format(
        "wrk_result requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d "
        .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, duration,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
