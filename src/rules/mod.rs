//! Recording and alerting rules as Prometheus 2.42 evaluates them: rule files and groups,
//! the evaluation schedule, alert state (pending, firing, resolved, `keep_firing_for`), the
//! `ALERTS`/`ALERTS_FOR_STATE` series, and the Go templates of alert labels and annotations
//! ([`template`]), with Prometheus's observable behaviour (outputs, error texts) kept exact.

pub mod template;
