#!/usr/bin/env bash
# Benchmark of `berth config` (see docs/benchmarks.md):
#   1. `berth -f FILE config` against `podman-compose -f FILE config`, on the same generated files, in one run;
#   2. the in-process load + normalize of the same files (orchestrator/benches/load.rs).
#
# Usage: bench/config/run.sh            (from anywhere; takes ~5 minutes, most of it podman-compose on 200 services)
#
# Knobs (environment):
#   RUNS=30            timed runs of each command (after WARMUP runs)
#   WARMUP=3           untimed runs first
#   PC_RUNS_LARGE=5    timed runs of podman-compose on the 200-service file (each takes seconds)
#   PC_DRY_RUN=1       also time `podman-compose --dry-run config`, which skips its `podman version` call
#   LOAD_RUNS=50       iterations of the in-process load bench
#   OUT=DIR            where files and results go (default bench/results/config-<UTC time>, git-ignored)
#
# Installs what is missing, with the ordinary clients: podman-compose from PyPI (the version the peer baselines
# in shared/bench/peers use), podman from Debian (podman-compose refuses to run `config` without a working
# `podman version`), hyperfine from Debian (optional: a Python timer is used without it).
# No network traffic besides those package registries; every loop is bounded by a run count.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PC_RUNS_LARGE=${PC_RUNS_LARGE:-5}
PC_DRY_RUN=${PC_DRY_RUN:-1}
LOAD_RUNS=${LOAD_RUNS:-50}
PODMAN_COMPOSE_VERSION=1.6.0
OUT=${OUT:-$ROOT/bench/results/config-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/files" "$OUT/raw"
OUT=$(cd "$OUT" && pwd)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() { # PACKAGE...: install from Debian when we are root and apt-get exists
  is_root && command -v apt-get >/dev/null || return 1
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

# --- build berth ------------------------------------------------------------------------------------------------
cd "$ROOT"
log "building berth (release)"
cargo build --release --bin berth
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BERTH=$TARGET_DIR/release/berth
[ -x "$BERTH" ] || die "no berth binary at $BERTH"

# --- the files ----------------------------------------------------------------------------------------------------
log "generating compose files into $OUT/files"
python3 "$HERE/gen.py" "$OUT/files" 200 3 >/dev/null
FILES=("$OUT/files/compose-200.yaml" "$OUT/files/compose-3.yaml")
for f in "${FILES[@]}"; do
  if ! "$BERTH" -f "$f" config >"$OUT/raw/berth-$(basename "$f").out" 2>"$OUT/raw/berth-$(basename "$f").err"; then
    cat "$OUT/raw/berth-$(basename "$f").err" >&2
    die "berth -f $f config failed (is the loader and CLI in this tree complete?)"
  fi
done

# --- peers ---------------------------------------------------------------------------------------------------------
if ! command -v podman-compose >/dev/null; then
  log "installing podman-compose $PODMAN_COMPOSE_VERSION from PyPI"
  python3 -m pip install --quiet "podman-compose==$PODMAN_COMPOSE_VERSION" || die "cannot install podman-compose"
  hash -r
fi
command -v podman-compose >/dev/null || die "podman-compose is not on PATH after pip install"
probe() { podman-compose -f "${FILES[1]}" config >/dev/null 2>"$OUT/raw/podman-compose-probe.err"; }
if ! probe; then
  if ! command -v podman >/dev/null; then
    log "podman-compose needs podman for 'config' (it runs 'podman version'); installing podman from Debian"
    apt_install podman || true
  fi
  probe || { cat "$OUT/raw/podman-compose-probe.err" >&2; die "podman-compose -f ${FILES[1]} config fails"; }
fi
if ! command -v hyperfine >/dev/null; then
  apt_install hyperfine || log "no hyperfine: timing with a Python loop"
fi

# --- what ran where ------------------------------------------------------------------------------------------------
{
  echo "date:            $(date -u +%FT%TZ)"
  echo "machine:         $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "kernel:          $(uname -r)"
  echo "load average:    $(cut -d' ' -f1-3 /proc/loadavg) at the start (other work on the machine skews every figure)"
  echo "berth:           $("$BERTH" --version 2>/dev/null | head -1) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', with local changes'))"
  echo "podman-compose:  $(podman-compose --version 2>/dev/null | tr '\n' ' ')"
  echo "python3:         $(python3 --version 2>&1)"
  echo "timer:           $(command -v hyperfine >/dev/null && hyperfine --version || echo 'python loop')"
  for f in "${FILES[@]}"; do echo "file:            $(basename "$f"): $(wc -c <"$f") bytes"; done
  echo "runs:            RUNS=$RUNS WARMUP=$WARMUP PC_RUNS_LARGE=$PC_RUNS_LARGE LOAD_RUNS=$LOAD_RUNS"
} >"$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

# --- timing --------------------------------------------------------------------------------------------------------
# time_one JSON RUNS WARMUP ARG...: time one command (stdout and stderr to /dev/null), write hyperfine-style JSON.
time_one() {
  local json=$1 runs=$2 warmup=$3; shift 3
  if command -v hyperfine >/dev/null; then
    local cmd="" a
    for a in "$@"; do cmd+="$(printf '%q' "$a") "; done
    hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$json" "${cmd% }" >&2
  else
    python3 - "$json" "$runs" "$warmup" "$@" <<'PY'
import json, subprocess, sys, time
out, runs, warmup, cmd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
times = []
for i in range(warmup + runs):
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    if i >= warmup:
        times.append(time.perf_counter() - t0)
json.dump({"results": [{"command": " ".join(cmd), "times": times}]}, open(out, "w"))
PY
  fi
}

for f in "${FILES[@]}"; do
  label=$(basename "$f" .yaml)
  pc_runs=$RUNS
  [[ $label == compose-200 ]] && pc_runs=$PC_RUNS_LARGE
  parts=()
  log "$label: berth"
  time_one "$OUT/raw/$label-1.json" "$RUNS" "$WARMUP" "$BERTH" -f "$f" config
  parts+=("$OUT/raw/$label-1.json")
  log "$label: podman-compose ($pc_runs runs)"
  time_one "$OUT/raw/$label-2.json" "$pc_runs" 1 podman-compose -f "$f" config
  parts+=("$OUT/raw/$label-2.json")
  if [ "$PC_DRY_RUN" = 1 ]; then
    log "$label: podman-compose --dry-run ($pc_runs runs)"
    time_one "$OUT/raw/$label-3.json" "$pc_runs" 1 podman-compose --dry-run -f "$f" config
    parts+=("$OUT/raw/$label-3.json")
  fi
  python3 - "$OUT/times-$label.json" "${parts[@]}" <<'PY'
import json, sys
results = []
for p in sys.argv[2:]:
    results += json.load(open(p))["results"]
for r in results:  # shorter command names in the table
    r["command"] = " ".join(w if "/" not in w else w.rsplit("/", 1)[1] for w in r["command"].split())
json.dump({"results": results}, open(sys.argv[1], "w"))
PY
done

# --- in-process load + normalize ------------------------------------------------------------------------------------
for f in "${FILES[@]}"; do
  label=$(basename "$f" .yaml)
  log "$label: in-process load ($LOAD_RUNS runs)"
  BERTH_BENCH_RUNS=$LOAD_RUNS cargo bench -q -p berth-orchestrator --bench load -- "$f" | tee "$OUT/load-$label.txt" >&2
done

echo "load average:    $(cut -d' ' -f1-3 /proc/loadavg) at the end" >>"$OUT/meta.txt"
log "summary ($OUT/summary.md)"
python3 "$HERE/summarize.py" "$OUT"
