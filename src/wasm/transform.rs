//! A file transformer: one call per file, at deploy time, on a fresh
//! instance with the same limits and sandbox as a function (no outgoing
//! HTTP: the transform linker does not offer it).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::function::{CallError, classify};
use super::limits::Limits;
use super::sandbox::Guest;
use super::world::transform::{FileInfo, NodeContext, TransformPre, TransformResult};

/// One `[[domain.transforms]]` entry, ready to run.
pub struct Transformer {
    /// The component's path in the served tree.
    pub path: String,
    pre: TransformPre<Guest>,
    env: Vec<(String, String)>,
    limits: Limits,
    /// The revision being deployed (untransformed), read-only at `/`.
    revision: PathBuf,
    shared: Arc<Shared>,
}

impl Transformer {
    pub(super) fn new(
        path: String,
        pre: TransformPre<Guest>,
        env: Vec<(String, String)>,
        limits: Limits,
        revision: PathBuf,
        shared: Arc<Shared>,
    ) -> Transformer {
        Transformer {
            path,
            pre,
            env,
            limits,
            revision,
            shared,
        }
    }

    /// Transforms one file; `None` leaves it as it is.
    pub async fn apply(
        &self,
        info: FileInfo,
        content: Vec<u8>,
    ) -> Result<Option<TransformResult>, CallError> {
        self.shared.transform_runs.fetch_add(1, Ordering::Relaxed);
        let guest = Guest::new(&self.path, Some(&self.revision), &self.env, &self.limits)
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
                .call_transform(&mut store, &node, &info, &content)
                .await
        };
        let wall = self.limits.timeout + super::limits::TICK * 4;
        match tokio::time::timeout(wall, run).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(classify(&self.path, &self.limits, e)),
            Err(_) => Err(CallError::Timeout(
                self.path.clone(),
                self.limits.timeout.as_millis(),
            )),
        }
    }
}
