//! The mesh: how nodes reach each other and stay in agreement.
//!
//! Every node runs a userspace WireGuard interface ([`wireguard`]) holding
//! a private mesh prefix (IPv4 and ULA IPv6); every other node is a peer,
//! reached at its public address and WireGuard port. Everything nodes say
//! to each other (joining, replication of the store's rows, content sync
//! by blake3 tree diff, health probes) travels inside that tunnel, over the
//! mesh RPC port, so WireGuard alone provides identity and encryption.

pub mod wireguard;
