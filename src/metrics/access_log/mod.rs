//! The access log: one line per HTTP request (or per sampled request),
//! JSON or the combined log format, to a rotated file or standard output.
//!
//! The request path never waits for the log: a request it samples hands
//! a small record (header values are reference-counted, so capturing them
//! copies nothing) to a bounded channel with `try_send`, and a line that
//! finds the channel full is dropped and counted. One writer thread owns
//! the output: it formats lines, looks the client's country up, writes,
//! rotates, and flushes whenever the channel runs empty. `close` flushes
//! and joins it at shutdown.

mod file;
mod line;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hyper::header::{HOST, HeaderValue, REFERER, USER_AGENT};
use hyper::{Method, Request, Uri, Version};
use tracing::warn;

use crate::config::{AccessLogFormat, AccessLogMode, AccessLogSettings, AccessLogTarget};
use crate::dns::geo::GeoIp;

use file::Output;

/// Lines waiting for the writer; past this, lines are dropped.
const QUEUE: usize = 8192;
/// How long the writer naps between drains while lines keep coming: the
/// queue holds `QUEUE` lines, so this allows bursts of over 400,000 lines
/// a second before any is dropped.
const BUSY_NAP: Duration = Duration::from_millis(10);
/// How often the writer checks whether the GeoIP database was replaced.
const GEO_RELOAD_CHECK: Duration = Duration::from_secs(30);

/// Why the access log could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the access log {path}: {source}; fix [access_log] file in node.toml")]
pub struct AccessLogError {
    path: String,
    source: std::io::Error,
}

/// The node's access log; `AccessLog::default()` is off.
#[derive(Default)]
pub struct AccessLog {
    /// `None`: off.
    on: Option<On>,
}

struct On {
    sampler: Sampler,
    sender: SyncSender<Message>,
    /// Lines dropped because the queue was full or the writer gone.
    dropped: AtomicU64,
    /// Lines the writer wrote (shared with it).
    written: Arc<AtomicU64>,
    /// The writer, until `close` joins it.
    writer: Mutex<Option<JoinHandle<()>>>,
}

enum Message {
    Line(Box<Entry>),
    /// Flush and stop; sent once by `close`.
    Close,
}

/// Which requests get a line: all, or an even share.
struct Sampler {
    /// `None`: every request.
    rate: Option<f64>,
    seen: AtomicU64,
}

impl Sampler {
    /// Request `n` is logged when `n·rate` crosses an integer, so a rate
    /// of 0.25 logs exactly every fourth request.
    fn take(&self) -> bool {
        match self.rate {
            None => true,
            Some(rate) => {
                let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
                ((n + 1.0) * rate).floor() > (n * rate).floor()
            }
        }
    }
}

/// What a sampled request's line is made of, captured before the request
/// moves on.
pub struct Pending {
    time: SystemTime,
    method: Method,
    version: Version,
    uri: Uri,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
}

/// One line's fields. Authorization and cookies are never captured.
pub struct Entry {
    pub time: SystemTime,
    pub client: IpAddr,
    pub method: Method,
    pub version: Version,
    pub uri: Uri,
    pub host: Option<HeaderValue>,
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
    pub revision: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub referer: Option<HeaderValue>,
}

impl Pending {
    /// Captures the request-side fields of `req`.
    pub fn of<B>(req: &Request<B>) -> Pending {
        let header = |name| req.headers().get(name).cloned();
        Pending {
            time: SystemTime::now(),
            method: req.method().clone(),
            version: req.version(),
            uri: req.uri().clone(),
            host: header(HOST),
            user_agent: header(USER_AGENT),
            referer: header(REFERER),
        }
    }

    /// The whole line, once the response is known.
    pub fn finish(
        self,
        client: IpAddr,
        status: u16,
        bytes: u64,
        duration: Duration,
        revision: Option<HeaderValue>,
    ) -> Entry {
        Entry {
            time: self.time,
            client,
            method: self.method,
            version: self.version,
            uri: self.uri,
            host: self.host,
            status,
            bytes,
            duration,
            revision,
            user_agent: self.user_agent,
            referer: self.referer,
        }
    }
}

impl AccessLog {
    /// Opens the output of `settings` and starts its writer (nothing when
    /// the log is off). `geoip` is the database countries come from.
    pub fn start(
        settings: &AccessLogSettings,
        geoip: Option<&Path>,
    ) -> Result<AccessLog, AccessLogError> {
        let rate = match settings.mode {
            AccessLogMode::Off => return Ok(AccessLog::default()),
            AccessLogMode::On => None,
            AccessLogMode::Sampled(rate) => Some(rate),
        };
        let output = match &settings.target {
            AccessLogTarget::Stdout => Output::stdout(),
            AccessLogTarget::File {
                path,
                max_bytes,
                keep,
            } => Output::file(path, *max_bytes, *keep).map_err(|source| AccessLogError {
                path: path.display().to_string(),
                source,
            })?,
        };
        // Without its database the log still runs, with no countries.
        let geo = geoip.and_then(|path| match GeoIp::open(path) {
            Ok(geo) => Some(geo),
            Err(e) => {
                warn!(error = %e, "access log without countries");
                None
            }
        });
        let (sender, receiver) = sync_channel(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            receiver,
            output,
            format: settings.format,
            geo,
            written: written.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run())
            .map_err(|source| AccessLogError {
                path: "(writer thread)".into(),
                source,
            })?;
        Ok(AccessLog {
            on: Some(On {
                sampler: Sampler {
                    rate,
                    seen: AtomicU64::new(0),
                },
                sender,
                dropped: AtomicU64::new(0),
                written,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Whether the request arriving now gets a line: false when off.
    pub fn sample(&self) -> bool {
        self.on.as_ref().is_some_and(|on| on.sampler.take())
    }

    /// Queues `entry`'s line; never waits (a full queue drops it).
    pub fn write(&self, entry: Entry) {
        let Some(on) = &self.on else { return };
        match on.sender.try_send(Message::Line(Box::new(entry))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                on.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether the log is on.
    pub fn is_on(&self) -> bool {
        self.on.is_some()
    }

    /// Lines written, and lines dropped for a full queue.
    pub fn counts(&self) -> (u64, u64) {
        self.on.as_ref().map_or((0, 0), |on| {
            (
                on.written.load(Ordering::Relaxed),
                on.dropped.load(Ordering::Relaxed),
            )
        })
    }

    /// Writes every queued line, flushes and stops the writer; lines
    /// offered afterwards are dropped. Idempotent.
    pub fn close(&self) {
        let Some(on) = &self.on else { return };
        let writer = on.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            // Blocks only while the queue is full, which the writer drains.
            let _ = on.sender.send(Message::Close);
            let _ = writer.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread's state.
struct Writer {
    receiver: Receiver<Message>,
    output: Output,
    format: AccessLogFormat,
    geo: Option<GeoIp>,
    written: Arc<AtomicU64>,
}

impl Writer {
    /// Writes lines until `Close` or every sender is gone. While lines keep
    /// coming it drains the queue and naps, so a request's send never has
    /// to wake it (a wake is a system call and a context switch per line);
    /// once a nap brought nothing it blocks until the next line.
    fn run(mut self) {
        let mut text = String::with_capacity(512);
        let mut geo_checked = Instant::now();
        let mut busy = false;
        loop {
            let message = match self.receiver.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Empty) => {
                    self.output.flush();
                    if busy {
                        busy = false;
                        std::thread::sleep(BUSY_NAP);
                        continue;
                    }
                    match self.receiver.recv() {
                        Ok(message) => message,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            busy = true;
            let entry = match message {
                Message::Line(entry) => entry,
                Message::Close => break,
            };
            if let Some(geo) = &self.geo
                && geo_checked.elapsed() >= GEO_RELOAD_CHECK
            {
                geo.reload_if_changed();
                geo_checked = Instant::now();
            }
            let country = self
                .geo
                .as_ref()
                .and_then(|geo| geo.locate(entry.client).country);
            text.clear();
            match self.format {
                AccessLogFormat::Json => line::json(&entry, country, &mut text),
                AccessLogFormat::Combined => line::combined(&entry, &mut text),
            }
            if self.output.write_line(&text) {
                self.written.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.output.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_logs_an_even_share() {
        let s = Sampler {
            rate: Some(0.25),
            seen: AtomicU64::new(0),
        };
        let taken: Vec<bool> = (0..8).map(|_| s.take()).collect();
        assert_eq!(
            taken,
            [false, false, false, true, false, false, false, true]
        );
        let s = Sampler {
            rate: Some(0.1),
            seen: AtomicU64::new(0),
        };
        assert_eq!((0..1000).filter(|_| s.take()).count(), 100);
    }

    #[test]
    fn off_logs_nothing_and_counts_nothing() {
        let log = AccessLog::default();
        assert!(!log.sample());
        assert_eq!(log.counts(), (0, 0));
        log.close();
    }
}
