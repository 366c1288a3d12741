//! DNS load generator for bench/netd/run.sh: keeps N UDP queries in flight against one server for a fixed time
//! and prints the answered queries per second and the latency percentiles (p50/p99/p99.9/max) as one line of
//! `key=value` pairs. It runs inside a network namespace (`ip netns exec`), so the queries take the same path a
//! container's do: veth, bridge, the server on the gateway address.
//!
//!   dns_bench --server 10.216.2.1:53 --name web --inflight 8 --seconds 5
//!
//! Each in-flight slot is its own connected UDP socket that sends a query, waits for its answer (or a timeout)
//! and sends the next one, so N is exactly the number of outstanding queries. The first `--warmup` seconds are
//! not counted (ARP, caches, the server's first allocations).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hdrhistogram::Histogram;
use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::net::UdpSocket;
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(about = "UDP DNS load generator: N queries in flight for a fixed time, latency percentiles and qps")]
struct Args {
    /// The DNS server, `ip:port`.
    #[arg(long)]
    server: SocketAddr,
    /// The name to ask for (an A query); it must resolve, or the run counts every answer as bad.
    #[arg(long)]
    name: String,
    /// Queries in flight at any time (one socket each).
    #[arg(long, default_value_t = 8)]
    inflight: u16,
    /// Measured time, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Unmeasured time before it, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// A query without an answer after this many milliseconds counts as lost and the slot moves on.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
    /// Runtime threads of the load generator (1: a single thread, leaving the other cores to the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("cannot build the query for {name}: {message}")]
    Query { name: String, message: String },
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("latency histogram: {0}")]
    Histogram(String),
    #[error("a query task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What one in-flight slot saw in the measured window.
struct SlotStats {
    latency_ns: Histogram<u64>,
    /// Answers that were not NOERROR with at least one answer record.
    bad: u64,
    lost: u64,
}

/// Histogram bounds: 1 µs to 10 s, 3 significant digits (0.1 % error on every percentile).
fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1_000, 10_000_000_000, 3).map_err(|e| BenchError::Histogram(e.to_string()))
}

/// The query's wire bytes; only the id changes from one query to the next.
fn query_bytes(name: &str) -> Result<Vec<u8>, BenchError> {
    let err = |message: String| BenchError::Query { name: name.to_string(), message };
    let fqdn = Name::from_ascii(name).map_err(|e| err(e.to_string()))?;
    let mut message = Message::new(0, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(fqdn, RecordType::A));
    message.to_vec().map_err(|e| err(e.to_string()))
}

/// Why the whole answer is not decoded: the header says all the bench checks (id, rcode, answer count), and
/// decoding less leaves more of the machine's two cores to the server under test.
fn answer_header(raw: &[u8]) -> Option<Header> {
    Header::read(&mut BinDecoder::new(raw)).ok()
}

async fn slot(
    server: SocketAddr,
    query: Arc<Vec<u8>>,
    first_id: u16,
    measure_from: Instant,
    end: Instant,
    timeout: Duration,
) -> Result<SlotStats, BenchError> {
    let socket = UdpSocket::bind("0.0.0.0:0").await?;
    socket.connect(server).await?;
    let mut stats = SlotStats { latency_ns: histogram()?, bad: 0, lost: 0 };
    let mut packet = query.as_ref().clone();
    let mut buf = vec![0u8; 4096];
    let mut id = first_id;
    while Instant::now() < end {
        id = id.wrapping_add(1);
        // The DNS header starts with the 16-bit query id (RFC 1035 4.1.1).
        packet[..2].copy_from_slice(&id.to_be_bytes());
        let sent = Instant::now();
        socket.send(&packet).await?;
        let answer = tokio::time::timeout_at(sent + timeout, async {
            // An answer to an earlier, timed-out query may still arrive: skip anything with another id.
            loop {
                let n = socket.recv(&mut buf).await?;
                if let Some(header) = answer_header(&buf[..n])
                    && header.metadata.id == id
                    && header.metadata.message_type == MessageType::Response
                {
                    return Ok::<Header, std::io::Error>(header);
                }
            }
        })
        .await;
        let measured = sent >= measure_from && Instant::now() <= end;
        match answer {
            Err(_elapsed) => {
                if measured {
                    stats.lost += 1;
                }
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(header)) => {
                if !measured {
                    continue;
                }
                let nanos = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                stats.latency_ns.saturating_record(nanos);
                if header.metadata.response_code != ResponseCode::NoError || header.counts.answers == 0 {
                    stats.bad += 1;
                }
            }
        }
    }
    Ok(stats)
}

async fn bench(args: &Args) -> Result<String, BenchError> {
    let seconds = Duration::try_from_secs_f64(args.seconds).ok().filter(|d| !d.is_zero());
    let warmup = Duration::try_from_secs_f64(args.warmup).ok();
    let (Some(seconds), Some(warmup)) = (seconds, warmup) else {
        return Err(BenchError::Args("--seconds must be positive and --warmup not negative".into()));
    };
    if args.inflight == 0 {
        return Err(BenchError::Args("--inflight must be positive".into()));
    }
    let query = Arc::new(query_bytes(&args.name)?);
    let too_long = || BenchError::Args("--seconds and --warmup are too long".into());
    let measure_from = Instant::now().checked_add(warmup).ok_or_else(too_long)?;
    let end = measure_from.checked_add(seconds).ok_or_else(too_long)?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let slots: Vec<_> = (0..args.inflight)
        .map(|i| {
            // Each slot counts up from its own start, so ids stay distinct across slots for a long time.
            let first_id = i.wrapping_mul(u16::MAX / args.inflight);
            tokio::spawn(slot(args.server, query.clone(), first_id, measure_from, end, timeout))
        })
        .collect();
    let mut all = histogram()?;
    let (mut bad, mut lost) = (0, 0);
    for s in slots {
        let s = s.await??;
        all.add(&s.latency_ns).map_err(|e| BenchError::Histogram(e.to_string()))?;
        bad += s.bad;
        lost += s.lost;
    }
    let us = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    let answered = all.len();
    Ok(format!(
        "server={} name={} inflight={} seconds={} answered={} qps={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} \
         max_us={:.1} bad={} lost={}",
        args.server,
        args.name,
        args.inflight,
        args.seconds,
        answered,
        answered as f64 / args.seconds,
        us(0.5),
        us(0.99),
        us(0.999),
        all.max() as f64 / 1000.0,
        bad,
        lost
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    let result = runtime.map_err(BenchError::from).and_then(|rt| rt.block_on(bench(&args)));
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dns_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
