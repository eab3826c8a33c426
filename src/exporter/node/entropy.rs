//! `node_entropy_available_bits` and `node_entropy_pool_size_bits`.

use super::{CollectError, number, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let dir = config.proc_path.join("sys/kernel/random");
    let available = dir.join("entropy_avail");
    let pool = dir.join("poolsize");
    Ok(vec![
        MetricFamily::gauge("node_entropy_available_bits", "Bits of available entropy.")
            .with_value(number(&available, &read(&available)?)?),
        MetricFamily::gauge("node_entropy_pool_size_bits", "Bits of entropy pool.")
            .with_value(number(&pool, &read(&pool)?)?),
    ])
}
