/* Transform that always traps, for on_error. */
#include <stdlib.h>

#include "transform.h"

bool exports_transform_transform(transform_node_context_t *ctx, transform_file_info_t *info,
                                 transform_list_u8_t *content, transform_transform_result_t *ret) {
    (void)ctx;
    (void)info;
    (void)content;
    (void)ret;
    abort();
}
