//! Which listeners could not bind together: two sockets of one protocol on one port whose
//! addresses overlap (equal, or one the wildcard of the other's family; `[::]` also takes
//! IPv4, as Linux binds it dual-stack).
//!
//! Within one role a clash is always an error: that role can never start. Between roles it
//! depends on which roles run in one process or on one host, which a file does not say:
//! a start refuses roles it starts together that clash, and warns about a clash with a role
//! the file configures that this process does not run (it may run as another unit on this
//! host); `check-config` warns about every clash between roles the file configures, and
//! refuses those among the roles named by `--role`.

use super::Role;
use std::net::{IpAddr, SocketAddr};

/// One socket a role binds, and where the config says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenSite {
    pub role: Role,
    /// The config key, e.g. `replica.listen.address`.
    pub key: String,
    pub address: SocketAddr,
    pub udp: bool,
    /// Line and column of the value; None when the address is the built-in default.
    pub at: Option<(usize, usize)>,
}

impl ListenSite {
    pub fn role_of(key: &str) -> Option<Role> {
        let first = key.split('.').next()?;
        Role::ALL.into_iter().find(|r| r.name() == first)
    }

    fn clashes_with(&self, other: &ListenSite) -> bool {
        self.udp == other.udp
            && self.address.port() == other.address.port()
            // Port 0 asks the kernel for a free port: never taken twice.
            && self.address.port() != 0
            && overlap(self.address.ip(), other.address.ip())
    }

    /// `file:line:column` or `the default` of the key.
    fn location(&self, file: &str) -> String {
        match self.at {
            Some((line, column)) => format!("{file}:{line}:{column}"),
            None => format!("{file} (built-in default, key not set)"),
        }
    }
}

fn overlap(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        _ if a == b => true,
        (IpAddr::V6(x), _) if x.is_unspecified() => true,
        (_, IpAddr::V6(y)) if y.is_unspecified() => true,
        (IpAddr::V4(x), IpAddr::V4(y)) => x.is_unspecified() || y.is_unspecified(),
        _ => false,
    }
}

/// Two listeners that cannot bind together.
#[derive(Debug, Clone, PartialEq)]
pub struct Clash {
    pub first: ListenSite,
    pub second: ListenSite,
}

impl Clash {
    /// The same clash told from a side the file sets, so its line leads the message.
    fn located_first(&self) -> Clash {
        match (&self.first.at, &self.second.at) {
            (None, Some(_)) => Clash { first: self.second.clone(), second: self.first.clone() },
            _ => self.clone(),
        }
    }

    /// Both locations, so either line can be changed.
    pub fn describe(&self, file: &str) -> String {
        let c = self.located_first();
        format!("{}: key `{}`: {}", c.first.location(file), c.first.key, c.message(file))
    }

    /// As a config problem: line, column, key of one side and a message naming the other.
    pub fn problem(&self, file: &str) -> super::ConfigProblem {
        let c = self.located_first();
        let (line, column) = c.first.at.unwrap_or((1, 1));
        super::ConfigProblem { line, column, key: c.first.key.clone(), message: c.message(file) }
    }

    fn message(&self, file: &str) -> String {
        let proto = if self.first.udp { "udp" } else { "tcp" };
        format!(
            "{} {proto} clashes with `{}` {} at {}; only one of them can bind: give the other another port or address",
            self.first.address,
            self.second.key,
            self.second.address,
            self.second.location(file)
        )
    }
}

/// Every clashing pair for which `wanted(first, second)` holds, in config order.
pub fn clashes(sites: &[ListenSite], wanted: impl Fn(&ListenSite, &ListenSite) -> bool) -> Vec<Clash> {
    let mut out = Vec::new();
    for (i, a) in sites.iter().enumerate() {
        for b in &sites[i + 1..] {
            if a.clashes_with(b) && wanted(a, b) {
                out.push(Clash { first: a.clone(), second: b.clone() });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(role: Role, address: &str, udp: bool) -> ListenSite {
        ListenSite {
            role,
            key: format!("{}.listen.address", role.name()),
            address: address.parse().expect("address"),
            udp,
            at: Some((1, 1)),
        }
    }

    #[test]
    fn same_port_clashes_on_equal_or_wildcard_addresses() {
        let clash = |a: &str, b: &str| {
            !clashes(&[site(Role::Replica, a, false), site(Role::Federation, b, false)], |_, _| true)
                .is_empty()
        };
        assert!(clash("0.0.0.0:9090", "0.0.0.0:9090"));
        assert!(clash("0.0.0.0:9090", "127.0.0.1:9090"));
        assert!(clash("127.0.0.1:9090", "0.0.0.0:9090"));
        assert!(clash("[::]:9090", "10.0.0.1:9090"));
        assert!(clash("[::1]:9090", "[::]:9090"));
        assert!(!clash("127.0.0.1:9090", "127.0.0.2:9090"));
        assert!(!clash("0.0.0.0:9090", "0.0.0.0:9091"));
        assert!(!clash("0.0.0.0:9090", "[::1]:9090"));
        assert!(!clash("127.0.0.1:0", "127.0.0.1:0"), "port 0 is a fresh port each time");
    }

    #[test]
    fn tcp_and_udp_do_not_clash() {
        let sites =
            [site(Role::Collector, "0.0.0.0:6831", true), site(Role::Exporter, "0.0.0.0:6831", false)];
        assert!(clashes(&sites, |_, _| true).is_empty());
    }

    #[test]
    fn description_names_both_locations() {
        let mut second = site(Role::Federation, "0.0.0.0:9090", false);
        second.at = None;
        let c = Clash { first: site(Role::Replica, "0.0.0.0:9090", false), second };
        let text = c.describe("obsd.toml");
        assert!(text.starts_with("obsd.toml:1:1: key `replica.listen.address`"), "{text}");
        assert!(
            text.contains("`federation.listen.address` 0.0.0.0:9090 at obsd.toml (built-in default"),
            "{text}"
        );
    }
}
