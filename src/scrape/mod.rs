//! Scraping as Prometheus does it: the scrape configuration (`config`), relabelling
//! (`relabel`), targets from static and file-based discovery (`target`), and the per-target
//! loop (`scrape_loop`) that fetches (`fetch`), parses and hands samples to a `SampleSink`
//! (`sink`; the store's is `store_sink`).

pub mod error;
pub mod fetch;
pub mod manager;
pub mod relabel;
pub mod scrape_loop;
pub mod sink;
pub mod store_sink;
pub mod target;
