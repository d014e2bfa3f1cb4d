# Shared helpers for the load scripts (sourced, not run).
# Needs: wrk (apt-get install wrk), taskset (util-linux), curl; GNU time (apt-get install time) for
# the load generator's sleeps, which are left out ("-") without it.

# A failure inside a function whose output is captured (`token=$(prepare ...)`) stops the script
# too, instead of measuring a gateway that answers every request with an error.
shopt -s inherit_errexit

BODY_FILE=${BODY_FILE:-loadtest/body.json}
export BODY_FILE
# The gateway binary the scripts start (another build's, to measure it in the same conditions).
MODGATE=${MODGATE:-target/release/modgate}
APPID=wx0123456789abcdef
SECRET=0123456789abcdef0123456789abcdef

for tool in wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "loadtest: $tool is missing (apt-get install wrk util-linux curl)" >&2; exit 1; }
done

pids=()
# The benchmarks' Redis stops last: gateways hand their admission leases back as they stop.
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    if [ -n "${PID_REDIS:-}" ]; then kill "$PID_REDIS" 2>/dev/null || true; fi
    wait 2>/dev/null || true
}
trap cleanup EXIT

# start_modgate CONFIG: runs the gateway pinned to CPU 0 with one tokio worker.
start_modgate() {
    TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c 0 "$MODGATE" serve --config "$1" &
    pids+=($!)
}

# bench_config NAME [SERVER_LINES] [EXTRA_TOML]: writes target/bench-NAME.toml (loadtest/bench.toml
# with an admin token, a fresh data directory target/bench-data-NAME, SERVER_LINES added to
# [server] and EXTRA_TOML appended) and prints its path.
bench_config() {
    local name=$1 server=${2:-} extra=${3:-} out=target/bench-$1.toml
    rm -rf "target/bench-data-$name"
    {
        printf '[server]\nlisten = "127.0.0.1:18080"\n%s' "$server"
        printf '[admin]\nlisten = "127.0.0.1:19090"\ntoken = "bench-admin-token"\n'
        printf '[state]\ndata_dir = "target/bench-data-%s"\n' "$name"
        printf '%s' "$extra"
        grep -v -e '^\[server\]' -e '^\[admin\]' -e '^\[state\]' -e '^listen = ' -e '^data_dir = ' \
            loadtest/bench.toml
    } > "$out"
    echo "$out"
}

# start_bench_redis: the benchmarks' own redis-server on port 16379, no persistence, pinned to
# CPU 1 beside wrk (never the gateway's core), emptied; its pid in PID_REDIS (stopped last).
start_bench_redis() {
    taskset -c 1 redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
    PID_REDIS=$!
    for _ in $(seq 50); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p 16379 flushall >/dev/null
}

# redis_bench_config NAME API_PORT ADMIN_PORT: writes target/bench-NAME.toml (loadtest/bench.toml
# with its state in that Redis, the data directory target/bench-data-NAME and the given ports)
# and prints its path.
redis_bench_config() {
    local out=target/bench-$1.toml
    rm -rf "target/bench-data-$1"
    sed -e "s/18080/$2/; s/19090/$3/; s/bench-data/bench-data-$1/" \
        -e 's|^\[state\]|[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:16379/0"\nredis_prefix = "bench"|' \
        loadtest/bench.toml > "$out"
    echo "$out"
}

# redis_errors: the errors the benchmarks' Redis answered, by kind, and the commands that failed
# (NOSCRIPT: a script's first run on this Redis, loaded and run again).
redis_errors() {
    echo "Redis errors by kind, and the commands that failed:"
    redis-cli -p 16379 info errorstats | grep '^errorstat_' | tr -d '\r' || echo "none"
    redis-cli -p 16379 info commandstats | tr -d '\r' | grep -v 'failed_calls=0' | grep '^cmdstat_' || true
}

# wait_healthy ADMIN_PORT: waits up to a minute for the gateway to take traffic (`/readyz`: loaded,
# the API listener open; `/healthz` answers while the media models still load).
wait_healthy() {
    for _ in $(seq 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/readyz" && return 0
        sleep 0.1
    done
    echo "gateway on admin port $1 did not become ready" >&2
    return 1
}

# prepare PORT: prints a token, after reporting the benchmark user's visit and checking that the
# benchmark body gets a verdict.
prepare() {
    local token
    token=$(curl -sf "http://127.0.0.1:$1/cgi-bin/token?grant_type=client_credential&appid=$APPID&secret=$SECRET" \
        | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    curl -sf -X POST -d '{"openid":"oBenchUser_0123456789"}' \
        "http://127.0.0.1:$1/wxa/visit/report?access_token=$token" | grep -q '"recorded":1'
    curl -sf -X POST --data-binary @"$BODY_FILE" \
        "http://127.0.0.1:$1/wxa/msg_sec_check?access_token=$token" | grep -q '"errcode":0'
    echo "$token"
}

# extra_apps N: the config of N-1 apps beyond the benchmark's own (wx0000000000000001 onwards,
# the benchmark's secret, text limits far above any load), to append to a gateway's config.
extra_apps() {
    for i in $(seq 1 $(($1 - 1))); do
        printf '[[apps]]\nappid = "wx%016x"\nsecret = "%s"\ntext_per_minute = 1000000000\ntext_per_day = 4000000000\n' \
            "$i" "$SECRET"
    done
}

# app_paths PORT N FILE: writes to FILE one msgSecCheck path for each of the N apps of
# extra_apps (the benchmark's own first), each with the app's token from the gateway on PORT,
# after recording the benchmark user's visit to it.
app_paths() {
    local token appid
    : > "$3"
    for i in $(seq 0 $(($2 - 1))); do
        appid=$(printf 'wx%016x' "$i")
        [ "$i" -eq 0 ] && appid=$APPID
        token=$(curl -sf "http://127.0.0.1:$1/cgi-bin/token?grant_type=client_credential&appid=$appid&secret=$SECRET" \
            | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
        curl -sf -X POST -d '{"openid":"oBenchUser_0123456789"}' \
            "http://127.0.0.1:$1/wxa/visit/report?access_token=$token" | grep -q '"recorded":1'
        echo "/wxa/msg_sec_check?access_token=$token" >> "$3"
    done
}

# measure URL DURATION CONNECTIONS: prints "rps p50_ms p99_ms sleeps" for one wrk run on CPU 1,
# with the wrk script WRK_SCRIPT (default loadtest/post.lua) and WRK_THREADS threads (default 1).
# sleeps: how often wrk blocked waiting for answers (its voluntary context switches, read by GNU
# time where /usr/bin/time is installed, "-" where not). Each is a wake-up the server's core pays
# for when it sends the answer that ends it.
measure() {
    local timed=() out figures sleeps=-
    out=$(mktemp)
    [ -x /usr/bin/time ] && timed=(/usr/bin/time -f %w -o "$out")
    figures=$("${timed[@]}" taskset -c 1 wrk -t"${WRK_THREADS:-1}" -c"$3" -d"$2" --latency -s "${WRK_SCRIPT:-loadtest/post.lua}" "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END { printf "%.0f %.2f %.2f\n", rps, ms(p50), ms(p99) }')
    # Written once wrk has exited, which the pipeline's end waits for.
    if [ -s "$out" ] && grep -qx '[0-9]*' "$out"; then sleeps=$(cat "$out"); fi
    rm -f "$out"
    echo "$figures $sleeps"
}

# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# user_ticks PID: the process's user-space CPU time so far, in clock ticks. Its system time is
# the kernel's work on the process's behalf, waking the load generator included (see
# BENCHMARKS.md, "msgSecCheck v2 on one core"); the user time is the server's own code.
user_ticks() {
    awk '{ print $14 }' "/proc/$1/stat"
}

# compare ROUNDS "NAME A" URL_A "NAME B" URL_B: alternates wrk runs (A first), prints a markdown
# table (with how often wrk slept waiting for an answer, per 100 requests) and B's requests/s
# as a share of A's, summed over rounds. Uses DURATION and CONNS.
# With PID_A and PID_B set (the two gateways), also each one's CPU time per request (µs), the
# user-space part of it, and its capacity on a core of its own (the requests/s one core's CPU
# time allows) as a share of A's, with the user-space time per request of each over all rounds;
# with PID_SHARED set too (a process both use, Redis say), its CPU time per request of each.
compare() {
    local rounds=$1 name_a=$2 url_a=$3 name_b=$4 url_b=$5 sum_a=0 sum_b=0 r rps p50 p99
    local cpu=${PID_A:+1} shared=${PID_SHARED:-} ticks_a=0 ticks_b=0 reqs_a=0 reqs_b=0 user_a=0 user_b=0
    local hz secs sleeps head="| round | server | requests/s | p50 ms | p99 ms | wrk sleeps / 100 requests |"
    local rule="| --- | --- | ---: | ---: | ---: | ---: |"
    hz=$(getconf CLK_TCK)
    secs=${DURATION%s}
    if [ -n "$cpu" ]; then
        head="$head server CPU µs/request | of it user space |"
        rule="$rule ---: | ---: |"
        if [ -n "$shared" ]; then
            head="$head shared process CPU µs/request |"
            rule="$rule ---: |"
        fi
    fi
    echo "$head"
    echo "$rule"
    # one_run NAME URL PID: one measured run; adds to the sums named by its side (a or b).
    one_run() {
        local name=$1 url=$2 pid=${3:-} side=$4 t0 t1 u0 u1 s0=0 s1=0 line
        [ -n "$cpu" ] && t0=$(cpu_ticks "$pid") && u0=$(user_ticks "$pid")
        [ -n "$shared" ] && s0=$(cpu_ticks "$shared")
        read -r rps p50 p99 sleeps < <(measure "$url" "$DURATION" "$CONNS")
        [ -n "$cpu" ] && t1=$(cpu_ticks "$pid") && u1=$(user_ticks "$pid")
        [ -n "$shared" ] && s1=$(cpu_ticks "$shared")
        line="| $r | $name | $rps | $p50 | $p99 | $(awk -v s="$sleeps" -v n=$((rps * secs)) 'BEGIN { if (s == "-" || n == 0) print "-"; else printf "%.1f", 100 * s / n }') |"
        if [ -n "$cpu" ]; then
            line="$line $(awk -v t=$((t1 - t0)) -v hz="$hz" -v n=$((rps * secs)) 'BEGIN { printf "%.1f", t / hz * 1e6 / n }') |"
            line="$line $(awk -v t=$((u1 - u0)) -v hz="$hz" -v n=$((rps * secs)) 'BEGIN { printf "%.2f", t / hz * 1e6 / n }') |"
            if [ -n "$shared" ]; then
                line="$line $(awk -v t=$((s1 - s0)) -v hz="$hz" -v n=$((rps * secs)) 'BEGIN { printf "%.1f", t / hz * 1e6 / n }') |"
            fi
            if [ "$side" = a ]; then
                ticks_a=$((ticks_a + t1 - t0)); user_a=$((user_a + u1 - u0)); reqs_a=$((reqs_a + rps * secs))
            else
                ticks_b=$((ticks_b + t1 - t0)); user_b=$((user_b + u1 - u0)); reqs_b=$((reqs_b + rps * secs))
            fi
        fi
        echo "$line"
    }
    for r in $(seq "$rounds"); do
        one_run "$name_a" "$url_a" "${PID_A:-}" a
        sum_a=$((sum_a + rps))
        one_run "$name_b" "$url_b" "${PID_B:-}" b
        sum_b=$((sum_b + rps))
    done
    awk -v a="$sum_a" -v b="$sum_b" -v na="$name_a" -v nb="$name_b" \
        'BEGIN { printf "\n%s / %s, summed over rounds: %.1f%%\n", nb, na, 100 * b / a }'
    if [ -n "$cpu" ]; then
        awk -v ta="$ticks_a" -v tb="$ticks_b" -v ra="$reqs_a" -v rb="$reqs_b" -v na="$name_a" -v nb="$name_b" \
            'BEGIN { printf "%s / %s, capacity of one core (requests per CPU second), over all rounds: %.1f%%\n", nb, na, 100 * (rb / tb) / (ra / ta) }'
        awk -v ua="$user_a" -v ub="$user_b" -v ra="$reqs_a" -v rb="$reqs_b" -v hz="$hz" -v na="$name_a" -v nb="$name_b" \
            'BEGIN { a = ua / hz * 1e6 / ra; b = ub / hz * 1e6 / rb;
                     printf "user-space CPU a request, over all rounds: %s %.2f µs, %s %.2f µs (%+.2f µs)\n", na, a, nb, b, b - a }'
    fi
}
