//! The wasmtime engine every component of the node runs on: Cranelift,
//! the component model, a pooling allocator sized for the node's bounded
//! concurrency, and epoch interruption driven by one ticker thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::WasmError;
use super::limits::{MAX_CONCURRENT, MAX_MEMORY_MB, TICK};

/// Instances the pool holds at once: every concurrent call plus room for
/// deploy-time transforms and checks.
const POOL_INSTANCES: u32 = MAX_CONCURRENT as u32 + 32;

/// Builds the node's engine.
pub fn engine() -> Result<Engine, WasmError> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        // A C component with the WASI adapter holds a handful of core
        // instances and two memories; leave room for bigger toolchains.
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size((MAX_MEMORY_MB as usize) << 20)
        // A fresh instance per request: resetting a small guest's pages in
        // place costs less than returning them to the kernel and faulting
        // them back in, and batched decommits flush the TLB less often.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10)
        .decommit_batch_size(32);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| WasmError::Engine(e.into()))
}

/// Advances the engine's epoch every [`TICK`] until dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> Result<Ticker, WasmError> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|source| WasmError::Thread {
                what: "the epoch thread",
                source,
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
