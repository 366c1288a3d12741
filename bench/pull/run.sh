#!/usr/bin/env bash
# Pull benchmark: berth's registry pull against `skopeo copy docker://… oci:…`, same image, same local registry,
# same run, interleaved. Prints medians, the throughput ratio, peak RSS, and the time of a pull of an image
# already present.
#
#   bench/pull/run.sh            # RUNS=5 LAYERS=5 LAYER_MB=10 WARM_RUNS=50 by default
#
# Needs docker-registry, skopeo and GNU time (apt-get install -y docker-registry skopeo time).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-10}
WARM_RUNS=${WARM_RUNS:-50}

for tool in skopeo /usr/bin/time "${BERTH_DOCKER_REGISTRY:-/usr/bin/docker-registry}"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y docker-registry skopeo time" >&2; exit 1; }
done

cargo build --quiet --release -p berth-engine --example pull_bench
bin=target/release/examples/pull_bench

work=$(mktemp -d /tmp/berth-pull-bench.XXXXXX)
cleanup() {
    scripts/registry-test-server.sh stop "$work/registry" || true
    rm -rf "$work"
}
trap cleanup EXIT

host=$(scripts/registry-test-server.sh start "$work/registry")
image="$host/bench/app:1"
echo "registry $host; image $image: $LAYERS gzip layers of $LAYER_MB MiB of random data"
"$bin" seed "$image" "$LAYERS" "$LAYER_MB" | sed 's/^/  seed: /'

now_ns() { date +%s%N; }

# $1: label; rest: command. Appends "ms rss_kib" to $work/$label.
measure() {
    local label=$1
    shift
    local t0 t1
    t0=$(now_ns)
    /usr/bin/time -f %M -o "$work/rss" "$@" >"$work/$label.out" 2>&1 || {
        echo "$label failed:" >&2
        cat "$work/$label.out" >&2
        exit 1
    }
    t1=$(now_ns)
    echo "$(((t1 - t0) / 1000)) $(tail -1 "$work/rss")" >>"$work/$label"
    cat "$work/$label.out" >>"$work/$label.all"
}

berth_pull() {
    rm -rf "$work/berth-root"
    measure berth "$bin" cold "$image" "$work/berth-root"
}

skopeo_pull() {
    rm -rf "$work/oci"
    measure skopeo skopeo copy --quiet --src-tls-verify=false "docker://$image" "oci:$work/oci:latest"
}

# One warm-up each (registry caches, page cache), not counted.
berth_pull
skopeo_pull
rm -f "$work/berth" "$work/skopeo" "$work/berth.all" "$work/skopeo.all"
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then berth_pull; skopeo_pull; else skopeo_pull; berth_pull; fi
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
bytes=$(grep '^bytes=' "$work/berth.out" | cut -d= -f2)
berth_us=$(cut -d' ' -f1 "$work/berth" | median)
skopeo_us=$(cut -d' ' -f1 "$work/skopeo" | median)
berth_rss=$(cut -d' ' -f2 "$work/berth" | sort -n | tail -1)
skopeo_rss=$(cut -d' ' -f2 "$work/skopeo" | sort -n | tail -1)

echo
echo "cold pull, whole process, median of $RUNS (microseconds, peak RSS in KiB over the runs):"
awk -v b="$berth_us" -v s="$skopeo_us" -v n="$bytes" -v br="$berth_rss" -v sr="$skopeo_rss" 'BEGIN {
    mib = n / 1048576
    printf "  berth : %8.1f ms  %7.1f MiB/s  peak RSS %6.1f MiB\n", b / 1000, mib / (b / 1e6), br / 1024
    printf "  skopeo: %8.1f ms  %7.1f MiB/s  peak RSS %6.1f MiB\n", s / 1000, mib / (s / 1e6), sr / 1024
    printf "  throughput ratio berth/skopeo: %.2f (target >= 0.80)\n", s / b
}'
echo "  berth in-process pull times (ms): $(grep -h '^cold_ms=' "$work/berth.all" | cut -d= -f2 | tr '\n' ' ')"
echo "  all berth runs (us rss_kib):  $(tr '\n' ';' <"$work/berth")"
echo "  all skopeo runs (us rss_kib): $(tr '\n' ';' <"$work/skopeo")"

echo
echo "pull of an image already present ($WARM_RUNS runs; target < 20 ms):"
"$bin" warm "$image" "$WARM_RUNS" | sed 's/^/  /'
