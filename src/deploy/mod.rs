//! Revision lifecycle.
