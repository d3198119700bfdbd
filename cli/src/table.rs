//! Statistics as a table, one column per side.

use std::fmt::Write;
use std::time::Duration;
use tern::connection::Stats as CoreStats;

/// One column: a title and a connection's counters.
pub struct Column<'a> {
    pub title: &'a str,
    pub stats: &'a CoreStats,
    pub uptime: Duration,
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn bytes(n: u64) -> String {
    if n >= 10 * 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 10 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The statistics table.
pub fn render(cols: &[Column<'_>]) -> String {
    type Row = (&'static str, fn(&CoreStats, Duration) -> String);
    let rows: &[Row] = &[
        ("packets sent", |s, _| s.tx_packets.to_string()),
        ("packets received", |s, _| s.rx_packets.to_string()),
        ("bytes sent", |s, _| bytes(s.tx_bytes)),
        ("bytes received", |s, _| bytes(s.rx_bytes)),
        ("messages sent", |s, _| s.tx_messages.to_string()),
        ("messages received", |s, _| s.rx_messages.to_string()),
        ("datagrams sent", |s, _| s.tx_datagrams.to_string()),
        ("datagrams received", |s, _| s.rx_datagrams.to_string()),
        ("retransmissions", |s, _| s.retransmissions.to_string()),
        ("packets lost", |s, _| s.lost_packets.to_string()),
        ("probe timeouts", |s, _| s.probe_timeouts.to_string()),
        ("packets dropped", |s, _| s.dropped.total().to_string()),
        ("smoothed rtt", |s, _| ms(s.smoothed_rtt)),
        ("min rtt", |s, _| ms(s.min_rtt)),
        ("handshake", |s, _| {
            s.handshake_duration.map_or("-".into(), ms)
        }),
        ("uptime", |_, u| ms(u)),
    ];
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let cells: Vec<Vec<String>> = cols
        .iter()
        .map(|c| rows.iter().map(|r| (r.1)(c.stats, c.uptime)).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .zip(&cells)
        .map(|(c, cs)| {
            cs.iter()
                .map(String::len)
                .chain([c.title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "  {:label_w$}", "");
    for (c, w) in cols.iter().zip(&widths) {
        let _ = write!(out, "  {:>w$}", c.title);
    }
    out.push('\n');
    let _ = write!(out, "  {}", "-".repeat(label_w));
    for w in &widths {
        let _ = write!(out, "  {}", "-".repeat(*w));
    }
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(out, "  {:label_w$}", r.0);
        for (cs, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {:>w$}", cs[i]);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let s = CoreStats {
            tx_packets: 12,
            tx_bytes: 20 * 1024,
            ..CoreStats::default()
        };
        let t = render(&[
            Column {
                title: "client",
                stats: &s,
                uptime: Duration::from_millis(5),
            },
            Column {
                title: "server",
                stats: &CoreStats::default(),
                uptime: Duration::ZERO,
            },
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].trim_start().starts_with("client") && lines[0].ends_with("server"),
            "{t}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("packets sent") && l.contains("12"))
        );
        assert!(t.contains("20.0 KiB"));
        let len = lines[0].len();
        assert!(lines.iter().all(|l| l.len() == len), "{t}");
    }
}
