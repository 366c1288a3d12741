//! Endpoint attach benchmark for bench/netd/run.sh: through netd's typed client (as berthd calls it), connect
//! N fresh network namespaces to one network (veth pair, address, default route, DNS record, resolv.conf) and
//! disconnect them again; prints the median, p90 and max of each as one line of `key=value` pairs.
//!
//!   attach_bench --socket /tmp/x/run/netd.sock --network bnb-attach --count 50 --netns-prefix bnb-1234-att
//!
//! The namespaces (`ip netns add <prefix>-<i>`) are made outside the timed part, as a container runtime makes
//! them before it asks for networking; every one is deleted again, also when the run fails.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use berth_netd::api::EndpointRequest;
use berth_netd::client::{Client, ClientError};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Time netd's connect and disconnect of N fresh network namespaces")]
struct Args {
    /// netd's socket.
    #[arg(long)]
    socket: PathBuf,
    /// An existing network (name or id) to attach to.
    #[arg(long)]
    network: String,
    /// How many namespaces to attach.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// Namespaces are `<prefix>-<i>`.
    #[arg(long)]
    netns_prefix: String,
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("`ip {args}` failed: {message}")]
    Ip { args: String, message: String },
    #[error("netd: {0}")]
    Netd(#[from] ClientError),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

fn ip(args: &[&str]) -> Result<(), BenchError> {
    let err = |message: String| BenchError::Ip { args: args.join(" "), message };
    let out = Command::new("ip").args(args).output().map_err(|e| err(e.to_string()))?;
    if out.status.success() { Ok(()) } else { Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string())) }
}

/// The namespaces made so far; dropping it deletes them (their veth ends go with them).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Median, p90 and max of `samples` in milliseconds (nearest rank).
fn summary(label: &str, samples: &mut [f64]) -> String {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len().max(1));
        samples.get(rank - 1).copied().unwrap_or(f64::NAN)
    };
    format!("{label}_p50_ms={:.2} {label}_p90_ms={:.2} {label}_max_ms={:.2}", at(0.5), at(0.9), at(1.0))
}

async fn bench(args: &Args) -> Result<String, BenchError> {
    let client = Client::connect_with_unix(&args.socket);
    let mut namespaces = Namespaces(Vec::new());
    let mut connect_ms = Vec::with_capacity(args.count);
    let mut disconnect_ms = Vec::with_capacity(args.count);
    let containers: Vec<String> = (0..args.count).map(|i| format!("{}-c{i}", args.netns_prefix)).collect();
    for (i, container) in containers.iter().enumerate() {
        let ns = format!("{}-{i}", args.netns_prefix);
        ip(&["netns", "add", &ns])?;
        namespaces.0.push(ns.clone());
        let req = EndpointRequest {
            container_id: container.clone(),
            netns: PathBuf::from("/run/netns").join(&ns),
            names: vec![format!("c{i}")],
            aliases: vec![format!("alias{i}")],
            ..EndpointRequest::default()
        };
        let t0 = Instant::now();
        client.connect(&args.network, &req).await?;
        connect_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    for container in &containers {
        let t0 = Instant::now();
        client.disconnect(&args.network, container).await?;
        disconnect_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    drop(namespaces);
    Ok(format!(
        "count={} {} {}",
        args.count,
        summary("connect", &mut connect_ms),
        summary("disconnect", &mut disconnect_ms)
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::from)
        .and_then(|rt| rt.block_on(bench(&args)));
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("attach_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
