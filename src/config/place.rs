//! Who a node is and where it stands: its name, public addresses and
//! coordinates. node.toml states it (for this node and its `[[nodes]]`),
//! the node table stores it, and a joining node sends it, all as this one
//! value, so the three can never disagree on what a node's place is.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::address::{ipv4, ipv6};
use super::diagnostic::Source;
use super::raw::RawPeer;
use super::{ConfigError, names};

/// A node's name, public addresses and coordinates. In JSON (join
/// messages) the fields are flat: `name`, `ipv4`, `ipv6`, `latitude`,
/// `longitude`, addresses as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlace {
    /// `[a-z0-9-]{1,63}`, unique in the cluster.
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// Decimal degrees; both coordinates or neither.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Checks one `[[nodes]]` entry and that its name is new.
pub(super) fn peer(
    src: Source<'_>,
    raw: &Spanned<RawPeer>,
    seen: &mut BTreeMap<String, usize>,
) -> Result<NodePlace, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let Some(name) = &raw.name else {
        return Err(src.at(
            table,
            "missing field \"name\" in [[nodes]]; add the other node's name, e.g. name = \"tokyo\"",
        ));
    };
    let name_text = names::node_name(name.get_ref()).map_err(|m| src.at(name.span(), m))?;
    if let Some(line) = seen.get(&name_text) {
        return Err(src.at(
            name.span(),
            format!("node {name_text:?} is declared twice (first at line {line}); node names must be unique"),
        ));
    }
    seen.insert(name_text.clone(), src.line_of(&name.span()));
    let ipv4 = ipv4(src, &raw.ipv4, "ipv4")?;
    let ipv6 = ipv6(src, &raw.ipv6, "ipv6")?;
    if ipv4.is_none() && ipv6.is_none() {
        return Err(src.at(
            table,
            format!("node {name_text:?} has no address; add ipv4 = \"...\" and/or ipv6 = \"...\""),
        ));
    }
    let (latitude, longitude) = coordinates(src, &raw.latitude, &raw.longitude)?;
    Ok(NodePlace {
        name: name_text,
        ipv4,
        ipv6,
        latitude,
        longitude,
    })
}

/// Latitude and longitude in decimal degrees: both or neither, in range.
pub(super) fn coordinates(
    src: Source<'_>,
    latitude: &Option<Spanned<f64>>,
    longitude: &Option<Spanned<f64>>,
) -> Result<(Option<f64>, Option<f64>), ConfigError> {
    for (field, value, limit) in [
        ("latitude", latitude, 90.0),
        ("longitude", longitude, 180.0),
    ] {
        if let Some(v) = value
            && !(-limit..=limit).contains(v.get_ref())
        {
            return Err(src.at(
                v.span(),
                format!(
                    "{field} {} is out of range; use decimal degrees from -{limit} to {limit}",
                    v.get_ref()
                ),
            ));
        }
    }
    match (latitude, longitude) {
        (Some(lat), Some(lon)) => Ok((Some(*lat.get_ref()), Some(*lon.get_ref()))),
        (None, None) => Ok((None, None)),
        (Some(lat), None) => Err(src.at(
            lat.span(),
            "latitude is set without longitude; set both (decimal degrees) or neither",
        )),
        (None, Some(lon)) => Err(src.at(
            lon.span(),
            "longitude is set without latitude; set both (decimal degrees) or neither",
        )),
    }
}
