//! One sample of a container's resource use, in the shape of Docker's `/containers/{id}/stats` (API types
//! `StatsResponse`), so the docker CLI computes the same CPU %, memory, network, block I/O and pids from it.
//!
//! Sources: v1 `cpuacct.*`, `cpu.stat`, `memory.*`, `pids.*`, `blkio.*`; v2 `cpu.stat`, `memory.*`, `pids.*`,
//! `io.stat`; the host's `/proc/stat` (system CPU time, online CPUs) and `/proc/meminfo`; the container's
//! interfaces from `/proc/<init>/net/dev` (read in its network namespace).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{ContainerCgroup, Mode};

/// Nanoseconds per USER_HZ tick: the kernel reports `/proc/stat` and `cpuacct.stat` in USER_HZ, which is 100
/// on every Linux architecture berth builds for (a constant here rather than a `sysconf` call).
const NS_PER_TICK: u64 = 10_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(skip_serializing_if = "is_zero32")]
    pub online_cpus: u32,
    pub throttling_data: ThrottlingData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 (left out) when unlimited, as Docker.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
    pub io_queue_recursive: Vec<BlkioEntry>,
    pub io_service_time_recursive: Vec<BlkioEntry>,
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    pub io_merged_recursive: Vec<BlkioEntry>,
    pub io_time_recursive: Vec<BlkioEntry>,
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One sample of the cgroup (without time, name and networks, which the API adds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub cpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

/// What the host contributes to a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCpu {
    /// All CPUs' time since boot in nanoseconds (`/proc/stat`'s `cpu` line, as Docker sums it).
    pub system_usage: u64,
    pub online_cpus: u32,
    /// `MemTotal` in bytes: the limit shown for a container without one.
    pub mem_total: u64,
}

impl HostCpu {
    pub fn read() -> HostCpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        HostCpu::parse(&stat, &meminfo)
    }

    fn parse(stat: &str, meminfo: &str) -> HostCpu {
        let mut host = HostCpu::default();
        for line in stat.lines() {
            if let Some(rest) = line.strip_prefix("cpu ") {
                // user nice system idle iowait irq softirq (steal and guests left out, as Docker does).
                let ticks: u64 = rest.split_whitespace().take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
                host.system_usage = ticks.saturating_mul(NS_PER_TICK);
            } else if line.starts_with("cpu") && line.as_bytes().get(3).is_some_and(u8::is_ascii_digit) {
                host.online_cpus += 1;
            }
        }
        host.mem_total = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb.saturating_mul(1024));
        host
    }
}

/// A file's text, empty when it cannot be read (a controller not mounted, a kernel without the file): stats
/// are best effort, as Docker's.
fn text(dir: Option<&Path>, file: &str) -> String {
    dir.and_then(|d| std::fs::read_to_string(d.join(file)).ok()).unwrap_or_default()
}

fn number(dir: Option<&Path>, file: &str) -> Option<u64> {
    text(dir, file).trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

impl Sample {
    pub fn read(cg: &ContainerCgroup, host: &HostCpu) -> Sample {
        let mut s = match cg.mode() {
            Mode::V1 => Sample::read_v1(cg),
            Mode::V2 => Sample::read_v2(cg),
        };
        s.cpu_stats.system_cpu_usage = host.system_usage;
        s.cpu_stats.online_cpus = host.online_cpus;
        if s.memory_stats.limit == 0 || (host.mem_total > 0 && s.memory_stats.limit > host.mem_total) {
            s.memory_stats.limit = host.mem_total;
        }
        s
    }

    fn read_v1(cg: &ContainerCgroup) -> Sample {
        let cpuacct = cg.dir("cpuacct");
        let times = flat_keyed(&text(cpuacct, "cpuacct.stat"));
        let throttle = flat_keyed(&text(cg.dir("cpu"), "cpu.stat"));
        let cpu_stats = CpuStats {
            cpu_usage: CpuUsage {
                total_usage: number(cpuacct, "cpuacct.usage").unwrap_or(0),
                percpu_usage: text(cpuacct, "cpuacct.usage_percpu")
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect(),
                usage_in_kernelmode: times.get("system").copied().unwrap_or(0).saturating_mul(NS_PER_TICK),
                usage_in_usermode: times.get("user").copied().unwrap_or(0).saturating_mul(NS_PER_TICK),
            },
            throttling_data: ThrottlingData {
                periods: throttle.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: throttle.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: throttle.get("throttled_time").copied().unwrap_or(0),
            },
            ..Default::default()
        };
        let memory = cg.dir("memory");
        let memory_stats = MemoryStats {
            usage: number(memory, "memory.usage_in_bytes").unwrap_or(0),
            max_usage: number(memory, "memory.max_usage_in_bytes").unwrap_or(0),
            stats: flat_keyed(&text(memory, "memory.stat")),
            failcnt: number(memory, "memory.failcnt").unwrap_or(0),
            limit: number(memory, "memory.limit_in_bytes").unwrap_or(0),
        };
        let blkio = cg.dir("blkio");
        // The CFQ files are empty without that scheduler; the throttle files count every device (containerd).
        let pick = |name: &str| {
            let cfq = parse_v1_blkio(&text(blkio, &format!("blkio.{name}")));
            if cfq.is_empty() { parse_v1_blkio(&text(blkio, &format!("blkio.throttle.{name}"))) } else { cfq }
        };
        Sample {
            pids_stats: pids(cg.dir("pids")),
            blkio_stats: BlkioStats {
                io_service_bytes_recursive: pick("io_service_bytes_recursive"),
                io_serviced_recursive: pick("io_serviced_recursive"),
                ..Default::default()
            },
            cpu_stats,
            memory_stats,
        }
    }

    fn read_v2(cg: &ContainerCgroup) -> Sample {
        let dir = cg.dir("");
        let cpu = flat_keyed(&text(dir, "cpu.stat"));
        let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
        let cpu_stats = CpuStats {
            cpu_usage: CpuUsage {
                total_usage: us("usage_usec"),
                percpu_usage: Vec::new(),
                usage_in_kernelmode: us("system_usec"),
                usage_in_usermode: us("user_usec"),
            },
            throttling_data: ThrottlingData {
                periods: cpu.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: us("throttled_usec"),
            },
            ..Default::default()
        };
        let memory_stats = MemoryStats {
            usage: number(dir, "memory.current").unwrap_or(0),
            max_usage: number(dir, "memory.peak").unwrap_or(0),
            stats: flat_keyed(&text(dir, "memory.stat")),
            failcnt: 0,
            // "max" does not parse: unlimited, shown as the host's memory.
            limit: number(dir, "memory.max").unwrap_or(0),
        };
        let (bytes, ios) = parse_io_stat(&text(dir, "io.stat"));
        Sample {
            pids_stats: pids(dir),
            blkio_stats: BlkioStats {
                io_service_bytes_recursive: bytes,
                io_serviced_recursive: ios,
                ..Default::default()
            },
            cpu_stats,
            memory_stats,
        }
    }
}

fn pids(dir: Option<&Path>) -> PidsStats {
    PidsStats { current: number(dir, "pids.current").unwrap_or(0), limit: number(dir, "pids.max").unwrap_or(0) }
}

/// v1 blkio: `8:0 Read 4096` lines and a `Total N` line (left out, as Docker does).
fn parse_v1_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (dev, op, value) = (parts.next()?, parts.next()?, parts.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` → bytes and operations as Docker gives
/// them (ops `read` and `write`).
fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else { continue };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(value) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                _ => continue,
            };
            list.push(BlkioEntry { major, minor, op: op.to_owned(), value });
        }
    }
    (bytes, ios)
}

/// The interfaces of `/proc/<pid>/net/dev` but the loopback.
pub fn networks(pid: i32) -> BTreeMap<String, NetworkStats> {
    parse_net_dev(&std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default())
}

fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    let mut out = BTreeMap::new();
    // Two header lines, then `name: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes …`.
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_owned(),
            NetworkStats {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn write(dir: &Path, files: &[(&str, &str)]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }

    const HOST: HostCpu = HostCpu { system_usage: 5_000_000_000, online_cpus: 2, mem_total: 1 << 30 };

    #[test]
    fn v1_sample_from_a_fake_tree() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = |c: &str| tmp.path().join(c).join("berth/c1");
        write(
            &dir("cpuacct"),
            &[
                ("cpuacct.usage", "3000000\n"),
                ("cpuacct.usage_percpu", "1000000 2000000 \n"),
                ("cpuacct.stat", "user 3\nsystem 1\n"),
            ],
        )?;
        write(&dir("cpu"), &[("cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 500\n")])?;
        write(
            &dir("memory"),
            &[
                ("memory.usage_in_bytes", "8388608\n"),
                ("memory.max_usage_in_bytes", "9000000\n"),
                ("memory.limit_in_bytes", "16777216\n"),
                ("memory.failcnt", "4\n"),
                ("memory.stat", "cache 4096\nrss 8192\ntotal_inactive_file 1048576\n"),
            ],
        )?;
        write(&dir("pids"), &[("pids.current", "3\n"), ("pids.max", "max\n")])?;
        write(
            &dir("blkio"),
            &[
                ("blkio.io_service_bytes_recursive", "Total 0\n"),
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
                ),
            ],
        )?;
        let cg = ContainerCgroup::V1(
            ["cpuacct", "cpu", "memory", "pids", "blkio"].into_iter().map(|c| (c, dir(c))).collect(),
        );
        let s = Sample::read(&cg, &HOST);
        assert_eq!(s.cpu_stats.cpu_usage.total_usage, 3_000_000);
        assert_eq!(s.cpu_stats.cpu_usage.percpu_usage, vec![1_000_000, 2_000_000]);
        assert_eq!(s.cpu_stats.cpu_usage.usage_in_usermode, 30_000_000);
        assert_eq!(s.cpu_stats.cpu_usage.usage_in_kernelmode, 10_000_000);
        assert_eq!(
            s.cpu_stats.throttling_data,
            ThrottlingData { periods: 10, throttled_periods: 2, throttled_time: 500 }
        );
        assert_eq!((s.cpu_stats.system_cpu_usage, s.cpu_stats.online_cpus), (5_000_000_000, 2));
        assert_eq!((s.memory_stats.usage, s.memory_stats.limit, s.memory_stats.failcnt), (8_388_608, 16_777_216, 4));
        assert_eq!(s.memory_stats.stats.get("total_inactive_file"), Some(&1_048_576));
        assert_eq!(s.pids_stats, PidsStats { current: 3, limit: 0 });
        let ops: Vec<(&str, u64)> =
            s.blkio_stats.io_service_bytes_recursive.iter().map(|e| (e.op.as_str(), e.value)).collect();
        assert_eq!(ops, [("Read", 4096), ("Write", 8192), ("Total", 12288)]);
        // Docker's key names, as the CLI decodes them.
        let json = serde_json::to_value(&s)?;
        assert_eq!(json["memory_stats"]["stats"]["total_inactive_file"], 1_048_576);
        assert_eq!(json["cpu_stats"]["cpu_usage"]["percpu_usage"][1], 2_000_000);
        assert!(json["pids_stats"].get("limit").is_none(), "unlimited pids are left out: {json}");
        Ok(())
    }

    #[test]
    fn v2_sample_from_a_fake_tree() -> TestResult {
        let tmp = tempfile::tempdir()?;
        write(
            tmp.path(),
            &[
                (
                    "cpu.stat",
                    "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
                ),
                ("memory.current", "10485760\n"),
                ("memory.max", "max\n"),
                ("memory.stat", "anon 4096\nfile 8192\ninactive_file 2048\n"),
                ("pids.current", "2\n"),
                ("pids.max", "100\n"),
                ("io.stat", "8:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n"),
            ],
        )?;
        let s = Sample::read(&ContainerCgroup::V2(tmp.path().to_path_buf()), &HOST);
        assert_eq!(s.cpu_stats.cpu_usage.total_usage, 2_500_000);
        assert!(s.cpu_stats.cpu_usage.percpu_usage.is_empty());
        assert_eq!(s.cpu_stats.cpu_usage.usage_in_usermode, 2_000_000);
        assert_eq!(s.memory_stats.usage, 10_485_760);
        assert_eq!(s.memory_stats.limit, 1 << 30, "no limit shows the host's memory");
        assert_eq!(s.memory_stats.stats.get("inactive_file"), Some(&2048));
        assert_eq!(s.pids_stats, PidsStats { current: 2, limit: 100 });
        let bytes: Vec<(&str, u64)> =
            s.blkio_stats.io_service_bytes_recursive.iter().map(|e| (e.op.as_str(), e.value)).collect();
        assert_eq!(bytes, [("read", 4096), ("write", 512)]);
        assert_eq!(s.blkio_stats.io_serviced_recursive.len(), 2);
        Ok(())
    }

    #[test]
    fn missing_files_give_zeros_not_errors() {
        let s = Sample::read(&ContainerCgroup::V2("/nonexistent/berth-test".into()), &HostCpu::default());
        assert_eq!(s, Sample::default());
    }

    #[test]
    fn host_cpu_and_memory() {
        let stat =
            "cpu  100 0 50 800 50 0 0 7 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 7 0 0\nintr 1\n";
        let host = HostCpu::parse(stat, "MemTotal:       24683520 kB\nMemFree: 1 kB\n");
        assert_eq!(host, HostCpu { system_usage: 1000 * NS_PER_TICK, online_cpus: 2, mem_total: 24_683_520 * 1024 });
    }

    #[test]
    fn net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
             eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0\n";
        let nets = parse_net_dev(text);
        assert_eq!(nets.keys().collect::<Vec<_>>(), ["eth0"]);
        assert_eq!(
            nets["eth0"],
            NetworkStats {
                rx_bytes: 1500,
                rx_packets: 10,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 700,
                tx_packets: 5,
                tx_errors: 3,
                tx_dropped: 4
            }
        );
    }
}
