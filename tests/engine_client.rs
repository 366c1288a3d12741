//! End to end, as root: the typed client (what the orchestrator uses) drives a container's whole life against a
//! real berthd — create, list with filters, start, logs, wait, inspect, restart, stop, remove — and gets Docker's
//! errors as typed `ClientError::Api` with the status code.

mod common;

use std::collections::HashMap;

use berth_engine::client::Client;
use berth_engine::client::containers::{
    ContainerConfig, CreateBody, CreateContainerOptions, HostConfig, ListContainersOptions, LogOutput, LogsOptions,
    RemoveContainerOptions,
};
use common::{Berth, busybox_tar};

fn body(cmd: &[&str], labels: &[(&str, &str)]) -> CreateBody {
    CreateBody {
        config: ContainerConfig {
            image: "e2e/client:1".into(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        },
        host_config: HostConfig { network_mode: Some("none".into()), ..Default::default() },
        networking_config: None,
    }
}

#[test]
fn the_typed_client_drives_a_container_lifecycle() {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/client:1"]);
    let client = Client::connect_with_unix(&b.socket());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let opts = |name: &str| Some(CreateContainerOptions { name: Some(name.into()) });
        let job = client
            .create_container(opts("job"), &body(&["sh", "-c", "echo out; echo err >&2; exit 3"], &[("tier", "batch")]))
            .await
            .unwrap_or_else(|e| panic!("create: {e}"));
        assert_eq!(job.id.len(), 64);
        client
            .create_container(opts("svc"), &body(&["sleep", "100"], &[("tier", "web")]))
            .await
            .unwrap_or_else(|e| panic!("create: {e}"));

        // A name in use is Docker's 409; a missing image its 404.
        let dup = client.create_container(opts("job"), &body(&["true"], &[])).await;
        assert_eq!(dup.err().and_then(|e| e.status()), Some(409));
        let mut missing = body(&["true"], &[]);
        missing.config.image = "e2e/none:1".into();
        let err = client.create_container(None, &missing).await.err();
        assert_eq!(err.as_ref().and_then(|e| e.status()), Some(404), "{err:?}");

        let filters = HashMap::from([("label".to_string(), vec!["tier=batch".to_string()])]);
        let listed = client
            .list_containers(Some(ListContainersOptions { all: true, filters }))
            .await
            .unwrap_or_else(|e| panic!("list: {e}"));
        assert_eq!(listed.iter().map(|c| c.names.clone()).collect::<Vec<_>>(), vec![vec!["/job".to_string()]]);
        assert_eq!(listed[0].state, "created");

        client.start_container("job").await.unwrap_or_else(|e| panic!("start: {e}"));
        let waited = client.wait_container("job", None).await.unwrap_or_else(|e| panic!("wait: {e}"));
        assert_eq!(waited.status_code, 3);
        let inspect = client.inspect_container("job").await.unwrap_or_else(|e| panic!("inspect: {e}"));
        assert_eq!((inspect.state.status.as_str(), inspect.state.exit_code), ("exited", 3));
        assert_eq!(inspect.name, "/job");
        assert_eq!(inspect.config.labels.get("tier").map(String::as_str), Some("batch"));

        let logs = client
            .logs("job", &LogsOptions { stdout: true, stderr: true, ..Default::default() })
            .await
            .unwrap_or_else(|e| panic!("logs: {e}"));
        assert!(logs.contains(&LogOutput::StdOut("out\n".into())), "{logs:?}");
        assert!(logs.contains(&LogOutput::StdErr("err\n".into())), "{logs:?}");
        let only_err = client
            .logs("job", &LogsOptions { stderr: true, ..Default::default() })
            .await
            .unwrap_or_else(|e| panic!("logs: {e}"));
        assert_eq!(only_err, vec![LogOutput::StdErr("err\n".into())]);

        // A long-running one: start, restart (a new pid), stop, remove.
        client.start_container("svc").await.unwrap_or_else(|e| panic!("start: {e}"));
        let first = client.inspect_container("svc").await.unwrap_or_else(|e| panic!("inspect: {e}"));
        assert!(first.state.running && first.state.pid > 0, "{:?}", first.state);
        // Removing a running container without force is Docker's 409.
        let busy = client.remove_container("svc", None).await.err();
        assert_eq!(busy.and_then(|e| e.status()), Some(409));
        client.restart_container("svc", Some(1)).await.unwrap_or_else(|e| panic!("restart: {e}"));
        let second = client.inspect_container("svc").await.unwrap_or_else(|e| panic!("inspect: {e}"));
        assert!(second.state.running && second.state.pid != first.state.pid, "{:?}", second.state);
        client.stop_container("svc", Some(1)).await.unwrap_or_else(|e| panic!("stop: {e}"));
        let stopped = client.inspect_container("svc").await.unwrap_or_else(|e| panic!("inspect: {e}"));
        assert_eq!(stopped.state.status, "exited");

        for id in ["svc", "job"] {
            client
                .remove_container(id, Some(RemoveContainerOptions { force: true, v: true }))
                .await
                .unwrap_or_else(|e| panic!("remove {id}: {e}"));
        }
        let gone = client.inspect_container("job").await.err();
        assert_eq!(gone.and_then(|e| e.status()), Some(404));
        let left = client
            .list_containers(Some(ListContainersOptions { all: true, ..Default::default() }))
            .await
            .unwrap_or_else(|e| panic!("list: {e}"));
        assert!(left.is_empty(), "{left:?}");
    });
}
