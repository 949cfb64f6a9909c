//! Parsers of the Linux `/proc` files the metrics collector samples (`/proc/stat`,
//! `/proc/loadavg`, `/proc/uptime`, `/proc/meminfo`, `/proc/net/dev`, `/proc/self/stat`), of
//! the OS release files (`/etc/openwrt_release`, `/etc/os-release`), plus a `statvfs(2)`
//! wrapper for disk usage.
//!
//! Every `parse_*` function is pure: it takes the file's contents as `&str`, so it is tested
//! with sample files from other kernels (OpenWrt's 4.14 … 6.x, busybox/musl, kernels without
//! `MemAvailable`) and never panics, whatever it is given (garbage, truncated, empty); bad
//! input gives `None` or skips the line. The `read_*` functions are thin wrappers that read
//! the real file with [`std::fs::read_to_string`] and call the parser.

use serde::Serialize;
use std::io;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// /proc/stat
// ---------------------------------------------------------------------------------------------

/// Aggregate jiffies from the first `cpu ` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CpuTimes {
    /// Sum of user, nice, system, idle, iowait, irq, softirq, steal (those present). The
    /// guest fields are left out: they are already counted in user and nice.
    pub total: u64,
    /// idle + iowait.
    pub idle: u64,
}

/// The aggregate CPU times and the number of `cpuN` lines (cores) of `/proc/stat`; `None`
/// without a well-formed `cpu ` line. Lines have 4 (2.4), 7 (2.6.0–2.6.10), 8 or more fields.
pub fn parse_stat(s: &str) -> Option<(CpuTimes, usize)> {
    let mut times = None;
    let mut cores = 0usize;
    for line in s.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if key == "cpu" {
            if times.is_none() {
                times = Some(parse_cpu_fields(fields)?);
            }
        } else if let Some(n) = key.strip_prefix("cpu") {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                cores = cores.saturating_add(1);
            }
        }
    }
    times.map(|t| (t, cores))
}

fn parse_cpu_fields<'a>(fields: impl Iterator<Item = &'a str>) -> Option<CpuTimes> {
    let mut total = 0u64;
    let mut idle = 0u64;
    let mut n = 0usize;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    for (i, f) in fields.take(8).enumerate() {
        let v: u64 = f.parse().ok()?;
        total = total.saturating_add(v);
        if i == 3 || i == 4 {
            idle = idle.saturating_add(v);
        }
        n += 1;
    }
    (n >= 4).then_some(CpuTimes { total, idle })
}

/// Percent busy between two samples, `0.0..=100.0`; `None` if total did not advance (or went
/// backwards).
pub fn cpu_usage(prev: CpuTimes, now: CpuTimes) -> Option<f64> {
    let dt = now.total.checked_sub(prev.total).filter(|&d| d > 0)?;
    // iowait may go backwards on NO_HZ kernels: saturate rather than wrap.
    let didle = now.idle.saturating_sub(prev.idle).min(dt);
    let busy = dt - didle;
    Some((busy as f64 / dt as f64 * 100.0).clamp(0.0, 100.0))
}

// ---------------------------------------------------------------------------------------------
// /proc/loadavg, /proc/uptime
// ---------------------------------------------------------------------------------------------

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`.
pub fn parse_loadavg(s: &str) -> Option<[f64; 3]> {
    let mut fields = s.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        *slot = parse_non_negative(fields.next()?)?;
    }
    Some(out)
}

/// Seconds since boot: the first field of `/proc/uptime`.
pub fn parse_uptime(s: &str) -> Option<f64> {
    parse_non_negative(s.split_ascii_whitespace().next()?)
}

fn parse_non_negative(f: &str) -> Option<f64> {
    f.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

// ---------------------------------------------------------------------------------------------
// /proc/meminfo
// ---------------------------------------------------------------------------------------------

/// Memory figures of `/proc/meminfo`, in bytes (the file says kB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// total − available, saturating.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }

    /// used / total × 100; 0 when total is 0.
    pub fn usage_percent(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.used() as f64 / self.total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// `None` without `MemTotal`. Without `MemAvailable` (kernels before 3.14) available is
/// estimated as free + buffers + cached, capped at total. Missing fields are 0.
pub fn parse_meminfo(s: &str) -> Option<MemInfo> {
    const KEYS: [&str; 7] = [
        "MemTotal",
        "MemFree",
        "MemAvailable",
        "Buffers",
        "Cached",
        "SwapTotal",
        "SwapFree",
    ];
    let mut v: [Option<u64>; 7] = [None; 7];
    for line in s.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if let Some(i) = KEYS.iter().position(|k| *k == key) {
            if let Some(bytes) = meminfo_bytes(rest) {
                v[i] = Some(bytes);
            }
        }
    }
    let [total, free, available, buffers, cached, swap_total, swap_free] = v;
    let total = total?;
    let (free, buffers, cached) = (free.unwrap_or(0), buffers.unwrap_or(0), cached.unwrap_or(0));
    let available = available.unwrap_or_else(|| {
        free.saturating_add(buffers)
            .saturating_add(cached)
            .min(total)
    });
    Some(MemInfo {
        total,
        free,
        available,
        buffers,
        cached,
        swap_total: swap_total.unwrap_or(0),
        swap_free: swap_free.unwrap_or(0),
    })
}

/// "   123456 kB" → bytes. A value without a unit is taken as bytes.
fn meminfo_bytes(rest: &str) -> Option<u64> {
    let mut it = rest.split_ascii_whitespace();
    let v: u64 = it.next()?.parse().ok()?;
    match it.next() {
        None => Some(v),
        Some(u) if u.eq_ignore_ascii_case("kb") => Some(v.saturating_mul(1024)),
        Some(_) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/net/dev
// ---------------------------------------------------------------------------------------------

/// One interface's counters from `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The interfaces of `/proc/net/dev`. Skips the two header lines; handles `eth0:123 …` (no
/// space after the colon: old kernels with big counters); skips malformed lines.
pub fn parse_net_dev(s: &str) -> Vec<NetDev> {
    s.lines().skip(2).filter_map(parse_net_dev_line).collect()
}

fn parse_net_dev_line(line: &str) -> Option<NetDev> {
    // Interface names cannot contain ':' (dev_valid_name), so the first one ends the name.
    let (name, rest) = line.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    // rx: bytes packets errs drop fifo frame compressed multicast
    // tx: bytes packets errs drop fifo colls carrier compressed
    let mut f = [0u64; 16];
    let mut fields = rest.split_ascii_whitespace();
    for slot in &mut f {
        *slot = fields.next()?.parse().ok()?;
    }
    Some(NetDev {
        name: name.to_owned(),
        rx_bytes: f[0],
        rx_packets: f[1],
        rx_errors: f[2],
        rx_dropped: f[3],
        tx_bytes: f[8],
        tx_packets: f[9],
        tx_errors: f[10],
        tx_dropped: f[11],
    })
}

// ---------------------------------------------------------------------------------------------
// /proc/self/stat
// ---------------------------------------------------------------------------------------------

/// Our own process from `/proc/self/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SelfStat {
    /// utime + stime, in clock ticks ([`clock_ticks`] per second).
    pub cpu_ticks: u64,
    /// Resident set size in pages ([`page_size`] bytes each).
    pub rss_pages: u64,
    pub threads: u64,
}

/// `comm` (field 2) is in parentheses and may itself contain spaces and `)`, so the fields
/// are split after the *last* `)`.
pub fn parse_self_stat(s: &str) -> Option<SelfStat> {
    let (_, rest) = s.rsplit_once(')')?;
    // Field N of proc(5) is at index N − 3 after the comm.
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
    let num = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let utime = num(14)?;
    let stime = num(15)?;
    let threads = num(20)?;
    // rss is a signed long; treat a negative one as 0.
    let rss: i64 = fields.get(24 - 3)?.parse().ok()?;
    Some(SelfStat {
        cpu_ticks: utime.saturating_add(stime),
        rss_pages: u64::try_from(rss).unwrap_or(0),
        threads,
    })
}

// ---------------------------------------------------------------------------------------------
// OS release files
// ---------------------------------------------------------------------------------------------

/// A human OS name from `/etc/os-release`: `PRETTY_NAME`, else `NAME` + `VERSION` (or `NAME`
/// alone). Values may be double-quoted (with `\` escapes), single-quoted or bare; `#` lines
/// are comments.
pub fn parse_os_release(s: &str) -> Option<String> {
    let pretty = shell_var(s, "PRETTY_NAME");
    if pretty.is_some() {
        return pretty;
    }
    let name = shell_var(s, "NAME")?;
    Some(match shell_var(s, "VERSION") {
        Some(v) => format!("{name} {v}"),
        None => name,
    })
}

/// OpenWrt's `/etc/openwrt_release`: `DISTRIB_DESCRIPTION` (e.g. `'OpenWrt 23.05.3
/// r23809-234f1a2efa'`), else `DISTRIB_ID` + `DISTRIB_RELEASE`.
pub fn parse_openwrt_release(s: &str) -> Option<String> {
    let desc = shell_var(s, "DISTRIB_DESCRIPTION");
    if desc.is_some() {
        return desc;
    }
    let id = shell_var(s, "DISTRIB_ID")?;
    Some(match shell_var(s, "DISTRIB_RELEASE") {
        Some(r) => format!("{id} {r}"),
        None => id,
    })
}

/// The last non-empty value of `key` in a shell-style `KEY=value` file.
fn shell_var(s: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in s.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim_end() != key {
            continue;
        }
        let v = unquote(v.trim());
        let v = v.trim();
        if !v.is_empty() {
            found = Some(v.to_owned());
        }
    }
    found
}

fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'') {
        // No escapes inside single quotes; a missing closing quote is forgiven.
        return inner.strip_suffix('\'').unwrap_or(inner).to_owned();
    }
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                c => out.push(c),
            }
        }
        return out;
    }
    v.to_owned()
}

// ---------------------------------------------------------------------------------------------
// statvfs, sysconf
// ---------------------------------------------------------------------------------------------

/// Space of one filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DiskUsage {
    /// f_blocks × f_frsize.
    pub total: u64,
    /// f_bfree × f_frsize (including blocks reserved for root).
    pub free: u64,
    /// f_bavail × f_frsize (what an unprivileged user may still write).
    pub available: u64,
}

impl DiskUsage {
    /// total − free, saturating.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }

    /// used / (used + available) × 100, like df; 0 when the sum is 0.
    pub fn usage_percent(&self) -> f64 {
        let used = self.used() as f64;
        let sum = used + self.available as f64;
        if sum <= 0.0 {
            return 0.0;
        }
        (used / sum * 100.0).clamp(0.0, 100.0)
    }
}

/// `statvfs(2)` of the filesystem holding `path`. A path containing a NUL byte is an
/// [`io::ErrorKind::InvalidInput`] error.
pub fn disk_usage(path: &Path) -> io::Result<DiskUsage> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: statvfs is plain old data, all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and st a valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field types are u32 on some 32-bit targets, u64 elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let (frsize, bsize, blocks, bfree, bavail) = (
        st.f_frsize as u64,
        st.f_bsize as u64,
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
    );
    let unit = if frsize > 0 { frsize } else { bsize };
    Ok(DiskUsage {
        total: blocks.saturating_mul(unit),
        free: bfree.saturating_mul(unit),
        available: bavail.saturating_mul(unit),
    })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 when it fails).
pub fn clock_ticks() -> u64 {
    sysconf_or(libc::_SC_CLK_TCK, 100)
}

/// Page size in bytes (`sysconf(_SC_PAGESIZE)`, 4096 when it fails).
pub fn page_size() -> u64 {
    sysconf_or(libc::_SC_PAGESIZE, 4096)
}

fn sysconf_or(name: libc::c_int, default: u64) -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Readers of the real files
// ---------------------------------------------------------------------------------------------

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

pub fn read_stat() -> Option<(CpuTimes, usize)> {
    parse_stat(&read("/proc/stat")?)
}

pub fn read_loadavg() -> Option<[f64; 3]> {
    parse_loadavg(&read("/proc/loadavg")?)
}

pub fn read_uptime() -> Option<f64> {
    parse_uptime(&read("/proc/uptime")?)
}

pub fn read_meminfo() -> Option<MemInfo> {
    parse_meminfo(&read("/proc/meminfo")?)
}

/// Empty when `/proc/net/dev` cannot be read.
pub fn read_net_dev() -> Vec<NetDev> {
    read("/proc/net/dev")
        .map(|s| parse_net_dev(&s))
        .unwrap_or_default()
}

pub fn read_self_stat() -> Option<SelfStat> {
    parse_self_stat(&read("/proc/self/stat")?)
}

/// OS name: `/etc/openwrt_release` first (OpenWrt also has an os-release, less specific),
/// then `/etc/os-release`, then `/usr/lib/os-release`.
pub fn read_os_name() -> Option<String> {
    read("/etc/openwrt_release")
        .and_then(|s| parse_openwrt_release(&s))
        .or_else(|| read("/etc/os-release").and_then(|s| parse_os_release(&s)))
        .or_else(|| read("/usr/lib/os-release").and_then(|s| parse_os_release(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_2CORE: &str = "\
cpu  2713768 83690 258160 1790757 14124 0 8689 105941 0 0
cpu0 1373013 32821 130815 885406 8751 0 3854 53477 0 0
cpu1 1340754 50869 127344 905350 5373 0 4834 52464 0 0
intr 123456789 0 9 0 0 0 0 0 0 0
ctxt 987654321
btime 1718000000
processes 123456
procs_running 2
procs_blocked 0
softirq 1234567 0 1 2 3 4 5 6 7 8 9
";

    // 2.6.0–2.6.10: user nice system idle iowait irq softirq (no steal).
    const STAT_7FIELDS: &str = "\
cpu  1000 20 300 5000 80 4 6
cpu0 1000 20 300 5000 80 4 6
intr 1 2 3
";

    #[test]
    fn stat_two_cores() {
        let (t, cores) = parse_stat(STAT_2CORE).unwrap();
        assert_eq!(cores, 2);
        let total = 2713768 + 83690 + 258160 + 1790757 + 14124 + 8689 + 105941;
        assert_eq!(t.total, total);
        assert_eq!(t.idle, 1790757 + 14124);
    }

    #[test]
    fn stat_seven_fields() {
        let (t, cores) = parse_stat(STAT_7FIELDS).unwrap();
        assert_eq!(cores, 1);
        assert_eq!(t.total, 1000 + 20 + 300 + 5000 + 80 + 4 + 6);
        assert_eq!(t.idle, 5080);
    }

    #[test]
    fn stat_without_cpu_line() {
        assert_eq!(parse_stat("cpu0 1 2 3 4 5 6 7 8\nintr 1\n"), None);
        assert_eq!(parse_stat("cpu  1 2 x 4\n"), None);
        assert_eq!(parse_stat("cpu  1 2 3\n"), None);
    }

    #[test]
    fn cpu_usage_between_samples() {
        let prev = CpuTimes {
            total: 1000,
            idle: 800,
        };
        let now = CpuTimes {
            total: 1200,
            idle: 950,
        };
        // 200 jiffies, 150 idle → 25 % busy.
        assert_eq!(cpu_usage(prev, now), Some(25.0));
        assert_eq!(cpu_usage(prev, prev), None);
        assert_eq!(cpu_usage(now, prev), None);
        // idle going backwards (iowait quirk) saturates to 100 % busy, not garbage.
        let odd = CpuTimes {
            total: 1100,
            idle: 700,
        };
        assert_eq!(cpu_usage(prev, odd), Some(100.0));
        // idle advancing more than total clamps to 0 %.
        let odd = CpuTimes {
            total: 1010,
            idle: 900,
        };
        assert_eq!(cpu_usage(prev, odd), Some(0.0));
        // From two real /proc/stat samples.
        let (a, _) = parse_stat("cpu  100 0 100 700 100 0 0 0 0 0\n").unwrap();
        let (b, _) = parse_stat("cpu  150 0 150 1000 100 0 0 0 0 0\n").unwrap();
        let u = cpu_usage(a, b).unwrap();
        assert!((u - 25.0).abs() < 1e-9, "{u}");
    }

    #[test]
    fn loadavg_and_uptime() {
        assert_eq!(
            parse_loadavg("2.15 1.54 1.24 3/97 26193\n"),
            Some([2.15, 1.54, 1.24])
        );
        assert_eq!(
            parse_loadavg("0.00 0.01 0.05 1/60 1234"),
            Some([0.0, 0.01, 0.05])
        );
        assert_eq!(parse_loadavg("0.1 0.2"), None);
        assert_eq!(parse_loadavg("nan 0.2 0.3 1/1 1"), None);
        assert_eq!(parse_uptime("24748.98 17907.57\n"), Some(24748.98));
        assert_eq!(parse_uptime("350735.47 234388.90"), Some(350735.47));
        assert_eq!(parse_uptime("-1 2"), None);
        assert_eq!(parse_uptime("inf 2"), None);
    }

    const MEMINFO_MODERN: &str = "\
MemTotal:         249056 kB
MemFree:          120944 kB
MemAvailable:     110688 kB
Buffers:            2212 kB
Cached:            21848 kB
SwapCached:            0 kB
Active:            11368 kB
Inactive:          22112 kB
SwapTotal:        131068 kB
SwapFree:         131000 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    // A 3.10 kernel: no MemAvailable.
    const MEMINFO_OLD: &str = "\
MemTotal:          61348 kB
MemFree:           21816 kB
Buffers:            2356 kB
Cached:            10556 kB
SwapCached:            0 kB
SwapTotal:             0 kB
SwapFree:              0 kB
";

    #[test]
    fn meminfo_modern() {
        let m = parse_meminfo(MEMINFO_MODERN).unwrap();
        assert_eq!(
            m,
            MemInfo {
                total: 249056 * 1024,
                free: 120944 * 1024,
                available: 110688 * 1024,
                buffers: 2212 * 1024,
                cached: 21848 * 1024,
                swap_total: 131068 * 1024,
                swap_free: 131000 * 1024,
            }
        );
        assert_eq!(m.used(), (249056 - 110688) * 1024);
        let p = m.usage_percent();
        assert!((p - (249056.0 - 110688.0) / 249056.0 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn meminfo_without_mem_available() {
        let m = parse_meminfo(MEMINFO_OLD).unwrap();
        assert_eq!(m.total, 61348 * 1024);
        assert_eq!(m.available, (21816 + 2356 + 10556) * 1024);
        assert_eq!(m.swap_total, 0);
        // The estimate never exceeds total.
        let m = parse_meminfo("MemTotal: 100 kB\nMemFree: 80 kB\nCached: 50 kB\n").unwrap();
        assert_eq!(m.available, 100 * 1024);
        assert_eq!(m.used(), 0);
        assert_eq!(parse_meminfo("MemFree: 100 kB\n"), None);
        assert_eq!(MemInfo::default().usage_percent(), 0.0);
    }

    const NET_DEV_MODERN: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1965436576 3651724    0    0    0     0          0         0 1965436576 3651724    0    0    0     0       0          0
  eth0: 802608752   39846    1    2    0     0          0         0  2695890   33655    3    4    0     0       0          0
br-lan: 123 4 0 0 0 0 0 7 567 8 0 0 0 0 0 0
   wg0: garbage line
";

    // Old kernels printed "%6s:%8lu": a big counter runs into the colon.
    const NET_DEV_OLD: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    5230      50    0    0    0     0          0         0     5230      50    0    0    0     0       0          0
  eth0:4294967295 12345678    0    9    0     0          0       100 3000000000  987654    0    0    0     0       0          0
";

    #[test]
    fn net_dev_modern() {
        let devs = parse_net_dev(NET_DEV_MODERN);
        let names: Vec<&str> = devs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lo", "eth0", "br-lan"]);
        assert_eq!(
            devs[1],
            NetDev {
                name: "eth0".into(),
                rx_bytes: 802608752,
                rx_packets: 39846,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 2695890,
                tx_packets: 33655,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
        assert_eq!(devs[2].tx_bytes, 567);
        assert_eq!(devs[2].tx_packets, 8);
    }

    #[test]
    fn net_dev_no_space_after_colon() {
        let devs = parse_net_dev(NET_DEV_OLD);
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[1].name, "eth0");
        assert_eq!(devs[1].rx_bytes, 4294967295);
        assert_eq!(devs[1].rx_packets, 12345678);
        assert_eq!(devs[1].rx_dropped, 9);
        assert_eq!(devs[1].tx_bytes, 3000000000);
        // The first two lines are always the header, whatever they hold.
        assert!(parse_net_dev("a: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n").is_empty());
    }

    #[test]
    fn self_stat_with_odd_comm() {
        let s = "4242 (my ) (odd prog) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                 150 75 0 0 20 0 7 0 123456 12345678 2048 18446744073709551615 \
                 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let st = parse_self_stat(s).unwrap();
        assert_eq!(
            st,
            SelfStat {
                cpu_ticks: 225,
                rss_pages: 2048,
                threads: 7
            }
        );
        // Real line of `cat` on this kind of kernel.
        let s = "26196 (cat) R 26190 26190 24920 0 -1 4194304 103 0 0 0 0 0 0 0 20 0 1 0 \
                 2474899 3133440 416 18446744073709551615 94322518609920 0 0\n";
        assert_eq!(
            parse_self_stat(s),
            Some(SelfStat {
                cpu_ticks: 0,
                rss_pages: 416,
                threads: 1
            })
        );
        // Truncated before rss.
        assert_eq!(
            parse_self_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1"),
            None
        );
        assert_eq!(parse_self_stat("no parenthesis 1 2 3"), None);
    }

    #[test]
    fn os_release_variants() {
        let debian = "\
PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"
NAME=\"Debian GNU/Linux\"
VERSION_ID=\"12\"
VERSION=\"12 (bookworm)\"
ID=debian
";
        assert_eq!(
            parse_os_release(debian).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let unquoted = "# comment PRETTY_NAME=nope\n\nNAME=Alpine\nVERSION=3.20.0\nID=alpine\n";
        assert_eq!(parse_os_release(unquoted).as_deref(), Some("Alpine 3.20.0"));
        let single = "NAME='OpenWrt'\nVERSION='23.05.3'\nPRETTY_NAME='OpenWrt 23.05.3'\n";
        assert_eq!(parse_os_release(single).as_deref(), Some("OpenWrt 23.05.3"));
        let escaped = "PRETTY_NAME=\"Say \\\"hi\\\" \\$HOME\"\n";
        assert_eq!(
            parse_os_release(escaped).as_deref(),
            Some("Say \"hi\" $HOME")
        );
        let empty_pretty = "PRETTY_NAME=\"\"\nNAME=Foo\n";
        assert_eq!(parse_os_release(empty_pretty).as_deref(), Some("Foo"));
        assert_eq!(parse_os_release("ID=foo\n# NAME=x\n"), None);
    }

    #[test]
    fn openwrt_release_single_quotes() {
        let s = "\
DISTRIB_ID='OpenWrt'
DISTRIB_RELEASE='23.05.3'
DISTRIB_REVISION='r23809-234f1a2efa'
DISTRIB_TARGET='ramips/mt7621'
DISTRIB_ARCH='mipsel_24kc'
DISTRIB_DESCRIPTION='OpenWrt 23.05.3 r23809-234f1a2efa'
DISTRIB_TAINTS=''
";
        assert_eq!(
            parse_openwrt_release(s).as_deref(),
            Some("OpenWrt 23.05.3 r23809-234f1a2efa")
        );
        let dq = "DISTRIB_DESCRIPTION=\"OpenWrt 19.07.10 r11427-9ce6aa9d8d\"\n";
        assert_eq!(
            parse_openwrt_release(dq).as_deref(),
            Some("OpenWrt 19.07.10 r11427-9ce6aa9d8d")
        );
        let no_desc = "DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='SNAPSHOT'\n";
        assert_eq!(
            parse_openwrt_release(no_desc).as_deref(),
            Some("OpenWrt SNAPSHOT")
        );
        assert_eq!(parse_openwrt_release("FOO=bar\n"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let long_digits = "9".repeat(500);
        let odd: Vec<String> = vec![
            String::new(),
            "\n\n\n".into(),
            "cpu".into(),
            "cpu ".into(),
            "cpu  18446744073709551615 18446744073709551615 18446744073709551615 \
             18446744073709551615 18446744073709551615 1 1 1"
                .into(),
            ":".into(),
            "::::".into(),
            ")".into(),
            "((((".into(),
            ") ) ) )".into(),
            "=".into(),
            "\"".into(),
            "'".into(),
            "PRETTY_NAME=\"\\".into(),
            "MemTotal:".into(),
            "MemTotal: kB".into(),
            "MemTotal: 18446744073709551615 kB\nMemFree: 18446744073709551615 kB".into(),
            "a\nb\nc:".into(),
            "a\nb\n:1 2 3".into(),
            "\u{0}\u{ffff}é😀".into(),
            "-1 -2 -3".into(),
            long_digits,
            "x ".repeat(1000),
        ];
        for s in &odd {
            let _ = parse_stat(s);
            let _ = parse_loadavg(s);
            let _ = parse_uptime(s);
            if let Some(m) = parse_meminfo(s) {
                let _ = (m.used(), m.usage_percent());
            }
            let _ = parse_net_dev(s);
            let _ = parse_self_stat(s);
            let _ = parse_os_release(s);
            let _ = parse_openwrt_release(s);
        }
        // Truncations at every char boundary of the sample files.
        for sample in [
            STAT_2CORE,
            MEMINFO_MODERN,
            NET_DEV_MODERN,
            NET_DEV_OLD,
            "1 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        ] {
            for (i, _) in sample.char_indices() {
                let s = &sample[..i];
                let _ = parse_stat(s);
                let _ = parse_meminfo(s);
                let _ = parse_net_dev(s);
                let _ = parse_self_stat(s);
                let _ = parse_os_release(s);
            }
        }
        let big = CpuTimes {
            total: u64::MAX,
            idle: u64::MAX,
        };
        let _ = cpu_usage(CpuTimes::default(), big);
        let _ = cpu_usage(big, CpuTimes::default());
    }

    #[test]
    fn disk_usage_root_tmp_and_missing() {
        for p in ["/", "/tmp"] {
            let d = disk_usage(Path::new(p)).unwrap();
            assert!(d.total > 0, "{p}: {d:?}");
            assert!(d.free <= d.total && d.available <= d.total, "{p}: {d:?}");
            let pct = d.usage_percent();
            assert!((0.0..=100.0).contains(&pct), "{p}: {pct}");
        }
        let err = disk_usage(Path::new("/definitely/not/here/ipv6wgm")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = disk_usage(Path::new("/tmp\0x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let d = DiskUsage {
            total: 1000,
            free: 200,
            available: 100,
        };
        assert_eq!(d.used(), 800);
        assert!((d.usage_percent() - 800.0 / 900.0 * 100.0).abs() < 1e-9);
        assert_eq!(DiskUsage::default().usage_percent(), 0.0);
    }

    #[test]
    fn real_proc_files() {
        let (cpu, cores) = read_stat().expect("/proc/stat");
        assert!(cores >= 1);
        assert!(cpu.total > 0 && cpu.idle <= cpu.total);
        let m = read_meminfo().expect("/proc/meminfo");
        assert!(m.total > 0 && m.available <= m.total, "{m:?}");
        let p = m.usage_percent();
        assert!((0.0..=100.0).contains(&p));
        assert!(read_loadavg().is_some());
        assert!(read_uptime().expect("/proc/uptime") > 0.0);
        let devs = read_net_dev();
        assert!(devs.iter().any(|d| d.name == "lo"), "{devs:?}");
        let me = read_self_stat().expect("/proc/self/stat");
        assert!(me.threads >= 1 && me.rss_pages > 0, "{me:?}");
        assert!(clock_ticks() > 0);
        let ps = page_size();
        assert!(ps >= 4096 && ps.is_power_of_two());
        // Not every container has an os-release; it must not panic either way.
        let _ = read_os_name();
    }
}
