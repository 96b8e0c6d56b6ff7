/* Transform, second in a chain: appends a comment saying whether the file
 * it received already carried the banner, proving the order of the chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform.h"

static int contains(const uint8_t *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

bool exports_transform_transform(transform_node_context_t *ctx, transform_file_info_t *info,
                                 transform_list_u8_t *content, transform_transform_result_t *ret) {
    (void)info;
    char stamp[256];
    int slen = snprintf(stamp, sizeof stamp, "<!-- stamped on %.*s; banner before me: %s -->\n",
                        (int)ctx->name.len, (const char *)ctx->name.ptr,
                        contains(content->ptr, content->len, "class=\"banner\"") ? "yes" : "no");
    if (slen < 0 || (size_t)slen >= sizeof stamp) {
        return false;
    }
    size_t len = content->len + (size_t)slen;
    uint8_t *out = malloc(len);
    memcpy(out, content->ptr, content->len);
    memcpy(out + content->len, stamp, (size_t)slen);
    ret->content.ptr = out;
    ret->content.len = len;
    ret->mime_type.is_some = false;
    ret->headers.ptr = NULL;
    ret->headers.len = 0;
    return true;
}
