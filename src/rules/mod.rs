//! Recording and alerting rules as Prometheus 2.42 evaluates them.

pub mod notifier;
pub mod template;
