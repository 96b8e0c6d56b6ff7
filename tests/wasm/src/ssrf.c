/* Tries outgoing HTTP requests to every host[:port] listed in the query
 * (comma-separated) and reports, one line per target, whether the host
 * refused it, it failed otherwise, or it was answered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssrf.h"

/* Appends the outcome of GET http://<target>/ to out. */
static size_t attempt(const char *target, char *out, size_t used, size_t cap) {
    wasi_http_types_own_outgoing_request_t req =
        wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
    wasi_http_types_borrow_outgoing_request_t b = wasi_http_types_borrow_outgoing_request(req);
    wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
    wasi_http_types_method_outgoing_request_set_scheme(b, &scheme);
    ssrf_string_t authority;
    ssrf_string_set(&authority, target);
    if (!wasi_http_types_method_outgoing_request_set_authority(b, &authority)) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: invalid authority\n", target);
    }
    ssrf_string_t path;
    ssrf_string_set(&path, "/");
    wasi_http_types_method_outgoing_request_set_path_with_query(b, &path);

    wasi_http_outgoing_handler_own_future_incoming_response_t future;
    wasi_http_outgoing_handler_error_code_t err;
    if (!wasi_http_outgoing_handler_handle(req, NULL, &future, &err)) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: %s (code %d)\n", target,
                                       err.tag == WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_IP_PROHIBITED
                                           ? "refused" : "failed", err.tag);
    }
    wasi_http_types_borrow_future_incoming_response_t fb =
        wasi_http_types_borrow_future_incoming_response(future);
    wasi_http_types_result_result_own_incoming_response_error_code_void_t result;
    while (!wasi_http_types_method_future_incoming_response_get(fb, &result)) {
        wasi_http_types_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(fb);
        wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
        wasi_io_poll_pollable_drop_own(ready);
    }
    if (result.is_err) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: failed (no response)\n", target);
    }
    if (result.val.ok.is_err) {
        int tag = result.val.ok.val.err.tag;
        return used + (size_t)snprintf(out + used, cap - used, "%s: %s (code %d)\n", target,
                                       tag == WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_IP_PROHIBITED
                                           ? "refused" : "failed", tag);
    }
    wasi_http_types_status_code_t status = wasi_http_types_method_incoming_response_status(
        wasi_http_types_borrow_incoming_response(result.val.ok.val.ok));
    return used + (size_t)snprintf(out + used, cap - used, "%s: reached (status %d)\n", target, status);
}

void exports_ssrf_handle_request(ssrf_node_context_t *ctx, ssrf_request_t *req, ssrf_response_t *ret) {
    (void)ctx;
    char query[512];
    size_t qlen = req->query.len < sizeof query - 1 ? req->query.len : sizeof query - 1;
    memcpy(query, req->query.ptr, qlen);
    query[qlen] = 0;
    char out[4096];
    size_t used = 0;
    for (char *target = strtok(query, ","); target; target = strtok(NULL, ",")) {
        used = attempt(target, out, used, sizeof out);
    }
    ret->status = 200;
    ret->headers.ptr = calloc(1, sizeof(ssrf_tuple2_string_string_t));
    ret->headers.len = 1;
    ssrf_string_dup(&ret->headers.ptr[0].f0, "content-type");
    ssrf_string_dup(&ret->headers.ptr[0].f1, "text/plain; charset=utf-8");
    ret->body.is_some = true;
    ret->body.val.ptr = malloc(used ? used : 1);
    memcpy(ret->body.val.ptr, out, used);
    ret->body.val.len = used;
}
