//! "Every file that the Compose Specification's schema accepts, berth accepts", checked on a corpus.
//!
//! `tests/corpus/` holds compose files written the way people write them (a web app, a stack file, a dev file
//! with `develop.watch`, a file of short syntax, one of long syntax, …). Together they use every property the
//! official schema (`shared/compose/compose-spec.json`, draft-07) defines and `x-` extensions everywhere the
//! schema allows them; [`corpus_uses_every_property_of_the_schema`] keeps it that way. Each file is
//!
//! 1. validated as written (before interpolation, as Docker Compose does) against the official schema, so the
//!    corpus is honest: nothing here is outside the specification;
//! 2. loaded by berth with interpolation on and the fixed environment [`ENV`], with a few canonical values
//!    checked per file (a short port expanded, a duration normalized, an env_file merged, …).
//!
//! `tests/corpus/invalid/` holds small files the schema rejects; berth must reject them too, pointing at the file
//! and the line. `tests/corpus/known-failures/` holds files that once failed in berth although the schema accepts
//! them (Windows paths, `external: {}`, durations for cpu_rt_*, free-form network names); they load now, except
//! fractional counts, which Docker Compose rejects too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use berth_orchestrator::compose::LoadError;
use berth_orchestrator::compose::loader::{Env, LoadOptions, load};
use serde_json::{Value, json};

/// The process environment every corpus project is loaded with.
const ENV: &[(&str, &str)] = &[
    ("HOME", "/home/tester"),
    ("USER_NAME", "alice"),
    ("REGISTRY", "registry.example.com"),
    ("TAG", "2.1.0"),
    ("API_PORT", "8081"),
    ("DB_HOST", "db.internal"),
    ("GREETING_WORD", "Hello"),
    ("EMPTY_VAR", ""),
    ("CPUS", "0.5"),
    ("READ_ONLY", "true"),
    ("HC_INTERVAL", "500ms"),
    ("HC_RETRIES", "4"),
    ("GIT_SHA", "abc123"),
];

/// Every project of the corpus: its files (in `-f` order) and the profiles to enable. Every `*.yaml` directly in
/// `tests/corpus/` must appear here (files in subdirectories are reached through `include` or `extends`).
const PROJECTS: &[(&[&str], &[&str])] = &[
    (&["webapp.yaml"], &[]),
    (&["swarm-stack.yaml"], &[]),
    (&["dev-watch.yaml"], &[]),
    (&["short-syntax.yaml"], &[]),
    (&["long-syntax.yaml"], &[]),
    (&["host-tuning.yaml"], &["all", "windows"]),
    (&["networks-volumes.yaml"], &[]),
    (&["ai-models.yaml"], &[]),
    (&["include.yaml"], &[]),
    (&["extends.yaml"], &[]),
    (&["anchors-extensions.yaml"], &[]),
    (&["interpolation.yaml"], &[]),
    (&["legacy-v3.yaml"], &[]),
    (&["stringly-typed.yaml"], &[]),
    (&["override-base.yaml", "override-prod.yaml"], &[]),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn dir_str() -> String {
    corpus().to_string_lossy().into_owned()
}

// ---- the official schema ----

static SPEC: LazyLock<Value> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compose/compose-spec.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
});

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::draft7::new(&SPEC).unwrap_or_else(|e| panic!("the spec schema does not compile: {e}"))
});

/// A compose file as the schema sees it: YAML with anchors and merge keys resolved, `!reset`/`!override` tags
/// dropped (they mark values, they are not values), mapping keys as strings.
fn raw_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    yaml.apply_merge().unwrap_or_else(|e| panic!("{}: bad merge key: {e}", path.display()));
    yaml_to_json(yaml)
}

fn yaml_to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match yaml_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn schema_errors(path: &Path) -> Vec<String> {
    let doc = raw_json(path);
    VALIDATOR.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Every `*.yaml` under `dir`, recursively, sorted (compose files here are `.yaml`; other files are data).
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn is_invalid_case(p: &Path) -> bool {
    p.starts_with(corpus().join("invalid"))
}

#[test]
fn spec_accepts_every_corpus_file() {
    let files: Vec<PathBuf> = yaml_files(&corpus()).into_iter().filter(|p| !is_invalid_case(p)).collect();
    assert!(files.len() >= 20, "the corpus shrank: {files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let errors = schema_errors(f);
        if !errors.is_empty() {
            failures.push(format!("{}:\n  {}", f.display(), errors.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "the spec rejects corpus files:\n{}", failures.join("\n"));
}

#[test]
fn spec_rejects_every_invalid_file() {
    let files = yaml_files(&corpus().join("invalid"));
    assert_eq!(files.len(), INVALID.len(), "every file in corpus/invalid needs an entry in INVALID");
    for f in &files {
        assert!(!schema_errors(f).is_empty(), "{} is meant to be invalid, the spec accepts it", f.display());
    }
}

// ---- coverage of the schema ----

/// Schema locations no document can reach: the schema puts `patternProperties: {"^x-": {}}` on the array
/// branch of `gpus`, where there are no keys.
const UNREACHABLE: &[&str] = &["#/definitions/gpus/oneOf/1"];

/// Every `.../properties/NAME` of the schema, and every object that admits `x-` keys, as JSON pointers.
fn schema_locations(node: &Value, ptr: &str, props: &mut BTreeSet<String>, ext: &mut BTreeSet<String>) {
    match node {
        Value::Object(m) => {
            if let Some(Value::Object(p)) = m.get("properties") {
                props.extend(p.keys().map(|k| format!("{ptr}/properties/{k}")));
            }
            if m.get("patternProperties").and_then(|p| p.get("^x-")).is_some() {
                ext.insert(ptr.to_string());
            }
            for (k, v) in m {
                schema_locations(v, &format!("{ptr}/{k}"), props, ext);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                schema_locations(v, &format!("{ptr}/{i}"), props, ext);
            }
        }
        _ => {}
    }
}

/// The handful of key patterns the schema uses. A new one fails loudly so this walk is updated.
fn pattern_matches(pattern: &str, key: &str) -> bool {
    let name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    match pattern {
        "^x-" => key.starts_with("x-"),
        ".+" | "^.+$" => !key.is_empty(),
        "^[a-zA-Z0-9._-]+$" => !key.is_empty() && key.chars().all(name),
        "^[a-z]+$" => !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase()),
        other => panic!("the schema uses a key pattern this test does not know: {other}"),
    }
}

/// Walk a document along the schema, recording which properties and which `x-` slots it uses.
fn walk(doc: &Value, schema: &Value, ptr: &str, props: &mut BTreeSet<String>, ext: &mut BTreeSet<String>) {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let resolved = SPEC.pointer(target.trim_start_matches('#')).unwrap_or_else(|| panic!("bad $ref {target}"));
        return walk(doc, resolved, target, props, ext);
    }
    for kw in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(branches)) = schema.get(kw) {
            for (i, b) in branches.iter().enumerate() {
                walk(doc, b, &format!("{ptr}/{kw}/{i}"), props, ext);
            }
        }
    }
    match doc {
        Value::Object(m) => {
            let known = schema.get("properties").and_then(Value::as_object);
            for (k, v) in m {
                if let Some(sub) = known.and_then(|p| p.get(k)) {
                    let at = format!("{ptr}/properties/{k}");
                    walk(v, sub, &at, props, ext);
                    props.insert(at);
                    continue;
                }
                let Some(Value::Object(patterns)) = schema.get("patternProperties") else {
                    continue;
                };
                for (pattern, sub) in patterns {
                    if !pattern_matches(pattern, k) {
                        continue;
                    }
                    if pattern == "^x-" {
                        ext.insert(ptr.to_string());
                    } else {
                        walk(v, sub, &format!("{ptr}/patternProperties/{pattern}"), props, ext);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for item in items {
                    walk(item, sub, &format!("{ptr}/items"), props, ext);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn corpus_uses_every_property_of_the_schema() {
    let (mut all_props, mut all_ext) = (BTreeSet::new(), BTreeSet::new());
    schema_locations(&SPEC, "#", &mut all_props, &mut all_ext);
    for u in UNREACHABLE {
        all_ext.remove(*u);
    }
    let (mut used_props, mut used_ext) = (BTreeSet::new(), BTreeSet::new());
    for f in yaml_files(&corpus()).into_iter().filter(|p| !is_invalid_case(p)) {
        walk(&raw_json(&f), &SPEC, "#", &mut used_props, &mut used_ext);
    }
    let missing: Vec<&String> = all_props.difference(&used_props).collect();
    assert!(missing.is_empty(), "no corpus file uses these properties of the spec: {missing:#?}");
    let missing_ext: Vec<&String> = all_ext.difference(&used_ext).collect();
    assert!(missing_ext.is_empty(), "no corpus file puts an x- key in these objects: {missing_ext:#?}");
    assert!(all_props.len() > 300, "suspiciously few properties found in the schema: {}", all_props.len());
}

// ---- loading ----

fn options(files: &[&str], profiles: &[&str]) -> LoadOptions {
    LoadOptions {
        config_files: files.iter().map(|f| corpus().join(f)).collect(),
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        interpolate: true,
        environment: ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Env>(),
        working_dir: corpus(),
        ..Default::default()
    }
}

/// Load a project of the corpus and return its canonical form as JSON.
fn load_ok(files: &[&str], profiles: &[&str]) -> Value {
    match load(&options(files, profiles)) {
        Ok(l) => {
            serde_json::to_value(&l.project).unwrap_or_else(|e| panic!("{files:?}: project does not serialize: {e}"))
        }
        Err(e) => panic!("{files:?} is valid per the spec, berth rejects it:\n{e}"),
    }
}

fn load_err(file: &str) -> LoadError {
    match load(&options(&[file], &[])) {
        Ok(l) => panic!(
            "{file} is invalid per the spec, berth loads it: {:?}",
            l.project.services.keys().collect::<Vec<_>>()
        ),
        Err(e) => e,
    }
}

#[test]
fn every_project_loads() {
    let listed: BTreeSet<&str> = PROJECTS.iter().flat_map(|(files, _)| files.iter().copied()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("cannot list the corpus: {e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    let unlisted: Vec<&String> = on_disk.iter().filter(|n| !listed.contains(n.as_str())).collect();
    assert!(unlisted.is_empty(), "corpus files missing from PROJECTS: {unlisted:?}");
    for (files, profiles) in PROJECTS {
        load_ok(files, profiles);
    }
}

#[test]
fn webapp() {
    let j = load_ok(&["webapp.yaml"], &[]);
    let s = &j["services"];
    assert_eq!(j["name"], "shop");
    assert_eq!(s["proxy"]["ports"][0], json!({"mode": "ingress", "target": 80, "published": "80", "protocol": "tcp"}));
    assert_eq!(s["web"]["image"], "shop/web:2.1.0");
    assert_eq!(s["web"]["build"]["context"], format!("{}/web", dir_str()));
    assert_eq!(s["web"]["build"]["dockerfile"], "Dockerfile");
    assert_eq!(s["web"]["command"], json!(["gunicorn", "app:app", "--bind", "0.0.0.0:8000", "--workers", "4"]));
    // env_file first, environment over it; numbers become strings; the optional missing file is skipped.
    let env = &s["web"]["environment"];
    assert_eq!(env["SECRET_KEY"], "change-me");
    assert_eq!(env["DEBUG"], "false");
    assert_eq!(env["ALLOWED_HOSTS"], "shop.example.com,localhost");
    assert_eq!(env["WORKERS"], "4");
    // The healthcheck merge key brings the defaults; the service's own keys win.
    assert_eq!(s["web"]["healthcheck"]["interval"], "1m30s");
    assert_eq!(s["web"]["healthcheck"]["start_interval"], "500ms");
    assert_eq!(s["db"]["healthcheck"]["interval"], "5s");
    assert_eq!(s["db"]["healthcheck"]["retries"], 3);
    assert_eq!(s["web"]["stop_grace_period"], "1m0s");
    assert_eq!(s["cache"]["mem_limit"], 512 * 1024 * 1024);
    assert_eq!(s["db"]["shm_size"], 256 * 1024 * 1024);
    assert_eq!(
        s["proxy"]["depends_on"]["web"],
        json!({"condition": "service_healthy", "restart": true, "required": true})
    );
    assert_eq!(s["web"]["depends_on"]["cache"]["required"], false);
    assert_eq!(s["proxy"]["logging"]["options"]["max-file"], "3");
    assert_eq!(j["networks"]["back"], json!({"name": "shop_back", "internal": true}));
    assert_eq!(j["secrets"]["db_password"]["file"], format!("{}/secrets/db_password.txt", dir_str()));
    assert_eq!(j["volumes"]["db-data"]["name"], "shop_db-data");
    assert!(j.get("version").is_none(), "the obsolete version key is dropped");
}

#[test]
fn swarm_stack() {
    let j = load_ok(&["swarm-stack.yaml"], &[]);
    let api = &j["services"]["api"];
    let d = &api["deploy"];
    assert_eq!(d["replicas"], 6);
    assert_eq!(d["labels"]["com.example.tier"], "backend");
    assert_eq!(d["resources"]["limits"]["cpus"], 0.5);
    assert_eq!(d["resources"]["limits"]["memory"], 512 * 1024 * 1024);
    assert_eq!(d["resources"]["reservations"]["memory"], 128 * 1024 * 1024);
    assert_eq!(d["resources"]["reservations"]["generic_resources"][1]["discrete_resource_spec"]["kind"], "FPGA");
    assert_eq!(d["resources"]["reservations"]["devices"][1]["device_ids"], json!(["GPU-0", "GPU-1"]));
    assert_eq!(d["restart_policy"]["window"], "2m0s");
    assert_eq!(d["update_config"]["monitor"], "1m0s");
    assert_eq!(d["update_config"]["order"], "start-first");
    assert_eq!(d["rollback_config"]["monitor"], "1h0m0s");
    assert_eq!(d["placement"]["preferences"][1]["spread"], "node.id");
    assert_eq!(d["placement"]["max_replicas_per_node"], 2);
    assert_eq!(api["ports"][0]["published"], "80");
    assert_eq!(j["services"]["node-exporter"]["deploy"]["mode"], "global");
    assert_eq!(j["services"]["node-exporter"]["deploy"]["endpoint_mode"], "dnsrr");
    assert_eq!(j["services"]["migrate"]["deploy"]["mode"], "replicated-job");
    assert_eq!(j["networks"]["ingress-ext"], json!({"name": "host_ingress", "external": true}));
    assert_eq!(j["networks"]["backend"]["driver_opts"]["encrypted"], "true");
    assert_eq!(j["secrets"]["tls_cert"], json!({"name": "shop_tls_cert_v3", "external": true}));
    assert_eq!(j["secrets"]["signing_key"]["driver_opts"]["ttl"], "3600");
    assert_eq!(j["configs"]["feature_flags"]["environment"], "FEATURE_FLAGS");
    assert_eq!(j["configs"]["feature_flags"]["labels"]["com.example.kind"], "flags");
}

#[test]
fn dev_watch() {
    let j = load_ok(&["dev-watch.yaml"], &[]);
    let fe = &j["services"]["frontend"];
    let b = &fe["build"];
    assert_eq!(b["context"], format!("{}/frontend", dir_str()));
    assert_eq!(b["args"]["NODE_VERSION"], "22");
    assert_eq!(b["args"]["API_URL"], "http://localhost:8080");
    assert_eq!(b["additional_contexts"]["base"], "docker-image://node:22-alpine");
    assert_eq!(b["shm_size"], 2 * 1024 * 1024 * 1024_i64);
    assert_eq!(b["tags"][1], "frontend:alice");
    assert_eq!(b["ulimits"]["nofile"], json!({"soft": 1024, "hard": 4096}));
    assert_eq!(b["x-bake"]["output"], "type=docker");
    let watch = &fe["develop"]["watch"];
    assert_eq!(watch[0]["path"], format!("{}/frontend/src", dir_str()));
    assert_eq!(watch[0]["initial_sync"], true);
    assert_eq!(watch[3]["include"], json!(["*.html"]), "a string include becomes a list");
    assert_eq!(watch[4]["ignore"], json!(["tmp/"]));
    assert_eq!(watch[4]["exec"]["command"], json!(["npm", "run", "i18n:compile"]));
    assert_eq!(fe["develop"]["x-dev-tool"], "tilt");
    assert_eq!(fe["post_start"][0]["environment"]["STAGE"], "post_start");
    assert_eq!(fe["pre_stop"][0]["command"], json!(["./scripts/drain.sh", "--timeout", "30s"]));
    let docs = &j["services"]["docs"];
    assert_eq!(docs["use_api_socket"], true);
    assert!(docs["build"].get("dockerfile").is_none(), "no default Dockerfile next to dockerfile_inline");
    assert_eq!(docs["build"]["args"]["HUGO_ENV"], "development");
    assert!(j["services"]["agent"].get("develop").is_none(), "develop: null is no develop section");
}

#[test]
fn dev_watch_build_args_resolve_from_the_environment() {
    let j = load_ok(&["dev-watch.yaml"], &[]);
    let docs = &j["services"]["docs"]["build"]["args"];
    assert_eq!(docs["GIT_SHA"], "abc123", "a bare arg takes its value from the environment");
    assert!(docs.get("BASE_URL").is_none(), "an unset bare arg is dropped");
    assert!(j["services"]["frontend"]["build"]["args"].get("EMPTY_ARG").is_none(), "an unset null arg is dropped");
}

#[test]
fn dev_watch_label_file_is_merged_into_labels() {
    let j = load_ok(&["dev-watch.yaml"], &[]);
    assert_eq!(j["services"]["frontend"]["labels"]["com.example.team"], "web");
    assert_eq!(j["services"]["frontend"]["labels"]["com.example.stage"], "dev");
}

#[test]
fn short_syntax() {
    let j = load_ok(&["short-syntax.yaml"], &[]);
    let app = &j["services"]["app"];
    let ports = app["ports"].as_array().cloned().unwrap_or_default();
    let port = |target: u64, protocol: &str| -> Value {
        ports
            .iter()
            .find(|p| p["target"] == target && p["protocol"] == protocol)
            .cloned()
            .unwrap_or_else(|| panic!("no port {target}/{protocol} in {ports:#?}"))
    };
    // 13 entries, ranges expanded: 1 + 3 + 1 + 2 + 1 + 1 + 3 + 1 + 1 + 1 + 1 + 1 + 1.
    assert_eq!(ports.len(), 18);
    assert_eq!(port(3000, "tcp"), json!({"mode": "ingress", "target": 3000, "protocol": "tcp"}));
    assert!(ports.iter().any(|p| p["target"] == 3003 && p.get("published").is_none()));
    assert_eq!(port(8081, "tcp")["published"], "9091");
    assert_eq!(
        port(5002, "tcp"),
        json!({"mode": "ingress", "host_ip": "127.0.0.1", "target": 5002, "published": "5002", "protocol": "tcp"})
    );
    assert_eq!(
        port(5003, "tcp"),
        json!({"mode": "ingress", "host_ip": "127.0.0.1", "target": 5003, "protocol": "tcp"})
    );
    assert_eq!(port(6060, "udp")["published"], "6060");
    assert_eq!(port(6001, "tcp")["host_ip"], "::1");
    assert_eq!(port(1240, "tcp")["published"], "12400-12500");
    assert_eq!(port(9999, "udp")["host_ip"], "0.0.0.0");
    assert_eq!(app["expose"], json!(["3000", "8000-8002/udp"]));

    let vols = app["volumes"].as_array().cloned().unwrap_or_default();
    let vol = |target: &str| -> Value {
        vols.iter()
            .find(|v| v["target"] == target)
            .cloned()
            .unwrap_or_else(|| panic!("no volume at {target} in {vols:#?}"))
    };
    assert_eq!(vol("/var/lib/anonymous")["type"], "volume");
    assert!(vol("/var/lib/anonymous").get("source").is_none());
    assert_eq!(vol("/var/lib/data")["source"], "/opt/data");
    assert_eq!(vol("/tmp/cache")["source"], format!("{}/cache", dir_str()));
    assert_eq!(vol("/tmp/cache")["bind"]["create_host_path"], true);
    assert_eq!(vol("/etc/configs/")["source"], "/home/tester/configs");
    assert_eq!(vol("/etc/configs/")["read_only"], true);
    assert_eq!(vol("/var/lib/volume")["source"], "datavolume");
    assert_eq!(vol("/mnt/ro")["read_only"], true);
    assert!(vol("/mnt/rw").get("read_only").is_none());
    assert_eq!(vol("/mnt/z")["bind"]["selinux"], "z");
    assert_eq!(vol("/mnt/Z")["bind"]["selinux"], "Z");
    assert_eq!(vol("/mnt/nocopy")["volume"]["nocopy"], true);
    assert_eq!(vol("/mnt/rshared")["bind"]["propagation"], "rshared");
    assert_eq!(vol("/mnt/slave")["bind"]["propagation"], "slave");
    assert_eq!(vol("/mnt/slave")["read_only"], true);
    assert_eq!(vol("/mnt/cached")["consistency"], "cached");
    assert_eq!(vol("/mnt/delegated")["consistency"], "delegated");
    assert_eq!(vol("/mnt/consistent")["consistency"], "consistent");

    assert_eq!(app["devices"][1], json!({"source": "/dev/sda", "target": "/dev/xvda", "permissions": "rwm"}));
    assert_eq!(app["devices"][2], json!({"source": "/dev/kvm", "target": "/dev/kvm", "permissions": "rwm"}));
    assert_eq!(app["command"], json!(["bundle", "exec", "thin", "-p", "3000", "--tag", "short syntax"]));
    assert_eq!(app["entrypoint"], json!(["/code/entrypoint.sh", "-v"]));
    let env = &app["environment"];
    assert_eq!(env["FROM_ENV_FILE"], "short");
    assert_eq!(env["RACK_ENV"], "development", "environment wins over env_file");
    assert_eq!(env["EMPTY"], "");
    assert_eq!(env["USER_NAME"], "alice", "a bare name takes the value from the environment");
    assert_eq!(app["labels"]["com.example.department"], "Finance");
    assert_eq!(app["annotations"]["com.example.foo"], "bar");
    assert_eq!(app["sysctls"]["net.core.somaxconn"], "1024");
    assert_eq!(app["extra_hosts"], json!(["myhostv6=::1", "otherhost=50.31.209.229", "somehost=162.242.195.82"]));
    assert_eq!(app["depends_on"]["db"], json!({"condition": "service_started", "required": true}));
    assert_eq!(app["networks"], json!({"front": null, "back": null}));
    assert_eq!(app["dns"], json!(["8.8.8.8"]));
    assert_eq!(app["dns_search"], json!(["example.com"]));
    assert_eq!(app["tmpfs"], json!(["/run"]));
    assert_eq!(app["ulimits"]["nproc"], json!({"soft": 65535, "hard": 65535}));
    assert_eq!(app["secrets"], json!([{"source": "api_key"}]));
    assert_eq!(app["configs"], json!([{"source": "app_settings"}]));
    assert_eq!(app["healthcheck"]["test"], json!(["CMD-SHELL", "curl -f http://localhost:3000/ || exit 1"]));
    assert_eq!(app["gpus"], json!([{"count": "all"}]));
    assert!(app.get("deploy").is_none() && app.get("develop").is_none(), "null sections are no sections");
    // `extends: db` in the same file.
    let cache = &j["services"]["cache"];
    assert_eq!(cache["image"], "redis:7");
    assert_eq!(cache["healthcheck"], json!({"test": ["NONE"], "disable": true}));
}

#[test]
fn long_syntax() {
    let j = load_ok(&["long-syntax.yaml"], &[]);
    let gw = &j["services"]["gateway"];
    assert_eq!(
        gw["ports"][0],
        json!({"name": "web", "mode": "host", "host_ip": "127.0.0.1", "target": 80, "published": "8080",
               "protocol": "tcp", "app_protocol": "http"})
    );
    assert_eq!(gw["ports"][1]["published"], "8083-8085");
    assert_eq!(gw["ports"][2]["published"], "5353");
    assert_eq!(
        gw["ports"][3],
        json!({"mode": "ingress", "target": 9000, "protocol": "tcp", "x-note": "admin port, not published"})
    );
    let v = &gw["volumes"];
    assert_eq!(v[0]["source"], format!("{}/static", dir_str()));
    assert_eq!(
        v[0]["bind"],
        json!({"propagation": "rshared", "create_host_path": true, "selinux": "z", "recursive": "readonly"})
    );
    assert_eq!(v[1]["volume"]["subpath"], "sub/dir");
    assert_eq!(v[2]["tmpfs"]["size"], 64 * 1024 * 1024);
    assert_eq!(v[3]["tmpfs"]["size"], 10485760);
    assert_eq!(v[4]["type"], "npipe");
    assert_eq!(v[4]["source"], r"\\.\pipe\docker_engine");
    assert_eq!(v[5]["type"], "cluster");
    assert_eq!(v[6]["image"]["subpath"], "etc");
    assert_eq!(gw["devices"][1], json!({"source": "/dev/dri"}));
    let env = &gw["environment"];
    assert_eq!(env["RETRIES"], "5");
    assert_eq!(env["RATIO"], "0.75");
    assert_eq!(env["ENABLED"], "true");
    assert_eq!(env["UNSET_IN_FILE"], Value::Null);
    assert_eq!(env["LOG_FORMAT"], "json");
    assert_eq!(env["QUOTED_IN_LONG"], "quoted value");
    assert_eq!(env["RAW_VALUE"], "\"kept as written\"", "format: raw keeps quotes");
    assert_eq!(env["RAW_DOLLAR"], "$NOT_EXPANDED", "format: raw does not interpolate");
    assert_eq!(gw["labels"]["com.example.replicas"], "2");
    assert_eq!(gw["sysctls"]["net.ipv4.tcp_syncookies"], "0");
    assert_eq!(
        gw["extra_hosts"],
        json!(["ipv6host=::1", "multi=10.0.0.1", "multi=10.0.0.2", "somehost=162.242.195.82"])
    );
    assert_eq!(gw["depends_on"]["auth"]["condition"], "service_completed_successfully");
    assert_eq!(gw["ulimits"]["nofile"], json!({"soft": 20000, "hard": 40000}));
    let front = &gw["networks"]["front"];
    assert_eq!(front["aliases"], json!(["proxy", "edge"]));
    assert_eq!(front["ipv6_address"], "2001:3984:3989::10");
    assert_eq!(front["driver_opts"]["com.example.mtu"], "1400");
    assert_eq!(front["gw_priority"], 1);
    assert_eq!(gw["networks"]["back"], Value::Null);
    assert_eq!(gw["secrets"][0]["mode"], "0440", "YAML 0440 is octal, as Docker Compose reads it");
    assert_eq!(gw["configs"][0]["mode"], "0444");
    assert_eq!(gw["gpus"][0]["count"], 2);
    assert_eq!(gw["gpus"][1]["device_ids"], json!(["0", "3"]));
    // extends with a file: the base's relative paths resolve against the base file's directory.
    let backend = &j["services"]["backend"];
    assert_eq!(backend["image"], "backend:latest");
    assert_eq!(backend["build"]["context"], format!("{}/app", dir_str()));
    assert_eq!(backend["environment"]["FROM_COMMON_ENV"], "yes");
    assert_eq!(backend["environment"]["JAVA_OPTS"], "-Xmx512m");
    assert_eq!(backend["healthcheck"]["interval"], "15s");
    assert_eq!(backend["restart"], "always");
    assert_eq!(backend["networks"], json!({"back": null}));
}

#[test]
fn host_tuning() {
    let j = load_ok(&["host-tuning.yaml"], &["all", "windows"]);
    let db = &j["services"]["database"];
    assert_eq!(db["blkio_config"]["device_read_bps"][0]["rate"], 12 * 1024 * 1024);
    assert_eq!(db["blkio_config"]["device_write_bps"][0]["rate"], 1024 * 1024);
    assert_eq!(db["blkio_config"]["device_read_iops"][0]["rate"], 120);
    assert_eq!(db["blkio_config"]["weight_device"][0]["weight"], 400);
    assert_eq!(db["mem_limit"], 1024 * 1024 * 1024);
    assert_eq!(db["mem_reservation"], 512 * 1024 * 1024);
    assert_eq!(db["memswap_limit"], 2 * 1024 * 1024 * 1024_i64);
    assert_eq!(db["cpus"], 1.5);
    assert_eq!(db["cpu_rt_runtime"], 950000);
    assert_eq!(db["oom_score_adj"], -500);
    assert_eq!(db["cgroup"], "private");
    assert_eq!(db["stop_grace_period"], "1m30s");
    assert_eq!(db["group_add"], json!(["mail", "1001"]));
    assert_eq!(db["ulimits"]["memlock"], json!({"soft": -1, "hard": -1}));
    assert_eq!(db["ulimits"]["nofile"], json!({"soft": 65536, "hard": 65536}));
    assert_eq!(db["logging"]["options"]["max-buffer-size"], "4");
    assert_eq!(db["storage_opt"]["size"], "20G");
    assert_eq!(db["tmpfs"], json!(["/run/mysqld"]));
    let sidecar = &j["services"]["sidecar"];
    assert_eq!(sidecar["network_mode"], "service:database");
    assert_eq!(sidecar["cpu_rt_runtime"], 95000, "a string of digits is microseconds");
    assert_eq!(j["services"]["legacy-client"]["stop_grace_period"], "500ms");
    assert_eq!(j["services"]["legacy-client"]["scale"], 2);
    assert_eq!(j["services"]["host-net"]["memswap_limit"], -1);
    assert_eq!(j["services"]["host-net"]["attach"], false);
    assert!(j["services"]["host-net"].get("networks").is_none(), "network_mode: host joins no network");
    assert_eq!(j["services"]["windows-registry"]["credential_spec"]["x-origin"], "domain controller");
    assert_eq!(j["services"]["windows-config"]["credential_spec"]["config"], "gmsa_spec");
}

#[test]
fn host_tuning_profiles_select_services() {
    let j = load_ok(&["host-tuning.yaml"], &["db"]);
    let names: Vec<&String> = j["services"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(names, ["database"]);
}

#[test]
fn networks_volumes() {
    let j = load_ok(&["networks-volumes.yaml"], &[]);
    let dmz = &j["networks"]["dmz"];
    assert_eq!(dmz["name"], "netlab_dmz");
    assert_eq!(dmz["driver_opts"]["com.docker.network.driver.mtu"], "1450");
    assert_eq!(dmz["ipam"]["config"][0]["aux_addresses"]["nas"], "10.10.0.6");
    assert_eq!(dmz["ipam"]["config"][0]["x-comment"], "first pool");
    assert_eq!(dmz["ipam"]["options"]["com.example.ipam.opt"], "value");
    assert_eq!(dmz["ipam"]["x-owner"], "network-team");
    assert_eq!(dmz["enable_ipv4"], true);
    assert_eq!(dmz["x-firewall"], "strict");
    let lan = &j["networks"]["lan"];
    assert_eq!(lan["name"], "corp-lan");
    assert_eq!(lan["attachable"], true);
    assert_eq!(lan["enable_ipv6"], true);
    assert_eq!(lan["labels"]["com.example.vlan"], "50");
    assert_eq!(j["networks"]["legacy"]["enable_ipv4"], false);
    assert_eq!(j["networks"]["legacy"]["internal"], true);
    assert_eq!(j["networks"]["external-net"], json!({"name": "existing_network", "external": true}));
    assert_eq!(j["volumes"]["logs"]["name"], "netlab-logs-v1");
    assert_eq!(j["volumes"]["logs"]["labels"]["com.example.retention"], "7d");
    assert_eq!(j["volumes"]["nfs-data"]["driver_opts"]["device"], ":/docker/example");
    assert_eq!(j["volumes"]["shared"], json!({"name": "team-shared-volume", "external": true}));
    assert_eq!(j["services"]["router"]["networks"]["lan"]["ipv6_address"], "fd00:50::2");
}

#[test]
fn ai_models() {
    let j = load_ok(&["ai-models.yaml"], &[]);
    assert_eq!(j["services"]["chat"]["models"], json!({"llm": null, "embedder": null}));
    assert_eq!(j["services"]["summarizer"]["models"]["llm"]["endpoint_var"], "LLM_URL");
    assert_eq!(j["services"]["summarizer"]["models"]["llm"]["x-purpose"], "summaries");
    let p = &j["services"]["vector-db"]["provider"];
    assert_eq!(p["type"], "example-cloud-db");
    assert_eq!(p["options"]["size"], json!(["2"]));
    assert_eq!(p["options"]["regions"], json!(["eu-west-1", "eu-central-1"]));
    assert_eq!(p["x-billing"], "team-ai");
    assert_eq!(j["models"]["llm"]["context_size"], 8192);
    assert_eq!(j["models"]["llm"]["runtime_flags"], json!(["--temp", "0.2"]));
    assert_eq!(j["models"]["llm"]["name"], "llama");
    assert_eq!(j["models"]["embedder"], json!({"model": "ai/mxbai-embed-large"}));
}

#[test]
fn include() {
    let j = load_ok(&["include.yaml"], &[]);
    let s = &j["services"];
    let names: BTreeSet<&String> = s.as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(names.into_iter().cloned().collect::<Vec<_>>(), ["app", "grafana", "prometheus", "redis", "search"]);
    assert_eq!(s["app"]["image"], "platform/app:1.0");
    // The short form: paths relative to the included file.
    assert_eq!(s["redis"]["volumes"][1]["source"], format!("{}/include/redis.conf", dir_str()));
    assert_eq!(j["volumes"]["redis-data"]["name"], "platform_redis-data");
    // The long form with project_directory and env_file.
    assert_eq!(s["prometheus"]["image"], "prom/prometheus:v2.53.0");
    assert_eq!(s["prometheus"]["ports"][0]["published"], "9091");
    assert_eq!(s["grafana"]["environment"]["GF_SECURITY_ADMIN_USER"], "ops");
    assert_eq!(s["grafana"]["volumes"][0]["source"], format!("{}/include/monitoring/dashboards", dir_str()));
    assert_eq!(j["configs"]["prometheus_yml"]["file"], format!("{}/include/monitoring/prometheus.yml", dir_str()));
    // A list of paths merges like -f files.
    assert_eq!(s["search"]["image"], "opensearchproject/opensearch:2.15.0");
    assert_eq!(s["search"]["environment"]["discovery.type"], "single-node");
    assert_eq!(s["search"]["environment"]["OPENSEARCH_JAVA_OPTS"], "-Xms512m -Xmx512m");
    assert_eq!(s["search"]["mem_limit"], 1024 * 1024 * 1024);
}

#[test]
fn extends() {
    let j = load_ok(&["extends.yaml"], &[]);
    let s = &j["services"];
    assert_eq!(s["nightly-report"]["image"], "python:3.12-slim");
    assert_eq!(s["nightly-report"]["environment"], json!({"TZ": "UTC", "LOG_LEVEL": "info", "REPORT": "nightly"}));
    assert_eq!(s["nightly-report"]["labels"]["com.example.kind"], "job");
    assert_eq!(s["nightly-report"]["command"], json!(["python", "-m", "reports.nightly"]));
    assert_eq!(s["nightly-report"]["scale"], 1);
    assert_eq!(s["base-job"]["scale"], 0);
    assert_eq!(s["base-job"]["restart"], "no");
    assert_eq!(s["importer"]["volumes"][0]["source"], format!("{}/extends/scripts", dir_str()));
    assert_eq!(s["importer"]["labels"]["com.example.layer"], "importer");
    assert_eq!(s["importer"]["environment"]["BATCH_SIZE"], "500");
    assert_eq!(s["exporter"]["image"], "python:3.12-slim");
    assert_eq!(s["exporter"]["command"], json!(["python", "/scripts/export.py"]));
    assert_eq!(s["exporter"]["volumes"], s["importer"]["volumes"]);
}

#[test]
fn anchors_extensions() {
    let j = load_ok(&["anchors-extensions.yaml"], &[]);
    assert_eq!(j["x-project-owner"], "platform-team");
    assert_eq!(j["x-env"], json!({"APP_ENV": "staging", "REGION": "eu"}));
    let web = &j["services"]["web"];
    // `<<: [*defaults, *small]`, and an explicit key over a merged one.
    assert_eq!(web["restart"], "unless-stopped");
    assert_eq!(web["init"], true);
    assert_eq!(web["deploy"]["resources"]["limits"]["memory"], 128 * 1024 * 1024);
    assert_eq!(web["environment"], json!({"APP_ENV": "staging", "REGION": "us"}));
    assert_eq!(web["ports"][0]["published"], "8080");
    assert_eq!(web["logging"]["x-shipper"], "vector");
    assert_eq!(web["x-service-meta"], json!({"team": "frontend", "tier": 1}));
    let w = &j["services"]["worker"];
    assert_eq!(w["restart"], "on-failure");
    assert_eq!(w["logging"], json!({"driver": "json-file", "x-log-note": "overridden"}));
    assert_eq!(w["environment"], json!({"APP_ENV": "staging", "REGION": "eu"}));
    // x- keys kept where the spec allows them.
    assert_eq!(w["build"]["x-build-cache"], "warm");
    assert_eq!(w["deploy"]["x-autoscale"], json!({"min": 1, "max": 5}));
    assert_eq!(w["deploy"]["resources"]["x-policy"], "soft");
    assert_eq!(w["deploy"]["resources"]["reservations"]["generic_resources"][0]["x-reason"], "batch");
    assert_eq!(w["deploy"]["placement"]["preferences"][0]["x-weight"], 2);
    assert_eq!(w["healthcheck"]["x-probe"], "liveness");
    assert_eq!(w["develop"]["watch"][0]["x-debounce"], "500ms");
    assert_eq!(w["volumes"][0]["x-mount-note"], "dev only");
    assert_eq!(w["volumes"][0]["bind"]["x-bind-note"], "source tree");
    assert_eq!(w["volumes"][2]["tmpfs"]["x-tmpfs-note"], "scratch");
    assert_eq!(w["networks"]["backend"]["x-network-note"], "internal only");
    assert_eq!(w["ulimits"]["nofile"]["x-why"], "sockets");
    assert_eq!(w["depends_on"]["web"]["x-dependency-note"], "soft");
    assert_eq!(w["post_start"][0]["x-hook-note"], "noop");
    assert_eq!(w["gpus"][0]["x-gpu-note"], "any model");
    assert_eq!(j["services"]["sidecar"]["provider"]["x-provider-note"], "external");
    assert_eq!(j["networks"]["backend"]["x-network-owner"], "platform");
    assert_eq!(j["volumes"]["legacy-external"], json!({"name": "old_volume", "external": true}));
    assert_eq!(j["secrets"]["token"]["x-secret-owner"], "security");
    assert_eq!(j["configs"]["settings"]["x-config-owner"], "platform");
    assert_eq!(j["models"]["assistant"]["x-model-owner"], "ml");
}

#[test]
fn interpolation() {
    let j = load_ok(&["interpolation.yaml"], &[]);
    let api = &j["services"]["api"];
    assert_eq!(j["name"], "interp");
    assert_eq!(api["image"], "registry.example.com/api:2.1.0");
    assert_eq!(api["container_name"], "api-dev");
    assert_eq!(api["ports"][0]["published"], "8081");
    assert_eq!(
        api["ports"][1],
        json!({"mode": "ingress", "host_ip": "127.0.0.1", "target": 9100, "published": "9100", "protocol": "tcp"})
    );
    let env = &api["environment"];
    assert_eq!(env["DB_HOST"], "db.internal");
    assert_eq!(env["GREETING"], "Hello, world");
    assert_eq!(env["PRICE"], "$5 and ${NOT_A_VAR}");
    assert_eq!(env["OPTIONAL"], "fallback");
    assert_eq!(env["EMPTY_DEFAULT"], "empty-means-default");
    assert_eq!(env["EMPTY_KEPT"], "");
    assert_eq!(env["ALT"], "tagged");
    assert_eq!(env["NESTED"], "deep");
    assert_eq!(api["stop_grace_period"], "1m30s");
    assert_eq!(api["mem_limit"], 512 * 1024 * 1024);
    assert_eq!(api["cpus"], 0.5);
    assert_eq!(api["read_only"], true);
    assert_eq!(api["healthcheck"]["interval"], "500ms");
    assert_eq!(api["healthcheck"]["retries"], 4);
    assert_eq!(api["deploy"]["replicas"], 1);
    assert_eq!(api["labels"]["com.example.commit"], "abc123");
    assert_eq!(api["command"], json!(["echo", "${HOME} is not interpolated"]));
}

#[test]
fn interpolation_required_variable_missing_is_an_error() {
    let mut o = options(&["interpolation.yaml"], &[]);
    o.environment.shift_remove("DB_HOST");
    let err = load(&o).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("DB_HOST must be set"), "{err}");
    assert!(err.contains("interpolation.yaml:12:"), "{err}");
}

#[test]
fn legacy_v3() {
    let j = load_ok(&["legacy-v3.yaml"], &[]);
    let wp = &j["services"]["wordpress"];
    assert_eq!(wp["ports"][0]["published"], "8000", "8000:80 unquoted is a string in YAML 1.2, not base 60");
    assert_eq!(wp["tty"], true);
    assert!(wp.get("privileged").is_none());
    assert_eq!(wp["deploy"]["resources"]["limits"]["memory"], 50 * 1024 * 1024);
    assert_eq!(wp["configs"][0]["mode"], "0444");
    assert_eq!(wp["links"], json!(["mysql:db"]));
    let db = &j["services"]["mysql"];
    assert_eq!(db["restart"], "no");
    assert_eq!(db["healthcheck"]["test"], json!(["CMD-SHELL", "mysqladmin ping -h localhost"]));
    assert_eq!(db["healthcheck"]["retries"], 5);
    assert_eq!(db["cpus"], 0.75);
    assert_eq!(db["mem_limit"], 268435456);
    // Deprecated external.name becomes name + external: true.
    assert_eq!(j["networks"]["shared"], json!({"name": "shared_frontend", "external": true}));
    assert_eq!(j["volumes"]["db_data"], json!({"name": "legacy_mysql_data", "external": true}));
    assert_eq!(j["secrets"]["legacy_token"], json!({"name": "wp_token_v1", "external": true}));
    assert_eq!(j["configs"]["php_ini"], json!({"name": "php_ini_v2", "external": true}));
    assert_eq!(j["name"], "corpus", "no name: the directory's");
}

#[test]
fn stringly_typed() {
    let j = load_ok(&["stringly-typed.yaml"], &[]);
    let app = &j["services"]["app"];
    assert!(app.get("command").is_none() && app.get("entrypoint").is_none() && app.get("pid").is_none());
    assert_eq!(app["attach"], false);
    assert_eq!(app["init"], true);
    assert_eq!(app["stdin_open"], true);
    assert!(app.get("tty").is_none() && app.get("read_only").is_none());
    assert_eq!(app["cpu_count"], 2);
    assert_eq!(app["cpus"], 0.5);
    assert_eq!(app["mem_limit"], 1073741824);
    assert_eq!(app["memswap_limit"], 2 * 1024 * 1024 * 1024_i64);
    assert_eq!(app["oom_score_adj"], -200);
    assert_eq!(app["shm_size"], 64 * 1024 * 1024);
    assert_eq!(app["blkio_config"]["weight"], 500);
    assert_eq!(app["ulimits"]["nofile"], json!({"soft": 4096, "hard": 4096}));
    assert_eq!(app["ulimits"]["nproc"], json!({"soft": 1024, "hard": 2048}));
    assert_eq!(
        app["labels"],
        json!({"com.example.enabled": "true", "com.example.count": "3", "com.example.ratio": "0.5"})
    );
    assert_eq!(app["healthcheck"]["retries"], 3);
    assert_eq!(app["healthcheck"]["start_period"], "0s");
    assert_eq!(app["ports"][0], json!({"mode": "ingress", "target": 8080, "published": "18080", "protocol": "tcp"}));
    assert_eq!(app["volumes"][0]["read_only"], true);
    assert_eq!(app["volumes"][0]["bind"]["create_host_path"], false);
    assert_eq!(app["volumes"][1]["volume"]["nocopy"], true);
    assert_eq!(app["volumes"][2]["tmpfs"]["size"], 32 * 1024 * 1024);
    assert_eq!(app["depends_on"]["db"], json!({"condition": "service_healthy", "restart": true, "required": false}));
    assert_eq!(app["secrets"][0]["mode"], "0440", "288 is 0o440");
    assert_eq!(app["build"]["no_cache"], true);
    assert_eq!(app["build"]["privileged"], true);
    assert_eq!(app["build"]["shm_size"], 1000000);
    assert_eq!(app["deploy"]["update_config"]["max_failure_ratio"], 0.5);
    assert_eq!(app["deploy"]["restart_policy"]["max_attempts"], 3);
    assert_eq!(app["deploy"]["resources"]["limits"]["pids"], 100);
    assert_eq!(app["deploy"]["resources"]["reservations"]["devices"][0]["count"], "all");
    assert_eq!(app["deploy"]["resources"]["reservations"]["devices"][0]["options"], json!({"com.example.opt": "1"}));
    assert_eq!(app["gpus"][0]["count"], "all");
    assert_eq!(j["networks"]["back"]["internal"], true);
    assert!(j["networks"]["back"].get("attachable").is_none());
    assert_eq!(j["networks"]["outside"]["external"], true);
    assert!(j["volumes"]["data"].get("external").is_none());
}

#[test]
fn stringly_typed_pull_policy_if_not_present_is_missing() {
    let j = load_ok(&["stringly-typed.yaml"], &[]);
    assert_eq!(j["services"]["app"]["pull_policy"], "missing");
}

#[test]
fn override_files_merge() {
    let j = load_ok(&["override-base.yaml", "override-prod.yaml"], &[]);
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "example/web:1.8.0");
    assert_eq!(web["ports"], json!([{"mode": "ingress", "target": 8000, "published": "80", "protocol": "tcp"}]));
    assert_eq!(web["environment"], json!({"MODE": "production"}), "!reset removes DEBUG");
    assert!(web.get("volumes").is_none(), "!reset [] clears the list");
    assert_eq!(web["command"], json!(["node", "server.js"]), "command is replaced, not appended");
    assert_eq!(web["dns"], json!(["1.1.1.1", "9.9.9.9"]), "dns lists are appended");
    assert_eq!(web["deploy"]["replicas"], 3);
    assert!(j["services"]["db"].get("ports").is_none());
}

// ---- files the spec accepts and berth does not ----

#[test]
fn known_failure_cpu_rt_durations() {
    let j = load_ok(&["known-failures/cpu-rt-durations.yaml"], &[]);
    assert_eq!(j["services"]["realtime"]["cpu_rt_runtime"], 400000);
    assert_eq!(j["services"]["realtime"]["cpu_rt_period"], 1400);
}

#[test]
fn known_failure_external_mapping() {
    let j = load_ok(&["known-failures/external-mapping.yaml"], &[]);
    assert_eq!(j["networks"]["edge"]["external"], true);
    assert_eq!(j["networks"]["edge"]["name"], "edge_net");
    assert_eq!(j["volumes"]["archive"]["external"], true);
    assert_eq!(j["volumes"]["scratch"]["external"], true);
}

#[test]
fn known_failure_windows_paths() {
    let j = load_ok(&["known-failures/windows-paths.yaml"], &[]);
    let v = &j["services"]["app"]["volumes"];
    assert_eq!(v[0]["type"], "bind");
    assert_eq!(v[0]["source"], r"C:\data");
    assert_eq!(v[0]["target"], "/data");
    assert_eq!(v[1]["read_only"], true);
    assert_eq!(v[2]["source"], "d:/src/app");
}

/// A deliberate difference from the schema text: `retries: 2.5` and `priority: 0.5` pass the schema (`number`),
/// but Docker Compose decodes them into integers and fails too. berth says so, at the value.
#[test]
fn fractional_counts_are_rejected_with_a_position() {
    let file = "known-failures/fractional-numbers.yaml";
    let err = match load(&options(&[file], &[])) {
        Ok(_) => panic!("{file}: a fractional retry count must be rejected"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("fractional-numbers.yaml:") && err.contains("retries: expected an integer"), "{err}");
}

#[test]
fn known_failure_free_form_names() {
    load_ok(&["known-failures/free-form-names.yaml"], &[]);
}

// ---- files the spec rejects ----

/// Each invalid file, the line berth must point at, and a word its message must contain.
const INVALID: &[(&str, usize, &str)] = &[
    ("unknown-service-key.yaml", 3, "imgae"),
    ("ports-not-a-list.yaml", 4, "ports"),
    ("port-published-mapping.yaml", 7, "published"),
    ("depends-on-without-condition.yaml", 5, "condition"),
    ("cgroup-enum.yaml", 4, "cgroup"),
    ("service-name-with-space.yaml", 2, "my web"),
    ("top-level-typo.yaml", 1, "service"),
    ("volume-type-enum.yaml", 5, "nfs"),
    ("watch-without-action.yaml", 6, "action"),
    ("healthcheck-interval-number.yaml", 6, "interval"),
    ("cpu-percent-out-of-range.yaml", 4, "cpu_percent"),
    ("use-api-socket-string.yaml", 4, "use_api_socket"),
    ("include-extension-key.yaml", 3, "x-note"),
    ("update-order-enum.yaml", 6, "order"),
];

/// Files of `INVALID` berth accepts on purpose although the schema rejects them (see
/// [`quoted_booleans_are_read_as_booleans`]).
const LENIENT: &[&str] = &["use-api-socket-string.yaml"];

fn check_rejected(file: &str, line: usize, word: &str) {
    let path = corpus().join("invalid").join(file);
    let err = load_err(&format!("invalid/{file}"));
    let diags = err.diagnostics();
    let hit = diags
        .iter()
        .any(|d| d.span.file.as_deref() == Some(path.as_path()) && d.span.line == line && d.message.contains(word));
    assert!(hit, "{file}: expected an error at line {line} mentioning {word:?}, got:\n{err}");
    assert!(err.to_string().contains(&format!("{}:{line}:", path.display())), "{err}");
}

#[test]
fn berth_rejects_what_the_spec_rejects() {
    for (file, line, word) in INVALID.iter().filter(|(f, _, _)| !LENIENT.contains(f)) {
        check_rejected(file, *line, word);
    }
}

/// A deliberate leniency: a quoted boolean (`use_api_socket: "true"`) is read as the boolean, as compose-go's
/// type casting does for interpolated values; rejecting `"true"` would only break files for no safety gain.
#[test]
fn quoted_booleans_are_read_as_booleans() {
    let j = load_ok(&["invalid/use-api-socket-string.yaml"], &[]);
    assert_eq!(j["services"]["web"]["use_api_socket"], true);
}
