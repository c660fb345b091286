//! CPU time and peak memory of a process (and its children), from `/proc`.

use std::time::Duration;

use anyhow::Context;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ): `getconf CLK_TCK`, else 100.
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&hz| hz > 0)
        .unwrap_or(100)
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces and parens):
/// index 0 is the state, 1 the parent pid, 11 utime, 12 stime.
fn stat_fields(pid: u32) -> anyhow::Result<Vec<u64>> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}"))?;
    // The state is a letter; keep the numbers at their positions.
    Ok(rest
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect())
}

fn own_ticks(pid: u32) -> anyhow::Result<u64> {
    let fields = stat_fields(pid)?;
    let field = |i: usize| fields.get(i).copied().context("short /proc stat");
    Ok(field(11)? + field(12)?)
}

/// User + system CPU ticks of `pid` and of its live children (nginx's workers).
pub fn tree_ticks(pid: u32) -> anyhow::Result<u64> {
    let mut total = own_ticks(pid)?;
    for entry in std::fs::read_dir("/proc")? {
        let Some(child) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between listing and reading: skip it.
        let Ok(fields) = stat_fields(child) else {
            continue;
        };
        if fields.get(1).copied() == Some(u64::from(pid)) {
            total += own_ticks(child).unwrap_or(0);
        }
    }
    Ok(total)
}

/// CPU time used between two `tree_ticks` readings.
pub fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// Peak resident set size (VmHWM) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(tree_ticks(pid).is_ok());
        assert!(peak_rss_kib(pid).unwrap() > 0);
    }
}
