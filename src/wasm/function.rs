//! An edge function: a component pre-instantiated once per revision, and a
//! fresh instance per request, bounded in time, memory and concurrency.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::warn;

use super::limits::Limits;
use super::sandbox::Guest;
use super::world::http::{HttpPre, NodeContext, Request, Response};
use super::{Shared, WasmError};

/// Why a call produced no response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0} exceeded its time limit of {1} ms")]
    Timeout(String, u128),
    #[error("{0} failed: {1:#}")]
    Trap(String, #[source] super::EngineError),
    #[error("{0}: cannot set up the sandbox: {1}")]
    Setup(String, #[source] WasmError),
    #[error("{0}: cannot set up the sandbox: {1}")]
    Closed(String, #[source] tokio::sync::AcquireError),
}

/// One `[[domain.functions]]` entry, ready to answer requests.
pub struct Function {
    /// The component's path in the served tree, for logs and errors.
    pub path: String,
    /// Allowed methods, uppercase; empty allows every method.
    pub methods: Vec<String>,
    pre: HttpPre<Guest>,
    env: Vec<(String, String)>,
    limits: Limits,
    /// The materialised revision, preopened read-only at `/`; `None` when
    /// the component imports no file system.
    revision: Option<PathBuf>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("path", &self.path)
            .finish()
    }
}

impl Function {
    pub(super) fn new(
        path: String,
        methods: Vec<String>,
        pre: HttpPre<Guest>,
        env: Vec<(String, String)>,
        limits: Limits,
        revision: Option<PathBuf>,
        shared: Arc<Shared>,
    ) -> Function {
        Function {
            path,
            methods,
            pre,
            env,
            limits,
            revision,
            shared,
        }
    }

    /// Whether `method` may call this function (HEAD wherever GET may).
    pub fn allows(&self, method: &str) -> bool {
        let listed = |m: &str| self.methods.iter().any(|x| x == m);
        self.methods.is_empty() || listed(method) || (method == "HEAD" && listed("GET"))
    }

    /// Runs the function on a fresh instance.
    pub async fn call(&self, request: Request) -> Result<Response, CallError> {
        // Closed only if the host is gone, and then nothing runs anyway.
        let _permit = self
            .shared
            .permits
            .acquire()
            .await
            .map_err(|e| CallError::Closed(self.path.clone(), e))?;
        self.shared.function_calls.fetch_add(1, Ordering::Relaxed);
        let guest = Guest::new(
            &self.path,
            self.revision.as_deref(),
            &self.env,
            &self.limits,
        )
        .map_err(|e| CallError::Setup(self.path.clone(), e))?;
        let mut store = guest.into_store(&self.shared.engine, &self.limits);
        let node = NodeContext {
            name: self.shared.node.name.clone(),
            latitude: self.shared.node.latitude,
            longitude: self.shared.node.longitude,
        };
        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .call_handle_request(&mut store, &node, &request)
                .await
        };
        // The epoch stops guest code; this also bounds time spent waiting in
        // host calls (an outgoing request), where the epoch does not reach.
        let wall = self.limits.timeout + super::limits::TICK * 4;
        match tokio::time::timeout(wall, run).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(classify(&self.path, &self.limits, e)),
            Err(_) => Err(CallError::Timeout(
                self.path.clone(),
                self.limits.timeout.as_millis(),
            )),
        }
    }
}

/// A failed call: out of time, or any other trap.
pub(super) fn classify(path: &str, limits: &Limits, e: wasmtime::Error) -> CallError {
    if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
        return CallError::Timeout(path.to_string(), limits.timeout.as_millis());
    }
    let message = format!("{e:#}");
    warn!(module = path, error = %message, "guest trapped");
    CallError::Trap(path.to_string(), e.into())
}
