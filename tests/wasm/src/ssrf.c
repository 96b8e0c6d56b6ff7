/* Tries outgoing HTTP requests to every host[:port] listed in the query
 * (comma-separated) and reports, one line per target, whether the host
 * refused it, it failed otherwise, or it was answered. A target written
 * tcp:PORT is a raw TCP connection to 127.0.0.1:PORT instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssrf.h"

/* Appends the outcome of GET http://<target>/ to out. */
static size_t attempt(const char *target, char *out, size_t used, size_t cap) {
    wasi_http_types_own_outgoing_request_t req =
        wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
    wasi_http_types_borrow_outgoing_request_t b = wasi_http_types_borrow_outgoing_request(req);
    wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
    wasi_http_types_method_outgoing_request_set_scheme(b, &scheme);
    ssrf_string_t authority;
    ssrf_string_set(&authority, target);
    if (!wasi_http_types_method_outgoing_request_set_authority(b, &authority)) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: invalid authority\n", target);
    }
    ssrf_string_t path;
    ssrf_string_set(&path, "/");
    wasi_http_types_method_outgoing_request_set_path_with_query(b, &path);

    wasi_http_outgoing_handler_own_future_incoming_response_t future;
    wasi_http_outgoing_handler_error_code_t err;
    if (!wasi_http_outgoing_handler_handle(req, NULL, &future, &err)) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: %s (code %d)\n", target,
                                       err.tag == WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_IP_PROHIBITED
                                           ? "refused" : "failed", err.tag);
    }
    wasi_http_types_borrow_future_incoming_response_t fb =
        wasi_http_types_borrow_future_incoming_response(future);
    wasi_http_types_result_result_own_incoming_response_error_code_void_t result;
    while (!wasi_http_types_method_future_incoming_response_get(fb, &result)) {
        wasi_http_types_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(fb);
        wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
        wasi_io_poll_pollable_drop_own(ready);
    }
    if (result.is_err) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: failed (no response)\n", target);
    }
    if (result.val.ok.is_err) {
        int tag = result.val.ok.val.err.tag;
        return used + (size_t)snprintf(out + used, cap - used, "%s: %s (code %d)\n", target,
                                       tag == WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_IP_PROHIBITED
                                           ? "refused" : "failed", tag);
    }
    wasi_http_types_status_code_t status = wasi_http_types_method_incoming_response_status(
        wasi_http_types_borrow_incoming_response(result.val.ok.val.ok));
    return used + (size_t)snprintf(out + used, cap - used, "%s: reached (status %d)\n", target, status);
}

/* Appends the outcome of a raw TCP connection to 127.0.0.1:port to out. */
static size_t attempt_tcp(const char *target, uint16_t port, char *out, size_t used, size_t cap) {
    wasi_sockets_tcp_create_socket_own_tcp_socket_t sock;
    wasi_sockets_network_error_code_t err;
    if (!wasi_sockets_tcp_create_socket_create_tcp_socket(WASI_SOCKETS_NETWORK_IP_ADDRESS_FAMILY_IPV4, &sock, &err)) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: refused (socket error %d)\n", target, err);
    }
    wasi_sockets_tcp_borrow_tcp_socket_t b = wasi_sockets_tcp_borrow_tcp_socket(sock);
    wasi_sockets_instance_network_own_network_t net = wasi_sockets_instance_network_instance_network();
    wasi_sockets_network_ip_socket_address_t addr = {.tag = WASI_SOCKETS_NETWORK_IP_SOCKET_ADDRESS_IPV4};
    addr.val.ipv4.port = port;
    addr.val.ipv4.address.f0 = 127;
    addr.val.ipv4.address.f3 = 1;
    if (!wasi_sockets_tcp_method_tcp_socket_start_connect(b, wasi_sockets_network_borrow_network(net), &addr, &err)) {
        return used + (size_t)snprintf(out + used, cap - used, "%s: refused (connect error %d)\n", target, err);
    }
    wasi_sockets_tcp_tuple2_own_input_stream_own_output_stream_t streams;
    while (!wasi_sockets_tcp_method_tcp_socket_finish_connect(b, &streams, &err)) {
        if (err != WASI_SOCKETS_NETWORK_ERROR_CODE_WOULD_BLOCK) {
            return used + (size_t)snprintf(out + used, cap - used, "%s: refused (connect error %d)\n", target, err);
        }
        wasi_sockets_tcp_own_pollable_t ready = wasi_sockets_tcp_method_tcp_socket_subscribe(b);
        wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
        wasi_io_poll_pollable_drop_own(ready);
    }
    return used + (size_t)snprintf(out + used, cap - used, "%s: reached\n", target);
}

void exports_ssrf_handle_request(ssrf_node_context_t *ctx, ssrf_request_t *req, ssrf_response_t *ret) {
    (void)ctx;
    char query[512];
    size_t qlen = req->query.len < sizeof query - 1 ? req->query.len : sizeof query - 1;
    memcpy(query, req->query.ptr, qlen);
    query[qlen] = 0;
    char out[4096];
    size_t used = 0;
    for (char *target = strtok(query, ","); target; target = strtok(NULL, ",")) {
        if (strncmp(target, "tcp:", 4) == 0) {
            used = attempt_tcp(target, (uint16_t)atoi(target + 4), out, used, sizeof out);
        } else {
            used = attempt(target, out, used, sizeof out);
        }
    }
    ret->status = 200;
    ret->headers.ptr = calloc(1, sizeof(ssrf_tuple2_string_string_t));
    ret->headers.len = 1;
    ssrf_string_dup(&ret->headers.ptr[0].f0, "content-type");
    ssrf_string_dup(&ret->headers.ptr[0].f1, "text/plain; charset=utf-8");
    ret->body.is_some = true;
    ret->body.val.ptr = malloc(used ? used : 1);
    memcpy(ret->body.val.ptr, out, used);
    ret->body.val.len = used;
}
