/* Helpers the HTTP fixtures share to fill a response. Every buffer is
 * malloc'd: the generated bindings free the response after the host reads it. */
#ifndef MAKIATTO_FIXTURE_RESPOND_H
#define MAKIATTO_FIXTURE_RESPOND_H

#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Starts a response with room for `capacity` headers. */
static void response_start(http_response_t *ret, uint16_t status, size_t capacity) {
    ret->status = status;
    ret->headers.ptr = calloc(capacity ? capacity : 1, sizeof(http_tuple2_string_string_t));
    ret->headers.len = 0;
    ret->body.is_some = false;
}

static void response_header(http_response_t *ret, const char *name, const char *value) {
    http_tuple2_string_string_t *h = &ret->headers.ptr[ret->headers.len++];
    http_string_dup(&h->f0, name);
    http_string_dup(&h->f1, value);
}

static void response_header_n(http_response_t *ret, const char *name, const uint8_t *value, size_t len) {
    http_tuple2_string_string_t *h = &ret->headers.ptr[ret->headers.len++];
    http_string_dup(&h->f0, name);
    http_string_dup_n(&h->f1, (const char *)value, len);
}

static void response_body(http_response_t *ret, const void *bytes, size_t len) {
    ret->body.is_some = true;
    ret->body.val.ptr = malloc(len ? len : 1);
    memcpy(ret->body.val.ptr, bytes, len);
    ret->body.val.len = len;
}

static void response_text(http_response_t *ret, uint16_t status, const char *text) {
    response_start(ret, status, 1);
    response_header(ret, "content-type", "text/plain; charset=utf-8");
    response_body(ret, text, strlen(text));
}

#endif
