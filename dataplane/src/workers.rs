//! Thread-per-core serving, like nginx's workers: client connections are served on N worker threads, each
//! running a single-threaded tokio runtime, so a request, its upstream connection and their wakeups stay on one
//! thread (no work stealing, no cross-thread wakeups on the hot path).
//!
//! N is the number of cores this process may run on (`available_parallelism`, which respects the CPU affinity
//! set with `taskset` and cgroup quotas), or `MESHGRESS_WORKERS` when set. The workers start with the first
//! listener and live as long as the process. Accepting stays on the caller's runtime (so config swaps keep their
//! build-then-swap design); each accepted connection is handed to the next worker in turn.
//!
//! Per-worker state (the Proxy filter's upstream connection pools) is indexed by [`current`], which is `None`
//! off the workers (e.g. a filter run directly from a test's runtime): callers then use a shared fallback.

use std::{
    cell::Cell,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};
use tokio::runtime::Handle;

/// Most worker threads started, whatever the core count says.
const MAX_WORKERS: usize = 256;

thread_local! {
    static WORKER_ID: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The worker threads' runtimes.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

/// How many workers this process runs (or will run); at least 1. Stable for the life of the process.
pub(crate) fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("MESHGRESS_WORKERS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1)
            .min(MAX_WORKERS)
    })
}

/// The id (`0..count()`) of the worker this thread is, if it is one.
#[inline]
pub(crate) fn current() -> Option<usize> {
    WORKER_ID.with(Cell::get)
}

/// The workers, started on first use. `None` when no worker thread could be started (then connections are
/// served on the caller's runtime, as before).
pub(crate) fn get() -> Option<&'static Workers> {
    let w = WORKERS.get_or_init(start);
    (!w.handles.is_empty()).then_some(w)
}

fn start() -> Workers {
    let mut handles = Vec::new();
    for id in 0..count() {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("meshgress-worker-{id}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot build a worker runtime");
                        return;
                    }
                };
                WORKER_ID.with(|w| w.set(Some(id)));
                if tx.send(rt.handle().clone()).is_err() {
                    return;
                }
                rt.block_on(std::future::pending::<()>());
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a worker thread");
            break;
        }
        match rx.recv() {
            Ok(h) => handles.push(h),
            Err(_) => break,
        }
    }
    if handles.len() < count() {
        tracing::warn!(
            started = handles.len(),
            wanted = count(),
            "fewer worker threads than wanted"
        );
    }
    tracing::debug!(workers = handles.len(), "worker threads started");
    Workers {
        handles,
        next: AtomicUsize::new(0),
    }
}

impl Workers {
    /// The runtime of the next worker, in turn.
    pub(crate) fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}
