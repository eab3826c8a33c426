//! Server health as HAProxy keeps it (src/check.c, src/server.c): one counter from 0 to
//! `rise + fall - 1`, `rise..=max` meaning UP and `0..rise` DOWN. A failed check takes one
//! step down and drops straight to 0 once below `rise`; a passed check takes one step up and
//! jumps to the top once `rise` is reached. Servers start UP at `health = rise`, so the first
//! failed check takes them down, exactly as HAProxy's "up, but will fall down at first failure".
//! The admin state (ready / drain / maint) sits beside it as HAProxy's `cur_admin` does.

use crate::config::{HttpCheck, OnError};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Ready,
    Drain,
    Maint,
}

/// The result of the last check, as the stats page's `check_status`, `check_code`,
/// `check_duration` and `check_desc` columns show it.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub status: &'static str,
    pub code: Option<u16>,
    pub duration: Duration,
    pub desc: String,
    pub passed: bool,
}

/// What a state change looked like, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentUp,
    WentDown,
}

#[derive(Debug)]
pub struct Health {
    pub rise: u32,
    pub fall: u32,
    pub health: u32,
    pub running: bool,
    pub admin: Admin,
    pub checked: bool,
    pub last_change: Instant,
    pub down_since: Option<Instant>,
    pub downtime: Duration,
    pub chkfail: u64,
    pub chkdown: u64,
    pub last_check: Option<CheckResult>,
    /// Consecutive passive errors (`observe`).
    pub consecutive_errors: u32,
    pub force_fastinter: bool,
    /// Set when the server came back UP after being DOWN; slowstart ramps from here.
    pub recovered_at: Option<Instant>,
    /// Until then new requests pass the server over while another one can take them: a
    /// connection to it just failed, and its checks (`fall` × `inter`) take seconds to say
    /// DOWN. Cleared when a check passes.
    pub connect_failed_until: Option<Instant>,
}

impl Health {
    pub fn new(rise: u32, fall: u32, checked: bool) -> Self {
        Health {
            rise,
            fall,
            health: rise,
            running: true,
            admin: Admin::Ready,
            checked,
            last_change: Instant::now(),
            down_since: None,
            downtime: Duration::ZERO,
            chkfail: 0,
            chkdown: 0,
            last_check: None,
            consecutive_errors: 0,
            force_fastinter: false,
            recovered_at: None,
            connect_failed_until: None,
        }
    }

    /// A connection failed within the last `inter` and no check has passed since.
    pub fn connect_failed_recently(&self) -> bool {
        self.connect_failed_until.is_some_and(|until| until > Instant::now())
    }

    fn max(&self) -> u32 {
        self.rise + self.fall - 1
    }

    /// Keeps the current state when a reload changes rise/fall.
    pub fn reconfigure(&mut self, rise: u32, fall: u32, checked: bool) {
        let was_full = self.health >= self.max();
        self.rise = rise;
        self.fall = fall;
        self.checked = checked;
        if !checked {
            self.set_running(true);
            self.health = self.max();
        } else if self.running {
            self.health = if was_full { self.max() } else { self.health.clamp(rise, self.max()) };
        } else {
            self.health = self.health.min(rise - 1);
        }
    }

    fn set_running(&mut self, running: bool) -> Option<Transition> {
        if running == self.running {
            return None;
        }
        let now = Instant::now();
        self.running = running;
        self.last_change = now;
        if running {
            if let Some(since) = self.down_since.take() {
                self.downtime += now.duration_since(since);
            }
            self.recovered_at = Some(now);
            Some(Transition::WentUp)
        } else {
            self.down_since = Some(now);
            self.chkdown += 1;
            self.recovered_at = None;
            Some(Transition::WentDown)
        }
    }

    /// Applies one check result (HAProxy's `set_server_check_status`).
    pub fn on_check(&mut self, passed: bool) -> Option<Transition> {
        self.force_fastinter = false;
        if passed {
            self.connect_failed_until = None;
            if self.health < self.max() {
                self.health += 1;
                if self.health >= self.rise {
                    self.health = self.max();
                }
            }
        } else if self.health > 0 {
            self.chkfail += 1;
            self.health -= 1;
            if self.health < self.rise {
                self.health = 0;
            }
        }
        if self.health >= self.rise {
            self.set_running(true)
        } else if self.health == 0 {
            self.set_running(false)
        } else {
            None
        }
    }

    /// Passive error reporting (`observe`); returns a transition when `on_error` caused one.
    pub fn on_observed(&mut self, error: bool, error_limit: u32, on_error: OnError) -> Option<Transition> {
        if !error {
            self.consecutive_errors = 0;
            return None;
        }
        self.consecutive_errors += 1;
        if self.consecutive_errors < error_limit {
            return None;
        }
        self.consecutive_errors = 0;
        let transition = match on_error {
            OnError::FastInter => None,
            OnError::FailCheck => self.on_check(false),
            OnError::SuddenDeath => {
                if self.health > self.rise {
                    self.health = self.rise;
                    None
                } else {
                    self.on_check(false)
                }
            }
            OnError::MarkDown => {
                self.health = 0;
                self.set_running(false)
            }
        };
        self.force_fastinter = true;
        transition
    }

    /// HAProxy's `srv_getinter`.
    pub fn next_interval(&self, inter: Duration, fastinter: Duration, downinter: Duration) -> Duration {
        if self.health == self.max() && !self.force_fastinter {
            return inter;
        }
        if !self.running && self.health == 0 {
            return downinter;
        }
        fastinter
    }

    /// May new traffic go to this server?
    pub fn usable(&self) -> bool {
        self.running && self.admin == Admin::Ready
    }

    /// The stats `status` column, as HAProxy 2.6 spells it.
    pub fn status_text(&self) -> String {
        if self.admin == Admin::Maint {
            return "MAINT".into();
        }
        if !self.checked {
            return if self.admin == Admin::Drain { "DRAIN".into() } else { "no check".into() };
        }
        if !self.running {
            return if self.health > 0 {
                format!("DOWN {}/{}", self.health, self.rise)
            } else {
                "DOWN".into()
            };
        }
        if self.admin == Admin::Drain {
            return "DRAIN".into();
        }
        if self.health < self.max() {
            return format!("UP {}/{}", self.health - self.rise + 1, self.fall);
        }
        "UP".into()
    }

    pub fn downtime_now(&self) -> Duration {
        self.downtime + self.down_since.map(|s| s.elapsed()).unwrap_or_default()
    }
}

/// haproxy_exporter's `parseStatusField`: which status strings count as up. Its list is
/// literal, so `UP 1/2` (fall 2, one failure seen) reads as down while `UP 1/3` reads as up.
pub fn exporter_up(status: &str) -> bool {
    matches!(status, "UP" | "UP 1/3" | "UP 2/3" | "OPEN" | "no check" | "DRAIN")
}

/// Runs one active check: a TCP connect, or HAProxy's `option httpchk` request over a fresh
/// connection (`<method> <path> <version>\r\n\r\n`) reading only the status line.
pub async fn run_check(address: SocketAddr, httpchk: Option<&HttpCheck>, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let fail = |status: &'static str, code: Option<u16>, desc: String| CheckResult {
        status,
        code,
        duration: started.elapsed(),
        desc,
        passed: false,
    };
    let connect = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
    let mut stream = match connect {
        Err(_) => return fail("L4TOUT", None, "Layer4 timeout".into()),
        Ok(Err(e)) => return fail("L4CON", None, format!("Layer4 connection problem: {e}")),
        Ok(Ok(s)) => s,
    };
    let Some(chk) = httpchk else {
        return CheckResult {
            status: "L4OK",
            code: None,
            duration: started.elapsed(),
            desc: "Layer4 check passed".into(),
            passed: true,
        };
    };
    let mut request = format!("{} {} {}\r\n", chk.method, chk.path, chk.version);
    if chk.version.eq_ignore_ascii_case("HTTP/1.1") {
        request.push_str(&format!("Host: {address}\r\nConnection: close\r\n"));
    }
    request.push_str("\r\n");
    let remaining = timeout.saturating_sub(started.elapsed());
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        // The status line is all a check needs; stop reading at its end or at 4 KiB.
        while !buf.contains(&b'\n') && buf.len() < 4096 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(remaining, exchange).await {
        Err(_) => return fail("L7TOUT", None, "Layer7 timeout".into()),
        Ok(Err(e)) => return fail("L7RSP", None, format!("Layer7 invalid response: {e}")),
        Ok(Ok(buf)) => buf,
    };
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return fail("L7RSP", None, "Layer7 invalid response".into());
    };
    let Some(code) = code.parse::<u16>().ok().filter(|_| version.starts_with("HTTP/")) else {
        return fail("L7RSP", None, "Layer7 invalid response".into());
    };
    let reason = parts.next().unwrap_or("").trim().to_string();
    if chk.passes(code) {
        CheckResult {
            status: "L7OK",
            code: Some(code),
            duration: started.elapsed(),
            desc: reason,
            passed: true,
        }
    } else {
        fail("L7STS", Some(code), format!("Layer7 wrong status: {code} {reason}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connect_holds_until_its_time_or_a_passing_check() {
        let mut h = Health::new(2, 3, true);
        assert_eq!(h.on_check(true), None);
        assert!(!h.connect_failed_recently());
        h.connect_failed_until = Some(Instant::now() + Duration::from_secs(60));
        assert!(h.connect_failed_recently());
        assert_eq!(h.on_check(false), None);
        assert!(h.connect_failed_recently(), "a failing check keeps the hold");
        assert_eq!(h.on_check(true), None);
        assert!(!h.connect_failed_recently(), "a passing check ends it");
        h.connect_failed_until = Instant::now().checked_sub(Duration::from_millis(1));
        assert!(!h.connect_failed_recently(), "it ends by itself");
        assert_eq!(h.status_text(), "UP", "the hold is no state change");
    }

    #[test]
    fn rise_fall_walk_like_haproxy() {
        let mut h = Health::new(2, 3, true);
        assert_eq!(h.status_text(), "UP 1/3", "servers start one step from falling");
        assert_eq!(h.on_check(true), None);
        assert_eq!(h.status_text(), "UP");
        assert_eq!(h.on_check(false), None);
        assert_eq!(h.status_text(), "UP 2/3");
        assert_eq!(h.on_check(false), None);
        assert_eq!(h.status_text(), "UP 1/3");
        assert_eq!(h.on_check(false), Some(Transition::WentDown));
        assert_eq!(h.status_text(), "DOWN");
        assert_eq!(h.chkfail, 3);
        assert_eq!(h.chkdown, 1);
        assert_eq!(h.on_check(false), None, "no further failures counted at 0");
        assert_eq!(h.chkfail, 3);
        assert_eq!(h.on_check(true), None);
        assert_eq!(h.status_text(), "DOWN 1/2");
        assert_eq!(h.on_check(true), Some(Transition::WentUp));
        assert_eq!(h.status_text(), "UP");
    }

    #[test]
    fn first_failure_at_start_takes_server_down() {
        let mut h = Health::new(3, 2, true);
        assert_eq!(h.status_text(), "UP 1/2");
        assert!(!exporter_up(&h.status_text()));
        assert_eq!(h.on_check(false), Some(Transition::WentDown));
    }

    #[test]
    fn intervals_follow_state() {
        let s = Duration::from_secs;
        let mut h = Health::new(2, 3, true);
        h.on_check(true);
        assert_eq!(h.next_interval(s(2), s(1), s(9)), s(2));
        h.on_check(false);
        assert_eq!(h.next_interval(s(2), s(1), s(9)), s(1));
        h.on_check(false);
        h.on_check(false);
        assert_eq!(h.next_interval(s(2), s(1), s(9)), s(9));
        h.on_check(true);
        assert_eq!(h.next_interval(s(2), s(1), s(9)), s(1));
    }

    #[test]
    fn admin_states_and_exporter_reading() {
        let mut h = Health::new(2, 3, true);
        h.on_check(true);
        h.admin = Admin::Drain;
        assert_eq!(h.status_text(), "DRAIN");
        assert!(exporter_up("DRAIN"));
        assert!(!h.usable());
        h.admin = Admin::Maint;
        assert_eq!(h.status_text(), "MAINT");
        assert!(!exporter_up("MAINT"));
        assert!(exporter_up("UP 2/3") && exporter_up("no check") && !exporter_up("UP 1/2"));
    }

    #[test]
    fn observe_actions() {
        let mut h = Health::new(2, 3, true);
        h.on_check(true);
        for _ in 0..9 {
            assert_eq!(h.on_observed(true, 10, OnError::MarkDown), None);
        }
        assert_eq!(h.on_observed(true, 10, OnError::MarkDown), Some(Transition::WentDown));
        let mut h = Health::new(2, 3, true);
        h.on_check(true);
        h.on_observed(true, 1, OnError::SuddenDeath);
        assert_eq!(h.status_text(), "UP 1/3");
        assert!(h.force_fastinter);
        assert_eq!(h.on_check(false), Some(Transition::WentDown));
        let mut h = Health::new(2, 3, true);
        h.on_check(true);
        h.on_observed(true, 2, OnError::FailCheck);
        h.on_observed(false, 2, OnError::FailCheck);
        h.on_observed(true, 2, OnError::FailCheck);
        assert_eq!(h.status_text(), "UP", "a success resets the consecutive count");
    }
}
