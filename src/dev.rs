//! Dev mode.
