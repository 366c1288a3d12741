#!/usr/bin/env bash
# Container benchmark: berthd against `crun run` and `podman run --rm --network none`, same busybox rootfs, same
# run. Prints medians and the ratios issue #4 names:
#   - create + start + wait + remove of `true`, no network, through the API  vs  `crun run` of a bundle
#     (target: at most 2x) and `podman run --rm --network none` (target: at most 0.3x);
#   - 100 containers running `sleep`: berthd RSS (target <= 30 MB) and each shim's RSS (target <= 2 MB);
#   - pause + unpause of one container (target < 10 ms).
#
#   bench/engine/run.sh          # RUNS=30 PODMAN_RUNS=20 FLEET=100 PAUSE_RUNS=50 by default
#
# crun 1.8 and podman need the peers' host setup on this VM (the hybrid-cgroup workaround, podman's config and
# its busybox image): run ../shared/bench/peers/setup-host.sh first and ../shared/bench/peers/cleanup.sh after.
# Without them the peers are skipped and only berth's figures are printed. Needs hyperfine (Debian package).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-30}
PODMAN_RUNS=${PODMAN_RUNS:-20}
FLEET=${FLEET:-100}
PAUSE_RUNS=${PAUSE_RUNS:-50}

command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 1; }

cargo build --quiet --release --workspace
cargo build --quiet --release -p berth-engine --example engine_bench
bin=target/release/examples/engine_bench

# Short: the run dir holds Unix sockets named by 64-hex container ids (108-byte limit).
work=$(mktemp -d /tmp/bbe.XXXXXX)
root=$work/root
run=$work/run
export BERTH_CGROUP_PARENT=/berth-bench-$(basename "$work")
# The berth-netd the CLI starts gets its own nft table; the containers here run with no network.
export BERTH_NETD_NFT_TABLE=bbe_$(basename "$work" | tr -cd 'a-zA-Z0-9')
berth() { target/release/berth --root "$root" --run-dir "$run" "$@"; }
cleanup() {
    crun delete -f berthbench-crun >/dev/null 2>&1 || true
    tag=$(cat "$root/netd/instance" 2>/dev/null || true)
    for daemon in berthd netd; do
        [ -f "$run/$daemon.pid" ] || continue
        pid=$(cat "$run/$daemon.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    done
    # Anything left by a failed run: processes in our cgroups, our mounts, then the cgroups.
    for h in /sys/fs/cgroup/*/; do
        for d in "$h${BERTH_CGROUP_PARENT#/}"/*/; do
            [ -f "$d/cgroup.procs" ] && xargs -r kill -KILL <"$d/cgroup.procs" 2>/dev/null || true
        done
    done
    pkill -KILL -f "$work" 2>/dev/null || true
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for h in /sys/fs/cgroup/*/; do
        find "$h${BERTH_CGROUP_PARENT#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    if [ -n "$tag" ]; then
        ip -o -d link show | grep "alias berth-netd:$tag" | awk -F': ' '{print $2}' | cut -d@ -f1 |
            xargs -r -n1 ip link del dev 2>/dev/null || true
    fi
    nft delete table inet "$BERTH_NETD_NFT_TABLE" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/make-busybox-rootfs.sh "$work/busybox.tar" >/dev/null
berth image import "$work/busybox.tar" localhost/berth-bench:1 >/dev/null
sock=$run/berth.sock

echo "== berth: create + start + wait + remove of 'true' through the API (RUNS=$RUNS)"
"$bin" lifecycle "$sock" localhost/berth-bench:1 "$RUNS" | tee "$work/berth.txt"

# The same rootfs as a bundle for crun; the config is crun's default spec running `true`, as the peers bench does.
crun_ok=0
if command -v crun >/dev/null; then
    mkdir -p "$work/bundle/rootfs"
    tar -xf "$work/busybox.tar" -C "$work/bundle/rootfs"
    (cd "$work/bundle" && crun spec)
    python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c['process']['terminal'] = False
c['process']['args'] = ['true']
c['root']['readonly'] = True
c['linux']['cgroupsPath'] = '/berth-bench-crun/bench'
json.dump(c, open(p, 'w'), indent=1)
EOF
    if crun run -b "$work/bundle" berthbench-crun >/dev/null 2>"$work/crun.err"; then
        crun_ok=1
        echo "== crun run of the same rootfs (RUNS=$RUNS)"
        hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/crun.json" \
            "crun run -b $work/bundle berthbench-crun" >/dev/null
        rmdir /sys/fs/cgroup/*/berth-bench-crun 2>/dev/null || true
    else
        echo "== crun skipped: $(head -1 "$work/crun.err") (run ../shared/bench/peers/setup-host.sh)"
    fi
fi

podman_ok=0
if command -v podman >/dev/null && podman image exists localhost/busybox:latest 2>/dev/null; then
    podman_ok=1
    echo "== podman run --rm --network none (PODMAN_RUNS=$PODMAN_RUNS)"
    hyperfine -N --warmup 2 --runs "$PODMAN_RUNS" --export-json "$work/podman.json" \
        "podman run --rm --network none localhost/busybox:latest true" >/dev/null
else
    echo "== podman skipped: no podman or no localhost/busybox image (run ../shared/bench/peers/setup-host.sh)"
fi

echo "== berth: $FLEET containers running sleep"
"$bin" fleet "$sock" localhost/berth-bench:1 "$FLEET" | tee "$work/fleet.txt"

echo "== berth: pause + unpause of one container (PAUSE_RUNS=$PAUSE_RUNS)"
"$bin" pause "$sock" localhost/berth-bench:1 "$PAUSE_RUNS" | tee "$work/pause.txt"

python3 - "$work" "$crun_ok" "$podman_ok" <<'EOF'
import json, os, sys
work, crun_ok, podman_ok = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
def kv(name):
    out = {}
    for line in open(os.path.join(work, name)):
        k, _, v = line.strip().partition("=")
        out[k] = float(v)
    return out
def hf(name):
    r = json.load(open(os.path.join(work, name)))["results"][0]
    return {"median": r["median"] * 1000, "min": r["min"] * 1000, "max": r["max"] * 1000}
berth, fleet, pause = kv("berth.txt"), kv("fleet.txt"), kv("pause.txt")
b = berth["lifecycle_median"]
print()
print("| case | median ms | min ms | max ms |")
print("|---|---|---|---|")
print(f"| berth API create+start+wait+remove `true` | {b:.1f} | {berth['lifecycle_min']:.1f} | {berth['lifecycle_max']:.1f} |")
if crun_ok:
    c = hf("crun.json")
    print(f"| `crun run` same rootfs | {c['median']:.1f} | {c['min']:.1f} | {c['max']:.1f} |")
if podman_ok:
    p = hf("podman.json")
    print(f"| `podman run --rm --network none` | {p['median']:.1f} | {p['min']:.1f} | {p['max']:.1f} |")
print(f"| pause + unpause | {pause['pause_unpause_median']:.2f} | {pause['pause_unpause_min']:.2f} | {pause['pause_unpause_max']:.2f} |")
print()
if crun_ok:
    r = b / c["median"]
    print(f"berth / crun run:   {r:.2f}  (target <= 2.0: {'met' if r <= 2.0 else 'NOT met'})")
if podman_ok:
    r = b / p["median"]
    print(f"berth / podman run: {r:.2f}  (target <= 0.3: {'met' if r <= 0.3 else 'NOT met'})")
n = int(fleet.get("fleet_running", 0))
d = fleet["berthd_rss_kb"] / 1024
s = fleet["shim_rss_kb_median"] / 1024
print(f"{n} containers: berthd RSS {d:.1f} MB (target <= 30: {'met' if d <= 30 else 'NOT met'}), "
      f"shim RSS median {s:.2f} MB max {fleet['shim_rss_kb_max'] / 1024:.2f} MB (target <= 2: {'met' if s <= 2 else 'NOT met'}), "
      f"shim PSS median {fleet['shim_pss_kb_median'] / 1024:.2f} MB")
pu = pause["pause_unpause_median"]
print(f"pause + unpause median {pu:.2f} ms (target < 10: {'met' if pu < 10 else 'NOT met'})")
EOF
