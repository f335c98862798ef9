#!/usr/bin/env bash
# Storage SCP throughput (issue 3 benchmark): 500 simulated 512² CT instances pushed with DCMTK
# storescu over loopback to `hu-red serve` (the release binary) and to DCMTK's storescp, with one
# association and with four in parallel (the files split into 4 folders, 4 storescu at once).
#
#   benches/scp.sh [RUNS]        # RUNS timed pushes per configuration (default 3; median reported)
#   HURED_BIN=path/to/hu-red benches/scp.sh   # use that binary instead of building one
#   N_INSTANCES=200 benches/scp.sh            # fewer instances (default 500)
#   HURED_BASE_BIN=path/to/old/hu-red benches/scp.sh   # also time another hu-red (before/after)
#
# Tuned configuration (the fastest storescp, as the issue asks): `--max-pdu 131072` on both sides
# and TCP_NODELAY=1 in the environment of storescu and storescp. hu-red serve gets
# HURED__SCP__MAX_PDU=131072 and HURED__SERIES__STABLE_SECONDS=600 (no analysis during the push).
# storescp is also run once with its defaults (no TCP_NODELAY, default PDU) to show the Nagle
# stall. Every run uses a fresh server and a fresh data folder; wall time is from the start of the
# first storescu to the exit of the last. Each run checks that all instances were stored (files
# counted) and, since storescu exits 0 even when a store fails, that `storescu -v` logged a
# success response for every instance and no failure/warning status.
#
# hu-red writes each instance to a temp file, fsyncs it, renames it and fsyncs the directory,
# and commits its row to SQLite (WAL; instance rows synchronous=NORMAL since the file is the
# durable record) before acknowledging; storescp does not fsync.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
n_inst=${N_INSTANCES:-500}
limit=600 # seconds: bound on any single push or server start

for tool in storescu storescp python3; do
    command -v "$tool" >/dev/null || {
        echo "benches/scp.sh: needs $tool (apt-get install dcmtk python3)" >&2
        exit 1
    }
done

if [[ -n "${HURED_BIN:-}" ]]; then
    bin=$HURED_BIN
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hu-red/target}"
    cargo build --release --quiet --bin hu-red
    bin="$CARGO_TARGET_DIR/release/hu-red"
fi

work=$(mktemp -d)
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        # The server was started with setsid: its process group id is its pid (storescp --fork
        # children are in that group too).
        kill -TERM -- "-$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- data: one series of n_inst instances, and the same files split into 4 folders
src="$work/series"
"$bin" simulate --phantom catphan_ctp404 --n-slices "$n_inst" --slice-thickness-mm 0.5 \
    --out "$src" >/dev/null
rm -f "$src/truth.json"
mapfile -t files < <(find "$src" -type f | sort)
((${#files[@]} == n_inst)) || {
    echo "benches/scp.sh: simulate wrote ${#files[@]} files, expected $n_inst" >&2
    exit 1
}
bytes=$(cat "${files[@]}" | wc -c)
for i in 0 1 2 3; do mkdir -p "$work/split/$i"; done
for idx in "${!files[@]}"; do
    ln "${files[$idx]}" "$work/split/$((idx * 4 / n_inst))/"
done

# --- servers
start_hured() { # $1 = data dir, $2 = binary; sets server_pid, port
    local data=$1 log=$1.log exe=${2:-$bin}
    mkdir -p "$data"
    HURED__SCP__BIND=127.0.0.1:0 \
        HURED__WEB__BIND= \
        HURED__STORAGE__DATA_DIR="$data" \
        HURED__DATABASE__URL="sqlite://$data/hu-red.sqlite" \
        HURED__SERIES__STABLE_SECONDS=600 \
        HURED__SCP__MAX_PDU=131072 \
        NO_COLOR=1 setsid "$exe" serve >"$log" 2>&1 &
    server_pid=$!
    port=""
    local t0=$SECONDS
    while [[ -z "$port" ]]; do
        port=$(sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null | grep -m1 'DICOM SCP listening' |
            grep -o 'addr=[^ ]*' | sed 's/.*://' || true)
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "benches/scp.sh: hu-red serve exited before listening:" >&2
            tail -20 "$log" >&2
            exit 1
        fi
        ((SECONDS - t0 < 60)) || {
            echo "benches/scp.sh: hu-red serve not listening after 60 s" >&2
            exit 1
        }
        [[ -n "$port" ]] || sleep 0.05
    done
}
start_storescp() { # $1 = data dir, $2 = tuned|default, $3 = fork|nofork
    local data=$1 opts=() env=()
    mkdir -p "$data/in"
    port=$(free_port)
    [[ $2 == tuned ]] && opts+=(--max-pdu 131072) && env+=(TCP_NODELAY=1)
    [[ $3 == fork ]] && opts+=(--fork)
    env "${env[@]}" setsid storescp "${opts[@]}" -od "$data/in" "$port" >"$data.log" 2>&1 &
    server_pid=$!
    local t0=$SECONDS
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; do
        kill -0 "$server_pid" 2>/dev/null || {
            echo "benches/scp.sh: storescp exited:" >&2
            cat "$data.log" >&2
            exit 1
        }
        ((SECONDS - t0 < 60)) || {
            echo "benches/scp.sh: storescp not listening after 60 s" >&2
            exit 1
        }
        sleep 0.05
    done
}

# --- one push: $1 = aec, $2 = 1|4 associations, $3 = tuned|default, $4 = log prefix; prints seconds
push() {
    local aec=$1 n=$2 mode=$3 prefix=$4 opts=(-v -aec "$aec" +sd +r) env=() pids=() i t0 t1 rc=0
    [[ $mode == tuned ]] && opts+=(--max-pdu 131072) && env+=(TCP_NODELAY=1)
    t0=$(date +%s.%N)
    if ((n == 1)); then
        env "${env[@]}" timeout "$limit" storescu "${opts[@]}" 127.0.0.1 "$port" "$src" \
            >"$prefix.0.scu" 2>&1 &
        pids+=($!)
    else
        for i in 0 1 2 3; do
            env "${env[@]}" timeout "$limit" storescu "${opts[@]}" 127.0.0.1 "$port" "$work/split/$i" \
                >"$prefix.$i.scu" 2>&1 &
            pids+=($!)
        done
    fi
    for i in "${pids[@]}"; do wait "$i" || rc=$?; done
    t1=$(date +%s.%N)
    if ((rc != 0)); then
        echo "benches/scp.sh: storescu failed (exit $rc):" >&2
        tail -5 "$prefix".*.scu >&2
        exit 1
    fi
    # storescu exits 0 even when the SCP answers a C-STORE with a failure status.
    local ok bad
    ok=$(cat "$prefix".*.scu | grep -c 'Received Store Response (Success)' || true)
    bad=$(cat "$prefix".*.scu | grep -Eic 'Store Response \((Fail|Refused|Warning|Error|Unknown)|^E: ' || true)
    if ((ok != n_inst || bad != 0)); then
        echo "benches/scp.sh: $ok success responses (expected $n_inst), $bad failure lines:" >&2
        grep -Eih 'Failure|Warning|Error|^E: ' "$prefix".*.scu | head -10 >&2
        exit 1
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

count_stored() { # $1 = folder; counts .dcm files outside tmp/results (hu-red) or all files (storescp)
    find "$1" -type f \( -name '*.dcm' -o -name 'CT.*' \) -not -path "$1/tmp/*" \
        -not -path "$1/results/*" | wc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

run_config() { # $1 = label, $2 = server kind, $3 = assocs, $4 = mode, $5 = runs
    local label=$1 kind=$2 n=$3 mode=$4 r=$5 times=() k data secs stored
    for k in $(seq 1 "$r"); do
        data="$work/run.$kind.$n.$mode.$k"
        case $kind in
            hured) start_hured "$data"; aec=HURED_QA ;;
            hured-base) start_hured "$data" "$HURED_BASE_BIN"; aec=HURED_QA ;;
            storescp) start_storescp "$data" "$mode" nofork; aec=ANY-SCP ;;
            storescp-fork) start_storescp "$data" "$mode" fork; aec=ANY-SCP ;;
        esac
        secs=$(push "$aec" "$n" "$mode" "$data")
        stop_server
        stored=$(count_stored "$data")
        if ((stored != n_inst)); then
            echo "benches/scp.sh: $label: $stored files stored, expected $n_inst" >&2
            exit 1
        fi
        times+=("$secs")
        rm -rf "$data"
    done
    secs=$(median "${times[@]}")
    awk -v l="$label" -v n="$n" -v s="$secs" -v all="${times[*]}" -v i="$n_inst" -v b="$bytes" -v r="$r" \
        'BEGIN { printf "| %s | %d | %.2f (%s) | %.0f | %.0f | %d/%d |\n", l, n, s, all, i / s, b / 1e6 / s, i, i }'
}

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $n_inst instances, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB (catphan_ctp404 512², 0.5 mm slices)"
echo
printf '| receiver | associations | wall, median of %d (s) (all runs) | instances/s | MB/s | stored |\n' "$runs"
printf '|---|---|---|---|---|---|\n'
run_config "hu-red serve (fsync before every response)" hured 1 tuned "$runs"
[[ -n "${HURED_BASE_BIN:-}" ]] && run_config "hu-red serve, HURED_BASE_BIN" hured-base 1 tuned "$runs"
run_config "storescp tuned" storescp 1 tuned "$runs"
run_config "hu-red serve (fsync before every response)" hured 4 tuned "$runs"
[[ -n "${HURED_BASE_BIN:-}" ]] && run_config "hu-red serve, HURED_BASE_BIN" hured-base 4 tuned "$runs"
run_config "storescp tuned (one process: associations served in turn)" storescp 4 tuned "$runs"
run_config "storescp tuned --fork (a process per association)" storescp-fork 4 tuned "$runs"
run_config "storescp defaults (Nagle, 16 KiB PDU)" storescp 1 default 1
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
