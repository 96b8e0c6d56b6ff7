//! state.sqlite.
