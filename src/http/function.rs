//! Requests answered by an edge function: method check, bounded body,
//! the call, and the guest's answer turned into a response (a guest that
//! traps or runs out of time gets a 5xx; the node goes on serving).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{ALLOW, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tracing::warn;

use super::body::Body;
use super::serve::text;
use crate::metrics::HttpMetrics;
use crate::wasm::{CallError, Function, FunctionRequest, MAX_REQUEST_BODY};

/// Headers the server owns: a guest's values would break the framing.
const HOP_BY_HOP: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "trailer",
];

/// The answer of `function` to `req`.
pub async fn respond<B>(
    req: Request<B>,
    function: &Function,
    metrics: &HttpMetrics,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let method = req.method().as_str().to_string();
    if !function.allows(&method) {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        if let Ok(allow) = HeaderValue::from_str(&function.methods.join(", ")) {
            resp.headers_mut().insert(ALLOW, allow);
        }
        return resp;
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body over the {MAX_REQUEST_BODY}-byte limit of functions\n"),
            );
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "incomplete request body\n"),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = FunctionRequest {
        method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
    };
    metrics.function_calls.fetch_add(1, Ordering::Relaxed);
    match function.call(request).await {
        Ok(answer) => response(function, answer),
        Err(e @ CallError::Timeout(..)) => {
            metrics.function_timeouts.fetch_add(1, Ordering::Relaxed);
            warn!(function = %function.path, error = %e, "function stopped");
            text(
                StatusCode::GATEWAY_TIMEOUT,
                "the function ran out of time\n",
            )
        }
        Err(e) => {
            metrics.function_traps.fetch_add(1, Ordering::Relaxed);
            warn!(function = %function.path, error = %e, "function failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "the function failed\n")
        }
    }
}

/// The guest's answer as a response; an impossible status is a 502.
fn response(function: &Function, answer: crate::wasm::FunctionResponse) -> Response<Body> {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        warn!(function = %function.path, status = answer.status, "function returned an invalid status");
        return text(
            StatusCode::BAD_GATEWAY,
            "the function returned an invalid status\n",
        );
    };
    let mut resp = Response::new(match answer.body {
        Some(body) => Body::full(body),
        None => Body::Empty,
    });
    *resp.status_mut() = status;
    for (name, value) in answer.headers {
        if HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                resp.headers_mut().append(n, v);
            }
            _ => {
                warn!(function = %function.path, header = %name, "function returned an invalid header; dropped")
            }
        }
    }
    resp
}
