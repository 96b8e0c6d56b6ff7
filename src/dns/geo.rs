//! Client location from an MMDB city database (GeoLite2-City, DB-IP City
//! Lite), reloaded when the file changes so a monthly database update needs
//! no restart. Without a database every location is unknown, which
//! selection answers with every healthy node.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use maxminddb::{PathElement, Reader};
use serde::Deserialize;
use tracing::{info, warn};

use crate::shutdown::Shutdown;

/// How often the database file is checked for replacement.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Where an address is, as far as the database knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// (latitude, longitude) in degrees; `None` when the database has none.
    pub coordinates: Option<(f64, f64)>,
    /// Prefix length of the database network holding the address: every
    /// address in it gets the same answer (the ECS scope). `None` without a
    /// database.
    pub prefix: Option<u8>,
    /// ISO 3166 country code, when the database has one (for metrics).
    pub country: Option<[u8; 2]>,
}

impl Location {
    /// Nothing known.
    pub const UNKNOWN: Location = Location {
        coordinates: None,
        prefix: None,
        country: None,
    };
}

/// The `location` map of a city record; other fields are skipped unread.
#[derive(Deserialize)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the GeoIP database {path}: {source}")]
pub struct GeoError {
    path: PathBuf,
    source: maxminddb::MaxMindDbError,
}

/// The current database, swapped whole on reload.
pub struct GeoIp {
    path: Option<PathBuf>,
    reader: ArcSwapOption<Reader<Vec<u8>>>,
    /// Modification time and size of the file last loaded, to notice
    /// replacement without rereading it.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl GeoIp {
    /// A locator that knows nothing.
    pub fn none() -> GeoIp {
        GeoIp {
            path: None,
            reader: ArcSwapOption::empty(),
            stamp: Mutex::new(None),
        }
    }

    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<GeoIp, GeoError> {
        let geo = GeoIp {
            path: Some(path.to_path_buf()),
            reader: ArcSwapOption::empty(),
            stamp: Mutex::new(None),
        };
        geo.load()?;
        Ok(geo)
    }

    fn load(&self) -> Result<(), GeoError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let stamp = file_stamp(path);
        let reader = Reader::open_readfile(path).map_err(|source| GeoError {
            path: path.clone(),
            source,
        })?;
        self.reader.store(Some(Arc::new(reader)));
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        Ok(())
    }

    /// Reloads the database if its file changed; returns whether it did. A
    /// file that fails to load leaves the previous database in use.
    pub fn reload_if_changed(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let now = file_stamp(path);
        let before = *self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_none() || now == before {
            return false;
        }
        match self.load() {
            Ok(()) => {
                info!(path = %path.display(), "GeoIP database reloaded");
                true
            }
            Err(e) => {
                warn!(error = %e, "keeping the previous GeoIP database");
                // Do not retry a broken file every few seconds; retry when
                // it changes again.
                *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = now;
                false
            }
        }
    }

    /// Where `ip` is.
    pub fn locate(&self, ip: IpAddr) -> Location {
        let guard = self.reader.load();
        let Some(reader) = guard.as_deref() else {
            return Location::UNKNOWN;
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let Ok(found) = reader.lookup(ip) else {
            return Location::UNKNOWN;
        };
        let prefix = found.network().ok().map(|n| n.prefix());
        let coordinates = found
            .decode_path::<Coordinates>(&[PathElement::Key("location")])
            .ok()
            .flatten()
            .and_then(|c| Some((c.latitude?, c.longitude?)))
            .filter(|(lat, lon)| lat.is_finite() && lon.is_finite());
        // Borrowed from the database: no allocation per query.
        let country = found
            .decode_path::<&str>(&[PathElement::Key("country"), PathElement::Key("iso_code")])
            .ok()
            .flatten()
            .and_then(|code| <[u8; 2]>::try_from(code.as_bytes()).ok());
        Location {
            coordinates,
            prefix,
            country,
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Checks the database file every few seconds until shutdown, calling
/// `reloaded` after each successful reload.
pub async fn watch(geo: Arc<GeoIp>, mut shutdown: Shutdown, reloaded: impl Fn()) {
    if geo.path.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let geo = geo.clone();
        let changed = tokio::task::spawn_blocking(move || geo.reload_if_changed())
            .await
            .unwrap_or(false);
        if changed {
            reloaded();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The GeoIP test database kept with the tests (`tests/fixtures/geoip/`).
    pub(crate) fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip/GeoLite2-City-Test.mmdb")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn fixture_addresses_are_located_with_their_network_prefix() {
        let geo = GeoIp::open(&fixture()).unwrap_or_else(|e| panic!("{e}"));
        let london = geo.locate(ip("81.2.69.142"));
        assert_eq!(london.coordinates, Some((51.5142, -0.0931)));
        assert_eq!(london.prefix, Some(31));
        let japan = geo.locate(ip("2001:218::1"));
        assert_eq!(japan.coordinates, Some((35.68536, 139.75309)));
        assert_eq!(japan.prefix, Some(32));
        // IPv4-mapped IPv6 (a dual-stack socket's view) is looked up as IPv4.
        assert_eq!(geo.locate(ip("::ffff:81.2.69.142")), london);
    }

    #[test]
    fn unknown_addresses_have_no_coordinates() {
        let geo = GeoIp::open(&fixture()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(geo.locate(ip("127.0.0.1")).coordinates, None);
        assert_eq!(GeoIp::none().locate(ip("81.2.69.142")), Location::UNKNOWN);
    }

    #[test]
    fn a_replaced_file_is_reloaded_and_a_broken_one_ignored() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("city.mmdb");
        std::fs::copy(fixture(), &path).unwrap_or_else(|e| panic!("{e}"));
        let geo = GeoIp::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!geo.reload_if_changed());
        std::fs::write(&path, b"not a database, and a different size")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!geo.reload_if_changed());
        // The previous database is still answering.
        assert!(geo.locate(ip("81.2.69.142")).coordinates.is_some());
        std::fs::copy(fixture(), &path).unwrap_or_else(|e| panic!("{e}"));
        assert!(geo.reload_if_changed());
    }
}
