#!/usr/bin/env bash
# hu-red against the Python script it replaces, on the same simulated series (one per phantom,
# 64 slices, the benchmark parameters of benches/rss.sh and benches/analyze.rs).
#
#   benches/python_compare.sh [RUNS]     # RUNS timed runs per program and series (default 3)
#   HURED_BIN=path/to/hu-red benches/python_compare.sh
#
# The Python script itself is not available to this project: benches/python_script/
# hu_red_calibration.py is a re-implementation of its documented algorithm (pydicom + scipy +
# scikit-image + matplotlib; see the file's header), for timing only. It runs in a virtual
# environment made here once (python3 -m venv, pinned versions from PyPI) under
# $HOME/.cache/hu-red/pyvenv-compare (PYVENV overrides).
#
# Both programs write the same kinds of files (CSV, JSON summary, curve PNG). hu-red runs as a
# site would run it (phantom auto-detected); the Python script is given the phantom
# (--phantom), because its circularity test takes any phantom with a couch for an Easy Cube (a
# documented defect of the original). Wall time (date +%s.%N round the process), median of RUNS
# after one warm-up run of each (warm page cache); runs alternate between the two programs so
# that a change in the machine's load affects both. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
venv=${PYVENV:-$HOME/.cache/hu-red/pyvenv-compare}
script=benches/python_script/hu_red_calibration.py

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    pydicom==3.0.1 numpy==2.2.6 scipy==1.15.3 scikit-image==0.25.2 matplotlib==3.10.3

if [[ -n "${HURED_BIN:-}" ]]; then
    bin=$HURED_BIN
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hu-red/target}"
    cargo build --release --quiet --bin hu-red
    bin="$CARGO_TARGET_DIR/release/hu-red"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Wall time of one command, seconds.
wall() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "python: $("$venv/bin/python" --version 2>&1); $("$venv/bin/python" -c 'import pydicom, numpy, scipy, skimage, matplotlib; print("pydicom", pydicom.__version__, "numpy", numpy.__version__, "scipy", scipy.__version__, "scikit-image", skimage.__version__, "matplotlib", matplotlib.__version__)')"
echo
printf '| phantom | slices | hu-red wall, median of %d (s) | Python stand-in wall, median of %d (s) | ratio |\n' "$runs" "$runs"
printf '|---|---|---|---|---|\n'
for phantom in catphan_504 cirs062 easycube; do
    dir="$work/$phantom"
    "$bin" simulate --phantom "$phantom" --out "$dir" --n-slices 64 --matrix 512 \
        --pixel-mm 0.8 --slice-thickness-mm 2.5 --couch --recon-circle \
        --noise-sigma-hu 10 --rotation-deg 7 --shift-x-mm 12 --shift-y-mm -8 --seed 42 \
        >/dev/null
    rm -f "$dir/truth.json"
    hured=("$bin" analyze --dicom "$dir" --outdir "$work/out_rs")
    # The script knows the Catphan 503/504 module by its old name.
    py_phantom=${phantom/catphan_504/catphan_ctp404}
    py=("$venv/bin/python" "$script" --dicom "$dir" --outdir "$work/out_py" --phantom "$py_phantom")
    # Warm-up (page cache, Python's bytecode cache); hu-red must succeed.
    "${hured[@]}" >/dev/null 2>&1 || {
        code=$?
        # 1 = a check failed: still a complete analysis.
        if ((code != 1)); then
            echo "benches/python_compare.sh: hu-red analyze failed on $dir" >&2
            "${hured[@]}" >&2 || true
            exit 1
        fi
    }
    "${py[@]}" >/dev/null 2>&1
    if [[ ! -f "$work/out_py/hu_red_${py_phantom}.csv" ]]; then
        echo "benches/python_compare.sh: the Python stand-in wrote no CSV for $phantom" >&2
        "${py[@]}" >&2 || true
        exit 1
    fi
    rs_t=()
    py_t=()
    for _ in $(seq 1 "$runs"); do
        rs_t+=("$(wall "${hured[@]}")")
        py_t+=("$(wall "${py[@]}")")
    done
    rs=$(median "${rs_t[@]}")
    pt=$(median "${py_t[@]}")
    printf '| %s | 64 | %.2f (%s) | %.2f (%s) | %.0f× |\n' "$phantom" "$rs" "${rs_t[*]}" "$pt" \
        "${py_t[*]}" "$(awk -v a="$pt" -v b="$rs" 'BEGIN { print a / b }')"
    rm -rf "$dir" "$work/out_rs" "$work/out_py"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
