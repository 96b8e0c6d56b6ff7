//! One build at a time per repository, with a bounded line of waiting
//! pushes: a build is heavy, and two of one repository would race for its
//! cache directory. A push that finds the line full is refused at once.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Who holds and who waits for each repository's build slot.
#[derive(Default)]
pub struct Queue {
    /// Per repository: (building now, number waiting).
    slots: Mutex<HashMap<String, (bool, usize)>>,
    freed: Condvar,
}

/// The right to build one repository; dropping it lets the next push in.
pub struct Turn {
    queue: Arc<Queue>,
    repo: String,
}

/// The line for a repository is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub waiting: usize,
}

impl Queue {
    /// Waits for `repo`'s slot, unless `max_waiting` pushes already wait.
    pub fn turn(self: &Arc<Self>, repo: &str, max_waiting: usize) -> Result<Turn, QueueFull> {
        // The map holds plain counters: a panic elsewhere leaves them usable.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let entry = slots.entry(repo.to_string()).or_default();
        if entry.0 {
            if entry.1 >= max_waiting {
                return Err(QueueFull { waiting: entry.1 });
            }
            entry.1 += 1;
            loop {
                slots = self.freed.wait(slots).unwrap_or_else(|e| e.into_inner());
                let entry = slots.entry(repo.to_string()).or_default();
                if !entry.0 {
                    entry.0 = true;
                    entry.1 -= 1;
                    break;
                }
            }
        } else {
            entry.0 = true;
        }
        Ok(Turn {
            queue: self.clone(),
            repo: repo.to_string(),
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut slots = self.queue.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = slots.get_mut(&self.repo) {
            entry.0 = false;
            if entry.1 == 0 {
                slots.remove(&self.repo);
            }
        }
        drop(slots);
        self.queue.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_build_of_one_repository_waits_and_a_full_line_is_refused() {
        let queue = Arc::new(Queue::default());
        let first = queue.turn("site", 1).expect("the slot is free");
        // Another repository builds alongside.
        let other = queue
            .turn("other", 0)
            .expect("another repository's slot is free");
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.turn("site", 1).map(|_| ()))
        };
        // The waiter takes the only place in line; wait until it has.
        while queue.slots.lock().unwrap().get("site").map(|e| e.1) != Some(1) {
            std::thread::yield_now();
        }
        assert_eq!(queue.turn("site", 1).err(), Some(QueueFull { waiting: 1 }));
        drop(first);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        drop(other);
        assert!(queue.slots.lock().unwrap().is_empty());
    }
}
