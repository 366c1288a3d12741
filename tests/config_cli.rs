//! End-to-end tests of `berth config`: the real binary on the example stacks and on broken files.
//! Golden outputs live in `tests/golden/`; regenerate them with `BERTH_BLESS=1 cargo test --test config_cli`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `berth` with a clean environment, so the user's variables never change an expected output.
fn berth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.current_dir(dir).env_clear().env("PATH", "/usr/bin:/bin").env("HOME", "/root");
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run berth: {e}"),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    let actual = actual.replace(&root().to_string_lossy().into_owned(), "$ROOT");
    if std::env::var_os("BERTH_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, &actual) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the output (BERTH_BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn examples_match_their_golden_config() {
    for example in ["hello", "three-tier", "scaled"] {
        let dir = root().join("examples/compose").join(example);
        let out = berth(&dir, &["config"], &[]);
        assert!(out.status.success(), "{example}: {}", stderr(&out));
        golden(&format!("{example}.yaml"), &stdout(&out));
        let json = berth(&dir, &["config", "--format", "json"], &[]);
        assert!(json.status.success(), "{example}: {}", stderr(&json));
        golden(&format!("{example}.json"), &stdout(&json));
    }
}

#[test]
fn config_output_loads_again_unchanged() {
    // The canonical form is a fixed point: loading what `config` printed prints the same thing.
    let dir = root().join("examples/compose/three-tier");
    let first = stdout(&berth(&dir, &["config"], &[]));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = tmp.path().join("compose.yaml");
    std::fs::write(&file, &first).unwrap_or_else(|e| panic!("{e}"));
    let second = berth(tmp.path(), &["config"], &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(first, stdout(&second));
}

#[test]
fn list_flags() {
    let dir = root().join("examples/compose/three-tier");
    assert_eq!(stdout(&berth(&dir, &["config", "--services"], &[])), "api\ndb\nmigrate\nweb\n");
    assert_eq!(stdout(&berth(&dir, &["config", "--volumes"], &[])), "dbdata\n");
    assert_eq!(stdout(&berth(&dir, &["config", "--networks"], &[])), "back\nfront\n");
    assert_eq!(
        stdout(&berth(&dir, &["config", "--images"], &[("BERTH_BUSYBOX_IMAGE", "127.0.0.1:5000/bb:1")])),
        "127.0.0.1:5000/bb:1\n".repeat(4)
    );
    let hashes = stdout(&berth(&dir, &["config", "--hash", "*"], &[]));
    let lines: Vec<&str> = hashes.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l.split(' ').nth(1).is_some_and(|h| h.len() == 64)), "{hashes}");
    let one = stdout(&berth(&dir, &["config", "--hash", "web"], &[]));
    assert_eq!(one.trim(), lines[3]);
}

#[test]
fn hash_changes_only_with_the_service() {
    let dir = root().join("examples/compose/three-tier");
    let a = stdout(&berth(&dir, &["config", "--hash", "*"], &[]));
    let b = stdout(&berth(&dir, &["config", "--hash", "*"], &[("LOG_LEVEL", "debug")]));
    let changed: Vec<&str> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).map(|(x, _)| x).collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].starts_with("api "), "{changed:?}");
}

#[test]
fn profiles_and_selection() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  app: {image: a, depends_on: [db]}\n  db: {image: d}\n  debug: {image: x, profiles: [dev]}\n  \
         ops: {image: y, profiles: [ops, dev]}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stdout(&berth(tmp.path(), &["config", "--services"], &[])), "app\ndb\n");
    assert_eq!(stdout(&berth(tmp.path(), &["config", "--profiles"], &[])), "dev\nops\n");
    assert_eq!(stdout(&berth(tmp.path(), &["--profile", "ops", "config", "--services"], &[])), "app\ndb\nops\n");
    assert_eq!(
        stdout(&berth(tmp.path(), &["config", "--services"], &[("COMPOSE_PROFILES", "dev")])),
        "app\ndb\ndebug\nops\n"
    );
    assert_eq!(stdout(&berth(tmp.path(), &["config", "--services", "app"], &[])), "app\ndb\n");
}

#[test]
fn no_interpolate_keeps_variables() {
    let dir = root().join("examples/compose/hello");
    let out = berth(&dir, &["config", "--no-interpolate"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("${BERTH_BUSYBOX_IMAGE:-localhost/busybox:latest}"), "{}", stdout(&out));
}

#[test]
fn quiet_and_output_file() {
    let dir = root().join("examples/compose/hello");
    let q = berth(&dir, &["config", "-q"], &[]);
    assert!(q.status.success());
    assert!(q.stdout.is_empty());
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tmp.path().join("out.yaml");
    let o = berth(&dir, &["config", "-o", &out.to_string_lossy()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), stdout(&berth(&dir, &["config"], &[])));
}

#[test]
fn errors_name_file_line_column_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = tmp.path().join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  web:\n    imgae: nginx\n    ports: [\"80:abc\"]\n  db:\n    image: pg\n    depends_on: [cache]\n    cpus: x\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out_file = tmp.path().join("out.yaml");
    let o = berth(tmp.path(), &["config", "-o", &out_file.to_string_lossy()], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let f = file.to_string_lossy();
    for expected in [
        format!("{f}:3:5"),
        "unknown key `imgae` in service `web`".to_string(),
        "did you mean `image`?".to_string(),
        format!("{f}:4:13"),
        "invalid port \"80:abc\"".to_string(),
        format!("{f}:7:18"),
        "depends on undefined service \"cache\"".to_string(),
        format!("{f}:8:11"),
        "5 errors".to_string(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!out_file.exists(), "nothing may be written on error");
}

#[test]
fn yaml_syntax_error_is_positioned_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(tmp.path().join("compose.yaml"), "services:\n  web:\n    image: [a\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let o = berth(tmp.path(), &["config"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("compose.yaml:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_compose_file_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let o = berth(tmp.path(), &["config"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no compose file found"), "{}", stderr(&o));
    assert!(stderr(&o).contains("-f"), "{}", stderr(&o));
}

#[test]
fn required_variable_error() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(tmp.path().join("compose.yaml"), "services:\n  web:\n    image: ${TAG:?set TAG to the release}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let o = berth(tmp.path(), &["config"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("compose.yaml:3:12") && err.contains("set TAG to the release"), "{err}");
    let ok = berth(tmp.path(), &["config", "--images"], &[("TAG", "app:1")]);
    assert_eq!(stdout(&ok), "app:1\n");
}

#[test]
fn unset_variable_warns() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(tmp.path().join("compose.yaml"), "services:\n  web:\n    image: busybox${SUFFIX}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let o = berth(tmp.path(), &["config", "--images"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "busybox\n");
    assert!(stderr(&o).contains("SUFFIX"), "{}", stderr(&o));
}

#[test]
fn global_flags() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sub = tmp.path().join("proj");
    std::fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(sub.join("a.yaml"), "services:\n  web:\n    image: ${IMG}\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(sub.join("b.yaml"), "services:\n  web:\n    command: [echo, hi]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(sub.join("prod.env"), "IMG=prod:1\n").unwrap_or_else(|e| panic!("{e}"));
    let o = berth(
        tmp.path(),
        &[
            "-f",
            "proj/a.yaml",
            "-f",
            "proj/b.yaml",
            "-p",
            "shop",
            "--env-file",
            "proj/prod.env",
            "config",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    assert_eq!(j["name"], "shop");
    assert_eq!(j["services"]["web"]["image"], "prod:1");
    assert_eq!(j["services"]["web"]["command"], serde_json::json!(["echo", "hi"]));
    assert_eq!(j["networks"]["default"]["name"], "shop_default");
    let o =
        berth(tmp.path(), &["--project-directory", "proj", "-f", "proj/a.yaml", "config", "--images"], &[("IMG", "x")]);
    assert_eq!(stdout(&o), "x\n");
}
