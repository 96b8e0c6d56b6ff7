/* The smallest function: a fixed greeting. */
#include "respond.h"

void exports_http_handle_request(http_node_context_t *ctx, http_request_t *req, http_response_t *ret) {
    (void)ctx;
    (void)req;
    response_text(ret, 200, "hello from makiatto\n");
}
