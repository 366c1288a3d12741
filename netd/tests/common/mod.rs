//! Harness of netd's end-to-end tests (root only): a real berth-netd with its own root and run directory, network
//! namespaces made with `ip netns`, and a drop that removes everything the test made even when it failed: the
//! daemon, the namespaces, and every link that carries this netd's ownership tag (its alias, see
//! src/state.rs), which covers bridges and veths whatever state the test left them in.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_netd::client::Client;

/// One netd installation with its namespaces; everything is removed on drop.
pub struct Netd {
    pub dir: tempfile::TempDir,
    /// Prefix of every namespace name this test makes.
    pub prefix: String,
    child: Option<Child>,
    namespaces: Vec<String>,
    /// Servers started inside namespaces, killed on drop.
    servers: Vec<Child>,
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Netd {
    /// `tag` names the test (a few letters): namespaces are `bn<pid>-<tag>-…`.
    pub fn start(tag: &str) -> Netd {
        let dir = tempfile::Builder::new().prefix("berth-netd-e2e-").tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut netd = Netd {
            dir,
            prefix: format!("bn{}-{tag}", std::process::id()),
            child: None,
            namespaces: Vec::new(),
            servers: Vec::new(),
        };
        netd.spawn();
        netd
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("netd.sock")
    }

    pub fn client(&self) -> Client {
        Client::connect_with_unix(&self.socket())
    }

    /// Start berth-netd and wait (bounded) until it answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "netd already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("netd.log"))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        // Names outside berth go to a resolver on loopback that is not there: no query ever leaves the machine.
        let resolv = self.dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1\n").unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(env!("CARGO_BIN_EXE_berth-netd"))
            .arg("--resolv-conf")
            .arg(&resolv)
            .arg("--nft-table")
            .arg(&self.prefix)
            .arg("--root")
            .arg(self.root())
            .arg("--run-dir")
            .arg(self.run_dir())
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_DIR")
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start berth-netd: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berth-netd exited with {status}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "berth-netd did not answer within 15 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL: what a crash leaves.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("netd.log")).unwrap_or_default()
    }

    /// A fresh namespace `<prefix>-<name>`; returns its path (what netd's connect takes).
    pub fn netns(&mut self, name: &str) -> PathBuf {
        let full = format!("{}-{name}", self.prefix);
        run_ok("ip", &["netns", "add", &full]);
        self.namespaces.push(full.clone());
        PathBuf::from("/run/netns").join(full)
    }

    pub fn del_netns(&mut self, name: &str) {
        let full = format!("{}-{name}", self.prefix);
        run_ok("ip", &["netns", "del", &full]);
        self.namespaces.retain(|n| *n != full);
    }

    /// `ip netns exec <ns> <args…>`.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let full = format!("{}-{name}", self.prefix);
        let mut all = vec!["netns", "exec", full.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// One ping from the namespace, a second try for a lost first packet (ARP).
    pub fn pings(&self, from: &str, to: &str) -> bool {
        (0..2).any(|_| self.exec(from, &["ping", "-c1", "-W1", to]).status.success())
    }

    /// A TCP server in a namespace answering `reply` to every connection (busybox nc), killed on drop.
    pub fn serve_tcp(&mut self, ns: &str, port: u16, reply: &str) {
        let full = format!("{}-{ns}", self.prefix);
        let child = Command::new("ip")
            .args(["netns", "exec", &full, "busybox", "nc", "-ll", "-p", &port.to_string(), "-e", "/bin/echo", reply])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nc: {e}"));
        self.servers.push(child);
        // Bounded wait until it listens.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let ss = self.exec(ns, &["ss", "-Hltn", &format!("sport = :{port}")]);
            if !String::from_utf8_lossy(&ss.stdout).trim().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nc did not listen on {port} in {ns}");
    }

    /// This netd's nft table as text (empty when it does not exist).
    pub fn nft_table(&self) -> String {
        String::from_utf8_lossy(&run("nft", &["list", "table", "inet", &self.prefix]).stdout).into_owned()
    }

    /// `busybox nslookup <name> <server>` from a namespace: the IPv4 addresses of the answer (empty when the name
    /// does not resolve).
    pub fn lookup(&self, from: &str, name: &str, server: &str) -> Vec<String> {
        let out = self.exec(from, &["busybox", "nslookup", "-type=a", name, server]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The answer section follows the name; the server's own address comes first, before it.
        text.split_once("Name:")
            .map(|(_, answer)| {
                answer
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("Address:").map(|a| a.trim().to_string()))
                    .filter_map(|a| a.split_whitespace().next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// This netd's ownership tag (the alias of every link it makes).
    pub fn tag(&self) -> Option<String> {
        let id = std::fs::read_to_string(self.root().join("netd/instance")).ok()?;
        Some(format!("berth-netd:{}", id.trim()))
    }

    /// Names of the host's links tagged as this netd's.
    pub fn owned_links(&self) -> Vec<String> {
        let Some(tag) = self.tag() else { return Vec::new() };
        links_with_alias(&tag)
    }

    pub fn namespaces(&self) -> Vec<String> {
        run_ok("ip", &["netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_string)
            .collect()
    }
}

/// Links on the host whose alias is `tag` (from `ip -o -d link show`, one line per link).
pub fn links_with_alias(tag: &str) -> Vec<String> {
    run_ok("ip", &["-o", "-d", "link", "show"])
        .lines()
        .filter(|l| l.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w[0] == "alias" && w[1] == tag))
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Whether the host has a link of this name.
pub fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name]).status.success()
}

/// IPv4 addresses on the host (every interface), as `a.b.c.d/len`.
pub fn host_addresses() -> Vec<String> {
    run_ok("ip", &["-o", "-4", "addr", "show"])
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(str::to_string))
        .collect()
}

impl Drop for Netd {
    fn drop(&mut self) {
        self.stop();
        for mut s in std::mem::take(&mut self.servers) {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = run("nft", &["delete", "table", "inet", &self.prefix]);
        for ns in std::mem::take(&mut self.namespaces) {
            let _ = run("ip", &["netns", "del", &ns]);
        }
        for link in self.owned_links() {
            let _ = run("ip", &["link", "del", "dev", &link]);
        }
    }
}

/// A subnet of its own for each test, so tests running side by side never share addresses: 10.214.<n>.0/24
/// (tests/nft.rs uses 10.213.x).
pub fn subnet(n: u8) -> String {
    format!("10.214.{n}.0/24")
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
