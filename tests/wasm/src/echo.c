/* Sends back what it was sent: the body as the body, the method, path,
 * query and each request header as x-echo-* headers, and the GREETING and
 * FROM_FILE environment variables as x-env-* headers. */
#include <stdio.h>

#include "respond.h"

void exports_http_handle_request(http_node_context_t *ctx, http_request_t *req, http_response_t *ret) {
    (void)ctx;
    response_start(ret, 200, req->headers.len + 6);
    response_header(ret, "content-type", "application/octet-stream");
    response_header_n(ret, "x-echo-method", req->method.ptr, req->method.len);
    response_header_n(ret, "x-echo-path", req->path.ptr, req->path.len);
    response_header_n(ret, "x-echo-query", req->query.ptr, req->query.len);
    for (size_t i = 0; i < req->headers.len; i++) {
        http_tuple2_string_string_t *h = &req->headers.ptr[i];
        char name[256];
        int n = snprintf(name, sizeof name, "x-echo-h-%.*s", (int)h->f0.len, (const char *)h->f0.ptr);
        if (n > 0 && (size_t)n < sizeof name) {
            response_header_n(ret, name, h->f1.ptr, h->f1.len);
        }
    }
    const char *greeting = getenv("GREETING");
    const char *from_file = getenv("FROM_FILE");
    response_header(ret, "x-env-greeting", greeting ? greeting : "(unset)");
    response_header(ret, "x-env-from-file", from_file ? from_file : "(unset)");
    response_body(ret, req->body.ptr, req->body.len);
}
