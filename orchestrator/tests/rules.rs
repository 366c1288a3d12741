//! One end-to-end test per loading rule of Docker Compose: interpolation, `.env` and project settings, merge of
//! several files, `extends`, `include`, profiles, `env_file`, canonical forms and logical checks.
//!
//! Every test writes real files into a temporary directory of its own and goes through [`load`], with the
//! environment passed explicitly in [`LoadOptions::environment`] (the real process environment is never read nor
//! set). Assertions are on the typed project as JSON and on the diagnostics (message, file, line and column).
//!
//! The expected values are those of Docker Compose (compose-go v2). Where berth differs, the test still asserts
//! what Docker Compose does and is marked `#[ignore = "bug: …"]`.

use std::path::{Path, PathBuf};

use berth_orchestrator::compose::Diagnostic;
use berth_orchestrator::compose::loader::{Env, LoadOptions, Loaded, load};
use serde_json::{Value, json};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/// A project on disk: a temporary directory that files are written into.
struct Project {
    tmp: TempDir,
}

impl Project {
    fn new() -> Self {
        Project { tmp: tempfile::tempdir().expect("create a temporary directory") }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Write `text` to `rel` (parents created) and return the absolute path.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&p, text).expect("write a file");
        p
    }

    fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("create a directory");
        p
    }

    /// Options as `berth` run from the project root without flags, with an empty environment.
    fn opts(&self) -> LoadOptions {
        self.opts_in(self.root())
    }

    fn opts_in(&self, dir: &Path) -> LoadOptions {
        LoadOptions { interpolate: true, working_dir: dir.to_path_buf(), ..Default::default() }
    }
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn files(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(PathBuf::from).collect()
}

fn load_ok(o: &LoadOptions) -> (Loaded, Value) {
    match load(o) {
        Ok(l) => {
            let j = serde_json::to_value(&l.project).expect("serialize the project");
            (l, j)
        }
        Err(e) => panic!("the project should load, got:\n{e}"),
    }
}

fn load_err(o: &LoadOptions) -> Vec<Diagnostic> {
    match load(o) {
        Ok(l) => panic!(
            "the project should not load, but it did with services {:?}",
            l.project.services.keys().collect::<Vec<_>>()
        ),
        Err(e) => e.diagnostics(),
    }
}

fn rendered(diags: &[Diagnostic]) -> String {
    diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} is not in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Assert that one diagnostic is in `file`, at the line and column of `needle` in that file's text, and that
/// its message contains `message`.
fn assert_diag_at(diags: &[Diagnostic], file: &Path, text: &str, needle: &str, message: &str) {
    let (line, column) = pos(text, needle);
    let found = diags.iter().any(|d| {
        d.span.file.as_deref() == Some(file)
            && d.span.line == line
            && d.span.column == column
            && d.message.contains(message)
    });
    assert!(
        found,
        "expected a diagnostic at {}:{line}:{column} containing {message:?}, got:\n{}",
        file.display(),
        rendered(diags)
    );
}

fn service_names(j: &Value) -> Vec<String> {
    j["services"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------------------------
// Interpolation
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn interpolation_dollar_name_and_braces() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: $IMAGE
    labels:
      plain: $A
      braced: ${A}x
      glued: $Ax
      inside: pre-${A}-post
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("IMAGE", "nginx:1.27"), ("A", "alpha")]);
    let (l, j) = load_ok(&o);
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "nginx:1.27");
    // `$Ax` names the variable `Ax` (the longest name), which is unset.
    assert_eq!(web["labels"], json!({"plain": "alpha", "braced": "alphax", "glued": "", "inside": "pre-alpha-post"}));
    assert!(l.warnings.iter().any(|w| w.message.contains("\"Ax\"")), "{}", rendered(&l.warnings));
}

#[test]
fn interpolation_default_with_and_without_colon() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: nginx
    labels:
      empty_colon: ${EMPTY:-d}
      empty_plain: ${EMPTY-d}
      unset_colon: ${UNSET:-d}
      unset_plain: ${UNSET-d}
      set_colon: ${SET:-d}
      set_plain: ${SET-d}
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("EMPTY", ""), ("SET", "value")]);
    let (l, j) = load_ok(&o);
    assert_eq!(
        j["services"]["web"]["labels"],
        json!({
            "empty_colon": "d", "empty_plain": "",
            "unset_colon": "d", "unset_plain": "d",
            "set_colon": "value", "set_plain": "value",
        })
    );
    // A default is not a missing variable: nothing to warn about.
    assert!(l.warnings.is_empty(), "{}", rendered(&l.warnings));
}

#[test]
fn interpolation_required_with_colon_rejects_empty() {
    let p = Project::new();
    let text = r#"services:
  web:
    image: ${EMPTY:?the image must be named}
"#;
    let file = p.write("compose.yaml", text);
    let mut o = p.opts();
    o.environment = env(&[("EMPTY", "")]);
    let d = load_err(&o);
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert_diag_at(&d, &file, text, "${EMPTY:?", "required variable EMPTY is missing a value: the image must be named");
    assert!(d[0].to_string().starts_with(&format!("{}:3:12: ", file.display())), "{}", d[0]);
}

#[test]
fn interpolation_required_without_colon_accepts_empty_rejects_unset() {
    let p = Project::new();
    p.write(
        "ok.yaml",
        r#"services:
  web:
    image: nginx
    labels:
      empty: ${EMPTY?not used}
      set: ${SET:?not used}
"#,
    );
    let mut o = p.opts();
    o.config_files = files(&["ok.yaml"]);
    o.environment = env(&[("EMPTY", ""), ("SET", "v")]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["labels"], json!({"empty": "", "set": "v"}));

    let text = r#"services:
  web:
    image: nginx
    labels:
      a: ${UNSET?first is missing}
      b: ${OTHER:?second is missing}
"#;
    let bad = p.write("bad.yaml", text);
    o.config_files = files(&["bad.yaml"]);
    let d = load_err(&o);
    // Every interpolation error of the file is reported, each at its value.
    assert_eq!(d.len(), 2, "{}", rendered(&d));
    assert_diag_at(&d, &bad, text, "${UNSET?", "required variable UNSET is missing a value: first is missing");
    assert_diag_at(&d, &bad, text, "${OTHER:?", "required variable OTHER is missing a value: second is missing");
}

#[test]
fn interpolation_alternative_value() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: nginx
    labels:
      set_colon: ${SET:+r}
      set_plain: ${SET+r}
      empty_colon: ${EMPTY:+r}
      empty_plain: ${EMPTY+r}
      unset_colon: ${UNSET:+r}
      unset_plain: ${UNSET+r}
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("SET", "v"), ("EMPTY", "")]);
    let (_, j) = load_ok(&o);
    assert_eq!(
        j["services"]["web"]["labels"],
        json!({
            "set_colon": "r", "set_plain": "r",
            "empty_colon": "", "empty_plain": "r",
            "unset_colon": "", "unset_plain": "",
        })
    );
}

#[test]
fn interpolation_nested() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: ${REGISTRY:-${FALLBACK_REGISTRY:-docker.io}}/app:${TAG:-${DEFAULT_TAG}}
    labels:
      deep: ${U1:-${U2:-${U3:-bottom}}}
      alt: ${SET:+[${INNER}]}
      unused: ${SET:-${NEVER_LOOKED_UP}}
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("FALLBACK_REGISTRY", "ghcr.io"), ("DEFAULT_TAG", "v2"), ("SET", "s"), ("INNER", "in")]);
    let (l, j) = load_ok(&o);
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "ghcr.io/app:v2");
    assert_eq!(web["labels"], json!({"deep": "bottom", "alt": "[in]", "unused": "s"}));
    // A default that is not used is not evaluated: NEVER_LOOKED_UP is not reported.
    assert!(l.warnings.is_empty(), "{}", rendered(&l.warnings));
}

#[test]
fn interpolation_double_dollar_is_a_literal_dollar() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: nginx
    command: sh -c "echo $$HOME $${NOT_A_VAR}"
    labels:
      price: $$5
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("HOME", "/root"), ("NOT_A_VAR", "x")]);
    let (l, j) = load_ok(&o);
    let web = &j["services"]["web"];
    assert_eq!(web["command"], json!(["sh", "-c", "echo $HOME ${NOT_A_VAR}"]));
    assert_eq!(web["labels"]["price"], "$5");
    assert!(l.warnings.is_empty(), "{}", rendered(&l.warnings));
}

#[test]
fn interpolation_never_touches_keys() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: nginx
    labels:
      ${KEY}: ${VALUE}
    environment:
      $KEY: $VALUE
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("KEY", "k"), ("VALUE", "v")]);
    let (_, j) = load_ok(&o);
    let web = &j["services"]["web"];
    assert_eq!(web["labels"], json!({"${KEY}": "v"}));
    assert_eq!(web["environment"], json!({"$KEY": "v"}));
}

#[test]
fn interpolation_unset_variable_warns_and_is_blank() {
    let p = Project::new();
    let text = r#"services:
  web:
    image: nginx
    labels:
      version: "v${TAG}"
"#;
    let file = p.write("compose.yaml", text);
    let (l, j) = load_ok(&p.opts());
    assert_eq!(j["services"]["web"]["labels"]["version"], "v");
    let w: Vec<&Diagnostic> = l.warnings.iter().filter(|w| w.message.contains("\"TAG\"")).collect();
    assert_eq!(w.len(), 1, "{}", rendered(&l.warnings));
    assert!(w[0].message.contains("not set"), "{}", w[0]);
    assert_eq!(w[0].span.file.as_deref(), Some(file.as_path()));
    assert_eq!(w[0].span.line, pos(text, "\"v${TAG}\"").0);
}

#[test]
fn interpolation_happens_in_each_file_before_the_merge() {
    let p = Project::new();
    p.write(".env", "TAG=1.0\n");
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: app:${TAG}
    labels:
      base: $$BASE
"#,
    );
    p.write(
        "override.yaml",
        r#"services:
  web:
    labels:
      over: ${TAG}-$$OVER
    environment:
      FROM_OVERRIDE: ${OVERRIDE_ONLY:-fallback}
"#,
    );
    let mut o = p.opts();
    o.config_files = files(&["compose.yaml", "override.yaml"]);
    let (l, j) = load_ok(&o);
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "app:1.0");
    // `$$` became `$` in each file; the merged result is not interpolated a second time.
    assert_eq!(web["labels"], json!({"base": "$BASE", "over": "1.0-$OVER"}));
    assert_eq!(web["environment"], json!({"FROM_OVERRIDE": "fallback"}));
    assert!(l.warnings.is_empty(), "{}", rendered(&l.warnings));
}

#[test]
fn interpolation_error_in_a_value_that_a_later_file_replaces() {
    // Each file is interpolated on its own, before merging: a required variable in the base file fails the load
    // even though the override file replaces that value.
    let p = Project::new();
    let text = r#"services:
  web:
    image: ${IMAGE:?set IMAGE}
"#;
    let base = p.write("compose.yaml", text);
    p.write("override.yaml", "services:\n  web:\n    image: nginx\n");
    let mut o = p.opts();
    o.config_files = files(&["compose.yaml", "override.yaml"]);
    let d = load_err(&o);
    assert_diag_at(&d, &base, text, "${IMAGE:?", "required variable IMAGE is missing a value: set IMAGE");
}

#[test]
fn dotenv_values_refer_to_earlier_lines_and_to_the_os_environment() {
    let p = Project::new();
    p.write(".env", "A=alpha\nB=${A}-beta\nC=${OS_VAR}/c\nD=${NOWHERE:-dflt}\n");
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: nginx
    labels:
      a: $A
      b: $B
      c: $C
      d: $D
"#,
    );
    let mut o = p.opts();
    o.environment = env(&[("OS_VAR", "/os")]);
    let (l, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["labels"], json!({"a": "alpha", "b": "alpha-beta", "c": "/os/c", "d": "dflt"}));
    assert_eq!(l.environment.get("B").map(String::as_str), Some("alpha-beta"));
}

#[test]
fn dotenv_references_see_the_os_environment_first() {
    // compose-go looks a reference up in the OS environment before the lines above it.
    let p = Project::new();
    p.write(".env", "A=from-file\nB=${A}+b\n");
    p.write("compose.yaml", "services:\n  web:\n    image: nginx\n    labels:\n      a: $A\n      b: $B\n");
    let mut o = p.opts();
    o.environment = env(&[("A", "from-os")]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["labels"], json!({"a": "from-os", "b": "from-os+b"}));
}

#[test]
fn compose_project_name_is_available_to_interpolation() {
    let p = Project::new();
    let dir = p.mkdir("shop");
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n    container_name: ${COMPOSE_PROJECT_NAME}-web\n",
    )
    .expect("write compose.yaml");
    let (_, j) = load_ok(&p.opts_in(&dir));
    assert_eq!(j["services"]["web"]["container_name"], "shop-web");
    let mut o = p.opts_in(&dir);
    o.project_name = Some("demo".into());
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["container_name"], "demo-web");
}

// ---------------------------------------------------------------------------------------------------------------
// Environment, project files, project name and directory
// ---------------------------------------------------------------------------------------------------------------

const TAGGED: &str = "services:\n  web:\n    image: app:${TAG:-none}\n    labels:\n      other: ${OTHER:-none}\n";

#[test]
fn dotenv_in_the_project_directory_is_read() {
    let p = Project::new();
    p.write(".env", "TAG=from-dotenv\n");
    p.write("compose.yaml", TAGGED);
    let (l, j) = load_ok(&p.opts());
    assert_eq!(j["services"]["web"]["image"], "app:from-dotenv");
    assert_eq!(l.environment.get("TAG").map(String::as_str), Some("from-dotenv"));
}

#[test]
fn os_environment_wins_over_dotenv() {
    let p = Project::new();
    p.write(".env", "TAG=from-dotenv\nOTHER=kept\n");
    p.write("compose.yaml", TAGGED);
    let mut o = p.opts();
    o.environment = env(&[("TAG", "from-os")]);
    let (l, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["image"], "app:from-os");
    assert_eq!(j["services"]["web"]["labels"]["other"], "kept");
    assert_eq!(l.environment.get("TAG").map(String::as_str), Some("from-os"));
}

#[test]
fn env_file_flag_replaces_dotenv_and_later_files_win() {
    let p = Project::new();
    p.write(".env", "TAG=from-dotenv\nOTHER=from-dotenv\n");
    p.write("a.env", "TAG=from-a\nBASE=base-a\n");
    p.write("b.env", "TAG=from-b\nCHAINED=${BASE}+b\n");
    p.write("compose.yaml", TAGGED);
    let mut o = p.opts();
    o.env_files = files(&["a.env", "b.env"]);
    let (l, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["image"], "app:from-b");
    // .env is not read at all once --env-file is given.
    assert_eq!(j["services"]["web"]["labels"]["other"], "none");
    // A later file sees the variables of the earlier ones.
    assert_eq!(l.environment.get("CHAINED").map(String::as_str), Some("base-a+b"));
}

#[test]
fn env_file_flag_naming_a_missing_file_is_an_error() {
    let p = Project::new();
    p.write("compose.yaml", TAGGED);
    let mut o = p.opts();
    o.env_files = files(&["missing.env"]);
    let e = load(&o).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("missing.env"), "{e}");
}

#[test]
fn compose_env_files_variable() {
    let p = Project::new();
    p.write(".env", "TAG=from-dotenv\nOTHER=from-dotenv\n");
    p.write("a.env", "TAG=from-a\nOTHER=from-a\n");
    p.write("b.env", "TAG=from-b\n");
    p.write("flag.env", "TAG=from-flag\n");
    p.write("compose.yaml", TAGGED);
    let mut o = p.opts();
    o.environment = env(&[("COMPOSE_ENV_FILES", "a.env,b.env")]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["image"], "app:from-b");
    assert_eq!(j["services"]["web"]["labels"]["other"], "from-a");
    // --env-file wins over COMPOSE_ENV_FILES.
    o.env_files = files(&["flag.env"]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["image"], "app:from-flag");
    assert_eq!(j["services"]["web"]["labels"]["other"], "none");
}

#[test]
fn compose_disable_env_file() {
    let p = Project::new();
    p.write(".env", "TAG=from-dotenv\n");
    p.write("flag.env", "TAG=from-flag\n");
    p.write("compose.yaml", TAGGED);
    let mut o = p.opts();
    o.environment = env(&[("COMPOSE_DISABLE_ENV_FILE", "1")]);
    let (l, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["image"], "app:none");
    assert!(!l.environment.contains_key("TAG"));
    // It only disables the default .env: an explicit --env-file is still read.
    o.env_files = files(&["flag.env"]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["web"]["image"], "app:from-flag");
}

#[test]
fn compose_file_variable_and_path_separator() {
    let p = Project::new();
    p.write("compose.yaml", "services:\n  ignored:\n    image: nope\n");
    p.write("a.yaml", "services:\n  web:\n    image: a\n    labels:\n      from_a: x\n");
    p.write("b.yaml", "services:\n  web:\n    image: b\n");
    let mut o = p.opts();
    o.environment = env(&[("COMPOSE_FILE", "a.yaml:b.yaml")]);
    let (l, j) = load_ok(&o);
    assert_eq!(l.files, vec![p.path("a.yaml"), p.path("b.yaml")]);
    assert_eq!(service_names(&j), ["web"]);
    assert_eq!(j["services"]["web"]["image"], "b");
    assert_eq!(j["services"]["web"]["labels"]["from_a"], "x");

    o.environment = env(&[("COMPOSE_FILE", "b.yaml;a.yaml"), ("COMPOSE_PATH_SEPARATOR", ";")]);
    let (l, j) = load_ok(&o);
    assert_eq!(l.files, vec![p.path("b.yaml"), p.path("a.yaml")]);
    assert_eq!(j["services"]["web"]["image"], "a");
}

#[test]
fn compose_file_set_in_dotenv() {
    let p = Project::new();
    p.write(".env", "COMPOSE_FILE=other.yaml\n");
    p.write("compose.yaml", "services:\n  ignored:\n    image: nope\n");
    p.write("other.yaml", "services:\n  web:\n    image: other\n");
    let (l, j) = load_ok(&p.opts());
    assert_eq!(l.files, vec![p.path("other.yaml")]);
    assert_eq!(service_names(&j), ["web"]);
}

#[test]

fn compose_file_paths_are_relative_to_the_working_directory() {
    // compose-go's WithConfigFileEnv makes COMPOSE_FILE entries absolute with filepath.Abs: against the current
    // directory, whatever --project-directory says.
    let p = Project::new();
    let cwd = p.mkdir("cwd");
    p.write("cwd/files/compose.yaml", "services:\n  web:\n    image: from-cwd\n");
    p.write("proj/files/compose.yaml", "services:\n  web:\n    image: from-project-dir\n");
    let mut o = p.opts_in(&cwd);
    o.project_directory = Some(p.path("proj"));
    o.environment = env(&[("COMPOSE_FILE", "files/compose.yaml")]);
    let (l, j) = load_ok(&o);
    assert_eq!(l.files, vec![p.path("cwd/files/compose.yaml")]);
    assert_eq!(j["services"]["web"]["image"], "from-cwd");
}

#[test]
fn compose_project_name_from_the_environment_and_from_dotenv() {
    let p = Project::new();
    p.write("compose.yaml", "name: from-file\nservices:\n  web:\n    image: nginx\n");
    let mut o = p.opts();
    o.environment = env(&[("COMPOSE_PROJECT_NAME", "from-env")]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["name"], "from-env");

    p.write(".env", "COMPOSE_PROJECT_NAME=from-dotenv\n");
    let (l, j) = load_ok(&p.opts());
    assert_eq!(j["name"], "from-dotenv");
    assert_eq!(j["networks"]["default"]["name"], "from-dotenv_default");
    assert_eq!(l.environment.get("COMPOSE_PROJECT_NAME").map(String::as_str), Some("from-dotenv"));

    // The OS environment still wins over .env.
    let (_, j) = load_ok(&o);
    assert_eq!(j["name"], "from-env");
}

#[test]
fn project_name_precedence() {
    let p = Project::new();
    let dir = p.mkdir("My Project.Dir_2");
    let compose = dir.join("compose.yaml");
    std::fs::write(&compose, "services:\n  web:\n    image: nginx\n").expect("write compose.yaml");

    // The directory's name, normalized: lowercase, only [a-z0-9_-].
    let (_, j) = load_ok(&p.opts_in(&dir));
    assert_eq!(j["name"], "myprojectdir_2");

    // `name:` beats the directory.
    std::fs::write(&compose, "name: from-file\nservices:\n  web:\n    image: nginx\n").expect("write compose.yaml");
    let (_, j) = load_ok(&p.opts_in(&dir));
    assert_eq!(j["name"], "from-file");

    // COMPOSE_PROJECT_NAME beats `name:`.
    let mut o = p.opts_in(&dir);
    o.environment = env(&[("COMPOSE_PROJECT_NAME", "from-env")]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["name"], "from-env");

    // -p beats everything.
    o.project_name = Some("from-flag".into());
    let (_, j) = load_ok(&o);
    assert_eq!(j["name"], "from-flag");
    assert_eq!(j["networks"]["default"]["name"], "from-flag_default");
}

#[test]
fn invalid_project_names_are_errors() {
    let p = Project::new();
    p.write("compose.yaml", "services:\n  web:\n    image: nginx\n");
    let mut o = p.opts();
    o.project_name = Some("My App".into());
    let e = rendered(&load_err(&o));
    assert!(e.contains("My App"), "{e}");

    // A name the user gave through COMPOSE_PROJECT_NAME is not normalized either.
    let mut o = p.opts();
    o.environment = env(&[("COMPOSE_PROJECT_NAME", "Upper")]);
    let e = rendered(&load_err(&o));
    assert!(e.contains("Upper"), "{e}");

    // Nor is `name:`; its error points at it.
    let text = "name: _bad\nservices:\n  web:\n    image: nginx\n";
    let file = p.write("named.yaml", text);
    let mut o = p.opts();
    o.config_files = files(&["named.yaml"]);
    let d = load_err(&o);
    assert_diag_at(&d, &file, text, "_bad", "_bad");
}

#[test]
fn project_directory_flag() {
    let p = Project::new();
    let cwd = p.mkdir("elsewhere");
    p.write("app/.env", "TAG=from-app-dotenv\n");
    p.write(
        "app/compose.yaml",
        "services:\n  web:\n    image: app:${TAG:-none}\n    build: ./src\n    volumes:\n      - ./data:/data\n",
    );
    let mut o = p.opts_in(&cwd);
    o.project_directory = Some(PathBuf::from("../app"));
    let (l, j) = load_ok(&o);
    assert_eq!(l.project_directory, p.path("app"));
    assert_eq!(l.files, vec![p.path("app/compose.yaml")]);
    assert_eq!(j["name"], "app");
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "app:from-app-dotenv");
    assert_eq!(web["build"]["context"], p.path("app/src").to_string_lossy().as_ref());
    assert_eq!(web["volumes"][0]["source"], p.path("app/data").to_string_lossy().as_ref());

    // With -f elsewhere, relative paths still resolve against --project-directory.
    p.write("files/compose.yaml", "services:\n  web:\n    image: nginx\n    build: ./src\n");
    let mut o = p.opts();
    o.config_files = files(&["files/compose.yaml"]);
    o.project_directory = Some(PathBuf::from("app"));
    let (l, j) = load_ok(&o);
    assert_eq!(l.project_directory, p.path("app"));
    assert_eq!(j["services"]["web"]["build"]["context"], p.path("app/src").to_string_lossy().as_ref());
}

#[test]
fn discovery_in_a_parent_directory_with_its_override_file() {
    let p = Project::new();
    let root = p.mkdir("Parent.Dir");
    std::fs::write(root.join(".env"), "TAG=from-parent\n").expect("write .env");
    std::fs::write(root.join("compose.yaml"), "services:\n  web:\n    image: app:${TAG}\n    build: ./src\n")
        .expect("write compose.yaml");
    std::fs::write(root.join("compose.override.yaml"), "services:\n  web:\n    labels:\n      overridden: \"yes\"\n")
        .expect("write compose.override.yaml");
    let sub = p.mkdir("Parent.Dir/a/b");
    let (l, j) = load_ok(&p.opts_in(&sub));
    assert_eq!(l.files, vec![root.join("compose.yaml"), root.join("compose.override.yaml")]);
    assert_eq!(l.project_directory, root);
    assert_eq!(j["name"], "parentdir");
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "app:from-parent");
    assert_eq!(web["labels"]["overridden"], "yes");
    assert_eq!(web["build"]["context"], root.join("src").to_string_lossy().as_ref());
}

#[test]

fn discovery_in_a_parent_keeps_the_working_directory_dotenv() {
    // docker compose applies WithEnvFiles+WithDotEnv once from the working directory, then again from the
    // directory where compose.yaml was found; the second pass only adds variables that are not set yet.
    let p = Project::new();
    let root = p.mkdir("proj");
    std::fs::write(root.join(".env"), "TAG=from-parent\nOTHER=from-parent\n").expect("write .env");
    std::fs::write(root.join("compose.yaml"), TAGGED).expect("write compose.yaml");
    let sub = p.mkdir("proj/sub");
    std::fs::write(sub.join(".env"), "TAG=from-cwd\n").expect("write .env");
    let (_, j) = load_ok(&p.opts_in(&sub));
    assert_eq!(j["services"]["web"]["image"], "app:from-cwd");
    assert_eq!(j["services"]["web"]["labels"]["other"], "from-parent");
}

#[test]
fn compose_yaml_is_preferred_over_docker_compose_yml() {
    let p = Project::new();
    p.write("docker-compose.yml", "services:\n  old:\n    image: old\n");
    p.write("compose.yaml", "services:\n  new:\n    image: new\n");
    let (l, j) = load_ok(&p.opts());
    assert_eq!(l.files, vec![p.path("compose.yaml")]);
    assert_eq!(service_names(&j), ["new"]);

    // docker-compose.yml is still found alone, with docker-compose.override.yml.
    let q = Project::new();
    q.write("docker-compose.yml", "services:\n  old:\n    image: old\n");
    q.write("docker-compose.override.yml", "services:\n  old:\n    image: older\n");
    let (l, j) = load_ok(&q.opts());
    assert_eq!(l.files, vec![q.path("docker-compose.yml"), q.path("docker-compose.override.yml")]);
    assert_eq!(j["services"]["old"]["image"], "older");
}

#[test]

fn override_file_names_are_tried_in_docker_compose_order() {
    let p = Project::new();
    p.write("compose.yaml", "services:\n  web:\n    image: base\n");
    p.write("compose.override.yaml", "services:\n  web:\n    image: from-yaml\n");
    p.write("compose.override.yml", "services:\n  web:\n    image: from-yml\n");
    let (l, j) = load_ok(&p.opts());
    assert_eq!(l.files, vec![p.path("compose.yaml"), p.path("compose.override.yml")]);
    assert_eq!(j["services"]["web"]["image"], "from-yml");
}

// ---------------------------------------------------------------------------------------------------------------
// Merge of several files
// ---------------------------------------------------------------------------------------------------------------

/// Load `base` then `over` as `-f compose.yaml -f override.yaml`.
fn merged(base: &str, over: &str, environment: &[(&str, &str)]) -> (Project, Value) {
    let p = Project::new();
    p.write("compose.yaml", base);
    p.write("override.yaml", over);
    let mut o = p.opts();
    o.config_files = files(&["compose.yaml", "override.yaml"]);
    o.environment = env(environment);
    let (_, j) = load_ok(&o);
    (p, j)
}

#[test]
fn merge_mappings_merge_and_scalars_are_replaced() {
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    restart: always
    environment:
      A: "1"
      B: "2"
    deploy:
      resources:
        limits:
          cpus: "1"
networks:
  front: {}
"#,
        r#"services:
  web:
    image: b
    environment:
      B: "3"
    deploy:
      resources:
        limits:
          memory: 64M
  db:
    image: postgres
networks:
  back: {}
"#,
        &[],
    );
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "b");
    assert_eq!(web["restart"], "always");
    assert_eq!(web["environment"], json!({"A": "1", "B": "3"}));
    assert_eq!(web["deploy"]["resources"]["limits"]["cpus"], 1.0);
    assert_eq!(web["deploy"]["resources"]["limits"]["memory"], 64 * 1024 * 1024);
    assert_eq!(sorted(service_names(&j)), ["db", "web"]);
    assert!(j["networks"].get("front").is_some() && j["networks"].get("back").is_some(), "{}", j["networks"]);
}

#[test]
fn merge_sequences_are_appended_without_duplicates() {
    let (_, j) = merged(
        "services:\n  web:\n    image: a\n    dns: 1.1.1.1\n    cap_add: [NET_ADMIN]\n",
        "services:\n  web:\n    dns: [1.1.1.1, 8.8.8.8]\n    cap_add: [SYS_TIME, NET_ADMIN]\n",
        &[],
    );
    let web = &j["services"]["web"];
    assert_eq!(web["dns"], json!(["1.1.1.1", "8.8.8.8"]));
    assert_eq!(web["cap_add"], json!(["NET_ADMIN", "SYS_TIME"]));
}

#[test]
fn merge_replaces_command_entrypoint_and_healthcheck_test() {
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    command: [run, --port, "80"]
    entrypoint: /docker-entrypoint.sh
    healthcheck:
      test: [CMD, curl, -f, http://localhost]
      interval: 10s
"#,
        r#"services:
  web:
    command: serve
    entrypoint: [/bin/sh, -c]
    healthcheck:
      test: wget -q localhost
"#,
        &[],
    );
    let web = &j["services"]["web"];
    assert_eq!(web["command"], json!(["serve"]));
    assert_eq!(web["entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(web["healthcheck"]["test"], json!(["CMD-SHELL", "wget -q localhost"]));
    // The rest of healthcheck still merges.
    assert!(web["healthcheck"].get("interval").is_some(), "{}", web["healthcheck"]);
}

#[test]
fn merge_ports_by_key_keeps_the_same_port_once() {
    let (_, j) = merged(
        "services:\n  web:\n    image: a\n    ports:\n      - \"8080:80\"\n      - \"9000:9000\"\n",
        "services:\n  web:\n    ports:\n      - \"8080:80\"\n      - \"8443:443\"\n",
        &[],
    );
    let ports = j["services"]["web"]["ports"].as_array().cloned().unwrap_or_default();
    let published: Vec<&str> = ports.iter().filter_map(|p| p["published"].as_str()).collect();
    assert_eq!(published, ["8080", "9000", "8443"]);
    assert_eq!(ports[0]["target"], 80);
    assert_eq!(ports[0]["protocol"], "tcp");
}

#[test]

fn merge_ports_key_defaults_the_host_ip() {
    // compose-go portIndexer: host_ip defaults to 0.0.0.0 and protocol to tcp; the later entry replaces the earlier.
    let (_, j) = merged(
        "services:\n  web:\n    image: a\n    ports:\n      - \"8080:80\"\n",
        "services:\n  web:\n    ports:\n      - \"0.0.0.0:8080:80/tcp\"\n",
        &[],
    );
    let ports = &j["services"]["web"]["ports"];
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
    assert_eq!(ports[0]["host_ip"], "0.0.0.0");
}

#[test]

fn duplicate_entries_in_one_file_are_kept_once() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: a
    ports:
      - "8080:80"
      - "8080:80"
    dns: [1.1.1.1, 1.1.1.1]
    cap_add: [NET_ADMIN, NET_ADMIN]
    volumes:
      - ./a:/data
      - ./b:/data
"#,
    );
    let (_, j) = load_ok(&p.opts());
    let web = &j["services"]["web"];
    assert_eq!(web["ports"].as_array().map(Vec::len), Some(1), "{}", web["ports"]);
    assert_eq!(web["dns"], json!(["1.1.1.1"]));
    assert_eq!(web["cap_add"], json!(["NET_ADMIN"]));
    // Same target: the later entry replaces the earlier one, in its place.
    assert_eq!(web["volumes"].as_array().map(Vec::len), Some(1), "{}", web["volumes"]);
    assert_eq!(web["volumes"][0]["source"], p.path("b").to_string_lossy().as_ref());
}

#[test]
fn merge_volumes_by_target() {
    let (p, j) = merged(
        "services:\n  web:\n    image: a\n    volumes:\n      - data:/data\n      - ./src:/src\nvolumes:\n  data: {}\n  other: {}\n",
        "services:\n  web:\n    volumes:\n      - other:/data\n      - ./logs:/logs\n",
        &[],
    );
    let v = &j["services"]["web"]["volumes"];
    let targets: Vec<&str> =
        v.as_array().map(|a| a.iter().filter_map(|x| x["target"].as_str()).collect()).unwrap_or_default();
    assert_eq!(targets, ["/data", "/src", "/logs"]);
    assert_eq!(v[0]["source"], "other");
    assert_eq!(v[0]["type"], "volume");
    assert_eq!(v[2]["source"], p.path("logs").to_string_lossy().as_ref());
}

#[test]

fn merge_volume_with_the_same_target_replaces_the_whole_entry() {
    // compose-go's EnforceUnicity keeps the later entry for a key (`seq[j] = entry`): `:ro` of the base is gone.
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    volumes:
      - data:/data:ro
    secrets:
      - source: s
        mode: 0400
volumes:
  data: {}
  other: {}
secrets:
  s: {file: ./s.txt}
"#,
        r#"services:
  web:
    volumes:
      - other:/data
    secrets:
      - source: s
        uid: "1000"
"#,
        &[],
    );
    let v = &j["services"]["web"]["volumes"];
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["source"], "other");
    assert!(v[0].get("read_only").is_none(), "{v}");
    assert_eq!(j["services"]["web"]["secrets"], json!([{"source": "s", "uid": "1000"}]));
}

#[test]
fn merge_secrets_and_configs_by_target_or_source() {
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    secrets:
      - s1
      - source: s2
        target: /run/secrets/custom
    configs:
      - c1
secrets:
  s1: {file: ./s1.txt}
  s2: {file: ./s2.txt}
  s3: {file: ./s3.txt}
configs:
  c1: {file: ./c1.txt}
  c2: {file: ./c2.txt}
"#,
        r#"services:
  web:
    secrets:
      - source: s1
        uid: "1000"
      - s3
    configs:
      - source: c1
        mode: 0440
      - c2
"#,
        &[],
    );
    let web = &j["services"]["web"];
    assert_eq!(
        web["secrets"],
        json!([{"source": "s1", "uid": "1000"}, {"source": "s2", "target": "/run/secrets/custom"}, {"source": "s3"}])
    );
    let configs = web["configs"].as_array().cloned().unwrap_or_default();
    assert_eq!(configs.len(), 2, "{}", web["configs"]);
    assert_eq!(configs[0]["source"], "c1");
    assert!(configs[0].get("mode").is_some(), "{}", web["configs"]);
    assert_eq!(configs[1]["source"], "c2");
}

#[test]

fn merge_secrets_and_configs_by_their_mount_path() {
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    secrets: [foo, bar]
    configs: [c1]
secrets:
  foo: {file: ./foo.txt}
  bar: {file: ./bar.txt}
configs:
  c1: {file: ./c1.txt}
"#,
        r#"services:
  web:
    secrets:
      - source: bar
        target: /run/secrets/foo
    configs:
      - source: c1
        target: /c1
"#,
        &[],
    );
    let web = &j["services"]["web"];
    // compose-go's own test (override/merge_mounts_test.go): `foo` is mounted at /run/secrets/foo, so the override
    // entry with that target replaces it.
    assert_eq!(web["secrets"], json!([{"source": "bar", "target": "/run/secrets/foo"}, {"source": "bar"}]));
    assert_eq!(web["configs"], json!([{"source": "c1", "target": "/c1"}]));
}

#[test]
fn merge_environment_list_in_one_file_and_mapping_in_the_other() {
    let (_, j) = merged(
        "services:\n  web:\n    image: a\n    environment:\n      - A=1\n      - B=2\n      - FROM_OS\n",
        "services:\n  web:\n    environment:\n      B: \"3\"\n      C: c\n      UNSET_BARE:\n",
        &[("FROM_OS", "os")],
    );
    assert_eq!(
        j["services"]["web"]["environment"],
        json!({"A": "1", "B": "3", "FROM_OS": "os", "C": "c", "UNSET_BARE": null})
    );

    // And the other way round.
    let (_, j) = merged(
        "services:\n  web:\n    image: a\n    environment:\n      A: \"1\"\n      B: \"2\"\n",
        "services:\n  web:\n    environment:\n      - B=3\n      - C=c\n",
        &[],
    );
    assert_eq!(j["services"]["web"]["environment"], json!({"A": "1", "B": "3", "C": "c"}));
}

#[test]
fn merge_labels() {
    let (_, j) = merged(
        "services:\n  web:\n    image: a\n    labels:\n      - com.example.a=1\n      - com.example.b=2\n      - com.example.flag\n",
        "services:\n  web:\n    labels:\n      com.example.b: \"3\"\n      com.example.c: \"4\"\n",
        &[],
    );
    assert_eq!(
        j["services"]["web"]["labels"],
        json!({"com.example.a": "1", "com.example.b": "3", "com.example.flag": "", "com.example.c": "4"})
    );
}

#[test]
fn merge_reset_tag_removes_a_key_and_empties_a_list() {
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    command: [serve]
    ports: ["8080:80", "9090:90"]
    dns: [1.1.1.1]
    labels:
      keep: k
      drop: d
    build: ./app
"#,
        r#"services:
  web:
    command: !reset null
    ports: !reset []
    dns: !reset []
    labels:
      drop: !reset
    build: !reset
"#,
        &[],
    );
    let web = &j["services"]["web"];
    assert!(web.get("command").is_none(), "{web}");
    assert!(web.get("ports").is_none(), "{web}");
    assert!(web.get("dns").is_none(), "{web}");
    assert!(web.get("build").is_none(), "{web}");
    assert_eq!(web["labels"], json!({"keep": "k"}));
    assert_eq!(web["image"], "a");
}

#[test]
fn merge_override_tag_replaces_instead_of_merging() {
    let (_, j) = merged(
        r#"services:
  web:
    image: a
    ports: ["8080:80", "9090:90"]
    environment:
      A: "1"
      B: "2"
    dns: [1.1.1.1]
"#,
        r#"services:
  web:
    ports: !override ["7070:70"]
    environment: !override
      C: "3"
    dns: !override [8.8.8.8]
"#,
        &[],
    );
    let web = &j["services"]["web"];
    let published: Vec<&str> =
        web["ports"].as_array().map(|a| a.iter().filter_map(|p| p["published"].as_str()).collect()).unwrap_or_default();
    assert_eq!(published, ["7070"]);
    assert_eq!(web["environment"], json!({"C": "3"}));
    assert_eq!(web["dns"], json!(["8.8.8.8"]));
}

#[test]
fn merge_override_file_paths_resolve_against_the_project_directory() {
    let p = Project::new();
    p.write("compose.yaml", "services:\n  web:\n    image: a\n");
    p.write(
        "overrides/dev.yaml",
        "services:\n  web:\n    build: ./app\n    volumes:\n      - ./data:/data\nsecrets:\n  s:\n    file: ./secret.txt\n",
    );
    let mut o = p.opts();
    o.config_files = files(&["compose.yaml", "overrides/dev.yaml"]);
    let (l, j) = load_ok(&o);
    assert_eq!(l.project_directory, p.root());
    let web = &j["services"]["web"];
    assert_eq!(web["build"]["context"], p.path("app").to_string_lossy().as_ref());
    assert_eq!(web["volumes"][0]["source"], p.path("data").to_string_lossy().as_ref());
    assert_eq!(j["secrets"]["s"]["file"], p.path("secret.txt").to_string_lossy().as_ref());
}

// ---------------------------------------------------------------------------------------------------------------
// extends
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn extends_a_service_of_the_same_file() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  base:
    image: app
    environment:
      LEVEL: base
      KEEP: k
    ports: ["8080:80"]
  web:
    extends: base
    environment:
      LEVEL: web
  worker:
    extends:
      service: base
    command: work
"#,
    );
    let (_, j) = load_ok(&p.opts());
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "app");
    assert_eq!(web["environment"], json!({"LEVEL": "web", "KEEP": "k"}));
    assert_eq!(web["ports"][0]["published"], "8080");
    assert!(web.get("extends").is_none(), "{web}");
    assert_eq!(j["services"]["worker"]["command"], json!(["work"]));
    assert_eq!(j["services"]["base"]["environment"]["LEVEL"], "base");
}

#[test]
fn extends_from_another_file_resolves_its_paths_against_that_file() {
    let p = Project::new();
    p.write("common/base.env", "FROM_BASE_ENV_FILE=yes\n");
    p.write(
        "common/base.yaml",
        r#"services:
  app:
    image: app
    build: ./app
    env_file: ./base.env
    volumes:
      - ./shared:/shared
"#,
    );
    p.write(
        "compose.yaml",
        r#"services:
  web:
    extends:
      file: common/base.yaml
      service: app
    volumes:
      - ./local:/local
"#,
    );
    let (_, j) = load_ok(&p.opts());
    let web = &j["services"]["web"];
    assert_eq!(web["build"]["context"], p.path("common/app").to_string_lossy().as_ref());
    assert_eq!(web["environment"]["FROM_BASE_ENV_FILE"], "yes");
    let sources: Vec<String> = web["volumes"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["source"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    assert_eq!(
        sources,
        [p.path("common/shared").to_string_lossy().into_owned(), p.path("local").to_string_lossy().into_owned()]
    );
    // Services of the other file are not part of the project.
    assert_eq!(service_names(&j), ["web"]);
}

#[test]
fn extends_chain() {
    let p = Project::new();
    p.write(
        "base.yaml",
        "services:\n  root:\n    image: root-image\n    labels:\n      from_root: r\n  middle:\n    extends: root\n    labels:\n      from_middle: m\n",
    );
    p.write(
        "compose.yaml",
        "services:\n  leaf:\n    extends:\n      file: base.yaml\n      service: middle\n    labels:\n      from_leaf: l\n  top:\n    extends: leaf\n    restart: always\n",
    );
    let (_, j) = load_ok(&p.opts());
    let top = &j["services"]["top"];
    assert_eq!(top["image"], "root-image");
    assert_eq!(top["labels"], json!({"from_root": "r", "from_middle": "m", "from_leaf": "l"}));
    assert_eq!(top["restart"], "always");
}

#[test]
fn extends_cycle_is_an_error_naming_the_chain() {
    let p = Project::new();
    let text = r#"services:
  alpha:
    image: a
    extends: beta
  beta:
    extends: gamma
  gamma:
    extends: alpha
"#;
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    let e = rendered(&d);
    assert!(e.contains("alpha") && e.contains("beta") && e.contains("gamma"), "{e}");
    assert!(d.iter().all(|d| d.span.file.as_deref() == Some(file.as_path()) && d.span.line > 0), "{e}");
    // The error starting at alpha points at its `extends` and walks the whole chain back to alpha.
    assert_diag_at(&d, &file, text, "beta\n  beta:", "alpha");
    let first = d.iter().find(|x| x.span.line == 4).map(|x| x.message.clone()).unwrap_or_default();
    let order: Vec<usize> = ["alpha", "beta", "gamma"].iter().filter_map(|n| first.find(n)).collect();
    assert!(order.len() == 3 && order.windows(2).all(|w| w[0] < w[1]), "{first}");
    assert!(first.rfind("alpha") > first.find("gamma"), "{first}");
}

#[test]
fn extends_a_missing_service_is_an_error() {
    let p = Project::new();
    let text = "services:\n  web:\n    extends:\n      service: nowhere\n    image: a\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert!(d[0].message.contains("nowhere"), "{}", d[0]);
    assert_diag_at(&d, &file, text, "service: nowhere", "nowhere");

    // Same in another file: the error names the file it looked in.
    p.write("base.yaml", "services:\n  other:\n    image: o\n");
    p.write("compose.yaml", "services:\n  web:\n    extends:\n      file: base.yaml\n      service: nowhere\n");
    let e = rendered(&load_err(&p.opts()));
    assert!(e.contains("nowhere") && e.contains("base.yaml"), "{e}");
}

#[test]
fn extends_the_extending_service_wins() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  base:
    image: base-image
    command: [base, cmd]
    restart: always
    environment:
      A: base
      B: base
    dns: [1.1.1.1]
    ports: ["8080:80"]
    healthcheck:
      test: [CMD, base]
      retries: 3
  web:
    extends: base
    image: web-image
    command: web
    environment:
      B: web
    dns: [8.8.8.8]
    ports: ["8443:443"]
    healthcheck:
      test: [CMD, web]
"#,
    );
    let (_, j) = load_ok(&p.opts());
    let web = &j["services"]["web"];
    assert_eq!(web["image"], "web-image");
    assert_eq!(web["command"], json!(["web"]));
    assert_eq!(web["restart"], "always");
    assert_eq!(web["environment"], json!({"A": "base", "B": "web"}));
    assert_eq!(web["dns"], json!(["1.1.1.1", "8.8.8.8"]));
    assert_eq!(web["ports"].as_array().map(Vec::len), Some(2));
    assert_eq!(web["healthcheck"]["test"], json!(["CMD", "web"]));
    assert_eq!(web["healthcheck"]["retries"], 3);
}

#[test]
fn extends_reset_inside_the_extending_service() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  base:
    image: app
    command: [base]
    ports: ["8080:80"]
    labels:
      a: "1"
      b: "2"
  web:
    extends: base
    command: !reset null
    ports: !reset []
    labels:
      a: !reset
"#,
    );
    let (_, j) = load_ok(&p.opts());
    let web = &j["services"]["web"];
    assert!(web.get("command").is_none(), "{web}");
    assert!(web.get("ports").is_none(), "{web}");
    assert_eq!(web["labels"], json!({"b": "2"}));
    // The base keeps what it has.
    assert_eq!(j["services"]["base"]["command"], json!(["base"]));
}

// ---------------------------------------------------------------------------------------------------------------
// include
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn include_short_form() {
    let p = Project::new();
    p.write(
        "sub/compose.yaml",
        "services:\n  db:\n    image: postgres\n    volumes:\n      - ./pgdata:/var/lib/postgresql/data\n",
    );
    p.write(
        "compose.yaml",
        "include:\n  - sub/compose.yaml\nservices:\n  web:\n    image: app\n    depends_on: [db]\n",
    );
    let (_, j) = load_ok(&p.opts());
    assert_eq!(sorted(service_names(&j)), ["db", "web"]);
    // Relative paths of an included file resolve against its own directory.
    assert_eq!(j["services"]["db"]["volumes"][0]["source"], p.path("sub/pgdata").to_string_lossy().as_ref());
}

#[test]
fn include_long_form_with_project_directory() {
    let p = Project::new();
    p.write("other/.env", "DB_IMAGE=postgres:16\n");
    p.write(
        "sub/compose.yaml",
        "services:\n  db:\n    image: ${DB_IMAGE:-none}\n    volumes:\n      - ./pgdata:/data\n",
    );
    p.write(
        "compose.yaml",
        "include:\n  - path: sub/compose.yaml\n    project_directory: other\nservices:\n  web:\n    image: app\n",
    );
    let (_, j) = load_ok(&p.opts());
    let db = &j["services"]["db"];
    // The included project's directory is `other`: its .env and relative paths come from there.
    assert_eq!(db["image"], "postgres:16");
    assert_eq!(db["volumes"][0]["source"], p.path("other/pgdata").to_string_lossy().as_ref());
}

#[test]
fn include_uses_its_own_dotenv_for_its_interpolation() {
    let p = Project::new();
    p.write("sub/.env", "DB_TAG=15\n");
    p.write("sub/compose.yaml", "services:\n  db:\n    image: postgres:${DB_TAG:-latest}\n");
    p.write(
        "compose.yaml",
        "include:\n  - sub/compose.yaml\nservices:\n  web:\n    image: app:${DB_TAG:-unset-in-parent}\n",
    );
    let (_, j) = load_ok(&p.opts());
    assert_eq!(j["services"]["db"]["image"], "postgres:15");
    // The included .env is the included project's: the including file does not see it.
    assert_eq!(j["services"]["web"]["image"], "app:unset-in-parent");
}

#[test]

fn include_the_including_environment_wins_over_the_included_dotenv() {
    // compose-go ApplyInclude: `Environment: environment.Clone().Merge(envFromFile)`, Merge adding only unset keys
    // ("local environment to override included .env").
    let p = Project::new();
    p.write(".env", "DB_TAG=from-parent\n");
    p.write("sub/.env", "DB_TAG=from-included\nONLY_INCLUDED=i\n");
    p.write(
        "sub/compose.yaml",
        "services:\n  db:\n    image: postgres:${DB_TAG}\n    labels:\n      only: ${ONLY_INCLUDED}\n",
    );
    p.write("compose.yaml", "include:\n  - sub/compose.yaml\n");
    let (_, j) = load_ok(&p.opts());
    assert_eq!(j["services"]["db"]["image"], "postgres:from-parent");
    assert_eq!(j["services"]["db"]["labels"]["only"], "i");
}

#[test]
fn include_os_environment_wins_over_the_included_dotenv() {
    let p = Project::new();
    p.write("sub/.env", "DB_TAG=from-included\n");
    p.write("sub/compose.yaml", "services:\n  db:\n    image: postgres:${DB_TAG}\n");
    p.write("compose.yaml", "include:\n  - sub/compose.yaml\n");
    let mut o = p.opts();
    o.environment = env(&[("DB_TAG", "from-os")]);
    let (_, j) = load_ok(&o);
    assert_eq!(j["services"]["db"]["image"], "postgres:from-os");
}

#[test]
fn include_env_file_option() {
    let p = Project::new();
    p.write("sub/.env", "DB_TAG=from-sub-dotenv\n");
    p.write("custom.env", "DB_TAG=from-custom\n");
    p.write("sub/compose.yaml", "services:\n  db:\n    image: postgres:${DB_TAG:-none}\n");
    p.write("compose.yaml", "include:\n  - path: sub/compose.yaml\n    env_file: custom.env\n");
    let (_, j) = load_ok(&p.opts());
    // env_file (relative to the including project) replaces the included project's .env.
    assert_eq!(j["services"]["db"]["image"], "postgres:from-custom");

    p.write("compose.yaml", "include:\n  - path: sub/compose.yaml\n    env_file: missing.env\n");
    let e = rendered(&load_err(&p.opts()));
    assert!(e.contains("missing.env"), "{e}");
}

#[test]
fn include_conflicting_definition_is_an_error() {
    let p = Project::new();
    p.write("sub/compose.yaml", "services:\n  web:\n    image: from-included\n");
    let text = "include:\n  - sub/compose.yaml\nservices:\n  web:\n    image: from-main\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    // Docker Compose 2.x: "services.web conflicts with imported resource".
    assert_diag_at(&d, &file, text, "web:\n    image: from-main", "services.web conflicts");
}

#[test]
fn include_identical_definition_is_accepted() {
    let p = Project::new();
    p.write("sub/compose.yaml", "services:\n  web:\n    image: same\nnetworks:\n  shared: {}\n");
    p.write(
        "compose.yaml",
        "include:\n  - sub/compose.yaml\nservices:\n  web:\n    image: same\nnetworks:\n  shared: {}\n",
    );
    let (_, j) = load_ok(&p.opts());
    assert_eq!(service_names(&j), ["web"]);
    assert_eq!(j["services"]["web"]["image"], "same");
}

#[test]
fn include_cycle_is_an_error() {
    let p = Project::new();
    p.write("a/compose.yaml", "include:\n  - ../b/compose.yaml\nservices:\n  a:\n    image: a\n");
    p.write("b/compose.yaml", "include:\n  - ../a/compose.yaml\nservices:\n  b:\n    image: b\n");
    let mut o = p.opts();
    o.config_files = files(&["a/compose.yaml"]);
    let e = rendered(&load_err(&o));
    assert!(e.contains("cycle"), "{e}");
    assert!(e.contains("a/compose.yaml") && e.contains("b/compose.yaml"), "{e}");
}

#[test]
fn include_brings_networks_and_volumes() {
    let p = Project::new();
    p.write(
        "sub/compose.yaml",
        "services:\n  db:\n    image: postgres\n    networks: [backend]\n    volumes:\n      - dbdata:/data\nnetworks:\n  backend: {}\nvolumes:\n  dbdata: {}\n",
    );
    p.write(
        "compose.yaml",
        "include:\n  - sub/compose.yaml\nservices:\n  web:\n    image: app\n    networks: [backend, front]\nnetworks:\n  front: {}\n",
    );
    let mut o = p.opts();
    o.project_name = Some("proj".into());
    let (_, j) = load_ok(&o);
    assert_eq!(sorted(service_names(&j)), ["db", "web"]);
    assert_eq!(j["networks"]["backend"]["name"], "proj_backend");
    assert_eq!(j["networks"]["front"]["name"], "proj_front");
    assert_eq!(j["volumes"]["dbdata"]["name"], "proj_dbdata");
}

// ---------------------------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------------------------

const PROFILED: &str = r#"services:
  web:
    image: web
  db:
    image: db
  debug:
    image: debug
    profiles: [dev]
  tools:
    image: tools
    profiles: [ops, dev]
  metrics:
    image: metrics
    profiles: [monitoring]
"#;

fn profiled(flags: &[&str], environment: &[(&str, &str)]) -> (Loaded, Value) {
    let p = Project::new();
    p.write("compose.yaml", PROFILED);
    let mut o = p.opts();
    o.profiles = flags.iter().map(|s| s.to_string()).collect();
    o.environment = env(environment);
    load_ok(&o)
}

#[test]
fn profiles_services_with_profiles_are_disabled_by_default() {
    let (l, j) = profiled(&[], &[]);
    assert_eq!(sorted(service_names(&j)), ["db", "web"]);
    assert_eq!(sorted(l.disabled.clone()), ["debug", "metrics", "tools"]);
    assert_eq!(l.all_profiles, ["dev", "monitoring", "ops"]);
}

#[test]
fn profiles_flag_enables_services() {
    let (_, j) = profiled(&["ops"], &[]);
    assert_eq!(sorted(service_names(&j)), ["db", "tools", "web"]);
    let (_, j) = profiled(&["dev", "monitoring"], &[]);
    assert_eq!(sorted(service_names(&j)), ["db", "debug", "metrics", "tools", "web"]);
}

#[test]
fn compose_profiles_variable_is_a_comma_list() {
    let (_, j) = profiled(&[], &[("COMPOSE_PROFILES", "ops,monitoring")]);
    assert_eq!(sorted(service_names(&j)), ["db", "metrics", "tools", "web"]);
}

#[test]
fn compose_profiles_set_in_dotenv() {
    let p = Project::new();
    p.write("compose.yaml", PROFILED);
    p.write(".env", "COMPOSE_PROFILES=monitoring\n");
    let (_, j) = load_ok(&p.opts());
    assert_eq!(sorted(service_names(&j)), ["db", "metrics", "web"]);
}

#[test]

fn profiles_flag_replaces_compose_profiles() {
    // compose-go cli.WithDefaultProfiles: "uses the provided profiles (if any), and falls back to profiles
    // specified via the COMPOSE_PROFILES environment variable otherwise".
    let (_, j) = profiled(&["ops"], &[("COMPOSE_PROFILES", "monitoring")]);
    assert_eq!(sorted(service_names(&j)), ["db", "tools", "web"]);
}

#[test]
fn profiles_star_enables_every_service() {
    let (l, j) = profiled(&["*"], &[]);
    assert_eq!(sorted(service_names(&j)), ["db", "debug", "metrics", "tools", "web"]);
    assert!(l.disabled.is_empty());
    let (_, j) = profiled(&[], &[("COMPOSE_PROFILES", "*")]);
    assert_eq!(service_names(&j).len(), 5);
}

#[test]
fn naming_a_service_enables_it_and_its_dependencies() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: web
  db:
    image: db
  cache:
    image: cache
    profiles: [dev]
  debug:
    image: debug
    profiles: [dev]
    depends_on: [db, cache]
"#,
    );
    let mut o = p.opts();
    o.services = vec!["debug".into()];
    let (l, j) = load_ok(&o);
    assert_eq!(sorted(service_names(&j)), ["cache", "db", "debug"]);
    assert!(l.disabled.contains(&"web".to_string()), "{:?}", l.disabled);
}

#[test]

fn naming_a_service_does_not_activate_the_profiles_of_its_dependencies() {
    // The example of the Docker Compose documentation on profiles: `docker compose up phpmyadmin` fails because
    // `db` is in profile `dev`, which targeting `phpmyadmin` (profile `debug`) does not activate.
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  phpmyadmin:
    image: phpmyadmin
    profiles: [debug]
    depends_on: [db]
  db:
    image: mysql
    profiles: [dev]
"#,
    );
    let mut o = p.opts();
    o.services = vec!["phpmyadmin".into()];
    let e = rendered(&load_err(&o));
    assert!(e.contains("db"), "{e}");
}

#[test]
fn dependency_on_a_disabled_service_is_an_error() {
    let p = Project::new();
    let text = r#"services:
  web:
    image: web
    depends_on:
      db:
        condition: service_started
  db:
    image: db
    profiles: [dev]
"#;
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert!(d[0].message.contains("db") && d[0].message.contains("web"), "{}", d[0]);
    assert_diag_at(&d, &file, text, "db:\n        condition", "db");
}

#[test]
fn optional_dependency_on_a_disabled_service_is_dropped() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: web
    depends_on:
      db:
        condition: service_started
        required: false
      cache:
        condition: service_started
  cache:
    image: cache
  db:
    image: db
    profiles: [dev]
"#,
    );
    let (_, j) = load_ok(&p.opts());
    assert_eq!(sorted(service_names(&j)), ["cache", "web"]);
    assert_eq!(
        j["services"]["web"]["depends_on"],
        json!({"cache": {"condition": "service_started", "required": true}})
    );
}

// ---------------------------------------------------------------------------------------------------------------
// env_file of a service
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn service_env_files_later_wins() {
    let p = Project::new();
    p.write("a.env", "A=from-a\nB=from-a\n");
    p.write("b.env", "B=from-b\nC=from-b\n");
    p.write("compose.yaml", "services:\n  web:\n    image: app\n    env_file: [a.env, b.env]\n");
    let (_, j) = load_ok(&p.opts());
    let web = &j["services"]["web"];
    assert_eq!(web["environment"], json!({"A": "from-a", "B": "from-b", "C": "from-b"}));
    // As `docker compose config` shows it: the content is in `environment`, env_file is gone.
    assert!(web.get("env_file").is_none(), "{web}");
}

#[test]
fn service_env_file_not_required_may_be_missing() {
    let p = Project::new();
    p.write("a.env", "A=1\n");
    p.write(
        "compose.yaml",
        "services:\n  web:\n    image: app\n    env_file:\n      - path: a.env\n      - path: ./missing.env\n        required: false\n",
    );
    let (_, j) = load_ok(&p.opts());
    assert_eq!(j["services"]["web"]["environment"], json!({"A": "1"}));
}

#[test]
fn service_env_file_required_and_missing_is_an_error() {
    let p = Project::new();
    let text = "services:\n  web:\n    image: app\n    env_file:\n      - ./missing.env\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert!(d[0].message.contains(p.path("missing.env").to_string_lossy().as_ref()), "{}", d[0]);
    assert_eq!(d[0].span.file.as_deref(), Some(file.as_path()));
    assert_eq!(d[0].span.line, pos(text, "./missing.env").0);
}

#[test]
fn service_env_file_raw_format_takes_quotes_literally() {
    let p = Project::new();
    p.write("raw.env", "QUOTED=\"with quotes\"\nREF=$HOME/x\nSINGLE='single'\n");
    p.write("parsed.env", "QUOTED_P=\"with quotes\"\nREF_P=$HOME/x\n");
    p.write(
        "compose.yaml",
        "services:\n  web:\n    image: app\n    env_file:\n      - path: raw.env\n        format: raw\n      - parsed.env\n",
    );
    let mut o = p.opts();
    o.environment = env(&[("HOME", "/home/me")]);
    let (_, j) = load_ok(&o);
    assert_eq!(
        j["services"]["web"]["environment"],
        json!({
            "QUOTED": "\"with quotes\"", "REF": "$HOME/x", "SINGLE": "'single'",
            "QUOTED_P": "with quotes", "REF_P": "/home/me/x",
        })
    );
}

#[test]
fn service_environment_wins_over_env_file() {
    let p = Project::new();
    p.write("a.env", "A=from-file\nB=from-file\n");
    p.write("compose.yaml", "services:\n  web:\n    image: app\n    env_file: a.env\n    environment:\n      B: own\n");
    let (_, j) = load_ok(&p.opts());
    assert_eq!(j["services"]["web"]["environment"], json!({"A": "from-file", "B": "own"}));
}

#[test]
fn service_bare_environment_variable_is_resolved_or_left_null() {
    let p = Project::new();
    p.write(".env", "FROM_DOTENV=d\n");
    p.write(
        "compose.yaml",
        "services:\n  web:\n    image: app\n    environment:\n      - FROM_OS\n      - FROM_DOTENV\n      - NOWHERE\n      - EMPTY\n",
    );
    let mut o = p.opts();
    o.environment = env(&[("FROM_OS", "o"), ("EMPTY", "")]);
    let (_, j) = load_ok(&o);
    assert_eq!(
        j["services"]["web"]["environment"],
        json!({"FROM_OS": "o", "FROM_DOTENV": "d", "NOWHERE": null, "EMPTY": ""})
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Canonical forms and logical checks
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn depends_on_list_becomes_the_long_form() {
    let p = Project::new();
    p.write(
        "compose.yaml",
        r#"services:
  web:
    image: app
    depends_on: [db, cache]
  worker:
    image: app
    depends_on:
      db:
        condition: service_healthy
  db:
    image: db
  cache:
    image: cache
"#,
    );
    let (_, j) = load_ok(&p.opts());
    assert_eq!(
        j["services"]["web"]["depends_on"],
        json!({
            "db": {"condition": "service_started", "required": true},
            "cache": {"condition": "service_started", "required": true},
        })
    );
    assert_eq!(
        j["services"]["worker"]["depends_on"],
        json!({"db": {"condition": "service_healthy", "required": true}})
    );
}

#[test]
fn error_depends_on_an_unknown_service() {
    let p = Project::new();
    let text = "services:\n  web:\n    image: app\n    depends_on:\n      - dbb\n  db:\n    image: db\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert_diag_at(&d, &file, text, "dbb", "service \"web\" depends on undefined service \"dbb\"");
}

#[test]
fn error_network_mode_with_networks() {
    let p = Project::new();
    let text =
        "services:\n  web:\n    image: app\n    network_mode: host\n    networks: [front]\nnetworks:\n  front: {}\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert!(d[0].message.contains("network_mode") && d[0].message.contains("networks"), "{}", d[0]);
    assert_eq!(d[0].span.file.as_deref(), Some(file.as_path()));
    assert_eq!(d[0].span.line, 4);
}

#[test]
fn error_external_network_with_a_driver() {
    let p = Project::new();
    let text = "services:\n  web:\n    image: app\n    networks: [outside]\nnetworks:\n  outside:\n    external: true\n    driver: overlay\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert!(d[0].message.contains("external") && d[0].message.contains("driver"), "{}", d[0]);
    assert_diag_at(&d, &file, text, "overlay", "outside");
}

#[test]
fn error_port_ranges_of_different_sizes() {
    let p = Project::new();
    let text = "services:\n  web:\n    image: app\n    ports:\n      - 8000-8002:80-81\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert_diag_at(&d, &file, text, "8000-8002:80-81", "8000-8002:80-81");

    // Ranges of the same size are fine: one port each.
    p.write("compose.yaml", "services:\n  web:\n    image: app\n    ports:\n      - 8000-8001:80-81\n");
    let (_, j) = load_ok(&p.opts());
    let ports = &j["services"]["web"]["ports"];
    assert_eq!(ports[0]["published"], "8000");
    assert_eq!(ports[0]["target"], 80);
    assert_eq!(ports[1]["published"], "8001");
    assert_eq!(ports[1]["target"], 81);
}

#[test]
fn error_service_without_image_or_build() {
    let p = Project::new();
    let text = "services:\n  web:\n    command: serve\n  ok:\n    build: .\n";
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 1, "{}", rendered(&d));
    assert!(d[0].message.contains("\"web\"") && d[0].message.contains("image"), "{}", d[0]);
    assert_eq!(d[0].span.file.as_deref(), Some(file.as_path()));
    assert_eq!(d[0].span.line, 3);
}

#[test]
fn several_errors_are_reported_together_each_with_its_position() {
    let p = Project::new();
    let text = r#"services:
  web:
    image: app
    depends_on: [nope]
    ports:
      - 8000-8002:80-81
  noimage:
    restart: always
  hosted:
    image: app
    network_mode: host
    networks: [front]
networks:
  front: {}
  outside:
    external: true
    driver: overlay
"#;
    let file = p.write("compose.yaml", text);
    let d = load_err(&p.opts());
    assert_eq!(d.len(), 5, "{}", rendered(&d));
    for diag in &d {
        assert_eq!(diag.span.file.as_deref(), Some(file.as_path()), "{diag}");
        assert!(diag.span.line > 0 && diag.span.column > 0, "{diag}");
    }
    assert_diag_at(&d, &file, text, "nope", "undefined service \"nope\"");
    assert_diag_at(&d, &file, text, "8000-8002:80-81", "8000-8002:80-81");
    assert_diag_at(&d, &file, text, "host\n", "network_mode");
    assert_diag_at(&d, &file, text, "overlay", "external");
    assert!(d.iter().any(|x| x.message.contains("\"noimage\"") && x.span.line == 8), "{}", rendered(&d));
    // In source order.
    let lines: Vec<usize> = d.iter().map(|x| x.span.line).collect();
    let mut ordered = lines.clone();
    ordered.sort_unstable();
    assert_eq!(lines, ordered);
}
