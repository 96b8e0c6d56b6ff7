//! Progress of long steps on the operator's terminal: a line when a step
//! starts (`[london] upload: 48 MB to root@203.0.113.1`) and one when it
//! ends, with its time, on stderr, so stdout keeps only the answer (text,
//! or JSON with `--json`).

use std::io::Write;
use std::time::Instant;

use super::Step;

/// Reports the steps of one command.
#[derive(Debug, Default)]
pub struct Progress {
    /// Nothing is printed (tests of the steps themselves).
    pub quiet: bool,
}

/// A step under way; [`Running::done`] ends it.
pub struct Running<'a> {
    progress: &'a Progress,
    host: String,
    step: Step,
    started: Instant,
}

impl Progress {
    /// Announces `step` on `host`, saying what it does.
    pub fn start(&self, host: &str, step: Step, what: &str) -> Running<'_> {
        self.line(&format!("[{host}] {step}: {what}"));
        Running {
            progress: self,
            host: host.to_string(),
            step,
            started: Instant::now(),
        }
    }

    /// A line about `host` outside any step.
    pub fn note(&self, host: &str, text: &str) {
        self.line(&format!("[{host}] {text}"));
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{text}");
        }
    }
}

impl Running<'_> {
    /// Ends the step with what came of it.
    pub fn done(self, outcome: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        self.progress.line(&format!(
            "[{}] {}: {outcome} ({secs:.1} s)",
            self.host, self.step
        ));
    }
}
