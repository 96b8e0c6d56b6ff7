//! What `status` says about each domain's certificate, read from the store
//! (the same rows on every node): valid until when, being ordered by whom,
//! or failing with the CA's reason and the next retry.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{Store, StoreError};

/// A domain's certificate state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertStatus {
    /// `valid`, `renewing`, `ordering`, `failed` or `none`.
    pub state: &'static str,
    pub names: Vec<String>,
    pub not_after_ms: Option<u64>,
    /// The node ordering (or that last ordered) it.
    pub node: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
    /// When the next attempt is due, after a failure.
    pub retry_at_ms: Option<u64>,
    /// The order in flight at the CA, and the step it reached.
    pub order_url: Option<String>,
    pub stage: Option<String>,
}

/// The certificate state of `domain`.
pub fn of(store: &Store, domain: &str) -> Result<CertStatus, StoreError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // A preview host has no certificate of its own: its domain's
    // `*.preview` name covers it.
    let certs = store.certificates()?;
    let cert = match certs.iter().position(|c| c.domain == domain) {
        Some(i) => Some(certs[i].clone()),
        None => certs
            .into_iter()
            .find(|c| c.names.iter().any(|n| super::schedule::matches(n, domain))),
    };
    let order = store.cert_order(domain)?;
    let mut status = CertStatus {
        state: "none",
        names: Vec::new(),
        not_after_ms: None,
        node: None,
        attempts: 0,
        error: None,
        retry_at_ms: None,
        order_url: None,
        stage: None,
    };
    if let Some(cert) = &cert {
        status.names = cert.names.clone();
        status.not_after_ms = Some(cert.not_after_ms);
        status.node = Some(cert.issued_by.clone());
        status.state = if cert.not_after_ms > now {
            "valid"
        } else {
            "expired"
        };
    }
    if let Some(order) = order {
        let progress = store.order_progress(domain)?;
        status.order_url = progress.url;
        status.stage = progress.stage;
        status.node = Some(order.node.clone());
        status.attempts = order.attempts;
        status.error = order.last_error.clone();
        let failing = order.last_error.is_some() && order.attempts > 0;
        if failing {
            status.retry_at_ms = Some(order.since_ms);
        }
        status.state = match (cert.is_some(), failing) {
            (true, false) => "renewing",
            (true, true) => status.state,
            (false, false) => "ordering",
            (false, true) => "failed",
        };
    }
    Ok(status)
}

impl CertStatus {
    /// One line for the text `status`.
    pub fn line(&self) -> String {
        match self.state {
            "valid" | "renewing" | "expired" => {
                let mut line = format!(
                    "https: {} until {} ({} names)",
                    self.state,
                    rfc3339(self.not_after_ms.unwrap_or(0)),
                    self.names.len()
                );
                if let Some(e) = &self.error {
                    line.push_str(&format!("; renewal failing: {e}"));
                }
                line
            }
            "ordering" => format!(
                "https: ordering (node {}{})",
                self.node.as_deref().unwrap_or("?"),
                self.stage
                    .as_deref()
                    .map_or(String::new(), |s| format!(", {s}"))
            ),
            "failed" => format!(
                "https: none, served over HTTP; {} failed attempts, next at {}: {}",
                self.attempts,
                rfc3339(self.retry_at_ms.unwrap_or(0)),
                self.error.as_deref().unwrap_or("")
            ),
            _ => "https: none".into(),
        }
    }

    /// When the certificate expires, as RFC 3339 (`None`: no certificate).
    pub fn not_after(&self) -> Option<String> {
        self.not_after_ms.map(rfc3339)
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CertOrder, CertRow};

    #[test]
    fn a_refused_first_order_reads_as_failed_with_its_reason() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store =
            Store::open(&dir.path().join("state.sqlite"), "dev").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            of(&store, "example.com").map(|s| s.state).ok(),
            Some("none")
        );
        store
            .put_cert_order(&CertOrder {
                domain: "example.com".into(),
                node: "dev".into(),
                since_ms: 86_400_000,
                attempts: 2,
                last_error: Some("refused".into()),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let status = of(&store, "example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.state, "failed");
        assert_eq!(
            status.line(),
            "https: none, served over HTTP; 2 failed attempts, next at 1970-01-02T00:00:00Z: refused"
        );
        store
            .put_certificate(&CertRow {
                domain: "example.com".into(),
                names: vec!["example.com".into()],
                chain_pem: String::new(),
                key_pem: String::new(),
                not_before_ms: 0,
                not_after_ms: u64::MAX / 4,
                directory: "https://ca.test/".into(),
                issued_by: "dev".into(),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .finish_cert_order("example.com")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            of(&store, "example.com").map(|s| s.state).ok(),
            Some("valid")
        );
    }
}
