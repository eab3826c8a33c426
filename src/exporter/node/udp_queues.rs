//! `node_udp_queues{ip,queue}`: bytes queued in UDP sockets, summed from /proc/net/udp{,6}.

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

fn queues(text: &str) -> (f64, f64) {
    let (mut tx, mut rx) = (0.0, 0.0);
    for line in text.lines().skip(1) {
        let Some(field) = line.split_whitespace().nth(4) else { continue };
        let Some((t, r)) = field.split_once(':') else { continue };
        tx += u64::from_str_radix(t, 16).unwrap_or(0) as f64;
        rx += u64::from_str_radix(r, 16).unwrap_or(0) as f64;
    }
    (tx, rx)
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let mut f = MetricFamily::gauge(
        "node_udp_queues",
        "Number of allocated memory in the kernel for UDP datagrams in bytes.",
    );
    let (tx, rx) = queues(&read(config.proc_path.join("net/udp"))?);
    f.add(&[("ip", "v4"), ("queue", "rx")], rx);
    f.add(&[("ip", "v4"), ("queue", "tx")], tx);
    if let Ok(text) = read(config.proc_path.join("net/udp6")) {
        let (tx, rx) = queues(&text);
        f.add(&[("ip", "v6"), ("queue", "rx")], rx);
        f.add(&[("ip", "v6"), ("queue", "tx")], tx);
    }
    Ok(vec![f])
}
