/* Allocates and touches memory until something stops it: the host's
 * memory limit must trap it. */
#include "respond.h"

/* Keeps the newest chunk reachable so the allocations are not optimised away. */
char *volatile bomb_last;

void exports_http_handle_request(http_node_context_t *ctx, http_request_t *req, http_response_t *ret) {
    (void)ctx;
    (void)req;
    for (;;) {
        char *chunk = malloc(1 << 20);
        if (!chunk) {
            break;
        }
        memset(chunk, 0xab, 1 << 20);
        bomb_last = chunk;
    }
    /* Reaching here means malloc failed gracefully instead of trapping. */
    response_text(ret, 200, "allocation failed without a trap\n");
}
