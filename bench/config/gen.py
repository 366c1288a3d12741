#!/usr/bin/env python3
"""Write the compose files of the `berth config` benchmark into a directory.

    gen.py OUT_DIR [N ...]

For each N (default: 200 and 3) writes OUT_DIR/compose-N.yaml: N services with published ports, bind and named
volumes, environment (map and list forms, with `${VAR:-default}` interpolation), depends_on chains (every service
but the first of each chain of 10 depends on the one before it, `service_healthy` when that one has a healthcheck),
healthchecks, networks, labels, and a shared `x-common` block merged in with `<<: *common`. The output is fixed for
a given N (no randomness), so runs on different days load the same bytes.
"""

import os
import sys

CHAIN = 10  # services per depends_on chain
NETWORKS = ["front", "back", "data", "ops"]


def service(i: int) -> list[str]:
    name = f"svc{i:03d}"
    chain_pos = i % CHAIN
    healthy = i % 3 == 0
    lines = [
        f"  {name}:",
        "    <<: *common",
        f"    image: registry.example.com/team/{name}:${{TAG:-1.{i % 7}.0}}",
        f'    command: ["/bin/app", "--name", "{name}", "--port", "{8000 + i}"]',
        f"    container_name: bench_{name}",
        f"    hostname: {name}",
        "    ports:",
        f'      - "{10000 + i}:{8000 + i}"',
        f'      - "127.0.0.1:{20000 + i}:9000/udp"',
        "      - target: 9100",
        f"        published: \"{30000 + i}\"",
        "        protocol: tcp",
        "    volumes:",
        f"      - ./data/{name}:/var/lib/{name}",
        f"      - vol{i % 20:02d}:/cache",
        "      - type: tmpfs",
        "        target: /tmp",
        "    environment:",
        f"      SERVICE_NAME: {name}",
        f"      SERVICE_INDEX: \"{i}\"",
        "      LOG_LEVEL: ${LOG_LEVEL:-info}",
        f"      UPSTREAM: http://svc{max(i - 1, 0):03d}:{8000 + max(i - 1, 0)}",
        "      EMPTY:",
    ]
    lines += [
        "    labels:",
        f"      com.example.service: {name}",
        f"      com.example.tier: \"{['web', 'api', 'worker', 'db'][i % 4]}\"",
        f"      com.example.chain: \"{i // CHAIN}\"",
        "    networks:",
        f"      {NETWORKS[i % 4]}:",
        f"        aliases: [{name}-alias]",
        f"      {NETWORKS[(i + 1) % 4]}: {{}}",
    ]
    if healthy:
        lines += [
            "    healthcheck:",
            f'      test: ["CMD", "wget", "-q", "-O-", "http://localhost:{8000 + i}/health"]',
            "      interval: 10s",
            "      timeout: 3s",
            "      retries: 5",
            "      start_period: 30s",
        ]
    if chain_pos > 0:
        prev = i - 1
        condition = "service_healthy" if prev % 3 == 0 else "service_started"
        lines += [
            "    depends_on:",
            f"      svc{prev:03d}:",
            f"        condition: {condition}",
        ]
        if chain_pos > 1:
            lines += [
                f"      svc{i - chain_pos:03d}:",
                "        condition: service_started",
                "        required: false",
            ]
    return lines


def compose(n: int) -> str:
    out = [
        f"name: bench{n}",
        "x-common: &common",
        "  restart: unless-stopped",
        "  stop_grace_period: 5s",
        "  logging:",
        "    driver: json-file",
        "    options:",
        '      max-size: "10m"',
        "  ulimits:",
        "    nofile:",
        "      soft: 1024",
        "      hard: 4096",
        "services:",
    ]
    for i in range(n):
        out += service(i)
    out.append("networks:")
    for net in NETWORKS:
        out += [f"  {net}:", "    driver: bridge", "    labels:", f"      com.example.net: {net}"]
    out.append("volumes:")
    for v in range(min(n, 20)):
        out += [f"  vol{v:02d}:", "    labels:", f"      com.example.volume: \"{v}\""]
    return "\n".join(out) + "\n"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    sizes = [int(a) for a in sys.argv[2:]] or [200, 3]
    os.makedirs(out_dir, exist_ok=True)
    for n in sizes:
        path = os.path.join(out_dir, f"compose-{n}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(compose(n))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
