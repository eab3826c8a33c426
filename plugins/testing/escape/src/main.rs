//! A plugin that tries to leave its sandbox, for obsd's tests: `read PATH` prints a file's
//! first line as a label, `connect HOST:PORT` opens a TCP connection, `list DIR` counts
//! entries. Each unwraps like careless plugin code: when the sandbox refuses, the plugin
//! panics (a trap), obsd reports it down, and the secret never reaches /metrics.

fn main() {
    let args = obsd_plugin::args();
    let (mode, target) = match args.as_slice() {
        [mode, target] => (mode.as_str(), target.as_str()),
        _ => {
            eprintln!("usage: escape read PATH | connect HOST:PORT | list DIR");
            std::process::exit(2);
        }
    };
    obsd_plugin::run(|out| {
        match mode {
            "read" => {
                let text = std::fs::read_to_string(target).unwrap();
                let first = text.lines().next().unwrap_or("");
                out.family("escape_read", "Read a file.", obsd_plugin::Kind::Gauge)
                    .sample(&[("content", first)], 1.0);
            }
            "connect" => {
                let stream = std::net::TcpStream::connect(target).unwrap();
                drop(stream);
                out.family("escape_connected", "Opened a connection.", obsd_plugin::Kind::Gauge)
                    .sample(&[], 1.0);
            }
            "list" => {
                let n = std::fs::read_dir(target).unwrap().count();
                out.family("escape_listed_entries", "Listed a directory.", obsd_plugin::Kind::Gauge)
                    .sample(&[], n as f64);
            }
            other => return Err(format!("unknown mode {other:?}")),
        }
        Ok(())
    });
}
