//! The stats listener: HAProxy's stats page (HTML, `;csv`, `;json`) behind `stats auth`,
//! admin actions, and `/metrics` with haproxy_exporter 0.15's families.
//!
//! One model feeds all three: rows of `show stat` columns, filled where HAProxy 2.6 fills
//! them and left empty where it leaves them empty. `/metrics` is derived from the same rows
//! with haproxy_exporter's own column→metric table, so the exporter pointed at our `;csv`
//! and our `/metrics` cannot disagree.

use super::Generation;
use super::counters::{Counters, load};
use super::health::Admin;
use crate::config::ProxyMode;
use std::fmt::Write;

mod html;
mod metrics;
mod page;

pub use metrics::metrics_text;
pub use page::router;

/// HAProxy 2.6's `show stat` header, verbatim.
const CSV_HEADER: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out";

fn columns() -> Vec<&'static str> {
    CSV_HEADER.split(',').collect()
}

fn col(name: &str) -> usize {
    CSV_HEADER.split(',').position(|c| c == name).unwrap_or(usize::MAX)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    S(String),
    U(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend,
    Backend,
    Server,
}

pub struct Row {
    pub kind: Kind,
    pub iid: u64,
    pub sid: u64,
    pub fields: Vec<Option<Val>>,
}

impl Row {
    fn new(kind: Kind, px: &str, sv: &str, iid: u64, sid: u64) -> Row {
        let mut r = Row { kind, iid, sid, fields: vec![None; columns().len()] };
        r.s("pxname", px);
        r.s("svname", sv);
        r.u("pid", 1);
        r.u("iid", iid);
        r.u("sid", sid);
        r.u(
            "type",
            match kind {
                Kind::Frontend => 0,
                Kind::Backend => 1,
                Kind::Server => 2,
            },
        );
        r
    }

    fn s(&mut self, name: &str, v: impl Into<String>) {
        if let Some(f) = self.fields.get_mut(col(name)) {
            *f = Some(Val::S(v.into()));
        }
    }

    fn u(&mut self, name: &str, v: u64) {
        if let Some(f) = self.fields.get_mut(col(name)) {
            *f = Some(Val::U(v));
        }
    }

    pub fn get(&self, name: &str) -> Option<&Val> {
        self.fields.get(col(name)).and_then(|v| v.as_ref())
    }

    fn text(&self, name: &str) -> String {
        match self.get(name) {
            Some(Val::S(s)) => s.clone(),
            Some(Val::U(u)) => u.to_string(),
            None => String::new(),
        }
    }

    /// The traffic columns every row kind shares.
    fn traffic(&mut self, c: &Counters) {
        self.u("scur", load(&c.scur));
        self.u("smax", load(&c.smax));
        self.u("stot", load(&c.stot));
        self.u("bin", load(&c.bin));
        self.u("bout", load(&c.bout));
        let (rate, rate_max) = c.session_rate.read();
        self.u("rate", rate);
        self.u("rate_max", rate_max);
        for (i, name) in
            ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].iter().enumerate()
        {
            self.u(name, load(&c.hrsp[i]));
        }
    }

    fn times(&mut self, c: &Counters) {
        let t = c.times();
        self.u("qtime", t.qtime_ms.round() as u64);
        self.u("ctime", t.ctime_ms.round() as u64);
        self.u("rtime", t.rtime_ms.round() as u64);
        self.u("ttime", t.ttime_ms.round() as u64);
        self.u("qtime_max", t.qtime_max_ms.round() as u64);
        self.u("ctime_max", t.ctime_max_ms.round() as u64);
        self.u("rtime_max", t.rtime_max_ms.round() as u64);
        self.u("ttime_max", t.ttime_max_ms.round() as u64);
        self.u("lastsess", c.last_session_age().map(|d| d.as_secs()).unwrap_or(u64::MAX));
    }
}

fn frontend_row(name: &str, iid: u64, c: &Counters, slim: u64, mode: ProxyMode) -> Row {
    let mut r = Row::new(Kind::Frontend, name, "FRONTEND", iid, 0);
    r.traffic(c);
    r.u("slim", slim);
    r.u("dreq", load(&c.dreq));
    r.u("dresp", 0);
    r.u("ereq", load(&c.ereq));
    r.s("status", "OPEN");
    r.u("rate_lim", 0);
    let (req_rate, req_rate_max) = c.req_rate.read();
    r.u("req_rate", req_rate);
    r.u("req_rate_max", req_rate_max);
    r.u("req_tot", load(&c.req_tot));
    for name in ["comp_in", "comp_out", "comp_byp", "comp_rsp", "intercepted", "dcon", "dses", "wrew"] {
        r.u(name, 0);
    }
    r.s("mode", mode.as_str());
    let (conn_rate, conn_rate_max) = c.conn_rate.read();
    r.u("conn_rate", conn_rate);
    r.u("conn_rate_max", conn_rate_max);
    r.u("conn_tot", load(&c.conn_tot));
    r.u("eint", 0);
    r
}

/// Every row, in HAProxy's order: per proxy its FRONTEND, servers, BACKEND; then `stats`.
pub fn rows(generation: &Generation, stats: &Counters) -> Vec<Row> {
    let mut out = Vec::new();
    for fe in &generation.frontends {
        out.push(frontend_row(
            &fe.config.name,
            fe.id,
            &fe.counters,
            fe.config.maxconn as u64,
            fe.config.mode,
        ));
    }
    for b in &generation.backends {
        let bc = &b.shared.counters;
        let mut act = 0;
        let mut bck = 0;
        let mut weight = 0u64;
        let mut any_backup_up = false;
        for s in &b.servers {
            let h = s.state.health();
            let mut r = Row::new(Kind::Server, &b.config.name, &s.config.name, b.shared.id, s.state.id);
            let c = &s.state.counters;
            r.traffic(c);
            r.u("qcur", 0);
            r.u("qmax", 0);
            if s.config.maxconn > 0 {
                r.u("slim", u64::from(s.config.maxconn));
            }
            r.u("dresp", 0);
            r.u("econ", load(&c.econ));
            r.u("eresp", load(&c.eresp));
            r.u("wretr", load(&c.wretr));
            r.u("wredis", load(&c.wredis));
            let status = h.status_text();
            r.s("status", status.clone());
            let up = h.usable();
            let w = if h.admin == Admin::Ready { u64::from(s.config.weight) } else { 0 };
            r.u("weight", w);
            r.u("uweight", u64::from(s.config.weight));
            r.u("act", u64::from(!s.config.backup));
            r.u("bck", u64::from(s.config.backup));
            if s.config.check {
                r.u("chkfail", h.chkfail);
                r.u("chkdown", h.chkdown);
                r.u("check_rise", u64::from(h.rise));
                r.u("check_fall", u64::from(h.fall));
                r.u("check_health", u64::from(h.health));
                if let Some(chk) = &h.last_check {
                    r.s("check_status", chk.status);
                    if let Some(code) = chk.code {
                        r.u("check_code", u64::from(code));
                    }
                    r.u("check_duration", chk.duration.as_millis() as u64);
                    r.s("check_desc", chk.desc.clone());
                    r.s("last_chk", chk.desc.clone());
                } else {
                    r.s("check_status", "INI");
                    r.s("check_desc", "Initializing");
                }
            }
            r.u("lastchg", h.last_change.elapsed().as_secs());
            r.u("downtime", h.downtime_now().as_secs());
            r.u("lbtot", load(&c.lbtot));
            r.u("hanafail", 0);
            r.u("cli_abrt", load(&c.cli_abrt));
            r.u("srv_abrt", load(&c.srv_abrt));
            r.times(c);
            r.s("addr", s.config.address.to_string());
            r.s("mode", b.config.mode.as_str());
            r.u("srv_icur", 0);
            r.u("idle_conn_cur", 0);
            r.u("used_conn_cur", load(&c.scur));
            r.u("eint", 0);
            r.u("agg_server_status", if up { 0 } else { 2 });
            drop(h);
            if up {
                if s.config.backup {
                    bck += 1;
                    any_backup_up = true;
                } else {
                    act += 1;
                    weight += u64::from(s.config.weight);
                }
            }
            out.push(r);
        }
        let mut r = Row::new(Kind::Backend, &b.config.name, "BACKEND", b.shared.id, 0);
        r.traffic(bc);
        r.u("qcur", load(&bc.qcur));
        r.u("qmax", load(&bc.qmax));
        r.u("slim", b.servers.iter().map(|s| u64::from(s.config.maxconn)).sum::<u64>().max(10));
        r.u("dreq", 0);
        r.u("dresp", 0);
        r.u("econ", load(&bc.econ));
        r.u("eresp", load(&bc.eresp));
        r.u("wretr", load(&bc.wretr));
        r.u("wredis", load(&bc.wredis));
        r.s("status", if act > 0 || any_backup_up { "UP" } else { "DOWN" });
        r.u("weight", weight);
        r.u("uweight", weight);
        r.u("act", act);
        r.u("bck", bck);
        r.u("chkdown", 0);
        r.u("lastchg", b.shared.created.elapsed().as_secs());
        r.u("downtime", 0);
        r.u("lbtot", load(&bc.lbtot));
        r.u("req_tot", load(&bc.stot));
        r.u("cli_abrt", load(&bc.cli_abrt));
        r.u("srv_abrt", load(&bc.srv_abrt));
        for name in ["comp_in", "comp_out", "comp_byp", "comp_rsp", "wrew", "eint"] {
            r.u(name, 0);
        }
        r.times(bc);
        r.s("mode", b.config.mode.as_str());
        r.s("algo", b.config.balance.as_str());
        out.push(r);
    }
    let mut f = frontend_row("stats", 0, stats, 0, ProxyMode::Http);
    f.u("iid", 0);
    out.push(f);
    let mut b = Row::new(Kind::Backend, "stats", "BACKEND", 0, 0);
    b.traffic(&Counters::default());
    b.u("qcur", 0);
    b.u("qmax", 0);
    b.u("slim", 10);
    b.u("econ", 0);
    b.u("eresp", 0);
    b.u("wretr", 0);
    b.u("wredis", 0);
    b.s("status", "UP");
    b.u("weight", 0);
    b.u("act", 0);
    b.u("bck", 0);
    b.u("lbtot", 0);
    b.u("cli_abrt", 0);
    b.u("srv_abrt", 0);
    b.s("mode", "http");
    out.push(b);
    out
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::with_capacity(512 * (rows.len() + 1));
    out.push_str("# ");
    out.push_str(CSV_HEADER);
    out.push_str(",\n");
    for r in rows {
        for v in &r.fields {
            match v {
                Some(Val::S(s)) => out.push_str(&s.replace([',', '\n'], " ")),
                Some(Val::U(u)) => {
                    let _ = write!(out, "{u}");
                }
                None => {}
            }
            out.push(',');
        }
        out.push('\n');
    }
    out
}

/// `tags` of HAProxy's typed output, from the column's role.
fn tags(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "pxname" | "svname" => ("Key", "Name", "Service"),
        "pid" => ("Key", "Gauge", "Process"),
        "iid" | "sid" => ("Key", "Gauge", "Service"),
        "status" | "check_status" | "check_desc" | "last_chk" => ("Status", "Gauge", "Process"),
        "slim" | "rate_lim" | "weight" | "uweight" | "check_rise" | "check_fall" => {
            ("Config", "Limit", "Process")
        }
        "type" | "mode" | "algo" | "addr" | "act" | "bck" => ("Config", "Gauge", "Service"),
        n if n.ends_with("max") || n.ends_with("_max") => ("Metric", "Max", "Process"),
        n if n.contains("rate") => ("Metric", "Rate", "Process"),
        "qcur" | "scur" | "check_health" | "lastchg" | "lastsess" | "check_code" | "check_duration"
        | "qtime" | "ctime" | "rtime" | "ttime" | "srv_icur" | "idle_conn_cur" | "used_conn_cur" => {
            ("Metric", "Gauge", "Process")
        }
        _ => ("Metric", "Counter", "Process"),
    }
}

pub fn json(rows: &[Row]) -> serde_json::Value {
    let cols = columns();
    let out: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let obj_type = match r.kind {
                Kind::Frontend => "Frontend",
                Kind::Backend => "Backend",
                Kind::Server => "Server",
            };
            let fields: Vec<serde_json::Value> = r
                .fields
                .iter()
                .enumerate()
                .filter_map(|(pos, v)| {
                    let v = v.as_ref()?;
                    let name = cols.get(pos)?;
                    let (origin, nature, scope) = tags(name);
                    let value = match v {
                        Val::S(s) => serde_json::json!({"type": "str", "value": s}),
                        Val::U(u) => serde_json::json!({"type": "u64", "value": u}),
                    };
                    Some(serde_json::json!({
                        "objType": obj_type,
                        "proxyId": r.iid,
                        "id": r.sid,
                        "field": {"pos": pos, "name": name},
                        "processNum": 1,
                        "tags": {"origin": origin, "nature": nature, "scope": scope},
                        "value": value,
                    }))
                })
                .collect();
            serde_json::Value::Array(fields)
        })
        .collect();
    serde_json::Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_haproxy_columns_in_order() {
        let cols = columns();
        assert_eq!(&cols[..4], &["pxname", "svname", "qcur", "qmax"]);
        assert_eq!(col("status"), 17);
        assert_eq!(col("hrsp_1xx"), 39);
        assert_eq!(col("check_duration"), 38);
        assert_eq!(col("req_tot"), 48);
        assert_eq!(col("ttime"), 61);
        assert_eq!(col("conn_tot"), 79);
    }
}
