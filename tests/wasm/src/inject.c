/* Transform: puts a banner (the BANNER environment variable) before
 * </body> of HTML files and marks them with an x-injected header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform.h"

bool exports_transform_transform(transform_node_context_t *ctx, transform_file_info_t *info,
                                 transform_list_u8_t *content, transform_transform_result_t *ret) {
    (void)ctx;
    if (info->mime_type.len != 9 || memcmp(info->mime_type.ptr, "text/html", 9) != 0) {
        return false;
    }
    const char *text = getenv("BANNER");
    if (!text) {
        text = "banner";
    }
    char banner[512];
    int blen = snprintf(banner, sizeof banner, "<p class=\"banner\">%s</p>", text);
    if (blen < 0 || (size_t)blen >= sizeof banner) {
        return false;
    }
    /* Insert before the last "</body>", or append when there is none. */
    size_t at = content->len;
    for (size_t i = content->len; i >= 7; i--) {
        if (memcmp(content->ptr + i - 7, "</body>", 7) == 0) {
            at = i - 7;
            break;
        }
    }
    size_t len = content->len + (size_t)blen;
    uint8_t *out = malloc(len);
    memcpy(out, content->ptr, at);
    memcpy(out + at, banner, (size_t)blen);
    memcpy(out + at + blen, content->ptr + at, content->len - at);
    ret->content.ptr = out;
    ret->content.len = len;
    ret->mime_type.is_some = false;
    ret->headers.ptr = calloc(1, sizeof(transform_tuple2_string_string_t));
    ret->headers.len = 1;
    transform_string_dup(&ret->headers.ptr[0].f0, "x-injected");
    transform_string_dup(&ret->headers.ptr[0].f1, "banner");
    return true;
}
