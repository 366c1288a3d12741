#!/usr/bin/env bash
# Network benchmark of berth-netd beside its peers, in one run (see bench/netd/README.md):
#   1. DNS from inside a network namespace: berth-netd's server vs aardvark-dns (standalone, same bridge+netns
#      shape), queried by netd/examples/dns_bench.rs: qps and p50/p99 latency with INFLIGHT queries in flight.
#   2. Attaching an endpoint: netd's connect through its typed client (netd/examples/attach_bench.rs) vs
#      `netavark setup` (podman's network backend, with aardvark-dns records) on fresh namespaces.
#   3. TCP throughput (iperf3) through a published port on 127.0.0.1 vs straight to the container's address,
#      for berth-netd and for podman (`podman run -p`).
# Prints the medians over RUNS interleaved rounds and the ratios.
#
#   bench/netd/run.sh                 # everything; needs root, podman, iperf3, aardvark-dns, netavark, nft
#   PEERS=0 bench/netd/run.sh         # without podman and netavark (no host setup): berth + aardvark-dns only
#
# Knobs: RUNS (3), DNS_SECONDS (5), INFLIGHT ("1 2 8"), ATTACH_COUNT (50), IPERF_SECONDS (5), PEERS (1),
# SUBNETS (10.216: the run uses <SUBNETS>.1-6.0/24 and refuses to start if the host routes any of them),
# CARGO_TARGET_DIR (where the release binaries are built).
#
# Traffic goes only over loopback and the bridges and namespaces this script makes. Everything it makes
# (processes, namespaces, links, the nft table, podman's container and the host setup) is removed on exit,
# also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}
DNS_SECONDS=${DNS_SECONDS:-5}
INFLIGHT=${INFLIGHT:-1 2 8}
ATTACH_COUNT=${ATTACH_COUNT:-50}
IPERF_SECONDS=${IPERF_SECONDS:-5}
PEERS=${PEERS:-1}
SUBNETS=${SUBNETS:-10.216}
AARDVARK=${AARDVARK:-/usr/lib/podman/aardvark-dns}
NETAVARK=${NETAVARK:-/usr/lib/podman/netavark}
PEERS_DIR=${PEERS_DIR:-$(cd .. && pwd)/shared/bench/peers}
export AARDVARK_NO_PROXY=1 # aardvark-dns never forwards a query off the machine

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
need="ip nft iperf3 curl jq nsenter $AARDVARK"
[ "$PEERS" = 1 ] && need="$need podman $NETAVARK $PEERS_DIR/setup-host.sh $PEERS_DIR/cleanup.sh"
for tool in $need; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$ATTACH_COUNT" -ge 1 ] && [ "$ATTACH_COUNT" -le 250 ] || { echo "ATTACH_COUNT must be 1-250 (one /24)" >&2; exit 1; }
for n in 1 2 3 4 5; do
    if [ -n "$(ip -4 route show match "$SUBNETS.$n.0/24" | grep -v '^default')" ]; then
        echo "the host already routes $SUBNETS.$n.0/24: choose other SUBNETS=" >&2
        exit 1
    fi
done

target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p berth-netd --examples --bins
bin=$target/release

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tag=bnb$$                       # namespaces, links (<= 15 bytes), nft table, podman container
work=$(mktemp -d /tmp/berth-netd-bench.XXXXXX)
pids=()
podman_ready=0
netd_tag=""

cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    for f in "$work/aardvark/aardvark.pid" "$work/netavark/aardvark-dns/aardvark.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    [ "$podman_ready" = 1 ] && podman rm -f -t 0 "$tag-iperf" >/dev/null 2>&1
    for ns in $(ip netns list | awk '{print $1}' | grep "^$tag-"); do ip netns del "$ns"; done
    # netd's links carry its instance tag as their alias; ours start with the run's tag.
    for link in $(ip -o -d link show | awk -v t="$netd_tag" 't != "" && / alias / { for (i = 1; i < NF; i++) if ($i == "alias" && $(i+1) == t) { sub(/@.*/, "", $2); sub(/:$/, "", $2); print $2 } }') \
        $(ip -o link show | awk -F': ' -v t="$tag" 'index($2, t) == 1 { sub(/@.*/, "", $2); print $2 }'); do
        ip link del dev "$link" 2>/dev/null
    done
    nft delete table inet "$tag" 2>/dev/null
    if [ "$podman_ready" = 1 ]; then
        # cleanup.sh leaves netavark's iptables chains alone while any aardvark-dns exists, even a zombie that
        # init has not reaped yet: give those a moment (bounded).
        for _ in $(seq 50); do pgrep -x aardvark-dns >/dev/null || break; sleep 0.1; done
        "$PEERS_DIR/cleanup.sh" >"$work/peers-cleanup.log" 2>&1 || cat "$work/peers-cleanup.log" >&2
        grep -E 'cgroup2 controllers now|other podman objects' "$work/peers-cleanup.log" | sed 's/^/peers cleanup: /'
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# $1 key, stdin: key=value lines -> values
field() { grep -o "\b$1=[^ ]*" | cut -d= -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
# Bounded wait for a condition: $1 tries of 0.1 s, rest: the command.
wait_for() {
    local tries=$1
    shift
    for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# --- berth-netd ---------------------------------------------------------------------------------------------
# Names outside berth would go to a resolver on loopback that is not there: nothing leaves the machine.
printf 'nameserver 127.0.0.1\noptions timeout:1\n' >"$work/resolv.conf"
"$bin/berth-netd" --root "$work/root" --run-dir "$work/run" --resolv-conf "$work/resolv.conf" --nft-table "$tag" \
    >"$work/netd.log" 2>&1 &
pids+=($!)
sock=$work/run/netd.sock
wait_for 150 curl -sf --unix-socket "$sock" http://netd/_ping || { cat "$work/netd.log" >&2; exit 1; }
netd_tag="berth-netd:$(cat "$work/root/netd/instance")"

# $1 method, $2 path, $3 body: netd's JSON API (what netd/src/client.rs sends).
netd() { curl -sS --fail-with-body --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' "http://netd$2" ${3:+-d "$3"}; }
netd_network() { netd POST /networks "{\"name\":\"$tag-$1\",\"ipam\":{\"subnet\":\"$2\"}}" >/dev/null; }
# $1 network, $2 namespace (made here), $3 name -> the endpoint's address
netd_endpoint() {
    ip netns add "$tag-$2"
    netd POST "/networks/$tag-$1/connect" \
        "{\"container_id\":\"$tag-$2\",\"netns\":\"/run/netns/$tag-$2\",\"names\":[\"$3\"]}" | jq -r .ipv4_address
}

# --- 1. DNS -------------------------------------------------------------------------------------------------
echo "== DNS: $RUNS rounds of ${DNS_SECONDS}s with $INFLIGHT queries in flight, from a namespace on a bridge"
netd_network dns "$SUBNETS.1.0/24"
netd_endpoint dns dnsc client >/dev/null
netd_endpoint dns dnsw web >/dev/null
berth_dns=$SUBNETS.1.1

# aardvark-dns the way netavark runs it: a bridge with the gateway address, a container namespace behind a veth,
# and a config file per network listing the gateway, then `<id> <ipv4> <ipv6> <names>` per container. It only
# answers a client it finds in its config (by source address), so the querying namespace is listed too.
ip link add "${tag}ab" type bridge
ip addr add "$SUBNETS.2.1/24" dev "${tag}ab"
ip link set "${tag}ab" up
ip netns add "$tag-aard"
ip link add "${tag}av" type veth peer name eth0 netns "$tag-aard"
ip link set "${tag}av" master "${tag}ab" up
ip -n "$tag-aard" addr add "$SUBNETS.2.2/24" dev eth0
ip -n "$tag-aard" link set eth0 up
ip -n "$tag-aard" link set lo up
ip -n "$tag-aard" route add default via "$SUBNETS.2.1"
mkdir -p "$work/aardvark"
{
    echo "$SUBNETS.2.1"
    echo "$(printf '%064d' 1) $SUBNETS.2.2  client"
    echo "$(printf '%064d' 2) $SUBNETS.2.3  web"
} >"$work/aardvark/$tag"
# aardvark-dns forks into the background once it listens and writes its pid to <config>/aardvark.pid.
"$AARDVARK" --config "$work/aardvark" --port 53 run >"$work/aardvark.log" 2>&1 ||
    { cat "$work/aardvark.log" >&2; exit 1; }
aard_dns=$SUBNETS.2.1

dns_run() { # $1 label, $2 namespace, $3 server, $4 queries in flight
    ip netns exec "$tag-$2" "$bin/examples/dns_bench" --server "$3:53" --name web --inflight "$4" \
        --seconds "$DNS_SECONDS" | tee -a "$work/dns-$1-$4" | sed "s/^/  $1: /"
}
for inflight in $INFLIGHT; do
    for r in $(seq "$RUNS"); do
        if [ $((r % 2)) -eq 1 ]; then
            dns_run berth dnsc "$berth_dns" "$inflight"; dns_run aardvark aard "$aard_dns" "$inflight"
        else
            dns_run aardvark aard "$aard_dns" "$inflight"; dns_run berth dnsc "$berth_dns" "$inflight"
        fi
    done
done
kill "$(cat "$work/aardvark/aardvark.pid")" 2>/dev/null || true

# --- 2. attach ----------------------------------------------------------------------------------------------
echo "== attach: connect then disconnect $ATTACH_COUNT fresh namespaces"
netd_network att "$SUBNETS.3.0/24"
"$bin/examples/attach_bench" --socket "$sock" --network "$tag-att" --count "$ATTACH_COUNT" \
    --netns-prefix "$tag-att" | tee "$work/attach-berth" | sed 's/^/  berth: /'

# --- 3. TCP through a published port ------------------------------------------------------------------------
echo "== TCP: iperf3, $RUNS rounds of ${IPERF_SECONDS}s per path"
netd_network tcp "$SUBNETS.5.0/24"
berth_ip=$(netd_endpoint tcp tcps iperf)
ip netns exec "$tag-tcps" iperf3 -s -p 5201 >/dev/null 2>&1 &
pids+=($!)
berth_port=$(netd POST /ports/publish \
    "{\"container_id\":\"$tag-tcps\",\"network\":\"$tag-tcp\",\"ports\":[{\"container_port\":5201}]}" |
    jq -r '.[0].host_port')
wait_for 50 ip netns exec "$tag-tcps" sh -c 'ss -Hltn "sport = :5201" | grep -q .'

iperf_run() { # $1 label, $2 address, $3 port -> Gbit/s received
    local gbps
    gbps=$(iperf3 -c "$2" -p "$3" -t "$IPERF_SECONDS" -J | jq '.end.sum_received.bits_per_second / 1e9')
    printf '%.2f\n' "$gbps" | tee -a "$work/tcp-$1" | sed "s|^|  $1 ($2:$3): |; s|$| Gbit/s|"
}

podman_ip=""
podman_port=""
if [ "$PEERS" = 1 ]; then
    echo "== peers: preparing podman and netavark ($PEERS_DIR/setup-host.sh)"
    podman_ready=1
    # A failing peer leaves its columns n/a instead of losing berth's figures (errexit is off in a `||` list,
    # hence the explicit returns).
    podman_start() {
        "$PEERS_DIR/setup-host.sh" >"$work/peers-setup.log" 2>&1 || { cat "$work/peers-setup.log" >&2; return 1; }
        podman_port=$(comm -23 <(seq 18200 18299) <(ss -Hltn | awk '{n = split($4, a, ":"); print a[n]}' | sort -u) |
            head -1)
        [ -n "$podman_port" ] || return 1
        # --pull=never: the image is the one setup-host.sh imported; podman must never reach for a registry.
        podman run -d --pull=never --name "$tag-iperf" -p "127.0.0.1:$podman_port:5201" localhost/busybox \
            sleep 3600 >/dev/null || return 1
        podman_pid=$(podman inspect -f '{{.State.Pid}}' "$tag-iperf") || return 1
        nsenter -t "$podman_pid" -n iperf3 -s -p 5201 >/dev/null 2>&1 &
        pids+=($!)
        wait_for 50 nsenter -t "$podman_pid" -n sh -c 'ss -Hltn "sport = :5201" | grep -q .' || return 1
        podman_ip=$(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$tag-iperf") || return 1
    }
    podman_start || { echo "podman peer failed: its TCP figures are n/a" >&2; podman_ip=""; }
fi

# Each round swaps the order, so a slow spell of the machine does not always fall on the same path.
for r in $(seq "$RUNS"); do
    if [ $((r % 2)) -eq 1 ]; then
        iperf_run berth-published 127.0.0.1 "$berth_port"
        iperf_run berth-direct "$berth_ip" 5201
    else
        iperf_run berth-direct "$berth_ip" 5201
        iperf_run berth-published 127.0.0.1 "$berth_port"
    fi
    if [ -n "$podman_ip" ]; then
        if [ $((r % 2)) -eq 1 ]; then
            iperf_run podman-published 127.0.0.1 "$podman_port"
            iperf_run podman-direct "$podman_ip" 5201
        else
            iperf_run podman-direct "$podman_ip" 5201
            iperf_run podman-published 127.0.0.1 "$podman_port"
        fi
    fi
done

# --- 2b. netavark attach (after podman's setup, whose cleanup removes netavark's iptables chains) ------------
netavark_attach() {
    mkdir -p "$work/netavark" "$work/netavark-in"
    local net_id i ns t0 t1
    net_id=$(printf '%064d' 4)
    for i in $(seq "$ATTACH_COUNT"); do
        ns=$tag-nv$i
        ip netns add "$ns" || return 1
        cat >"$work/netavark-in/$i.json" <<EOF
{"container_id": "$(printf '%063d' "$i")f", "container_name": "c$i",
 "networks": {"$tag": {"static_ips": ["$SUBNETS.4.$((i + 1))"], "aliases": ["c$i", "alias$i"], "interface_name": "eth0"}},
 "network_info": {"$tag": {"name": "$tag", "id": "$net_id", "driver": "bridge", "network_interface": "${tag}nv",
   "subnets": [{"subnet": "$SUBNETS.4.0/24", "gateway": "$SUBNETS.4.1"}], "ipv6_enabled": false, "internal": false,
   "dns_enabled": true, "ipam_options": {"driver": "host-local"}}}}
EOF
        t0=$(date +%s%N)
        "$NETAVARK" --config "$work/netavark" --aardvark-binary "$AARDVARK" setup "/run/netns/$ns" \
            <"$work/netavark-in/$i.json" >/dev/null 2>"$work/netavark.err" || { cat "$work/netavark.err" >&2; return 1; }
        t1=$(date +%s%N)
        echo "$(((t1 - t0) / 1000))" >>"$work/netavark-setup-us"
    done
    for i in $(seq "$ATTACH_COUNT"); do
        t0=$(date +%s%N)
        "$NETAVARK" --config "$work/netavark" --aardvark-binary "$AARDVARK" teardown "/run/netns/$tag-nv$i" \
            <"$work/netavark-in/$i.json" >/dev/null 2>"$work/netavark.err" || { cat "$work/netavark.err" >&2; return 1; }
        t1=$(date +%s%N)
        echo "$(((t1 - t0) / 1000))" >>"$work/netavark-teardown-us"
        ip netns del "$tag-nv$i" || return 1
    done
}

if [ "$PEERS" = 1 ]; then
    echo "== attach peer: netavark setup/teardown of $ATTACH_COUNT fresh namespaces (bridge, veth, iptables, aardvark-dns)"
    if netavark_attach; then
        p() { sort -g "$1" | awk -v q="$2" '{a[NR]=$1} END {r = int(q * NR + 0.999999); if (r < 1) r = 1; printf "%.2f", a[r] / 1000}'; }
        f="$work/netavark-setup-us"
        g="$work/netavark-teardown-us"
        echo "count=$ATTACH_COUNT connect_p50_ms=$(p "$f" 0.5) connect_p90_ms=$(p "$f" 0.9) connect_max_ms=$(p "$f" 1)" \
            "disconnect_p50_ms=$(p "$g" 0.5) disconnect_p90_ms=$(p "$g" 0.9) disconnect_max_ms=$(p "$g" 1)" |
            tee "$work/attach-netavark" | sed 's/^/  netavark: /'
    else
        echo "netavark peer failed: its attach figures are n/a" >&2
    fi
fi

# --- table --------------------------------------------------------------------------------------------------
m() { field "$2" <"$work/$1" | median; } # $1 file, $2 key -> median over rounds
tm() { median <"$work/tcp-$1"; }
echo
echo "berth-netd network figures (medians of $RUNS rounds; $(nproc) CPUs, load before the run: $load_before)"
printf '%-44s %12s %12s %9s  %s\n' figure berth peer berth/peer target
row() { printf '%-44s %12s %12s %9s  %s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4"; }
failed() { grep -ohE '\b(bad|lost)=[0-9]+' "$work"/dns-"$1"-* | cut -d= -f2 | awk '{s += $1} END {print s + 0}'; }
for i in $INFLIGHT; do
    row "DNS qps, $i in flight (peer: aardvark-dns)" "$(m "dns-berth-$i" qps)" "$(m "dns-aardvark-$i" qps)" ">= 20000"
    row "DNS p50 latency us, $i in flight" "$(m "dns-berth-$i" p50_us)" "$(m "dns-aardvark-$i" p50_us)" ""
    row "DNS p99 latency us, $i in flight" "$(m "dns-berth-$i" p99_us)" "$(m "dns-aardvark-$i" p99_us)" "< 1000"
done
row "DNS answers bad or lost (all rounds)" "$(failed berth)" "$(failed aardvark)" "0"
na() { [ -f "$work/attach-netavark" ] && field "$1" <"$work/attach-netavark" || echo n/a; }
row "attach median ms, n=$ATTACH_COUNT (peer: netavark setup)" "$(field connect_p50_ms <"$work/attach-berth")" "$(na connect_p50_ms)" "< 5"
row "attach p90 ms" "$(field connect_p90_ms <"$work/attach-berth")" "$(na connect_p90_ms)" ""
row "detach median ms (peer: netavark teardown)" "$(field disconnect_p50_ms <"$work/attach-berth")" "$(na disconnect_p50_ms)" ""
if [ -n "$podman_ip" ]; then
    pp=$(tm podman-published)
    pd=$(tm podman-direct)
else
    pp=n/a
    pd=n/a
fi
bp=$(tm berth-published)
bd=$(tm berth-direct)
row "TCP Gbit/s via 127.0.0.1 published port" "$bp" "$pp" ""
row "TCP Gbit/s direct to the container" "$bd" "$pd" ""
row "published / direct (peer: podman -p)" "$(ratio "$bp" "$bd")" "$(ratio "$pp" "$pd")" ">= 0.9"
