//! Resource limits set on the sandbox's first process, so every process of
//! the build inherits them: address space, processes, file size, no core
//! dumps. The wall-clock limit is the runner's, not the kernel's.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::config::BuildLimits;

const MIB: u64 = 1024 * 1024;

/// The kernel limits derived from the node's `[build]` table.
#[derive(Debug, Clone, Copy)]
pub struct Rlimits {
    address_space: u64,
    processes: u64,
    file_size: u64,
}

impl Rlimits {
    pub fn of(limits: &BuildLimits) -> Rlimits {
        Rlimits {
            address_space: limits.memory_mb.saturating_mul(MIB),
            processes: limits.max_processes,
            file_size: limits.max_output_mb.saturating_mul(MIB),
        }
    }

    /// Sets the limits in the child before it runs bubblewrap, and lets
    /// `inherit` (directory descriptors bubblewrap binds) cross the exec.
    pub fn apply(self, command: &mut Command, inherit: Vec<RawFd>) {
        // SAFETY: the closure runs between fork and exec and calls only
        // setrlimit and fcntl, which are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                set(libc::RLIMIT_AS as i32, self.address_space)?;
                set(libc::RLIMIT_NPROC as i32, self.processes)?;
                set(libc::RLIMIT_FSIZE as i32, self.file_size)?;
                set(libc::RLIMIT_CORE as i32, 0)?;
                for fd in &inherit {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
}

fn set(resource: i32, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(resource as _, &limit) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
