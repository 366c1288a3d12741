//! Every compose-go fixture under `../shared/compose/compose-go-fixtures/` through the whole loader, with the
//! outcome each is meant to have written down: the values it must produce, or the error it must cause.

use std::path::{Path, PathBuf};

use berth_orchestrator::compose::loader::{Env, LoadOptions, Loaded, load};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compose/compose-go-fixtures")
}

fn opts(dir: &Path, files: &[&str], env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        config_files: files.iter().map(PathBuf::from).collect(),
        interpolate: true,
        environment: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Env>(),
        working_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn ok(dir: &str, files: &[&str], env: &[(&str, &str)]) -> (Loaded, Value) {
    let d = fixtures().join(dir);
    match load(&opts(&d, files, env)) {
        Ok(l) => {
            let j = serde_json::to_value(&l.project).unwrap_or(Value::Null);
            (l, j)
        }
        Err(e) => panic!("{dir} {files:?} should load, got:\n{e}"),
    }
}

fn err(dir: &str, files: &[&str], env: &[(&str, &str)]) -> String {
    let d = fixtures().join(dir);
    match load(&opts(&d, files, env)) {
        Ok(l) => panic!("{dir} {files:?} should fail, loaded {:?}", l.project.services.keys().collect::<Vec<_>>()),
        Err(e) => e.to_string(),
    }
}

fn abs(rel: &str) -> String {
    let p = fixtures().join(rel);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out.to_string_lossy().into_owned()
}

// ---- cli/testdata ----

#[test]
fn cli_simple_uses_dot_env_and_dir_name() {
    let (l, j) = ok("cli/testdata/simple", &[], &[]);
    assert_eq!(j["name"], "simple");
    assert_eq!(j["services"]["simple"]["image"], "nginx");
    assert_eq!(l.environment.get("PUBLIC_PORT").map(String::as_str), Some("8000"));
}

#[test]
fn cli_simple_name_interpolated() {
    let (_, j) = ok("cli/testdata/simple", &["compose-name.yaml"], &[("TEST", "hello")]);
    assert_eq!(j["name"], "test-hello-test");
}

#[test]
fn cli_simple_override_replaces_image() {
    let (_, j) = ok("cli/testdata/simple", &["compose.yaml", "compose-with-overrides.yaml"], &[]);
    assert_eq!(j["services"]["simple"]["image"], "haproxy");
}

#[test]
fn cli_simple_variables_from_dot_env() {
    let (_, j) = ok("cli/testdata/simple", &["compose-with-variables.yaml"], &[]);
    assert_eq!(j["services"]["simple"]["ports"][0]["published"], "8000");
    assert_eq!(j["services"]["simple"]["ports"][0]["target"], 80);
}

#[test]
fn cli_simple_os_env_wins_over_dot_env() {
    let (_, j) = ok("cli/testdata/simple", &["compose-with-variables.yaml"], &[("PUBLIC_PORT", "9999")]);
    assert_eq!(j["services"]["simple"]["ports"][0]["published"], "9999");
}

#[test]
fn cli_simple_paths() {
    let (_, j) = ok("cli/testdata/simple", &["compose-with-paths.yaml"], &[]);
    let v = &j["services"]["test"]["volumes"];
    assert_eq!(v[0]["source"], "C:\\docker\\project");
    assert_eq!(v[1]["source"], abs("cli/testdata/simple/relative"));
    assert_eq!(v[2]["source"], abs("cli/testdata/simple/relative2"));
    assert_eq!(v[2]["bind"]["create_host_path"], true);
}

#[test]
fn cli_env_file_dot_env_sets_compose_file_and_name() {
    let (l, j) = ok("cli/testdata/env-file", &[], &[]);
    assert_eq!(j["name"], "my_project_from_dot_env");
    assert!(l.files[0].ends_with("compose-with-env-file.yaml"));
    // env_file content lands in environment; the version key is dropped.
    assert_eq!(j["services"]["simple"]["environment"]["DEFAULT_PORT"], "8080");
    assert!(j.get("version").is_none());
    assert_eq!(j["services"]["simple"]["ports"][0]["published"], "8000");
}

#[test]
fn cli_env_file_override_env_file_flag() {
    let d = fixtures().join("cli/testdata/env-file");
    let mut o = opts(&d, &["compose-with-env-files.yaml"], &[]);
    o.env_files = vec![PathBuf::from("override.env")];
    let l = load(&o).unwrap_or_else(|e| panic!("{e}"));
    let j = serde_json::to_value(&l.project).unwrap_or(Value::Null);
    assert_eq!(j["services"]["simple"]["ports"][0]["published"], "9000");
    // second-env is read after simple-env, so its DEFAULT_PORT wins.
    assert_eq!(j["services"]["simple"]["environment"]["DEFAULT_PORT"], "9090");
    // --env-file replaces .env, so COMPOSE_PROJECT_NAME from .env is not used.
    assert_eq!(j["name"], "env-file");
}

#[test]
fn cli_unnormalized_path_name() {
    let (_, j) = ok("cli/testdata/UNNORMALIZED PATH", &[], &[]);
    assert_eq!(j["name"], "unnormalizedpath");
}

// ---- loader/testdata ----

#[test]
fn depends_on_cycle_is_named() {
    let e = err("loader/testdata", &["compose-depends-on-cycle.yaml"], &[]);
    assert!(e.contains("service1 -> service2 -> service3 -> service1"), "{e}");
    assert!(e.contains("compose-depends-on-cycle.yaml:"), "{e}");
}

#[test]
fn depends_on_profile_no_cycle_is_a_cycle_too() {
    // Same content as the cycle fixture (compose-go loads it with a profile filter in a test of its own).
    let e = err("loader/testdata", &["compose-depends-on-profile-no-cycle.yaml"], &[]);
    assert!(e.contains("dependency cycle"), "{e}");
}

#[test]
fn depends_on_self() {
    let e = err("loader/testdata", &["compose-depends-on-self.yaml"], &[]);
    assert!(e.contains("service1 -> service1"), "{e}");
}

#[test]
fn include_cycle() {
    let e = err("loader/testdata", &["compose-include-cycle.yaml"], &[]);
    assert!(e.contains("include cycle"), "{e}");
}

#[test]
fn include_brings_services_with_their_own_paths() {
    let (_, j) = ok("loader/testdata", &["compose-include.yaml"], &[]);
    assert_eq!(j["services"]["bar"]["environment"]["FOO"], "BAR");
    let imported = &j["services"]["imported"];
    assert_eq!(imported["image"], "nginx");
    // extra.env sits beside the included file and is read relative to it; its SOURCE sets container_name? No:
    // interpolation uses the included project's .env, which it does not have, so the default applies.
    assert_eq!(imported["container_name"], "imported");
    assert_eq!(imported["environment"]["SOURCE"], "extends");
    assert_eq!(imported["volumes"][0]["source"], "/opt/data");
}

#[test]
fn extends_from_other_file_keeps_its_paths() {
    let (_, j) = ok("loader/testdata", &["compose-test-extends.yaml"], &[]);
    let s = &j["services"]["importer"];
    assert_eq!(s["image"], "nginx");
    assert_eq!(s["environment"]["SOURCE"], "extends");
    assert!(s.get("extends").is_none());
}

#[test]
fn extends_with_url_context_keeps_the_url() {
    let (_, j) = ok("loader/testdata", &["compose-test-extends-with-context-url.yaml"], &[]);
    assert_eq!(j["services"]["importer-with-https-url"]["build"]["context"], "https://github.com/docker/compose.git");
}

#[test]
fn version_is_obsolete_and_dropped() {
    let (_, j) = ok("loader/testdata", &["compose-test-with-version.yaml"], &[]);
    assert!(j.get("version").is_none());
    assert_eq!(j["services"]["web"]["build"]["context"], abs("loader/testdata/Dockerfile"));
    assert_eq!(j["services"]["web"]["networks"], json!({"front": null, "default": null}));
    assert_eq!(j["services"]["other"]["command"], json!(["top"]));
    assert_eq!(j["services"]["other"]["volumes"][0], json!({"type": "volume", "target": "/data", "volume": {}}));
    assert_eq!(j["networks"]["default"]["name"], "compose-test-with-version_default");
    assert_eq!(j["volumes"]["data"]["name"], "compose-test-with-version_data");
}

#[test]
fn empty_file_is_an_error() {
    let e = err("loader/testdata", &["empty.yaml"], &[]);
    assert!(e.contains("empty.yaml") && e.contains("empty"), "{e}");
}

#[test]
fn combined_include_then_extends() {
    let (_, j) = ok("loader/testdata/combined", &[], &[]);
    assert_eq!(j["services"]["service"]["build"]["context"], abs("loader/testdata/combined/dir"));
}

#[test]
fn extends_base_file_has_an_empty_service() {
    // `nil:` is left empty on purpose: as a project it has a service without image or build.
    let e = err("loader/testdata/extends", &["base.yaml"], &[]);
    assert!(e.contains("\"nil\" has neither an image nor a build context"), "{e}");
}

#[test]
fn extends_same_file_and_sibling() {
    let d = fixtures().join("loader/testdata/extends");
    let mut o = opts(&d, &["base.yaml"], &[]);
    o.services = vec!["another".into(), "with-build".into(), "withUlimits".into()];
    let l = load(&o).unwrap_or_else(|e| panic!("{e}"));
    let j = serde_json::to_value(&l.project).unwrap_or(Value::Null);
    assert_eq!(j["services"]["another"]["image"], "base");
    assert_eq!(j["services"]["with-build"]["build"]["context"], abs("loader/testdata/extends"));
    assert_eq!(j["services"]["withUlimits"]["ulimits"]["nproc"], json!({"soft": 65535, "hard": 65535}));
    assert_eq!(j["services"]["withUlimits"]["ulimits"]["nofile"], json!({"soft": 20000, "hard": 40000}));
}

#[test]
fn extends_depends_on_fixture_loads() {
    let (_, j) = ok("loader/testdata/extends", &["depends_on.yaml"], &[]);
    assert_eq!(j["services"]["with_ipc"]["ipc"], "service:zot");
    assert_eq!(j["services"]["with_depends_on"]["depends_on"]["zot"]["condition"], "service_started");
}

#[test]
fn extends_interpolated() {
    let (_, j) = ok("loader/testdata/extends", &["interpolated.yaml"], &[]);
    assert_eq!(j["services"]["foo"]["volumes"][0]["source"], "/dev/null");
    assert_eq!(j["services"]["foo"]["volumes"][0]["read_only"], true);
    let (_, j) = ok("loader/testdata/extends", &["interpolated.yaml"], &[("SOURCE", "/src")]);
    assert_eq!(j["services"]["foo"]["volumes"][0]["source"], "/src");
}

#[test]
fn extends_nested_through_sibling() {
    let (_, j) = ok("loader/testdata/extends", &["nested.yaml"], &[]);
    assert_eq!(j["services"]["with-build"]["build"]["context"], abs("loader/testdata/extends"));
}

#[test]
fn extends_ports_fixture() {
    let (_, j) = ok("loader/testdata/extends", &["ports.yaml"], &[]);
    assert_eq!(j["services"]["test"]["ports"][0]["published"], "8080");
}

#[test]
fn extends_reset_removes_command() {
    let (_, j) = ok("loader/testdata/extends", &["reset.yaml"], &[]);
    assert_eq!(j["services"]["init"]["command"], json!(["sleep", "infinity"]));
    assert_eq!(j["services"]["base"]["image"], "alpine:latest");
    assert!(j["services"]["base"].get("command").is_none());
}

#[test]
fn extends_sibling_alone() {
    let (_, j) = ok("loader/testdata/extends", &["sibling.yaml"], &[]);
    assert_eq!(j["services"]["test"]["build"]["dockerfile"], "Dockerfile");
}

#[test]
fn extends_withdir_chain() {
    let (_, j) = ok("loader/testdata/extends/withdir", &[], &[]);
    assert_eq!(j["services"]["test"]["image"], "hello-world");
}

#[test]
fn include_plain() {
    let (_, j) = ok("loader/testdata/include", &[], &[]);
    let s = &j["services"]["included"];
    assert_eq!(s["build"]["context"], abs("loader/testdata/include"));
    assert_eq!(s["volumes"][0]["source"], abs("loader/testdata/include"));
}

#[test]
fn include_included_alone() {
    let (_, j) = ok("loader/testdata/include", &["included.yaml"], &[]);
    assert_eq!(j["services"]["included"]["volumes"][0]["target"], "/mnt");
}

#[test]
fn include_with_project_directory() {
    let (_, j) = ok("loader/testdata/include", &["project-directory.yaml"], &[]);
    let s = &j["services"]["service"];
    // Relative paths of the included project resolve against its project_directory, ../subdir.
    assert_eq!(s["volumes"][0]["source"], abs("loader/testdata/subdir/compose-test-extends-imported.yaml"));
    assert_eq!(s["environment"]["SOURCE"], "extends");
    assert!(s["build"]["dockerfile_inline"].as_str().is_some_and(|d| d.starts_with("FROM busybox")));
}

#[test]
fn include_dir_alone_misses_its_env_file() {
    let e = err("loader/testdata/include/dir", &[], &[]);
    assert!(e.contains("extra.env"), "{e}");
}

#[test]
fn remote_resources_are_refused() {
    for dir in ["loader/testdata/remote/nested", "loader/testdata/remote/cycle"] {
        let e = err(dir, &[], &[]);
        assert!(e.contains("remote:"), "{dir}: {e}");
    }
}

#[test]
fn remote_plain_compose_loads() {
    let (_, j) = ok("loader/testdata/remote", &[], &[]);
    assert_eq!(j["services"]["foo"]["environment"]["FOO"], "BAR");
    assert_eq!(j["services"]["foo"]["volumes"][0]["source"], abs("loader/testdata/remote"));
}

#[test]
fn subdir_imported_alone() {
    let (_, j) = ok("loader/testdata/subdir", &["compose-test-extends-imported.yaml"], &[]);
    assert_eq!(j["services"]["imported"]["container_name"], "imported");
}

#[test]
fn extends_context_url_imported_alone() {
    let (_, j) = ok("loader/testdata", &["compose-test-extends-with-context-url-imported.yaml"], &[]);
    assert_eq!(j["services"]["imported-with-https-url"]["build"]["dockerfile"], "Dockerfile");
}

// ---- schema/using-variables.yaml ----

#[test]
fn using_variables_with_typed_values() {
    // A schema fixture: a variable in every field. With VARIABLE=1 the durations are wrong (`1` has no unit)
    // and the networks it names are not declared; every such error is reported, each at its position.
    let e = err("schema", &["using-variables.yaml"], &[("VARIABLE", "1")]);
    assert!(e.contains("using-variables.yaml:9:16: services.foo.deploy.rollback_config.delay"), "{e}");
    assert!(e.contains("undefined network \"some-network\""), "{e}");
    assert!(e.lines().count() >= 10, "{e}");
}

#[test]
fn using_variables_without_interpolation_loads() {
    let d = fixtures().join("schema");
    let mut o = opts(&d, &["using-variables.yaml"], &[]);
    o.interpolate = false;
    o.project_name = Some("vars".into());
    let e = load(&o).err().map(|e| e.to_string()).unwrap_or_default();
    // Only what is wrong whatever the variable holds is left: the undeclared networks.
    assert!(e.contains("undefined network \"some-network\""), "{e}");
    assert!(!e.contains("${VARIABLE}"), "{e}");
}

#[test]
fn every_fixture_yaml_gives_a_result_or_a_positioned_error() {
    // No fixture may panic the loader, whatever its purpose.
    let mut count = 0;
    let mut stack = vec![fixtures()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                count += 1;
                let o = opts(p.parent().unwrap_or(Path::new("/")), &[p.to_string_lossy().as_ref()], &[]);
                if let Err(e) = load(&o) {
                    for d in e.diagnostics() {
                        assert!(d.span.file.is_some(), "{}: error without a file: {d}", p.display());
                    }
                }
            }
        }
    }
    assert!(count >= 35, "only {count} fixture files found");
}
