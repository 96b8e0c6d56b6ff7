//! Compiled components, on disk under `wasm/compiled/<blake3>.cwasm` and
//! in memory, so a component is compiled once per node (at deploy time)
//! and a restart or a second revision using the same bytes only maps it.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::{info, warn};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::WasmError;

/// Components kept loaded in memory at most; beyond, the map starts over.
const MAX_LOADED: usize = 256;

/// The compiled-component cache of one node.
pub struct Cache {
    dir: PathBuf,
    /// Components loaded by this process, by the blake3 of their bytes.
    loaded: Mutex<HashMap<blake3::Hash, Component>>,
}

impl Cache {
    /// The cache in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Cache, WasmError> {
        fs::create_dir_all(dir).map_err(|source| WasmError::Io {
            context: "cannot create",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// The compiled form of `bytes`: from memory, from disk, or compiled now
    /// and stored.
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> Result<Component, WasmError> {
        let hash = blake3::hash(bytes);
        if let Some(c) = self.loaded().get(&hash) {
            return Ok(c.clone());
        }
        let file = self.dir.join(format!("{}.cwasm", hash.to_hex()));
        let component = match load(engine, &file) {
            Some(c) => c,
            None => {
                let c = Component::new(engine, bytes).map_err(|e| WasmError::Compile(e.into()))?;
                self.store(&file, &c);
                info!(hash = %&hash.to_hex()[..12], "component compiled");
                c
            }
        };
        let mut loaded = self.loaded();
        if loaded.len() >= MAX_LOADED {
            // Sites keep their own handles; forgetting only costs a later
            // load from disk.
            loaded.clear();
        }
        loaded.insert(hash, component.clone());
        Ok(component)
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, HashMap<blake3::Hash, Component>> {
        // A map of immutable values: a panic elsewhere cannot leave it torn.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the compiled form atomically; a failure only costs a later
    /// recompile.
    fn store(&self, file: &Path, component: &Component) {
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|bytes| {
                let tmp = file.with_extension(format!("tmp{}", std::process::id()));
                let mut out = fs::File::create(&tmp)?;
                out.write_all(&bytes)?;
                out.sync_all()?;
                fs::rename(&tmp, file)
            });
        if let Err(e) = result {
            warn!(file = %file.display(), error = %e, "cannot cache a compiled component");
        }
    }
}

/// A compiled component from `file`, if it is there and this engine can
/// use it (another wasmtime version or settings: recompile).
fn load(engine: &Engine, file: &Path) -> Option<Component> {
    if !file.is_file() {
        return None;
    }
    // SAFETY: the file is written only by `Cache::store` from wasmtime's
    // own serialisation, under a temporary name renamed into place, in
    // the node's private data directory; wasmtime also checks its header
    // and version before use.
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(c) => Some(c),
        Err(e) => {
            warn!(file = %file.display(), error = %format!("{e:#}"), "compiled component unusable; recompiling");
            None
        }
    }
}
