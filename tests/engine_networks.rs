//! End to end, as root: containers on berth-netd networks through the `docker` CLI against berthd — network
//! create/ls/inspect/connect/disconnect/rm, names and aliases resolved by netd's DNS, isolation between
//! networks, a published port on 127.0.0.1, resolv.conf naming the gateway, and nothing left after stop and rm.
//! Each test uses its own 10.215.<n>.0/24 (netd's own tests use 10.213, 10.214 and 10.231).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Berth, busybox_tar, stderr, stdout};

/// An installation with the busybox image imported as `e2e/bb:1` (this also starts berthd and berth-netd).
fn berth_with_image() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);
    b
}

/// A busybox httpd serving `text` on port 80.
const HTTPD: &str = "mkdir -p /www && echo \"$MSG\" > /www/index.html && exec httpd -f -p 80 -h /www";

fn run_httpd(b: &Berth, name: &str, network: &str, extra: &[&str], msg: &str) -> String {
    let env = format!("MSG={msg}");
    let mut args = vec!["run", "-d", "--name", name, "--network", network, "-e", &env];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["e2e/bb:1", "sh", "-c", HTTPD]);
    b.docker_ok(&args).trim().to_string()
}

/// `docker exec` output until it contains `want` (DNS and httpd need a moment after start); bounded.
fn exec_until(b: &Berth, container: &str, cmd: &[&str], want: &str) -> String {
    let mut args = vec!["exec", container];
    args.extend_from_slice(cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = b.docker(&args);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        if text.contains(want) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn inspect(b: &Berth, what: &str, format: &str) -> String {
    b.docker_ok(&["inspect", what, "--format", format]).trim().to_string()
}

#[test]
fn networks_through_the_docker_cli_with_names_isolation_and_cleanup() {
    let b = berth_with_image();

    // create, ls, inspect; a bad subnet is a 400 that says why.
    let id = b.docker_ok(&["network", "create", "--subnet", "10.215.1.0/24", "--label", "team=e2e", "front"]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    b.docker_ok(&["network", "create", "--subnet", "10.215.2.0/24", "back"]);
    let ls = b.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["front bridge", "back bridge", "bridge bridge", "host host", "none null"] {
        assert!(ls.lines().any(|l| l == want), "{want} missing in:\n{ls}");
    }
    let filtered = b.docker_ok(&["network", "ls", "-q", "--filter", "label=team=e2e"]);
    assert_eq!(filtered.trim(), &id[..12]);
    let subnet = b.docker_ok(&["network", "inspect", "front", "--format", "{{(index .IPAM.Config 0).Subnet}}"]);
    assert_eq!(subnet.trim(), "10.215.1.0/24");
    let bad = b.docker(&["network", "create", "--subnet", "10.215.3.7/33", "broken"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("10.215.3.7/33"), "{}", stderr(&bad));
    let dup = b.docker(&["network", "create", "front"]);
    assert!(!dup.status.success(), "a name in use is refused");

    // Two containers on one network reach each other by name and by alias; one on another network cannot.
    run_httpd(&b, "web", "front", &["--network-alias", "www"], "hello-web");
    run_httpd(&b, "api", "front", &[], "hello-api");
    run_httpd(&b, "other", "back", &[], "hello-other");
    // busybox-static's wget crashes (SIGSEGV) with -T and with names here, so names are checked with ping
    // (NET_RAW is in Docker's default capabilities) and HTTP goes to the address under `timeout`.
    let web_ip = inspect(&b, "web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert!(web_ip.starts_with("10.215.1."), "{web_ip}");
    let by_name = exec_until(&b, "api", &["ping", "-c1", "-W1", "web"], "1 packets received");
    assert!(by_name.contains(&format!("PING web ({web_ip})")) && by_name.contains("1 packets received"), "{by_name}");
    let by_alias = exec_until(&b, "api", &["ping", "-c1", "-W1", "www"], "1 packets received");
    assert!(by_alias.contains(&format!("({web_ip})")) && by_alias.contains("1 packets received"), "{by_alias}");
    let page =
        exec_until(&b, "api", &["timeout", "3", "wget", "-q", "-O", "-", &format!("http://{web_ip}/")], "hello-web");
    assert!(page.contains("hello-web"), "{page}");
    let not_named = b.docker(&["exec", "other", "nslookup", "web"]);
    assert!(!stdout(&not_named).contains(&web_ip), "another network does not see the name: {}", stdout(&not_named));
    let url = format!("http://{web_ip}/");
    let isolated = b.docker(&["exec", "other", "timeout", "3", "wget", "-q", "-O", "-", &url]);
    assert!(!isolated.status.success() && !stdout(&isolated).contains("hello-web"), "networks are isolated");

    // resolv.conf names the network's gateway (netd's DNS server); inspect shows the endpoint.
    let resolv = b.docker_ok(&["exec", "web", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.215.1.1"), "{resolv}");
    assert_eq!(inspect(&b, "web", "{{.NetworkSettings.Networks.front.Gateway}}"), "10.215.1.1");
    assert!(inspect(&b, "web", "{{json .NetworkSettings.Networks.front.Aliases}}").contains("www"));
    let members = b.docker_ok(&["network", "inspect", "front", "--format", "{{range .Containers}}{{.Name}} {{end}}"]);
    assert!(members.contains("web") && members.contains("api"), "{members}");

    // A network with endpoints is not removed (409); connect and disconnect a running container.
    let busy = b.docker(&["network", "rm", "front"]);
    assert!(!busy.status.success());
    assert!(stderr(&busy).contains("active endpoints"), "{}", stderr(&busy));
    b.docker_ok(&["network", "connect", "--alias", "backdoor", "back", "api"]);
    let cross = exec_until(&b, "api", &["ping", "-c1", "-W1", "other"], "1 packets received");
    assert!(cross.contains("1 packets received"), "api reaches back after connect: {cross}");
    assert!(b.docker_ok(&["exec", "api", "ip", "addr"]).contains("10.215.2."), "eth1 on back");
    b.docker_ok(&["network", "disconnect", "back", "api"]);
    assert!(!b.docker_ok(&["exec", "api", "ip", "addr"]).contains("10.215.2."), "eth1 gone");

    // Stop removes the host side of the veth; rm leaves no namespace file.
    let veths: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let web_id = inspect(&b, "web", "{{.Id}}");
    let endpoint = inspect(&b, "web", "{{.NetworkSettings.Networks.front.EndpointID}}");
    let veth = format!("veth{}", &endpoint[..10]);
    assert!(veths.contains(&veth), "{veth} in {veths:?}");
    b.docker_ok(&["stop", "-t", "1", "web"]);
    assert!(!link_exists(&veth), "{veth} removed at stop");
    let netns = b.run_dir().join("netns").join(&web_id);
    assert!(!netns.exists(), "namespace file removed at stop");
    b.docker_ok(&["rm", "-f", "web", "api", "other"]);
    let left: Vec<String> = std::fs::read_dir(b.run_dir().join("netns"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&b.run_dir().join("netns").to_string_lossy().into_owned()), "no netns mount left");

    b.docker_ok(&["network", "rm", "front", "back"]);
    let ls = b.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.lines().any(|l| l == "front" || l == "back"), "{ls}");
    assert!(!b.docker(&["network", "rm", "none"]).status.success(), "predefined networks stay");
}

#[test]
fn published_port_answers_on_loopback_and_shows_in_ps() {
    let b = berth_with_image();
    b.docker_ok(&["network", "create", "--subnet", "10.215.5.0/24", "pub"]);
    // Once on 127.0.0.1 and once on every address, both on ephemeral ports.
    run_httpd(&b, "site", "pub", &["-p", "127.0.0.1::80", "-p", "80"], "hello-published");
    let ports = b.docker_ok(&["port", "site", "80/tcp"]);
    let port_of = |prefix: &str| {
        let line = ports.lines().find(|l| l.starts_with(prefix)).unwrap_or_default();
        line.rsplit(':').next().unwrap_or_default().to_string()
    };
    let host_port = port_of("127.0.0.1:");
    let any_port = port_of("0.0.0.0:");
    assert!(host_port.parse::<u16>().is_ok() && any_port.parse::<u16>().is_ok(), "{ports}");
    let ps = b.docker_ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.starts_with("site ") && ps.contains(&format!("127.0.0.1:{host_port}->80/tcp")), "{ps}");
    assert!(ps.contains(&format!("0.0.0.0:{any_port}->80/tcp")), "{ps}");

    // From the host, through netd's DNAT on 127.0.0.1 (bounded: httpd needs a moment).
    let url = format!("http://127.0.0.1:{host_port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut body = String::new();
    while !body.contains("hello-published") && Instant::now() < deadline {
        let out = std::process::Command::new("curl").args(["-s", "-m", "2", &url]).output();
        body = out.map(|o| stdout(&o)).unwrap_or_default();
        if !body.contains("hello-published") {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(body.contains("hello-published"), "{url} answered {body:?}");

    // The container reaches its own published port through the host's bridge address (hairpin).
    let hairpin = format!("http://10.215.5.1:{any_port}/");
    let own = exec_until(&b, "site", &["timeout", "3", "wget", "-q", "-O", "-", &hairpin], "hello-published");
    assert!(own.contains("hello-published"), "{hairpin} from inside: {own}");

    // Stopped: the port is unpublished (nothing answers), the veth gone.
    b.docker_ok(&["stop", "-t", "1", "site"]);
    let after = std::process::Command::new("curl").args(["-s", "-m", "2", &url]).output();
    assert!(!after.map(|o| stdout(&o)).unwrap_or_default().contains("hello-published"), "unpublished at stop");
    assert!(b.docker_ok(&["ps", "-a", "--format", "{{.Ports}}"]).trim().is_empty());
    b.docker_ok(&["rm", "site"]);
    b.docker_ok(&["network", "rm", "pub"]);
}

#[test]
fn a_failed_connect_leaves_the_container_created_and_nothing_behind() {
    let b = berth_with_image();
    b.docker_ok(&["network", "create", "--subnet", "10.215.6.0/24", "tight"]);
    // An address outside the subnet: netd refuses, the container stays created with the error.
    let out = b.docker(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--network",
        "tight",
        "--ip",
        "10.215.99.5",
        "e2e/bb:1",
        "sleep",
        "30",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("10.215.99.5"), "{}", stderr(&out));
    assert_eq!(inspect(&b, "bad", "{{.State.Status}}"), "created");
    let id = inspect(&b, "bad", "{{.Id}}");
    assert!(!b.run_dir().join("netns").join(&id).exists(), "no namespace left");
    let members = b.docker_ok(&["network", "inspect", "tight", "--format", "{{len .Containers}}"]);
    assert_eq!(members.trim(), "0");
    // A network that does not exist is named.
    let missing = b.docker(&["run", "-d", "--name", "lost", "--network", "nowhere", "e2e/bb:1", "sleep", "30"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nowhere"), "{}", stderr(&missing));
    b.docker_ok(&["rm", "-f", "bad", "lost"]);
    b.docker_ok(&["network", "rm", "tight"]);
}

/// `--network container:<id>` shares the other's namespace; a container that dies while berthd is down is
/// released at berthd's next start; without berth-netd a start fails naming its socket.
#[test]
fn shared_namespaces_reconcile_and_a_missing_netd() {
    let b = berth_with_image();
    b.docker_ok(&["network", "create", "--subnet", "10.215.7.0/24", "shared"]);
    run_httpd(&b, "host1", "shared", &[], "hello-shared");
    b.docker_ok(&["run", "-d", "--name", "side", "--network", "container:host1", "e2e/bb:1", "sleep", "300"]);
    let ip = inspect(&b, "host1", "{{.NetworkSettings.Networks.shared.IPAddress}}");
    let addrs = b.docker_ok(&["exec", "side", "ip", "addr"]);
    assert!(addrs.contains(&format!("inet {ip}/24")), "side sees host1's eth0: {addrs}");
    let page = exec_until(&b, "side", &["timeout", "3", "wget", "-q", "-O", "-", "http://127.0.0.1/"], "hello-shared");
    assert!(page.contains("hello-shared"), "{page}");
    b.docker_ok(&["rm", "-f", "side"]);

    // berthd killed, then the container dies: berthd's next start releases its endpoint and namespace.
    let id = inspect(&b, "host1", "{{.Id}}");
    let pid = inspect(&b, "host1", "{{.State.Pid}}");
    let endpoint = inspect(&b, "host1", "{{.NetworkSettings.Networks.shared.EndpointID}}");
    let veth = format!("veth{}", &endpoint[..10]);
    let berthd = std::fs::read_to_string(b.run_dir().join("berthd.pid")).unwrap_or_default();
    assert!(std::process::Command::new("kill").args(["-KILL", berthd.trim()]).status().is_ok_and(|s| s.success()));
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{}", berthd.trim())).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    b.ok(&["system", "info"]); // starts berthd again; it reconciles before it answers
    assert_eq!(inspect(&b, "host1", "{{.State.Status}}"), "exited");
    assert!(!b.run_dir().join("netns").join(&id).exists(), "namespace released on reconcile");
    assert!(!link_exists(&veth), "{veth} removed on reconcile");
    let members = b.docker_ok(&["network", "inspect", "shared", "--format", "{{len .Containers}}"]);
    assert_eq!(members.trim(), "0");

    // Without berth-netd: a clear error naming its socket, the container left created, nothing made.
    let netd = std::fs::read_to_string(b.run_dir().join("netd.pid")).unwrap_or_default();
    assert!(std::process::Command::new("kill").args(["-TERM", netd.trim()]).status().is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.run_dir().join("netd.sock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = b.docker(&["run", "-d", "--name", "nonet", "--network", "shared", "e2e/bb:1", "sleep", "30"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("netd.sock") && err.contains("berth-netd --root"), "{err}");
    let nonet = inspect(&b, "nonet", "{{.Id}}");
    assert!(!b.run_dir().join("netns").join(&nonet).exists());
    assert_eq!(inspect(&b, "nonet", "{{.State.Status}}"), "created");
}

/// `docker network connect` on a created container: it joins both networks at start (eth0 and eth1, with the
/// alias), and `docker network disconnect` of a stopped one takes effect at the next start.
#[test]
fn connecting_a_created_container_takes_effect_at_start() {
    let b = berth_with_image();
    b.docker_ok(&["network", "create", "--subnet", "10.215.8.0/24", "first"]);
    b.docker_ok(&["network", "create", "--subnet", "10.215.9.0/24", "second"]);
    b.docker_ok(&["create", "--name", "late", "--network", "first", "e2e/bb:1", "sleep", "300"]);
    b.docker_ok(&["network", "connect", "--alias", "lateral", "--ip", "10.215.9.50", "second", "late"]);
    b.docker_ok(&["start", "late"]);
    let addrs = b.docker_ok(&["exec", "late", "ip", "addr"]);
    assert!(addrs.contains("10.215.8.") && addrs.contains("inet 10.215.9.50/24"), "{addrs}");
    assert_eq!(inspect(&b, "late", "{{.NetworkSettings.Networks.second.IPAddress}}"), "10.215.9.50");
    b.docker_ok(&["run", "-d", "--name", "peer", "--network", "second", "e2e/bb:1", "sleep", "300"]);
    let seen = exec_until(&b, "peer", &["ping", "-c1", "-W1", "lateral"], "1 packets received");
    assert!(seen.contains("(10.215.9.50)") && seen.contains("1 packets received"), "{seen}");

    b.docker_ok(&["stop", "-t", "1", "late"]);
    b.docker_ok(&["network", "disconnect", "second", "late"]);
    b.docker_ok(&["start", "late"]);
    let addrs = b.docker_ok(&["exec", "late", "ip", "addr"]);
    assert!(addrs.contains("10.215.8.") && !addrs.contains("10.215.9."), "{addrs}");
    b.docker_ok(&["rm", "-f", "late", "peer"]);
    b.docker_ok(&["network", "rm", "first", "second"]);
}

/// A name shared by several containers (a scaled compose service is an alias on every replica) answers with every
/// replica's address, and the order rotates between answers.
#[test]
fn a_shared_alias_returns_every_replica() {
    let b = berth_with_image();
    b.docker_ok(&["network", "create", "--subnet", "10.215.19.0/24", "scaled"]);
    let mut ips = Vec::new();
    for n in 1..=3 {
        let name = format!("web-{n}");
        b.docker_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "scaled",
            "--network-alias",
            "web",
            "e2e/bb:1",
            "sleep",
            "600",
        ]);
        ips.push(inspect(&b, &name, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"));
    }
    b.docker_ok(&["run", "-d", "--name", "client", "--network", "scaled", "e2e/bb:1", "sleep", "600"]);
    let answer = exec_until(&b, "client", &["nslookup", "web"], &ips[2]);
    for ip in &ips {
        assert!(answer.contains(ip.as_str()), "{ip} missing from:\n{answer}");
    }
    // Rotation: the first address answered is not always the same.
    let firsts: std::collections::BTreeSet<String> = (0..6)
        .filter_map(|_| {
            let out = stdout(&b.docker(&["exec", "client", "nslookup", "web"]));
            // busybox nslookup prints the server first, then "Name: web" and the addresses in answer order.
            out.split("Name:")
                .nth(1)
                .and_then(|rest| {
                    rest.lines().find_map(|l| l.strip_prefix("Address: ").or_else(|| l.strip_prefix("Address 1: ")))
                })
                .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
        })
        .collect();
    assert!(firsts.len() > 1, "the replicas' order never changed: {firsts:?}\n{answer}");
    b.docker_ok(&["rm", "-f", "web-1", "web-2", "web-3", "client"]);
    b.docker_ok(&["network", "rm", "scaled"]);
}
