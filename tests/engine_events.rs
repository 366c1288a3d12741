//! End to end, as root: `docker events` against berthd — the history replayed between `--since` and `--until`
//! with filters, and the live stream of a container's life.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Berth, busybox_tar, stderr, stdout};

/// Unix seconds with nanoseconds, as `docker events --since` takes them.
fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// `docker …` that must end on its own within 30 s (an events stream with `--until` in the past does).
fn docker_bounded(b: &Berth, args: &[&str]) -> String {
    let mut child = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .env("DOCKER_CONFIG", b.dir.path().join("docker-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docker {args:?} did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(out.status.success(), "docker {args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

#[test]
fn history_between_since_and_until_is_replayed_with_filters() {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    let since = now();
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);

    let run =
        b.docker(&["run", "--network", "none", "--name", "ev1", "-l", "app=web", "e2e/bb:1", "sh", "-c", "exit 3"]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    b.docker_ok(&["run", "--network", "none", "--name", "ev2", "e2e/bb:1", "true"]);
    b.docker_ok(&["rm", "ev1", "ev2"]);
    let until = now();

    // A container filter by name, and the type: ev1's life in order, nothing of ev2's.
    let format = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}";
    let out = docker_bounded(
        &b,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=ev1",
            "--filter",
            "type=container",
            "--format",
            format,
        ],
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(lines.iter().all(|l| l.starts_with("container ") && l.contains(" ev1")), "{out}");
    let actions: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    let order = ["create", "start", "die", "destroy"];
    let positions: Vec<Option<usize>> = order.iter().map(|a| actions.iter().position(|x| x == a)).collect();
    assert!(positions.iter().all(Option::is_some), "missing one of {order:?} in {out}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "out of order: {out}");
    assert!(lines.contains(&"container die ev1 3"), "the exit code is an attribute: {out}");

    // A label filter (compose filters on its labels this way) and the image events.
    let by_label = docker_bounded(
        &b,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "label=app=web",
            "--format",
            "{{.Actor.Attributes.name}}",
        ],
    );
    assert!(!by_label.trim().is_empty() && by_label.lines().all(|l| l.trim() == "ev1"), "{by_label}");
    let images = docker_bounded(
        &b,
        &["events", "--since", &since, "--until", &until, "--filter", "type=image", "--format", "{{.Action}}"],
    );
    assert!(images.lines().any(|l| l.trim() == "import"), "{images}");
    assert!(images.lines().all(|l| l.trim() != "start"), "{images}");

    // Nothing after `until`, nothing before `since`.
    let later = now();
    b.docker_ok(&["create", "--name", "ev3", "e2e/bb:1"]);
    let old =
        docker_bounded(&b, &["events", "--since", &since, "--until", &later, "--format", "{{.Actor.Attributes.name}}"]);
    assert!(!old.contains("ev3"), "{old}");
    let new =
        docker_bounded(&b, &["events", "--since", &later, "--until", &now(), "--format", "{{.Actor.Attributes.name}}"]);
    assert_eq!(new.trim(), "ev3", "{new}");
    b.docker_ok(&["rm", "ev3"]);
}

#[test]
fn live_events_stream_in_dockers_shape() {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);

    let mut cli = Command::new("docker")
        .args(["events", "--format", "{{json .}}", "--filter", "type=container"])
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .env("DOCKER_CONFIG", b.dir.path().join("docker-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run docker events: {e}"));
    let (tx, rx) = mpsc::channel::<String>();
    let out = cli.stdout.take();
    let reader = std::thread::spawn(move || {
        if let Some(out) = out {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    // The stream is subscribed once the CLI got the response headers; a container started before may be missed,
    // so containers are run until one's whole life was seen (bounded).
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    let mut done = None;
    while done.is_none() && Instant::now() < deadline && attempt < 5 {
        attempt += 1;
        let name = format!("live{attempt}");
        b.docker_ok(&[
            "run",
            "--network",
            "none",
            "--rm",
            "--name",
            &name,
            "-l",
            "com.docker.compose.project=demo",
            "e2e/bb:1",
            "true",
        ]);
        let round = Instant::now() + Duration::from_secs(10);
        while Instant::now() < round {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            seen.push(v.clone());
            let is_ours = v["Actor"]["Attributes"]["name"] == name.as_str();
            if is_ours && v["Action"] == "destroy" {
                // Whole life seen only if its create came after the subscription; else try the next container.
                let created =
                    seen.iter().any(|e| e["Actor"]["Attributes"]["name"] == name.as_str() && e["Action"] == "create");
                if created {
                    done = Some(name.clone());
                }
                break;
            }
        }
    }
    let _ = cli.kill();
    let _ = cli.wait();
    let _ = reader.join();
    let name = done.unwrap_or_else(|| panic!("no container's destroy event arrived: {seen:#?}"));
    let ours: Vec<&serde_json::Value> =
        seen.iter().filter(|v| v["Actor"]["Attributes"]["name"] == name.as_str()).collect();
    let actions: Vec<&str> = ours.iter().filter_map(|v| v["Action"].as_str()).collect();
    for a in ["create", "start", "die", "destroy"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let start = ours.iter().find(|v| v["Action"] == "start").copied().unwrap_or(&serde_json::Value::Null);
    let id = start["Actor"]["ID"].as_str().unwrap_or_default();
    assert_eq!(id.len(), 64, "{start}");
    assert_eq!(start["Type"], "container");
    assert_eq!(start["scope"], "local");
    assert_eq!(start["status"], "start");
    assert_eq!(start["id"], id);
    assert_eq!(start["from"], "e2e/bb:1");
    assert_eq!(start["Actor"]["Attributes"]["image"], "e2e/bb:1");
    assert_eq!(start["Actor"]["Attributes"]["com.docker.compose.project"], "demo");
    let (time, nanos) = (start["time"].as_i64().unwrap_or(0), start["timeNano"].as_i64().unwrap_or(0));
    assert!(time > 1_700_000_000 && nanos / 1_000_000_000 == time, "{start}");
    let die = ours.iter().find(|v| v["Action"] == "die").copied().unwrap_or(&serde_json::Value::Null);
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "0", "{die}");
    assert!(seen.iter().all(|v| v["Type"] == "container"), "the type filter holds: {seen:#?}");
}

/// The typed client the orchestrator uses: a live stream filtered by label, and a bounded replay.
#[test]
fn the_typed_client_streams_events() {
    use berth_engine::client::Client;
    use berth_engine::client::events::EventsOptions;
    use futures_util::StreamExt;

    let b = setup_with_image();
    let since = now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let client = Client::connect_with_unix(&b.socket());
    let options = EventsOptions::default().filter("label", "com.docker.compose.project=typed");
    let mut live = rt.block_on(client.events(&options)).unwrap_or_else(|e| panic!("events: {e}"));
    // Subscribed once `events` answered: everything from now on arrives.
    b.docker_ok(&["create", "--network", "none", "--name", "other", "e2e/bb:1"]);
    b.docker_ok(&["create", "--network", "none", "--name", "t1", "-l", "com.docker.compose.project=typed", "e2e/bb:1"]);
    b.docker_ok(&["rm", "t1", "other"]);
    let mut got = Vec::new();
    while got.len() < 2 {
        let next = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), live.next()).await });
        match next {
            Ok(Some(Ok(e))) => {
                got.push(format!("{} {}", e.action, e.actor.attributes.get("name").cloned().unwrap_or_default()))
            }
            other => panic!("after {got:?}: {other:?}"),
        }
    }
    assert_eq!(got, ["create t1", "destroy t1"]);
    drop(live);

    let options = EventsOptions { since: Some(since), until: Some(now()), ..Default::default() }
        .filter("type", "container")
        .filter("event", "destroy");
    let mut replay: Vec<String> = rt.block_on(async {
        let stream = client.events(&options).await.unwrap_or_else(|e| panic!("events: {e}"));
        let all = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>()).await;
        all.unwrap_or_else(|_| panic!("the replay did not end at until"))
            .into_iter()
            .map(|e| e.map(|e| e.actor.attributes.get("name").cloned().unwrap_or_default()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    });
    // `docker rm` removes its arguments in parallel: the order is not given.
    replay.sort();
    assert_eq!(replay, ["other", "t1"]);
}

fn setup_with_image() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);
    b
}
