//! Scraping as Prometheus does it: the scrape configuration (`config`), relabelling
//! (`relabel`), targets from static and file-based discovery (`target`), and the per-target
//! loop that fetches, parses and hands samples to a `SampleSink` (`scrape_loop`).

pub mod manager;
pub mod relabel;
pub mod scrape_loop;
pub mod store_sink;
pub mod target;
