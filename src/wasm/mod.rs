//! The WebAssembly host: edge functions and file transformers on
//! wasmtime's component model with WASI 0.2.
//!
//! One engine per node (pooling allocator, epoch interruption); components
//! compiled once and cached on disk by the blake3 of their bytes
//! (`cache.rs`); each configured component pre-instantiated against its
//! world (`world.rs`) when a revision is prepared, and a fresh instance per
//! request or file, with its own memory limit, deadline and sandbox
//! (`sandbox.rs`: the revision read-only at `/`, only the configured
//! environment, outgoing HTTP to public addresses only, `outbound.rs`).

mod cache;
mod engine;
mod env;
mod function;
mod limits;
mod outbound;
mod sandbox;
mod transform;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Linker;

pub use function::{CallError, Function};
pub use limits::{Limits, MAX_REQUEST_BODY};
pub use transform::Transformer;
pub use world::Kind;
pub use world::http::{Request as FunctionRequest, Response as FunctionResponse};
pub use world::transform::{FileInfo, TransformResult};

use sandbox::Guest;
use world::Linked;

/// An error from wasmtime: an `anyhow` error, boxed so it can be a
/// source; shown with `{:#}`, which prints its whole chain.
pub type EngineError = Box<dyn std::error::Error + Send + Sync>;

/// Why a component could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("cannot start the WebAssembly engine: {0:#}")]
    Engine(#[source] EngineError),
    #[error("cannot start the WebAssembly engine: cannot start {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start the WebAssembly engine: a guest runner thread panicked")]
    RunnerPanicked,
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    NotComponent(String),
    #[error("does not compile: {0:#}")]
    Compile(#[source] EngineError),
    #[error(
        "imports something this node does not offer (WASI 0.2 and, for functions, wasi:http): {0:#}"
    )]
    Link(#[source] EngineError),
    #[error("is not a {world} component: {source:#}")]
    World {
        world: &'static str,
        source: EngineError,
    },
    #[error("cannot open the revision {path} for the guest: {source:#}")]
    Sandbox { path: PathBuf, source: EngineError },
    #[error("{file}:{line}: {message}")]
    EnvFile {
        file: String,
        line: usize,
        message: String,
    },
}

/// Who is running the guests: given to every call as its node context.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// What every function and transformer of the node shares.
struct Shared {
    engine: Engine,
    node: NodeInfo,
    /// Bounds the instances alive at once to what the pool holds.
    permits: Semaphore,
    function_calls: AtomicU64,
    transform_runs: AtomicU64,
}

/// Counters the admin `status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmStats {
    /// Function requests started since the node started.
    pub function_calls: u64,
    /// Transform calls (one per transform per file) since the node started.
    pub transform_runs: u64,
}

/// A configured module: its component bytes and how to run them.
pub struct ModuleSpec<'a> {
    /// Path in the served tree (names the module in errors and logs).
    pub path: &'a str,
    pub bytes: &'a [u8],
    /// The whole environment (env file and `env` merged).
    pub env: Vec<(String, String)>,
    pub limits: Limits,
}

/// The node's WebAssembly host.
pub struct Host {
    shared: Arc<Shared>,
    cache: cache::Cache,
    functions: Linker<Guest>,
    transforms: Linker<Guest>,
    /// Stops the epoch thread when the host goes.
    _ticker: engine::Ticker,
}

impl Host {
    /// Starts the engine; compiled components are cached under `dir`.
    pub fn new(dir: &Path, node: NodeInfo) -> Result<Host, WasmError> {
        let engine = engine::engine()?;
        let link_err = |e: wasmtime::Error| WasmError::Engine(e.into());
        let mut functions = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut functions).map_err(link_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut functions).map_err(link_err)?;
        let mut transforms = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut transforms).map_err(link_err)?;
        let ticker = engine::Ticker::start(&engine)?;
        Ok(Host {
            shared: Arc::new(Shared {
                engine,
                node,
                permits: Semaphore::new(limits::MAX_CONCURRENT),
                function_calls: AtomicU64::new(0),
                transform_runs: AtomicU64::new(0),
            }),
            cache: cache::Cache::open(dir)?,
            functions,
            transforms,
            _ticker: ticker,
        })
    }

    /// Checks that `bytes` are a component implementing `kind`'s world,
    /// compiling (and caching) them on the way.
    pub fn check(&self, kind: Kind, bytes: &[u8]) -> Result<(), WasmError> {
        self.linked(kind, bytes).map(|_| ())
    }

    fn linked(&self, kind: Kind, bytes: &[u8]) -> Result<(Linked, bool), WasmError> {
        world::check_header(bytes).map_err(WasmError::NotComponent)?;
        let component = self.cache.component(&self.shared.engine, bytes)?;
        let linker = match kind {
            Kind::Function => &self.functions,
            Kind::Transform => &self.transforms,
        };
        // A component that cannot open files needs no preopen per call.
        let reads_files = component
            .component_type()
            .imports(&self.shared.engine)
            .any(|(name, _)| name.starts_with("wasi:filesystem/"));
        Ok((world::link(linker, &component, kind)?, reads_files))
    }

    /// A function over the materialised revision at `revision`.
    pub fn function(
        &self,
        spec: ModuleSpec<'_>,
        methods: Vec<String>,
        revision: &Path,
    ) -> Result<Function, WasmError> {
        match self.linked(Kind::Function, spec.bytes)? {
            (Linked::Function(pre), reads_files) => Ok(Function::new(
                spec.path.to_string(),
                methods,
                pre,
                spec.env,
                spec.limits,
                reads_files.then(|| revision.to_path_buf()),
                self.shared.clone(),
            )),
            (Linked::Transform(_), _) => Err(WasmError::World {
                world: Kind::Function.world(),
                source: "linked as a transform".into(),
            }),
        }
    }

    /// A transformer over the materialised revision at `revision`.
    pub fn transformer(
        &self,
        spec: ModuleSpec<'_>,
        revision: &Path,
    ) -> Result<Transformer, WasmError> {
        match self.linked(Kind::Transform, spec.bytes)? {
            (Linked::Transform(pre), _) => Ok(Transformer::new(
                spec.path.to_string(),
                pre,
                spec.env,
                spec.limits,
                revision.to_path_buf(),
                self.shared.clone(),
            )),
            (Linked::Function(_), _) => Err(WasmError::World {
                world: Kind::Transform.world(),
                source: "linked as a function".into(),
            }),
        }
    }

    /// The node's counters.
    pub fn stats(&self) -> WasmStats {
        WasmStats {
            function_calls: self.shared.function_calls.load(Ordering::Relaxed),
            transform_runs: self.shared.transform_runs.load(Ordering::Relaxed),
        }
    }
}

/// The environment of a module: `env_file`'s text (named `file`), if any,
/// under the config's `env`.
pub fn environment(
    file: Option<(&str, &str)>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, WasmError> {
    let file_vars = match file {
        Some((name, text)) => env::parse(name, text)?,
        None => BTreeMap::new(),
    };
    Ok(env::merge(file_vars, env))
}

/// Limits of a function from its config values.
pub fn function_limits(timeout_ms: Option<u64>, max_memory_mb: Option<u64>) -> Limits {
    Limits::new(timeout_ms, max_memory_mb, limits::FUNCTION_TIMEOUT_MS)
}

/// Limits of a transform from its config values.
pub fn transform_limits(timeout_ms: Option<u64>, max_memory_mb: Option<u64>) -> Limits {
    Limits::new(timeout_ms, max_memory_mb, limits::TRANSFORM_TIMEOUT_MS)
}

/// The largest file a transform is given, in bytes.
pub fn transform_file_limit(max_file_size_kb: Option<u64>) -> u64 {
    max_file_size_kb
        .unwrap_or(limits::TRANSFORM_FILE_KB)
        .saturating_mul(1024)
}

/// Runs `work` to completion on a private single-thread runtime on its own
/// thread, so deploy code (synchronous, on blocking threads) can run guests
/// whatever runtime context it was called from.
pub fn block_on<F>(work: F) -> Result<F::Output, WasmError>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| WasmError::Thread {
                        what: "a runtime",
                        source,
                    })?;
                Ok(runtime.block_on(work))
            })
            .join()
            .unwrap_or_else(|_| Err(WasmError::RunnerPanicked))
    })
}
