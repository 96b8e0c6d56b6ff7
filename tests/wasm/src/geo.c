/* Reports the node context: which node answered and where it is. */
#include <stdio.h>

#include "respond.h"

void exports_http_handle_request(http_node_context_t *ctx, http_request_t *req, http_response_t *ret) {
    (void)req;
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"node\":\"%.*s\",\"latitude\":%.6f,\"longitude\":%.6f}\n",
                     (int)ctx->name.len, (const char *)ctx->name.ptr,
                     ctx->latitude, ctx->longitude);
    response_start(ret, 200, 1);
    response_header(ret, "content-type", "application/json");
    response_body(ret, body, (size_t)n);
}
