#!/usr/bin/env bash
# Wall time and peak RSS of `hu-red analyze` (the release binary) on simulated 512² series of 64
# slices for every built-in phantom and 300 slices for one of each family, with GNU time
# (/usr/bin/time -v).
#
#   benches/rss.sh [RUNS]        # RUNS timed runs per series after one warm-up (default 3)
#   HURED_BIN=path/to/hu-red benches/rss.sh   # time that binary instead of building one
#
# Prints a Markdown table (median wall time, largest peak RSS over the runs) for the README.
# Series: 0.8 mm pixels, 64 × 2.5 mm or 300 × 1 mm slices, couch, reconstruction circle, 10 HU
# noise, rotated 7°, shifted (12, −8) mm (the same as benches/analyze.rs). The page cache is warm
# (the warm-up run reads the files first), as on a server that has just received the series.
# Targets on a 2-core machine: 64 slices ≤ 0.5 s, 300 slices ≤ 2 s, peak RSS ≤ 150 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
    else
        echo "benches/rss.sh: needs GNU time (apt-get install time)" >&2
        exit 1
    fi
fi

if [[ -n "${HURED_BIN:-}" ]]; then
    bin=$HURED_BIN
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hu-red/target}"
    cargo build --release --quiet --bin hu-red
    bin="$CARGO_TARGET_DIR/release/hu-red"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| phantom | slices | files (MB) | wall, median of %d (s) | CPU user+sys, median (s) | peak RSS (MB) | target |\n' "$runs"
printf '|---|---|---|---|---|---|---|\n'
for n in 64 300; do
    if ((n >= 200)); then thick=1.0; target="≤ 2 s, ≤ 150 MB"; else thick=2.5; target="≤ 0.5 s, ≤ 150 MB"; fi
    if ((n >= 200)); then
        phantoms=(catphan_504 cirs062 gammex_467 easycube)
    else
        phantoms=(catphan_504 catphan_600 catphan_604 catphan_700 cirs062 cirs062_head gammex_467
            gammex_1467_body gammex_1467_head easycube)
    fi
    for phantom in "${phantoms[@]}"; do
        dir="$work/${phantom}_$n"
        "$bin" simulate --phantom "$phantom" --out "$dir" --n-slices "$n" --matrix 512 \
            --pixel-mm 0.8 --slice-thickness-mm "$thick" --couch --recon-circle \
            --noise-sigma-hu 10 --rotation-deg 7 --shift-x-mm 12 --shift-y-mm -8 --seed 42 \
            >/dev/null
        mb=$(du -sm "$dir" | cut -f1)
        "$bin" analyze --dicom "$dir" --outdir "$work/out" --no-plot >/dev/null 2>&1 || {
            echo "benches/rss.sh: hu-red analyze failed on $dir" >&2
            "$bin" analyze --dicom "$dir" --outdir "$work/out" --no-plot >&2 || true
            exit 1
        }
        walls=()
        cpus=()
        rss_max=0
        for _ in $(seq 1 "$runs"); do
            /usr/bin/time -v -o "$work/time.txt" \
                "$bin" analyze --dicom "$dir" --outdir "$work/out" --no-plot >/dev/null 2>&1
            wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
                n = split($2, p, ":"); s = 0
                for (i = 1; i <= n; i++) s = s * 60 + p[i]
                print s }' "$work/time.txt")
            rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
            cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/time.txt")
            walls+=("$wall")
            cpus+=("$cpu")
            ((rss > rss_max)) && rss_max=$rss
        done
        median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        cpu_median=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        printf '| %s | %d | %d | %.2f | %.2f | %s | %s |\n' "$phantom" "$n" "$mb" "$median" "$cpu_median" \
            "$(awk -v k="$rss_max" 'BEGIN { printf "%.0f", k / 1024 }')" "$target"
        rm -rf "$dir"
    done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
