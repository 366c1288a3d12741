//! berth-netd: the berth network daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_netd::paths::Paths;
use clap::Parser;

/// The berth network daemon: bridges, veths, IPAM, DNS and published ports.
#[derive(Debug, Parser)]
#[command(name = "berth-netd", version)]
struct Args {
    /// State directory; netd keeps its files under <root>/netd (default /var/lib/berth, or BERTH_ROOT).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Socket directory (default /run/berth, or BERTH_RUN_DIR).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// The resolv.conf whose nameservers answer names outside berth, and whose search and options containers
    /// inherit.
    #[arg(long, env = "BERTH_NETD_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// The nftables table (family inet) netd owns; nothing outside it is touched.
    #[arg(long, env = "BERTH_NETD_NFT_TABLE", default_value = "berth")]
    nft_table: String,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        // hickory-server logs every query at info: too much for a resolver answering thousands a second.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let args = Args::parse();
    let paths = Paths::resolve(args.root.as_deref(), args.run_dir.as_deref());
    let options = berth_netd::service::Options { resolv_conf: args.resolv_conf, nft_table: args.nft_table };
    // Two workers: netd's work is a few netlink round trips per request, and the DNS listeners are light.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth-netd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(berth_netd::daemon::run(paths, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-netd: {e}");
            ExitCode::FAILURE
        }
    }
}
