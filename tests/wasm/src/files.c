/* Reads /index.html from the revision, then tries to leave the preopened
 * directory; reports both outcomes as text lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "respond.h"

/* Appends "label: <outcome>\n" for reading `path` to `out`. */
static size_t try_read(const char *label, const char *path, char *out, size_t used, size_t cap) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: refused (%s)\n", label, strerror(errno));
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: unreadable (%s)\n", label, strerror(errno));
    }
    buf[n] = 0;
    /* One line is enough to tell what was read. */
    char *nl = strchr(buf, '\n');
    if (nl) {
        *nl = 0;
    }
    return used + (size_t)snprintf(out + used, cap - used, "%s: read %s\n", label, buf);
}

void exports_http_handle_request(http_node_context_t *ctx, http_request_t *req, http_response_t *ret) {
    (void)ctx;
    (void)req;
    char out[2048];
    size_t used = 0;
    used = try_read("index", "/index.html", out, used, sizeof out);
    used = try_read("escape", "/../../etc/passwd", out, used, sizeof out);
    used = try_read("absolute", "/etc/passwd", out, used, sizeof out);
    response_start(ret, 200, 1);
    response_header(ret, "content-type", "text/plain; charset=utf-8");
    response_body(ret, out, used);
}
