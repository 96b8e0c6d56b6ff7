//! What a guest instance may touch: the revision's files read-only at `/`,
//! exactly the configured environment, clocks and random, and (for
//! functions) `wasi:http` through the SSRF guard. No sockets, no
//! arguments, no stdin; stdout and stderr go nowhere.

use std::path::Path;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::WasmError;
use super::limits::Limits;
use super::outbound::Outbound;

/// The store data of one guest instance.
pub struct Guest {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    /// Memory limit of this instance.
    pub limits: StoreLimits,
    outbound: Outbound,
}

impl Guest {
    /// A sandbox over `revision` (a materialised revision directory, or
    /// no files at all) with `env` as its whole environment.
    pub fn new(
        name: &str,
        revision: Option<&Path>,
        env: &[(String, String)],
        limits: &Limits,
    ) -> Result<Guest, WasmError> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(env);
        if let Some(revision) = revision {
            wasi.preopened_dir(revision, "/", FsPerms::ReadOnly)
                .map_err(|e| WasmError::Sandbox {
                    path: revision.to_path_buf(),
                    source: e.into(),
                })?;
        }
        Ok(Guest {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: limits.store_limits(),
            outbound: Outbound {
                function: name.to_string(),
            },
        })
    }

    /// The store one call runs in: memory limited, and trapping once its
    /// epoch deadline (`limits`' timeout) passes.
    pub fn into_store(self, engine: &Engine, limits: &Limits) -> Store<Guest> {
        let mut store = Store::new(engine, self);
        store.limiter(|g| &mut g.limits);
        store.set_epoch_deadline(limits.ticks());
        store.epoch_deadline_trap();
        store
    }
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Guest {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.outbound,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}
