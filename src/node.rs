//! Starting and stopping subsystems.
