//! Tests of the model as a whole: a full canonical project read and printed back, and extensions kept.

use serde_json::json;

use super::*;

/// A project using every part of the model, in canonical form. JSON text rather than `json!`, which would
/// exceed the macro recursion limit at this size.
const FULL_PROJECT: &str = r#"
{
  "name": "full",
  "services": {
    "web": {
      "profiles": ["debug"],
      "annotations": {"com.example.foo": "bar"},
      "attach": false,
      "build": {
        "context": "./app",
        "dockerfile": "Dockerfile",
        "entitlements": ["network.host"],
        "args": {"A": "1", "UNSET": null},
        "provenance": "mode=max",
        "ssh": ["default", "key=./id"],
        "labels": {"l": "v"},
        "cache_from": ["type=local,src=/tmp"],
        "no_cache": true,
        "no_cache_filter": ["base"],
        "additional_contexts": {"extra": "../extra"},
        "extra_hosts": ["build-host=10.0.0.9"],
        "network": "host",
        "target": "prod",
        "secrets": [{"source": "token", "target": "tok"}],
        "shm_size": 268435456,
        "tags": ["web:1"],
        "ulimits": {"nofile": {"soft": 1024, "hard": 2048}},
        "platforms": ["linux/amd64"],
        "privileged": true,
        "x-build": {"k": 1}
      },
      "develop": {
        "watch": [
          {"path": "./src", "action": "sync", "target": "/app", "ignore": ["*.tmp"], "initial_sync": true},
          {
            "path": "./pkg",
            "action": "sync+exec",
            "target": "/pkg",
            "exec": {"command": ["make"], "user": "root"}
          }
        ]
      },
      "blkio_config": {
        "weight": 300,
        "weight_device": [{"path": "/dev/sda", "weight": 400}],
        "device_read_bps": [{"path": "/dev/sda", "rate": 12582912}]
      },
      "cap_add": ["NET_ADMIN"],
      "cap_drop": ["ALL"],
      "cgroup": "private",
      "cpu_count": 2,
      "cpu_percent": 50,
      "cpus": 0.5,
      "cpu_shares": 512,
      "command": ["bundle", "exec", "thin"],
      "configs": [{"source": "cfg", "target": "/etc/cfg", "uid": "103", "gid": "103", "mode": "0440"}],
      "container_name": "web-1",
      "credential_spec": {"file": "spec.json"},
      "depends_on": {
        "db": {"condition": "service_healthy", "restart": true, "required": true},
        "cache": {"condition": "service_started", "required": false}
      },
      "deploy": {
        "mode": "replicated",
        "replicas": 2,
        "labels": {"tier": "front"},
        "update_config": {
          "parallelism": 1,
          "delay": "10s",
          "monitor": "1m0s",
          "max_failure_ratio": 0.3,
          "order": "start-first"
        },
        "resources": {
          "limits": {"cpus": 0.5, "memory": 52428800, "pids": 100},
          "reservations": {
            "cpus": 0.25,
            "memory": 20971520,
            "generic_resources": [{"discrete_resource_spec": {"kind": "ssd", "value": 1}}],
            "devices": [{"capabilities": ["gpu"], "count": "all", "driver": "nvidia"}]
          }
        },
        "restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 3, "window": "2m0s"},
        "placement": {
          "constraints": ["node.role==manager"],
          "preferences": [{"spread": "node.labels.az"}],
          "max_replicas_per_node": 5
        },
        "endpoint_mode": "dnsrr"
      },
      "devices": [{"source": "/dev/ttyUSB0", "target": "/dev/ttyUSB0", "permissions": "rwm"}],
      "dns": ["8.8.8.8"],
      "entrypoint": [],
      "environment": {"FOO": "bar", "UNSET": null},
      "env_file": [{"path": "a.env", "required": true}, {"path": "b.env", "required": false, "format": "raw"}],
      "expose": ["3000"],
      "extra_hosts": ["other=::1", "somehost=162.242.195.82"],
      "group_add": ["mail"],
      "gpus": [{"capabilities": ["gpu"], "count": 2}],
      "healthcheck": {
        "test": ["CMD-SHELL", "curl -f http://localhost"],
        "timeout": "1s",
        "interval": "1m30s",
        "retries": 5,
        "start_period": "15s",
        "start_interval": "500ms"
      },
      "image": "redis",
      "init": true,
      "labels": {"com.example.description": "webapp"},
      "label_file": ["labels.env"],
      "logging": {"driver": "syslog", "options": {"syslog-address": "tcp://192.168.0.42:123", "tag": null}},
      "mem_limit": 536870912,
      "memswap_limit": -1,
      "models": {"llm": {"endpoint_var": "LLM_URL"}, "embed": null},
      "networks": {
        "front": {
          "aliases": ["www"],
          "ipv4_address": "172.16.238.10",
          "priority": 100,
          "driver_opts": {"com.example.mtu": "1400"}
        },
        "back": null
      },
      "oom_score_adj": -500,
      "pids_limit": -1,
      "ports": [
        {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"},
        {
          "name": "metrics",
          "mode": "host",
          "host_ip": "127.0.0.1",
          "target": 9090,
          "published": "9000-9010",
          "protocol": "udp",
          "app_protocol": "http",
          "x-port": true
        }
      ],
      "privileged": true,
      "pull_policy": "every_12h",
      "read_only": true,
      "restart": "unless-stopped",
      "secrets": [{"source": "token", "target": "/run/secrets/token"}],
      "shm_size": 67108864,
      "stop_grace_period": "20s",
      "stop_signal": "SIGUSR1",
      "storage_opt": {"size": "20G"},
      "sysctls": {"net.core.somaxconn": "1024"},
      "tmpfs": ["/run"],
      "tty": true,
      "ulimits": {"nproc": {"soft": 65535, "hard": 65535}},
      "use_api_socket": true,
      "user": "someone",
      "volumes": [
        {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": true, "subpath": "sub"}},
        {
          "type": "bind",
          "source": "/opt",
          "target": "/opt",
          "read_only": true,
          "bind": {"propagation": "rslave", "create_host_path": true, "selinux": "Z", "recursive": "readonly"}
        },
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 10000, "mode": 1023}},
        {"type": "image", "source": "alpine", "target": "/img", "image": {"subpath": "etc"}}
      ],
      "working_dir": "/code",
      "pre_start": [{"command": ["migrate"], "image": "tools", "per_replica": true}],
      "post_start": [{"command": ["touch", "/started"], "environment": {"X": "1"}}],
      "pre_stop": [{"command": ["sync"], "privileged": true}],
      "x-web": "kept"
    },
    "plugin": {"provider": {"type": "model", "options": {"model": ["ai/smollm2"]}}}
  },
  "networks": {
    "front": {
      "driver": "bridge",
      "driver_opts": {"mtu": "1400"},
      "ipam": {
        "driver": "default",
        "config": [
          {
            "subnet": "172.28.0.0/16",
            "ip_range": "172.28.5.0/24",
            "gateway": "172.28.5.254",
            "aux_addresses": {"host1": "172.28.1.5"}
          }
        ]
      },
      "internal": true,
      "attachable": true,
      "labels": {"n": "1"},
      "enable_ipv6": true
    },
    "outside": {"name": "real-net", "external": true, "x-net": 1}
  },
  "volumes": {
    "data": {"driver": "local", "driver_opts": {"type": "nfs"}, "labels": {"v": "1"}},
    "old": {"name": "legacy", "external": true}
  },
  "secrets": {"token": {"file": "./token.txt"}, "env_secret": {"environment": "TOKEN", "x-s": "s"}},
  "configs": {"cfg": {"content": "hello"}, "ext": {"name": "shared", "external": true}},
  "models": {"llm": {"model": "ai/smollm2", "context_size": 4096, "runtime_flags": ["--verbose"]}},
  "x-top": {"nested": [1, 2]}
}
"#;

pub(crate) fn full_project_json() -> serde_json::Value {
    match serde_json::from_str(FULL_PROJECT) {
        Ok(v) => v,
        Err(e) => panic!("the fixture is not JSON: {e}"),
    }
}

fn project() -> Project {
    match serde_json::from_value(full_project_json()) {
        Ok(p) => p,
        Err(e) => panic!("the full project does not decode: {e}"),
    }
}

#[test]
fn full_project_round_trips() {
    let p = project();
    let printed = match serde_json::to_value(&p) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(printed, full_project_json());
    let again: Project = serde_json::from_value(printed).unwrap_or_default();
    assert_eq!(again, p);
}

#[test]
fn decodes_typed_values() {
    let p = project();
    let web = &p.services["web"];
    assert_eq!(web.cpus, Some(0.5));
    assert_eq!(web.mem_limit, Some(ByteSize(512 << 20)));
    assert_eq!(web.memswap_limit, Some(ByteSize(-1)));
    assert_eq!(web.stop_grace_period, Some(Duration::from_secs(20)));
    assert_eq!(web.healthcheck.as_ref().and_then(|h| h.interval), Some(Duration::from_secs(90)));
    assert_eq!(web.configs[0].mode, Some(FileMode(0o440)));
    assert_eq!(web.entrypoint, Some(Vec::new()), "an empty entrypoint clears the image's");
    assert_eq!(web.command.as_ref().map(Vec::len), Some(3));
    assert_eq!(web.depends_on["db"].condition, DependencyCondition::ServiceHealthy);
    assert!(!web.depends_on["cache"].required);
    assert_eq!(web.ports[1].published.as_deref(), Some("9000-9010"));
    assert_eq!(web.volumes[1].kind, MountType::Bind);
    assert_eq!(web.volumes[1].bind.as_ref().and_then(|b| b.selinux), Some(SelinuxLabel::Private));
    assert_eq!(web.extra_hosts.0["other"], vec!["::1"]);
    assert_eq!(web.networks["back"], None);
    assert_eq!(web.models["embed"], None);
    assert_eq!(web.environment["UNSET"], None);
    let devices = web.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.reservations.as_ref());
    assert_eq!(devices.map(|r| r.devices[0].count), Some(Some(DeviceCount::All)));
    assert_eq!(p.services["plugin"].provider.as_ref().map(|p| p.kind.as_str()), Some("model"));
    assert!(p.networks["outside"].external);
}

#[test]
fn extensions_are_kept_and_version_dropped() {
    let mut j = full_project_json();
    j["version"] = json!("3.8");
    let p: Project = serde_json::from_value(j).unwrap_or_default();
    assert_eq!(p.extensions.get("x-top"), Some(&json!({"nested": [1, 2]})));
    assert!(!p.extensions.contains_key("version"));
    assert_eq!(p.services["web"].extensions.get("x-web"), Some(&json!("kept")));
    assert_eq!(p.services["web"].ports[1].extensions.get("x-port"), Some(&json!(true)));
    assert_eq!(p.services["web"].build.as_ref().and_then(|b| b.extensions.get("x-build")), Some(&json!({"k": 1})));
    assert_eq!(p.networks["outside"].extensions.get("x-net"), Some(&json!(1)));
    assert_eq!(p.secrets["env_secret"].extensions.get("x-s"), Some(&json!("s")));
    let printed = serde_json::to_value(&p).unwrap_or_default();
    assert!(printed.get("version").is_none());
    assert_eq!(printed["services"]["web"]["x-web"], "kept");
}

#[test]
fn defaults_of_the_long_forms() {
    let p: Project = serde_json::from_value(json!({"services": {"a": {
        "depends_on": {"b": {"condition": "service_started"}},
        "env_file": [{"path": "x.env"}],
    }}}))
    .unwrap_or_default();
    let a = &p.services["a"];
    assert!(a.depends_on["b"].required, "a dependency is required unless it says otherwise");
    assert!(a.env_file[0].required);
    // Both are printed even at their defaults, as compose prints them.
    let printed = serde_json::to_value(a).unwrap_or_default();
    assert_eq!(printed["depends_on"]["b"], json!({"condition": "service_started", "required": true}));
    assert_eq!(printed["env_file"][0], json!({"path": "x.env", "required": true}));
    assert_eq!(serde_json::to_value(Service::default()).ok(), Some(json!({})));
}

#[test]
fn prints_like_compose_config() {
    let p: Project = serde_json::from_value(json!({"services": {"a": {
        "extra_hosts": {"zz": ["10.0.0.2"], "aa": ["10.0.0.1", "::1"]},
        "mem_limit": "512m",
        "stop_grace_period": "90s",
        "secrets": [{"source": "s", "mode": 288}],
        "gpus": [{"count": -1}],
    }}}))
    .unwrap_or_default();
    let a = serde_json::to_value(&p.services["a"]).unwrap_or_default();
    assert_eq!(a["extra_hosts"], json!(["aa=10.0.0.1", "aa=::1", "zz=10.0.0.2"]));
    assert_eq!(a["mem_limit"], json!(536_870_912));
    assert_eq!(a["stop_grace_period"], json!("1m30s"));
    assert_eq!(a["secrets"][0]["mode"], json!("0440"));
    assert_eq!(a["gpus"][0]["count"], json!("all"));
}
