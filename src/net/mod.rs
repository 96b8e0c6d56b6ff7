//! Facts about network addresses that more than one subsystem relies on.
//!
//! `address.rs` decides which addresses count as public: the SSRF guard
//! of functions' outgoing HTTP (`wasm/outbound.rs`) and of proxy rules
//! (`http/proxy/`) both ask it, so the two can never disagree.

pub mod address;

pub use address::is_public;
