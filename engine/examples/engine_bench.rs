//! Container benchmark driver (used by `bench/engine/run.sh`), talking to a running berthd through the typed client,
//! as the orchestrator does.
//!
//! ```text
//! engine_bench lifecycle SOCKET IMAGE [RUNS]   create, start, wait and remove `true` (no network), RUNS times
//! engine_bench fleet     SOCKET IMAGE [N]      N containers running `sleep`: RSS of berthd and of each shim
//! engine_bench pause     SOCKET IMAGE [RUNS]   pause + unpause of one running container, RUNS times
//! ```
//! Results are printed as `key=value` lines on stdout; times in milliseconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_engine::client::Client;
use berth_engine::client::containers::{ContainerConfig, CreateBody, HostConfig, RemoveContainerOptions};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let count = |i: usize, default: usize| arg(i).map(str::parse).transpose().map(|n| n.unwrap_or(default));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match (arg(0), arg(1), arg(2)) {
        (Some("lifecycle"), Some(sock), Some(image)) => rt.block_on(lifecycle(sock, image, count(3, 30)?)),
        (Some("fleet"), Some(sock), Some(image)) => rt.block_on(fleet(sock, image, count(3, 100)?)),
        (Some("pause"), Some(sock), Some(image)) => rt.block_on(pause(sock, image, count(3, 30)?)),
        _ => Err("usage: engine_bench lifecycle|fleet|pause SOCKET IMAGE [N] (see the source)".into()),
    }
}

fn body(image: &str, cmd: &[&str]) -> CreateBody {
    CreateBody {
        config: ContainerConfig {
            image: image.into(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        },
        host_config: HostConfig { network_mode: Some("none".into()), ..Default::default() },
        networking_config: None,
    }
}

fn forced() -> Option<RemoveContainerOptions> {
    Some(RemoveContainerOptions { force: true, v: true })
}

/// Sorted samples as `key_median`, `key_min`, `key_max`, `key_mean` and `key_n`.
fn report(key: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    if n == 0 {
        return;
    }
    let median = if n % 2 == 1 { ms[n / 2] } else { (ms[n / 2 - 1] + ms[n / 2]) / 2.0 };
    println!("{key}_median={median:.2}");
    println!("{key}_min={:.2}", ms[0]);
    println!("{key}_max={:.2}", ms[n - 1]);
    println!("{key}_mean={:.2}", ms.iter().sum::<f64>() / n as f64);
    println!("{key}_n={n}");
}

async fn lifecycle(sock: &str, image: &str, runs: usize) -> Result<()> {
    let client = Client::connect_with_unix(Path::new(sock));
    let body = body(image, &["true"]);
    let mut samples = Vec::with_capacity(runs);
    // Each phase too, to see where the time goes.
    let mut phases: [Vec<f64>; 4] = Default::default();
    // Three warm-up runs, as hyperfine does for the peers: page cache, layer unpack, first cgroup creation.
    for i in 0..runs + 3 {
        let t = Instant::now();
        let id = client.create_container(None, &body).await?.id;
        let created = t.elapsed();
        client.start_container(&id).await?;
        let started = t.elapsed();
        let code = client.wait_container(&id, None).await?.status_code;
        let waited = t.elapsed();
        client.remove_container(&id, None).await?;
        let removed = t.elapsed();
        if code != 0 {
            return Err(format!("`true` exited {code}").into());
        }
        if i >= 3 {
            samples.push(removed.as_secs_f64() * 1000.0);
            let marks = [Duration::ZERO, created, started, waited, removed];
            for (p, w) in phases.iter_mut().zip(marks.windows(2)) {
                p.push((w[1] - w[0]).as_secs_f64() * 1000.0);
            }
        }
    }
    report("lifecycle", samples);
    for (name, p) in ["create", "start", "wait", "remove"].into_iter().zip(phases) {
        report(name, p);
    }
    Ok(())
}

async fn pause(sock: &str, image: &str, runs: usize) -> Result<()> {
    let client = Client::connect_with_unix(Path::new(sock));
    let id = client.create_container(None, &body(image, &["sleep", "600"])).await?.id;
    client.start_container(&id).await?;
    let mut samples = Vec::with_capacity(runs);
    let mut result: Result<()> = Ok(());
    for i in 0..runs + 3 {
        let t = Instant::now();
        if let Err(e) = client.pause_container(&id).await {
            result = Err(e.into());
            break;
        }
        if let Err(e) = client.unpause_container(&id).await {
            result = Err(e.into());
            break;
        }
        if i >= 3 {
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    client.remove_container(&id, forced()).await?;
    result?;
    report("pause_unpause", samples);
    Ok(())
}

async fn fleet(sock: &str, image: &str, n: usize) -> Result<()> {
    let client = Client::connect_with_unix(Path::new(sock));
    let body = body(image, &["sleep", "600"]);
    let mut ids = Vec::with_capacity(n);
    let t = Instant::now();
    let mut result: Result<()> = Ok(());
    for _ in 0..n {
        match client.create_container(None, &body).await {
            Ok(c) => {
                ids.push(c.id.clone());
                if let Err(e) = client.start_container(&c.id).await {
                    result = Err(e.into());
                    break;
                }
            }
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    println!("fleet_start_all_ms={:.0}", t.elapsed().as_secs_f64() * 1000.0);
    if result.is_ok() {
        // Let the shims settle (their first log writes, the daemon's watchers) before reading memory.
        tokio::time::sleep(Duration::from_secs(2)).await;
        result = measure_fleet(&client, &ids).await;
    }
    let t = Instant::now();
    for id in &ids {
        client.remove_container(id, forced()).await?;
    }
    println!("fleet_remove_all_ms={:.0}", t.elapsed().as_secs_f64() * 1000.0);
    result
}

async fn measure_fleet(client: &Client, ids: &[String]) -> Result<()> {
    let running = client.list_containers(None).await?.len();
    println!("fleet_running={running}");
    let daemon = std::fs::read_to_string(run_dir(client).join("berthd.pid"))?.trim().parse::<u32>()?;
    println!("berthd_rss_kb={}", rss_kb(daemon)?);
    println!("berthd_pss_kb={}", pss_kb(daemon).unwrap_or(0));
    let mut shim_rss = Vec::new();
    let mut shim_pss = Vec::new();
    for id in ids {
        let inspect = client.inspect_container(id).await?;
        // The shim is the parent of the container's init (berth-shim reaps it as a child subreaper).
        let ppid = parent_of(inspect.state.pid as u32)?;
        shim_rss.push(rss_kb(ppid)? as f64);
        shim_pss.push(pss_kb(ppid).unwrap_or(0) as f64);
    }
    report("shim_rss_kb", shim_rss);
    report("shim_pss_kb", shim_pss);
    Ok(())
}

fn run_dir(client: &Client) -> PathBuf {
    client.socket().parent().map(Path::to_path_buf).unwrap_or_default()
}

fn status_field(pid: u32, field: &str) -> Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status").into())
}

fn rss_kb(pid: u32) -> Result<u64> {
    Ok(status_field(pid, "VmRSS:")?.trim_end_matches("kB").trim().parse()?)
}

fn parent_of(pid: u32) -> Result<u32> {
    Ok(status_field(pid, "PPid:")?.parse()?)
}

/// Proportional set size: shared pages (the binary's text) split among the processes that map them.
fn pss_kb(pid: u32) -> Result<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>()))
        .ok_or("no Pss in smaps_rollup")?
        .map_err(Into::into)
}
