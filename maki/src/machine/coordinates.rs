//! Where a node is, for DNS to send each visitor to the nearest one:
//! `--lat/--lon` when given, else the node's own GeoIP database asked
//! about its public address (`makiatto locate` on the host), else unknown
//! (DNS then treats the node as equally near to everyone).

use std::net::IpAddr;

use super::login::Login;
use super::{MachineError, Step, paths};

/// The node's coordinates.
pub fn locate(
    host: &str,
    login: &Login,
    given: Option<(f64, f64)>,
    geoip: bool,
    public: Option<IpAddr>,
) -> Result<Option<(f64, f64)>, MachineError> {
    if given.is_some() {
        return Ok(given);
    }
    let (true, Some(ip)) = (geoip, public) else {
        return Ok(None);
    };
    let script = format!("/usr/bin/makiatto locate --db {} {ip}", paths::GEOIP);
    let ran = login.step(host, Step::Locate, &script, None)?;
    if !ran.ok {
        return Err(MachineError::new(
            host,
            Step::Locate,
            format!("the GeoIP database does not place {ip}: {}", ran.why()),
            "pass --lat and --lon (decimal degrees) for this node",
        ));
    }
    let mut words = ran.stdout.split_whitespace();
    match (
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
    ) {
        (Some(lat), Some(lon)) => Ok(Some((lat, lon))),
        _ => Err(MachineError::new(
            host,
            Step::Locate,
            format!("`makiatto locate` printed {:?}", ran.stdout.trim()),
            "pass --lat and --lon for this node",
        )),
    }
}
