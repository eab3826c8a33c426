//! The threads that serve the balancer's client connections, HAProxy's `nbthread`. Each
//! accepted connection lives its whole life on one thread, with the upstream connections it
//! uses (each thread pools its own, `pool::Pool`): a request then never wakes another thread
//! and no scheduler moves its work between threads. On a shared work-stealing runtime those
//! cross-thread wake-ups were a large part of the balancer's CPU on small responses.
//!
//! Accept loops, health checks, stats and every other role stay on obsd's main runtime.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::Handle;

thread_local! {
    /// Which connection thread runs the current code; None off them.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The connection thread running the caller, if it is one.
pub fn current() -> Option<usize> {
    CURRENT.with(|c| c.get())
}

struct Thread {
    handle: Handle,
    /// Connections it serves now: a new one goes to the thread with the fewest.
    connections: AtomicUsize,
}

pub struct Threads {
    threads: Vec<Thread>,
}

static THREADS: OnceLock<Threads> = OnceLock::new();

/// Starts the process's connection threads, `count` of them or one per CPU; a process
/// starts them once (a reload keeps them, as HAProxy keeps `nbthread` until a restart).
pub fn start(count: Option<usize>) -> &'static Threads {
    THREADS.get_or_init(|| {
        let count =
            count.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        Threads::start(count)
    })
}

/// The connection threads, started with the default count if nothing started them.
pub fn threads() -> &'static Threads {
    start(None)
}

impl Threads {
    fn start(count: usize) -> Threads {
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = std::sync::mpsc::channel();
            let started = std::thread::Builder::new().name(format!("obsd-conn-{index}")).spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                CURRENT.with(|c| c.set(Some(index)));
                let _ = tx.send(Ok(runtime.handle().clone()));
                // Runs the connections spawned onto it until the process exits.
                runtime.block_on(std::future::pending::<()>());
            });
            let handle = match started
                .map_err(|e| e.to_string())
                .and_then(|_| rx.recv().map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())))
            {
                Ok(h) => h,
                Err(error) => {
                    // Fewer threads (or none: then connections run on the main runtime).
                    tracing::error!(%error, index, "could not start a balancer connection thread");
                    break;
                }
            };
            threads.push(Thread { handle, connections: AtomicUsize::new(0) });
        }
        Threads { threads }
    }

    pub fn count(&self) -> usize {
        self.threads.len()
    }

    /// Runs one connection's future on the least busy thread.
    pub fn spawn<F>(&'static self, serve: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some((index, thread)) =
            self.threads.iter().enumerate().min_by_key(|(_, t)| t.connections.load(Ordering::Relaxed))
        else {
            tokio::spawn(serve);
            return;
        };
        thread.connections.fetch_add(1, Ordering::Relaxed);
        let done = Done(&self.threads[index].connections);
        thread.handle.spawn(async move {
            let _done = done;
            serve.await
        });
    }
}

struct Done(&'static AtomicUsize);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_connection_runs_on_the_least_busy_thread() {
        let threads: &'static Threads = Box::leak(Box::new(Threads::start(2)));
        assert_eq!(threads.count(), 2);
        assert_eq!(current(), None);
        let (hold, held) = tokio::sync::oneshot::channel::<()>();
        let (ran_on, where_ran) = std::sync::mpsc::channel();
        let tx = ran_on.clone();
        threads.spawn(async move {
            let _ = tx.send(current());
            let _ = held.await;
        });
        let first = where_ran.recv_timeout(Duration::from_secs(5)).expect("first connection ran");
        threads.spawn(async move {
            let _ = ran_on.send(current());
        });
        let second = where_ran.recv_timeout(Duration::from_secs(5)).expect("second connection ran");
        assert!(first.is_some() && second.is_some(), "{first:?} {second:?}");
        assert_ne!(first, second, "the second connection went to the busy thread");
        drop(hold);
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads.threads.iter().any(|t| t.connections.load(Ordering::Relaxed) > 0) {
            assert!(Instant::now() < deadline, "finished connections still counted");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
