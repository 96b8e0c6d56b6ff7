//! The scrub: every stored object read back and checked against its
//! blake3 name, because disks rot silently and a CDN would otherwise serve
//! the rot with a strong ETag.
//!
//! A scrub starts by itself `[scrub] interval_hours` after the last one
//! ended (or on request, `scrub`); it reads at the idle I/O priority and
//! within `read_mb_per_s` (`pace.rs`). Its local part (`pass.rs`) checks
//! the manifests of the materialised revisions, then every object they
//! name with its precompressed variants, repairs what it can alone and
//! sets aside what it cannot (`cas::Cas::set_aside`), so a damaged object
//! is never served. Then the objects set aside or missing are fetched
//! again from peers (`mesh::repair`), the revisions' links are pointed at
//! the sound copies and the site snapshot is rebuilt, dropping any body
//! read from a damaged file. What it found goes into `status`
//! (`report.rs`, kept in `<data>/scrub.json`).

mod pace;
mod pass;
mod report;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{NodeConfig, ScrubSettings};
use crate::services::Services;
use crate::shutdown::Shutdown;

pub use report::{Finding, ScrubReport, ScrubRun};

/// The first scrub of a node that never finished one waits at most this
/// long after start (less when the interval is shorter).
const FIRST_WITHIN: Duration = Duration::from_secs(3600);

/// The scrub's schedule and last result, shared by its task and `status`.
pub struct Scrubber {
    settings: ScrubSettings,
    /// `<data>/scrub.json`.
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled each time a scrub ends.
    ended: Condvar,
    /// Wakes the task for a scrub asked for now.
    wake: Notify,
}

struct State {
    report: ScrubReport,
    /// Scrubs ended since the node started.
    ended: u64,
}

impl Scrubber {
    /// The scrubber of `config`'s node, with the last report it saved.
    pub fn new(config: &NodeConfig) -> Scrubber {
        let path = config.data_dir.join("scrub.json");
        Scrubber {
            settings: config.scrub.clone(),
            state: Mutex::new(State {
                report: ScrubReport::load(&path),
                ended: 0,
            }),
            path,
            ended: Condvar::new(),
            wake: Notify::new(),
        }
    }

    /// What the last scrub found, and whether one runs now.
    pub fn report(&self) -> ScrubReport {
        self.lock().report.clone()
    }

    /// Asks for a scrub now; returns a ticket [`Scrubber::wait`] takes. A
    /// scrub already running is followed by another, which checks
    /// everything again.
    pub fn request(&self) -> u64 {
        let state = self.lock();
        let ticket = state.ended + if state.report.running { 2 } else { 1 };
        self.wake.notify_one();
        ticket
    }

    /// Waits (blocking) until the scrub of `ticket` has ended, at most
    /// `limit`; its report, or `None` at the limit.
    pub fn wait(&self, ticket: u64, limit: Duration) -> Option<ScrubReport> {
        let state = self.lock();
        let (state, timeout) = self
            .ended
            .wait_timeout_while(state, limit, |s| s.ended < ticket)
            .unwrap_or_else(|e| e.into_inner());
        (!timeout.timed_out()).then(|| state.report.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long until the next scheduled scrub, from the last one's end
    /// (`None`: scrubs start only on request).
    fn until_due(&self, started: SystemTime) -> Option<Duration> {
        if !self.settings.enabled {
            return None;
        }
        let interval = Duration::from_secs(self.settings.interval_hours.saturating_mul(3600));
        let due = match &self.lock().report.last {
            Some(run) => UNIX_EPOCH + Duration::from_millis(run.finished_ms) + interval,
            None => started + interval.min(FIRST_WITHIN),
        };
        Some(
            due.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }

    fn set_running(&self, running: bool) {
        self.lock().report.running = running;
    }

    /// Records a finished scrub, saves it and wakes those waiting.
    fn finish(&self, run: Option<ScrubRun>) {
        let mut state = self.lock();
        state.report.running = false;
        if let Some(run) = run {
            state.report.last = Some(run);
        }
        state.ended += 1;
        if let Err(e) = state.report.save(&self.path) {
            warn!(path = %self.path.display(), error = %e, "cannot save the scrub report");
        }
        drop(state);
        self.ended.notify_all();
    }
}

/// The scrub's running task.
pub struct ScrubHandle {
    pub tasks: JoinSet<()>,
}

/// Starts the scrub task of the node `services` belongs to.
pub fn start(services: Arc<Services>, shutdown: Shutdown) -> ScrubHandle {
    let mut tasks = JoinSet::new();
    tasks.spawn(scrub_loop(services, shutdown));
    ScrubHandle { tasks }
}

async fn scrub_loop(services: Arc<Services>, mut shutdown: Shutdown) {
    let scrubber = services.scrubber.clone();
    let started = SystemTime::now();
    loop {
        let due = scrubber.until_due(started);
        let sleep = async {
            match due {
                Some(due) => tokio::time::sleep(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = scrubber.wake.notified() => {}
            _ = shutdown.wait() => return,
        }
        scrubber.set_running(true);
        let run = scrub_once(&services, &mut shutdown).await;
        scrubber.finish(run);
        if shutdown.is_shutdown() {
            return;
        }
    }
}

/// Runs one scrub; `None` when it could not run or shutdown cut it short.
async fn scrub_once(services: &Services, shutdown: &mut Shutdown) -> Option<ScrubRun> {
    let started_ms = now_ms();
    let cancel = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let deployer = services.deployer.clone();
    let rate = services
        .scrubber
        .settings
        .read_mb_per_s
        .saturating_mul(1 << 20);
    let thread_cancel = cancel.clone();
    // A thread of its own, not the blocking pool: its I/O priority is
    // lowered for good.
    let spawned = std::thread::Builder::new()
        .name("scrub".into())
        .spawn(move || {
            pace::idle_io_priority();
            let _ = sender.send(pass::check(&deployer, rate, &thread_cancel));
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the scrub thread");
        return None;
    }
    let result = tokio::select! {
        result = receiver => result,
        _ = shutdown.wait() => {
            cancel.store(true, Ordering::Relaxed);
            return None;
        }
    };
    let mut pass = match result {
        Ok(Ok(pass)) => pass,
        Ok(Err(e)) => {
            warn!(error = %e, "scrub failed");
            return None;
        }
        Err(_) => {
            warn!("the scrub thread ended without a result");
            return None;
        }
    };
    if pass.cancelled {
        return None;
    }
    repair_from_peers(services, &mut pass).await;
    if !pass.changed.is_empty() {
        let deployer = services.deployer.clone();
        let changed = std::mem::take(&mut pass.changed);
        match tokio::task::spawn_blocking(move || deployer.replace_objects(&changed)).await {
            Ok(Ok(links)) => info!(links, "revisions now link the repaired objects"),
            Ok(Err(e)) => warn!(error = %e, "cannot relink repaired objects"),
            Err(e) => warn!(error = %e, "relink task failed"),
        }
    }
    let mut run = pass.run;
    run.started_ms = started_ms;
    run.finished_ms = now_ms();
    info!(
        objects = run.objects_checked,
        variants = run.variants_checked,
        bytes = run.bytes_read,
        damaged = run.damaged,
        missing = run.missing,
        repaired = run.repaired,
        unrepairable = run.unrepairable,
        "scrub finished"
    );
    Some(run)
}

/// Asks peers for what the pass set aside or found missing, and records
/// each outcome.
async fn repair_from_peers(services: &Services, pass: &mut pass::Pass) {
    if pass.wanted.is_empty() {
        return;
    }
    let sizes: HashMap<blake3::Hash, Option<u64>> =
        pass.wanted.iter().map(|(h, w)| (*h, w.size)).collect();
    let stored: HashSet<blake3::Hash> = match &services.mesh {
        Some(mesh) => crate::mesh::repair::fetch_objects(mesh, &sizes)
            .await
            .into_iter()
            .collect(),
        None => HashSet::new(),
    };
    let compress: Vec<blake3::Hash> = pass
        .wanted
        .iter()
        .filter(|(h, w)| w.compressible && stored.contains(h))
        .map(|(h, _)| *h)
        .collect();
    if !compress.is_empty() {
        let cas = services.deployer.cas().clone();
        let _ = tokio::task::spawn_blocking(move || {
            for hash in compress {
                if let Err(e) = cas.ensure_variants(&hash, true) {
                    warn!(error = %e, "cannot make compressed variants of a repaired object");
                }
            }
        })
        .await;
    }
    let mut wanted: Vec<_> = std::mem::take(&mut pass.wanted).into_iter().collect();
    wanted.sort_by_key(|(h, _)| *h.as_bytes());
    for (hash, w) in wanted {
        let repaired = stored.contains(&hash);
        let outcome = if repaired {
            "fetched again from a peer".to_string()
        } else if services.mesh.is_none() {
            "unrepairable: no peer to fetch it from; set aside, not served".to_string()
        } else {
            "unrepairable: no peer gave a sound copy; set aside, not served, asked again next scrub"
                .to_string()
        };
        if !repaired {
            warn!(object = %hash, kind = w.kind, problem = %w.problem, damaged = w.damaged, "scrub cannot repair a stored object");
        }
        pass.changed.insert(hash);
        pass.run.found(Finding {
            object: hash.to_hex().to_string(),
            kind: w.kind.to_string(),
            problem: w.problem,
            outcome,
            repaired,
        });
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
