//! `top`: the processes of a container's cgroup as `ps -ef` shows them (`UID PID PPID C STIME TTY TIME CMD`).
//!
//! Docker runs the host's `ps` with the client's `ps_args` and keeps the rows of the container's pids. berth
//! reads `/proc` itself: no dependency on a procps binary on the host (minimal hosts have none), no process
//! spawned per request, and no guessing which column is the PID in the output of arbitrary `ps` options. The
//! `-ef` format (Docker's default and the docker CLI's) is what it answers; other `ps_args` are refused.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// USER_HZ: the unit of `/proc/<pid>/stat` times (100 on every Linux architecture berth builds for).
const TICKS_PER_SEC: u64 = 100;

pub const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// Docker's `ContainerTopOKBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Whether `ps_args` asks for the format berth answers (`-ef`, `ef`, `-e -f`, or none).
pub fn supported_ps_args(ps_args: &str) -> bool {
    let mut flags: Vec<char> = ps_args.split_whitespace().flat_map(|a| a.trim_start_matches('-').chars()).collect();
    flags.sort_unstable();
    flags.dedup();
    flags.is_empty() || flags == ['e', 'f'] || flags == ['A', 'f']
}

/// The host's clock facts a row needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Unix seconds of the boot (`btime` of `/proc/stat`).
    pub boot: u64,
    /// Seconds since boot (`/proc/uptime`).
    pub uptime: u64,
    /// Unix seconds now.
    pub now: u64,
}

impl Clock {
    pub fn read() -> Clock {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let boot = stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok());
        let uptime = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| t.split('.').next().and_then(|s| s.trim().parse().ok()));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Clock { boot: boot.unwrap_or(0), uptime: uptime.unwrap_or(0), now }
    }
}

/// The fields of `/proc/<pid>/stat` a row uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    comm: String,
    ppid: i64,
    tty_nr: u64,
    /// utime + stime, in ticks.
    cpu_ticks: u64,
    /// Ticks after boot.
    start_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split at the last `)`.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state): field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        ppid: rest.get(1).and_then(|v| v.parse().ok())?,
        tty_nr: field(7)?,
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        start_ticks: field(22)?,
    })
}

/// `Uid:` of `/proc/<pid>/status`: the real uid.
fn parse_uid(status: &str) -> Option<u32> {
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()
}

/// The controlling terminal as ps names it: `pts/N`, `ttyN`, or `?`.
fn tty_name(tty_nr: u64) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => "?".into(),
    }
}

/// `[DD-]HH:MM:SS` of cumulative CPU time.
fn cpu_time(ticks: u64) -> String {
    let secs = ticks / TICKS_PER_SEC;
    let (days, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    if days > 0 { format!("{days}-{h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}") }
}

/// STIME as ps prints it: `HH:MM` today, `MonDD` this year, else the year (UTC: berthd has no time zone data).
fn start_time(start: u64, now: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let stamp = crate::time::rfc3339_parts(start as i64, 0);
    let today = crate::time::rfc3339_parts(now as i64, 0);
    let (Some(date), Some(hm)) = (stamp.get(..10), stamp.get(11..16)) else { return "?".into() };
    if today.get(..10) == Some(date) {
        return hm.to_owned();
    }
    if today.get(..4) == stamp.get(..4) {
        let month = stamp.get(5..7).and_then(|m| m.parse::<usize>().ok()).and_then(|m| MONTHS.get(m.wrapping_sub(1)));
        if let (Some(month), Some(day)) = (month, stamp.get(8..10)) {
            return format!("{month}{day}");
        }
    }
    stamp.get(..4).unwrap_or("?").to_owned()
}

/// ps's `C`: CPU use over the process's life in percent, as an integer (at most 99 per CPU-second).
fn cpu_percent(cpu_ticks: u64, start_ticks: u64, uptime: u64) -> u64 {
    let alive = uptime.saturating_sub(start_ticks / TICKS_PER_SEC);
    (cpu_ticks.saturating_mul(100) / TICKS_PER_SEC).checked_div(alive).map_or(0, |p| p.min(99))
}

/// The user name ps shows: the host's name for the uid when it fits 8 columns, else the number.
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) if u.name.len() <= 8 => u.name,
        _ => uid.to_string(),
    }
}

/// One `ps -ef` row from a process's `/proc` files; `None` when it is gone or unreadable.
fn row(
    pid: i32,
    stat: &str,
    status: &str,
    cmdline: &[u8],
    clock: &Clock,
    user: impl Fn(u32) -> String,
) -> Option<Vec<String>> {
    let st = parse_stat(stat)?;
    let uid = parse_uid(status)?;
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let cmd = if args.is_empty() { format!("[{}]", st.comm) } else { args.join(" ") };
    Some(vec![
        user(uid),
        pid.to_string(),
        st.ppid.to_string(),
        cpu_percent(st.cpu_ticks, st.start_ticks, clock.uptime).to_string(),
        start_time(clock.boot + st.start_ticks / TICKS_PER_SEC, clock.now),
        tty_name(st.tty_nr),
        cpu_time(st.cpu_ticks),
        cmd,
    ])
}

/// The rows of `pids`, in pid order; processes that exit meanwhile are left out.
pub fn top(mut pids: Vec<i32>) -> Top {
    pids.sort_unstable();
    let clock = Clock::read();
    let processes = pids
        .into_iter()
        .filter_map(|pid| {
            let dir = format!("/proc/{pid}");
            let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
            let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
            let cmdline = std::fs::read(format!("{dir}/cmdline")).ok()?;
            row(pid, &stat, &status, &cmdline, &clock, user_name)
        })
        .collect();
    Top { titles: TITLES.iter().map(|t| (*t).to_owned()).collect(), processes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_as_ps_ef_prints_it() {
        // pid 4242, comm with a space and a parenthesis, ppid 1, tty pts/3, 250 ticks of CPU, started 1000 s
        // after boot, 10 s ago (so 25 % CPU).
        let stat = "4242 (my (cmd)) S 1 4242 4242 34819 4242 4194304 100 0 0 0 200 50 0 0 20 0 1 0 100000 1234 56";
        let status = "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t0\n";
        let clock = Clock { boot: 1_700_000_000, uptime: 1010, now: 1_700_000_000 + 1010 };
        let row = row(4242, stat, status, b"sh\0-c\0sleep 10\0", &clock, |u| format!("u{u}"));
        let expected = ["u1000", "4242", "1", "25", "22:30", "pts/3", "00:00:02", "sh -c sleep 10"];
        assert_eq!(row, Some(expected.iter().map(|s| (*s).to_owned()).collect()));
    }

    #[test]
    fn kernel_threads_and_bad_input() {
        let stat = "2 (kthreadd) S 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        let clock = Clock { boot: 0, uptime: 0, now: 0 };
        let r = row(2, stat, "Uid:\t0\t0\t0\t0\n", b"", &clock, |_| "root".into());
        assert_eq!(r.as_ref().map(|r| r[7].as_str()), Some("[kthreadd]"));
        assert_eq!(r.as_ref().map(|r| r[3].as_str()), Some("0"), "no division by a zero lifetime");
        assert_eq!(row(2, "garbage", "", b"", &clock, |_| String::new()), None);
        assert_eq!(row(2, "2 (x) S", "Uid:\t0\n", b"", &clock, |_| String::new()), None);
    }

    #[test]
    fn columns() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name((136 << 8) | 5), "pts/5");
        assert_eq!(tty_name((4 << 8) | 1), "tty1");
        assert_eq!(cpu_time(100 * 3725), "01:02:05");
        assert_eq!(cpu_time(100 * (86_400 + 1)), "1-00:00:01");
        let now = 1_763_800_000; // 2025-11-22T08:26:40Z
        assert_eq!(start_time(now - 60, now), "08:25");
        assert_eq!(start_time(now - 86_400 * 30, now), "Oct23");
        assert_eq!(start_time(now - 86_400 * 400, now), "2024");
        assert_eq!(cpu_percent(500, 0, 10), 50);
        assert_eq!(cpu_percent(100_000, 0, 10), 99);
    }

    #[test]
    fn ps_args() {
        for ok in ["", "-ef", "ef", "-e -f", "-fe", "-A -f"] {
            assert!(supported_ps_args(ok), "{ok}");
        }
        for no in ["aux", "-o pid", "-eo pid,comm"] {
            assert!(!supported_ps_args(no), "{no}");
        }
    }
}
