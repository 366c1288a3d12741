#!/usr/bin/env bash
# A throwaway OCI registry (Debian's docker-registry) on 127.0.0.1, for benches and manual tests.
#
#   scripts/registry-test-server.sh start DIR [PORT]   starts it with its storage and log in DIR; prints host:port
#   scripts/registry-test-server.sh stop DIR           kills it (the pid is in DIR/registry.pid)
#
# The integration tests start their own (engine/tests/common/registry_server.rs); this is the same config.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2; }
binary=${BERTH_DOCKER_REGISTRY:-/usr/bin/docker-registry}

case "$cmd" in
start)
    if [ ! -x "$binary" ]; then
        echo "$binary is missing: run .ci/run or apt-get install -y docker-registry" >&2
        exit 1
    fi
    mkdir -p "$dir/storage"
    dir=$(cd "$dir" && pwd)
    port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: berth-test-secret
EOF
    "$binary" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/registry.pid"
    # Poll /v2/ for up to 15 s.
    for _ in $(seq 1 300); do
        if python3 - "$port" <<'EOF' 2>/dev/null; then echo "127.0.0.1:$port"; exit 0; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
EOF
        if ! kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
            echo "docker-registry exited; log:" >&2
            cat "$dir/registry.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "docker-registry did not answer on 127.0.0.1:$port within 15 s; log:" >&2
    cat "$dir/registry.log" >&2
    kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
    exit 1
    ;;
stop)
    if [ -f "$dir/registry.pid" ]; then
        pid=$(cat "$dir/registry.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/registry.pid"
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR [PORT]" >&2
    exit 2
    ;;
esac
