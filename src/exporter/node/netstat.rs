//! Untyped `node_netstat_<Proto>_<Field>` from /proc/net/netstat, /proc/net/snmp and
//! /proc/net/snmp6, for the fields matching `netstat_fields` (node_exporter's default list).

use super::{CollectError, number, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::collections::BTreeMap;
use std::path::Path;

/// Header/value line pairs: `TcpExt: A B` then `TcpExt: 1 2`.
fn paired_lines(path: &Path, text: &str, into: &mut BTreeMap<String, f64>) -> Result<(), CollectError> {
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [header, values] = pair else { continue };
        let (Some((proto, names)), Some((_, nums))) = (header.split_once(':'), values.split_once(':')) else {
            continue;
        };
        for (name, value) in names.split_whitespace().zip(nums.split_whitespace()) {
            into.insert(format!("{proto}_{name}"), number(path, value)?);
        }
    }
    Ok(())
}

/// snmp6 lines are `Ip6InReceives 12`: the protocol ends at the first '6'.
fn snmp6(path: &Path, text: &str, into: &mut BTreeMap<String, f64>) -> Result<(), CollectError> {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else { continue };
        let Some(six) = key.find('6') else { continue };
        into.insert(format!("{}_{}", &key[..=six], &key[six + 1..]), number(path, value)?);
    }
    Ok(())
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let mut values = BTreeMap::new();
    for file in ["net/netstat", "net/snmp"] {
        let path = config.proc_path.join(file);
        paired_lines(&path, &read(&path)?, &mut values)?;
    }
    let path6 = config.proc_path.join("net/snmp6");
    if let Ok(text) = read(&path6) {
        snmp6(&path6, &text, &mut values)?;
    }
    Ok(values
        .into_iter()
        .filter(|(key, _)| config.netstat_fields.is_match(key))
        .map(|(key, value)| {
            let (proto, field) = key.split_once('_').unwrap_or((&key, ""));
            MetricFamily::untyped(format!("node_netstat_{key}"), format!("Statistic {proto}{field}."))
                .with_value(value)
        })
        .collect())
}
