//! The notification log (nflog/nflog.go): per group and receiver integration, which alerts
//! were firing and resolved in the last notification and when it went out, so a flush sends
//! only when something changed or the repeat interval has passed (`DedupStage.needsUpdate`).
//! HA peers share it: an entry another instance logged stops this one from sending again.

use super::alert::Nanos;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `groupKey:receiver/integration/index`.
    pub key: String,
    pub timestamp: Nanos,
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub expires_at: Nanos,
}

/// `receiverKey` and `stateKey`.
pub fn state_key(group_key: &str, receiver: &str, integration: &str, index: usize) -> String {
    format!("{group_key}:{receiver}/{integration}/{index}")
}

#[derive(Default)]
pub struct NotificationLog {
    entries: HashMap<String, Entry>,
}

impl NotificationLog {
    pub fn from_list(list: Vec<Entry>) -> NotificationLog {
        NotificationLog { entries: list.into_iter().map(|e| (e.key.clone(), e)).collect() }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn list(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Logs a notification; entries live twice the repeat interval (`Log` with its retention).
    pub fn log(
        &mut self,
        key: String,
        firing: BTreeSet<u64>,
        resolved: BTreeSet<u64>,
        now: Nanos,
        retention: Nanos,
    ) -> Entry {
        let e = Entry {
            key: key.clone(),
            timestamp: now,
            firing,
            resolved,
            expires_at: now.saturating_add(retention),
        };
        self.entries.insert(key, e.clone());
        e
    }

    /// A peer's entry: the later notification wins.
    pub fn merge(&mut self, e: Entry) -> bool {
        match self.entries.get(&e.key) {
            Some(have) if have.timestamp >= e.timestamp => false,
            _ => {
                self.entries.insert(e.key.clone(), e);
                true
            }
        }
    }

    /// Drops expired entries; returns how many.
    pub fn gc(&mut self, now: Nanos) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        before - self.entries.len()
    }
}

/// `DedupStage.needsUpdate`.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_interval: Nanos,
    now: Nanos,
) -> bool {
    let Some(entry) = entry else { return !firing.is_empty() };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    // All resolved: notify (even without send_resolved, to clear the log's firing set) only if
    // the last notification told the receiver about firing alerts.
    if firing.is_empty() {
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.timestamp < now.saturating_sub(repeat_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn dedup_follows_alertmanager() {
        let none = set(&[]);
        assert!(!needs_update(None, &none, &set(&[1]), true, 100, 1_000), "nothing firing, never notified");
        assert!(needs_update(None, &set(&[1]), &none, true, 100, 1_000));
        let e = Entry {
            key: "k".into(),
            timestamp: 950,
            firing: set(&[1]),
            resolved: none.clone(),
            expires_at: 2_000,
        };
        assert!(!needs_update(Some(&e), &set(&[1]), &none, true, 100, 1_000), "unchanged within repeat");
        assert!(needs_update(Some(&e), &set(&[1]), &none, true, 100, 1_051), "repeat interval passed");
        assert!(needs_update(Some(&e), &set(&[1, 2]), &none, true, 100, 1_000), "a new firing alert");
        assert!(needs_update(Some(&e), &none, &set(&[1]), false, 100, 1_000), "all resolved clears the log");
        assert!(
            !needs_update(Some(&e), &set(&[1]), &set(&[3]), false, 100, 1_000),
            "resolved without send_resolved"
        );
        assert!(needs_update(Some(&e), &set(&[1]), &set(&[3]), true, 100, 1_000));
    }
}
