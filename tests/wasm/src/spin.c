/* Never returns: the host must stop it at its timeout. */
#include "respond.h"

void exports_http_handle_request(http_node_context_t *ctx, http_request_t *req, http_response_t *ret) {
    (void)ctx;
    (void)req;
    volatile unsigned long counter = 0;
    for (;;) {
        counter++;
    }
    response_text(ret, 200, "unreachable\n");
}
