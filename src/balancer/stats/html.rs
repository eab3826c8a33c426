//! The HTML stats page, laid out as HAProxy 2.6 lays it out, with the admin forms.

use super::{Kind, Row};
use crate::balancer::Balancer;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

pub fn html(
    balancer: &Balancer,
    rows: &[Row],
    admin: bool,
    refresh: Option<u64>,
    message: Option<&str>,
) -> String {
    let inner = balancer.inner();
    let generation = inner.current();
    let uri = &generation.config.stats_uri;
    let mut o = String::with_capacity(16 * 1024);
    o.push_str(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Statistics Report for obsd</title>\n",
    );
    if let Some(r) = refresh {
        let _ = writeln!(o, "<meta http-equiv=\"refresh\" content=\"{r}\">");
    }
    o.push_str(
        "<style>body{font-family:arial,helvetica,sans-serif;font-size:12px}table.tbl{border-collapse:collapse;margin-bottom:12px}\
table.tbl td,table.tbl th{border:1px solid #999;padding:1px 4px;text-align:right}th.pxname{background:#b00040;color:#fff;text-align:left}\
tr.titre th{background:#20a0ff}tr.frontend td{background:#e8e8d0}tr.backend td{background:#e8e8d0;font-weight:bold}\
tr.active_up td{background:#c0ffc0}tr.active_down td{background:#ff9090}tr.active_going_down td{background:#ffffa0}\
tr.active_going_up td{background:#ffd020}tr.maintain td{background:#c07820}tr.draining td{background:#20a0ff}\
tr.backup_up td{background:#b0d0ff}td.ac{text-align:left}</style></head><body>\n",
    );
    let _ = writeln!(
        o,
        "<h1>obsd balancer {} — HAProxy-compatible statistics</h1><p>uptime {}; {} frontends, {} backends. \
<a href=\"{u};csv\">CSV export</a> · <a href=\"{u};json\">JSON export</a> · <a href=\"{u};norefresh\">Disable refresh</a></p>",
        crate::self_metrics::VERSION,
        human_duration(inner.started.elapsed().as_secs()),
        generation.frontends.len(),
        generation.backends.len(),
        u = esc(uri)
    );
    if let Some(msg) = message {
        let text = match msg {
            "DONE" => "Action processed successfully.",
            "DENY" => "Action denied.",
            "ERRP" => "Action not processed: invalid parameters.",
            "NONE" => "Nothing has changed.",
            _ => "Action not processed.",
        };
        let _ = writeln!(o, "<p class=\"msg\"><b>{}</b></p>", esc(text));
    }
    let mut px = String::new();
    let mut in_table = false;
    for r in rows {
        let name = r.text("pxname");
        if name != px {
            if in_table {
                o.push_str("</table>");
                if admin && px != "stats" {
                    admin_form_end(&mut o, &px);
                }
            }
            px = name.clone();
            in_table = true;
            if admin && px != "stats" && rows.iter().any(|x| x.kind == Kind::Server && x.text("pxname") == px)
            {
                let _ = write!(o, "<form method=\"post\" action=\"{}\">", esc(uri));
            }
            let _ = write!(
                o,
                "<table class=\"tbl\"><tr><th class=\"pxname\" colspan=\"29\">{}</th></tr>\
<tr class=\"titre\"><th rowspan=\"2\"></th><th colspan=\"3\">Queue</th><th colspan=\"3\">Session rate</th><th colspan=\"5\">Sessions</th>\
<th colspan=\"2\">Bytes</th><th colspan=\"2\">Denied</th><th colspan=\"3\">Errors</th><th colspan=\"2\">Warnings</th><th colspan=\"9\">Server</th></tr>\
<tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th>\
<th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th>\
<th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th></tr>",
                esc(&px)
            );
        }
        let status = r.text("status");
        let class = match r.kind {
            Kind::Frontend => "frontend".to_string(),
            Kind::Backend => "backend".to_string(),
            Kind::Server => {
                let backup = r.text("bck") == "1";
                let base = if status.starts_with("MAINT") {
                    "maintain"
                } else if status == "DRAIN" {
                    "draining"
                } else if status.starts_with("DOWN ") {
                    "active_going_up"
                } else if status.starts_with("DOWN") {
                    "active_down"
                } else if status.starts_with("UP ") {
                    "active_going_down"
                } else if backup {
                    "backup_up"
                } else {
                    "active_up"
                };
                base.to_string()
            }
        };
        let label = match r.kind {
            Kind::Frontend => "Frontend".to_string(),
            Kind::Backend => "Backend".to_string(),
            Kind::Server => {
                let sv = esc(&r.text("svname"));
                if admin { format!("<input type=\"checkbox\" name=\"s\" value=\"{sv}\"> {sv}") } else { sv }
            }
        };
        let last_chk = if r.kind == Kind::Server && r.get("check_status").is_some() {
            let code = r.text("check_code");
            format!(
                "{}{} in {}ms",
                esc(&r.text("check_status")),
                if code.is_empty() { String::new() } else { format!("/{code}") },
                r.text("check_duration")
            )
        } else {
            String::new()
        };
        let dwn = if r.kind == Kind::Frontend {
            String::new()
        } else {
            human_duration(r.text("downtime").parse().unwrap_or(0))
        };
        let lastchg = if r.kind == Kind::Frontend {
            String::new()
        } else {
            format!("{} ", human_duration(r.text("lastchg").parse().unwrap_or(0)))
        };
        let cells = [
            r.text("qcur"),
            r.text("qmax"),
            String::new(),
            r.text("rate"),
            r.text("rate_max"),
            r.text("rate_lim"),
            r.text("scur"),
            r.text("smax"),
            r.text("slim"),
            r.text("stot"),
            r.text("lbtot"),
            r.text("bin"),
            r.text("bout"),
            r.text("dreq"),
            r.text("dresp"),
            r.text("ereq"),
            r.text("econ"),
            r.text("eresp"),
            r.text("wretr"),
            r.text("wredis"),
            format!("{lastchg}{}", status),
            last_chk,
            r.text("weight"),
            if r.kind == Kind::Server {
                if r.text("act") == "1" { "Y".into() } else { "-".into() }
            } else {
                r.text("act")
            },
            if r.kind == Kind::Server {
                if r.text("bck") == "1" { "Y".into() } else { "-".into() }
            } else {
                r.text("bck")
            },
            r.text("chkfail"),
            r.text("chkdown"),
            dwn,
            String::new(),
        ];
        let _ = write!(o, "<tr class=\"{class}\"><td class=\"ac\">{label}</td>");
        for c in cells {
            let _ = write!(o, "<td>{}</td>", esc(&c));
        }
        o.push_str("</tr>\n");
    }
    if in_table {
        o.push_str("</table>");
        if admin && px != "stats" {
            admin_form_end(&mut o, &px);
        }
    }
    o.push_str("</body></html>\n");
    o
}

fn admin_form_end(o: &mut String, backend: &str) {
    let _ = write!(
        o,
        "Choose the action to perform on the checked servers: <select name=\"action\">\
<option value=\"\"></option><option value=\"ready\">Set state to READY</option>\
<option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option></select>\
<input type=\"hidden\" name=\"b\" value=\"{}\"><input type=\"submit\" value=\"Apply\"></form>",
        esc(backend)
    );
}
