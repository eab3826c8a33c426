//! Silences as Alertmanager 0.25 keeps them (silence/silence.go): matchers and an active range;
//! `Set` updates in place when it may, else expires the old one and makes a new one; expired
//! silences are kept for the retention, then dropped. Which silences mute a label set.

use super::alert::Nanos;
use crate::model::labels::is_valid_label_name;
use crate::model::{Labels, MatchOp, Matcher};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    fn op(&self) -> MatchOp {
        match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }

    pub fn to_matcher(&self) -> Result<Matcher, String> {
        Matcher::new(self.op(), &self.name, &self.value)
            .map_err(|e| format!("invalid regular expression {:?}: {}", e.value, e.message))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Nanos,
    pub ends_at: Nanos,
    pub updated_at: Nanos,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    pub fn state(&self, now: Nanos) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
}

/// `validateSilence`.
fn validate(s: &Silence) -> Result<(), String> {
    if s.id.is_empty() {
        return Err("ID missing".to_string());
    }
    if s.matchers.is_empty() {
        return Err("at least one matcher required".to_string());
    }
    let mut all_match_empty = true;
    for (i, m) in s.matchers.iter().enumerate() {
        if !is_valid_label_name(&m.name) {
            return Err(format!("invalid label matcher {i}: invalid label name {:?}", m.name));
        }
        let matcher = m.to_matcher().map_err(|e| format!("invalid label matcher {i}: {e}"))?;
        all_match_empty &= matcher.matches_empty();
    }
    if all_match_empty {
        return Err("at least one matcher must not match the empty string".to_string());
    }
    if s.starts_at == 0 {
        return Err("invalid zero start timestamp".to_string());
    }
    if s.ends_at == 0 {
        return Err("invalid zero end timestamp".to_string());
    }
    if s.ends_at < s.starts_at {
        return Err("end time must not be before start time".to_string());
    }
    Ok(())
}

/// `canUpdate`: the same matchers, and times changed only as the current state allows.
fn can_update(prev: &Silence, next: &Silence, now: Nanos) -> bool {
    if prev.matchers != next.matchers {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => next.starts_at == prev.starts_at && next.ends_at >= now,
        SilenceState::Pending => next.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// Every silence, with the compiled matchers of each.
#[derive(Default)]
pub struct Silences {
    by_id: HashMap<String, (Silence, Vec<Matcher>)>,
}

impl Silences {
    /// The silences of the state file; one that is not valid (a hand-edited file) is left out
    /// with an ERROR line rather than kept with fewer matchers, which would mute more.
    pub fn from_list(list: Vec<Silence>) -> Silences {
        let mut s = Silences::default();
        for sil in list {
            if let Err(e) = validate(&sil) {
                tracing::error!(silence = %sil.id, error = %e, "silence in the state file is not valid; left out");
                continue;
            }
            s.put(sil);
        }
        s
    }

    /// Stores a silence already validated, so every matcher compiles.
    fn put(&mut self, sil: Silence) {
        let matchers = sil.matchers.iter().filter_map(|m| m.to_matcher().ok()).collect();
        self.by_id.insert(sil.id.clone(), (sil, matchers));
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id).map(|(s, _)| s)
    }

    pub fn list(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values().map(|(s, _)| s)
    }

    /// `Silences.Set`: returns the id the silence now has and every silence that changed (for
    /// the state file and the peers).
    pub fn set(&mut self, mut sil: Silence, now: Nanos) -> Result<(String, Vec<Silence>), SilenceError> {
        let mut changed = Vec::new();
        if !sil.id.is_empty() {
            let Some(prev) = self.get(&sil.id).cloned() else { return Err(SilenceError::NotFound) };
            if can_update(&prev, &sil, now) {
                sil.updated_at = now;
                validate(&sil).map_err(SilenceError::Invalid)?;
                self.put(sil.clone());
                return Ok((sil.id.clone(), vec![sil]));
            }
            if prev.state(now) != SilenceState::Expired {
                // Validate the replacement before touching the one it replaces.
                let mut probe = sil.clone();
                probe.starts_at = probe.starts_at.max(now);
                validate(&probe).map_err(SilenceError::Invalid)?;
                changed.push(self.expire(&prev.id, now)?);
            }
        }
        sil.id = new_id();
        sil.starts_at = sil.starts_at.max(now);
        sil.updated_at = now;
        validate(&sil).map_err(SilenceError::Invalid)?;
        self.put(sil.clone());
        changed.push(sil.clone());
        Ok((sil.id, changed))
    }

    /// `Silences.Expire`: an active silence ends now, a pending one starts and ends now.
    pub fn expire(&mut self, id: &str, now: Nanos) -> Result<Silence, SilenceError> {
        let Some(mut sil) = self.get(id).cloned() else { return Err(SilenceError::NotFound) };
        match sil.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => sil.ends_at = now,
            SilenceState::Pending => {
                sil.starts_at = now;
                sil.ends_at = now;
            }
        }
        sil.updated_at = now;
        self.put(sil.clone());
        Ok(sil)
    }

    /// A peer's copy: the one updated last wins. An invalid one is refused (WARN) rather than
    /// stored with the matchers that compile, which would mute more than the peer meant.
    pub fn merge(&mut self, sil: Silence) -> bool {
        if let Err(e) = validate(&sil) {
            tracing::warn!(silence = %sil.id, error = %e, "silence from a peer is not valid; ignored");
            return false;
        }
        match self.get(&sil.id) {
            Some(have) if have.updated_at >= sil.updated_at => false,
            _ => {
                self.put(sil);
                true
            }
        }
    }

    /// Drops silences expired longer ago than `retention`; returns how many.
    pub fn gc(&mut self, now: Nanos, retention: std::time::Duration) -> usize {
        let horizon = now.saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
        let before = self.by_id.len();
        self.by_id.retain(|_, (s, _)| s.ends_at > horizon);
        before - self.by_id.len()
    }

    /// The ids of the active silences that mute `labels`, sorted.
    pub fn muting(&self, labels: &Labels, now: Nanos) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .values()
            .filter(|(s, ms)| {
                s.state(now) == SilenceState::Active
                    && ms.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
            })
            .map(|(s, _)| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub fn counts(&self, now: Nanos) -> [(SilenceState, usize); 3] {
        let mut c = [(SilenceState::Active, 0), (SilenceState::Pending, 0), (SilenceState::Expired, 0)];
        for (s, _) in self.by_id.values() {
            let i = match s.state(now) {
                SilenceState::Active => 0,
                SilenceState::Pending => 1,
                SilenceState::Expired => 2,
            };
            c[i].1 += 1;
        }
        c
    }
}

/// A random (version 4) UUID, as Alertmanager's silence ids are.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&fastrand::u64(..).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A silence's place in `GET /silences`: active by end, pending by start, expired latest first.
pub fn api_order(a: &Silence, b: &Silence, now: Nanos) -> std::cmp::Ordering {
    let (sa, sb) = (a.state(now), b.state(now));
    if sa != sb {
        return sa.cmp(&sb);
    }
    match sa {
        SilenceState::Active => a.ends_at.cmp(&b.ends_at),
        SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
        SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn silence(matchers: &[(&str, &str, bool)], starts: Nanos, ends: Nanos) -> Silence {
        Silence {
            id: String::new(),
            matchers: matchers
                .iter()
                .map(|(n, v, re)| SilenceMatcher {
                    name: n.to_string(),
                    value: v.to_string(),
                    is_regex: *re,
                    is_equal: true,
                })
                .collect(),
            starts_at: starts,
            ends_at: ends,
            updated_at: 0,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn set_updates_in_place_or_replaces() {
        let mut s = Silences::default();
        let now = 100 * S;
        let (id, _) = s.set(silence(&[("job", "a", false)], now, now + 60 * S), now).unwrap();
        // Longer end, same matchers: the same id.
        let mut longer = s.get(&id).unwrap().clone();
        longer.ends_at = now + 120 * S;
        let (same, changed) = s.set(longer, now + S).unwrap();
        assert_eq!((same.as_str(), changed.len()), (id.as_str(), 1));
        // Other matchers: the old one expires, a new id.
        let mut other = s.get(&id).unwrap().clone();
        other.matchers[0].value = "b".into();
        let (new, changed) = s.set(other, now + 2 * S).unwrap();
        assert_ne!(new, id);
        assert_eq!(changed.len(), 2);
        assert_eq!(s.get(&id).unwrap().state(now + 2 * S), SilenceState::Expired);
        assert_eq!(s.expire(&id, now + 3 * S).unwrap_err(), SilenceError::AlreadyExpired(id.clone()));
        assert_eq!(
            s.set(Silence { id: "nope".into(), ..silence(&[("a", "b", false)], now, now + S) }, now)
                .unwrap_err(),
            SilenceError::NotFound
        );
    }

    #[test]
    fn validation_and_muting() {
        let mut s = Silences::default();
        let now = 100 * S;
        let e = s.set(silence(&[("job", "", false)], now, now + S), now).unwrap_err();
        assert_eq!(e, SilenceError::Invalid("at least one matcher must not match the empty string".into()));
        let e = s.set(silence(&[], now, now + S), now).unwrap_err();
        assert_eq!(e, SilenceError::Invalid("at least one matcher required".into()));
        let (id, _) = s.set(silence(&[("job", "no.*", true)], now, now + 10 * S), now).unwrap();
        let l = Labels::from_pairs([("job", "node")]);
        assert_eq!(s.muting(&l, now + S), vec![id.clone()]);
        assert!(s.muting(&l, now + 11 * S).is_empty(), "expired silences mute nothing");
        assert!(s.muting(&Labels::from_pairs([("job", "xnode")]), now + S).is_empty());
        assert_eq!(s.gc(now + 11 * S, std::time::Duration::from_secs(0)), 1);
        // A peer's or the state file's silence with a matcher that does not compile is refused,
        // never kept with the remaining matchers (which would mute more).
        let mut bad = silence(&[("job", "(", true), ("team", "x", false)], now, now + 10 * S);
        bad.id = "peer-1".into();
        bad.updated_at = now;
        assert!(!s.merge(bad.clone()));
        assert!(Silences::from_list(vec![bad]).get("peer-1").is_none());
        assert_eq!(new_id().len(), 36);
    }
}
