//! Inhibition (inhibit/inhibit.go): an alert matching a rule's target matchers is muted while
//! a firing alert matches its source matchers with equal values for every `equal` label (a
//! label missing on both sides counts as equal). An alert matching both sides is not muted by
//! another alert that also matches both.

use super::alert::{Alert, Nanos};
use crate::config::alertmanager::InhibitRule;
use crate::config::alertmanager::matchers::all_match;
use crate::model::Labels;
use std::collections::HashMap;

/// One rule's firing sources: equal-label values → (fingerprint, also matches the target side).
type Sources = HashMap<Vec<Option<String>>, Vec<(u64, bool)>>;

/// The firing source alerts of every rule, indexed by their `equal` label values, taken once
/// so that checking many alerts costs one lookup per rule each.
pub struct Inhibitor<'a> {
    rules: &'a [InhibitRule],
    sources: Vec<Sources>,
}

impl<'a> Inhibitor<'a> {
    pub fn new<'b>(
        rules: &'a [InhibitRule],
        alerts: impl Iterator<Item = &'b Alert>,
        now: Nanos,
    ) -> Inhibitor<'a> {
        let mut sources: Vec<Sources> = vec![HashMap::new(); rules.len()];
        for a in alerts {
            if a.resolved_at(now) {
                continue;
            }
            for (rule, index) in rules.iter().zip(sources.iter_mut()) {
                if all_match(&rule.source_matchers, &a.labels) {
                    index
                        .entry(equal_values(rule, &a.labels))
                        .or_default()
                        .push((a.fingerprint(), all_match(&rule.target_matchers, &a.labels)));
                }
            }
        }
        Inhibitor { rules, sources }
    }

    /// The fingerprint of an alert that inhibits `labels`, if any.
    pub fn inhibited_by(&self, labels: &Labels) -> Option<u64> {
        for (rule, index) in self.rules.iter().zip(&self.sources) {
            if index.is_empty() || !all_match(&rule.target_matchers, labels) {
                continue;
            }
            let two_sided = all_match(&rule.source_matchers, labels);
            let Some(candidates) = index.get(&equal_values(rule, labels)) else { continue };
            if let Some((fp, _)) = candidates.iter().find(|(_, both)| !(two_sided && *both)) {
                return Some(*fp);
            }
        }
        None
    }
}

fn equal_values(rule: &InhibitRule, labels: &Labels) -> Vec<Option<String>> {
    rule.equal.iter().map(|n| labels.get(n).map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alertmanager::matchers::parse_matchers;

    fn alert(pairs: &[(&str, &str)]) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Labels::new(),
            starts_at: 1,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: 1,
            timeout: false,
        }
    }

    #[test]
    fn critical_inhibits_warning_on_the_same_cluster() {
        let rules = vec![InhibitRule {
            source_matchers: parse_matchers("severity=critical").unwrap(),
            target_matchers: parse_matchers("severity=warning").unwrap(),
            equal: vec!["cluster".into(), "absent".into()],
        }];
        let alerts = [alert(&[("severity", "critical"), ("cluster", "a")])];
        let warn_a = Labels::from_pairs([("severity", "warning"), ("cluster", "a")]);
        let warn_b = Labels::from_pairs([("severity", "warning"), ("cluster", "b")]);
        let inhibitor = Inhibitor::new(&rules, alerts.iter(), 10);
        assert_eq!(inhibitor.inhibited_by(&warn_a), Some(alerts[0].fingerprint()));
        assert_eq!(inhibitor.inhibited_by(&warn_b), None);
        let mut resolved = alerts[0].clone();
        resolved.ends_at = 5;
        assert_eq!(Inhibitor::new(&rules, std::iter::once(&resolved), 10).inhibited_by(&warn_a), None);
    }

    #[test]
    fn alerts_matching_both_sides_do_not_inhibit_each_other() {
        let rules = vec![InhibitRule {
            source_matchers: parse_matchers("team=x").unwrap(),
            target_matchers: parse_matchers("team=x").unwrap(),
            equal: vec![],
        }];
        let alerts = [alert(&[("team", "x"), ("n", "1")]), alert(&[("team", "x"), ("n", "2")])];
        assert_eq!(Inhibitor::new(&rules, alerts.iter(), 10).inhibited_by(&alerts[0].labels), None);
    }
}
