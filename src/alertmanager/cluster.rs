//! HA between obsd alertmanagers over plain authenticated HTTP, in place of Alertmanager's
//! memberlist gossip (which obsd does not speak): every instance pushes its silences and
//! notification log to each peer every `SYNC_INTERVAL`, and each change at once; the newer
//! copy of a silence or log entry wins. An instance's position is its place among the names of
//! the members heard from recently, sorted, as Alertmanager's `Peer.Position`; a flush waits
//! position × `peer_timeout` and then consults the shared log, so one instance sends and the
//! others find the entry and stay quiet.

use super::nflog::Entry;
use super::silence::Silence;
use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each instance pushes its whole state to every peer.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);
/// A peer not heard from for this long no longer counts for positions.
const ALIVE_FOR: Duration = Duration::from_secs(6);
/// How long a new instance waits to hear from its peers before its first flush
/// (Alertmanager's gossip settle).
const SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    pub from: String,
    #[serde(default)]
    pub silences: Vec<Silence>,
    #[serde(default)]
    pub nflog: Vec<Entry>,
}

pub struct Cluster {
    pub name: String,
    peers: Vec<String>,
    token: Secret,
    pub peer_timeout: Duration,
    client: reqwest::Client,
    heard: Mutex<HashMap<String, Instant>>,
    started: Instant,
}

#[derive(Debug, thiserror::Error)]
#[error("peer {peer}: {message}")]
pub struct PushError {
    pub peer: String,
    pub message: String,
}

impl Cluster {
    pub fn new(
        name: String,
        peers: Vec<String>,
        token: Secret,
        peer_timeout: Duration,
    ) -> Result<Cluster, String> {
        let client = reqwest::Client::builder()
            .timeout(SYNC_INTERVAL)
            .connect_timeout(SYNC_INTERVAL)
            .user_agent(concat!("obsd-alertmanager/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Cluster {
            name,
            peers,
            token,
            peer_timeout,
            client,
            heard: Mutex::new(HashMap::new()),
            started: Instant::now(),
        })
    }

    pub fn token_ok(&self, header: Option<&str>) -> bool {
        let expected = format!("Bearer {}", self.token.expose());
        header.is_some_and(|h| crate::http::constant_time_eq(h.as_bytes(), expected.as_bytes()))
    }

    pub fn heard_from(&self, name: &str) {
        if name != self.name {
            self.heard.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), Instant::now());
        }
    }

    /// This instance and the peers heard from recently, sorted by name.
    pub fn members(&self) -> Vec<String> {
        let heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> =
            heard.iter().filter(|(_, at)| at.elapsed() < ALIVE_FOR).map(|(n, _)| n.clone()).collect();
        names.push(self.name.clone());
        names.sort();
        names.dedup();
        names
    }

    pub fn position(&self) -> usize {
        self.members().iter().position(|n| *n == self.name).unwrap_or(0)
    }

    /// Until every peer was heard from once or `SETTLE` passed.
    pub fn settling(&self) -> bool {
        let heard = self.heard.lock().unwrap_or_else(|p| p.into_inner()).len();
        heard < self.peers.len() && self.started.elapsed() < SETTLE
    }

    pub async fn settle(&self) {
        while self.settling() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `message` to every peer; the errors of those that did not take it.
    pub async fn push(&self, message: &Message) -> Vec<PushError> {
        let sends = self.peers.iter().map(|peer| async move {
            let url = format!("{}/api/obsd/alertmanager/cluster", peer.trim_end_matches('/'));
            let result = self
                .client
                .post(&url)
                .header("Authorization", format!("Bearer {}", self.token.expose()))
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(message).unwrap_or_default())
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(PushError { peer: peer.clone(), message: format!("answered {}", r.status()) }),
                Err(e) => Some(PushError { peer: peer.clone(), message: crate::http::error_chain(&e) }),
            }
        });
        futures_util::future::join_all(sends).await.into_iter().flatten().collect()
    }
}
