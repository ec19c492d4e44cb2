/*
 * fuzz_krb5.c - libFuzzer target: krb5.c's DER reader and TCP framing. The input is parsed
 * as one message (UDP), then fed as a TCP stream in chunks of varying size (the first
 * byte picks the chunk size), so records split anywhere are framed and parsed too.
 *
 * Beyond "no crash, no leak, no undefined behaviour": every name the parser keeps is a
 * NUL-terminated string shorter than KRB5_MAX_NAME with no raw control byte, and the
 * stream never holds a buffer once its record is done.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sensor/krb5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const krb5_msg *m, void *arg)
{
    const char *names[] = {m->cname, m->realm, m->sname};

    (void)arg;
    for (int i = 0; i < 3; i++) {
        size_t n = strnlen(names[i], KRB5_MAX_NAME);
        if (n >= KRB5_MAX_NAME)
            abort();
        for (size_t j = 0; j < n; j++)
            if ((unsigned char)names[i][j] < 0x20)
                abort();
    }
    if (m->n_req_etypes < 0 || m->n_req_etypes > KRB5_MAX_ETYPES)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    krb5_msg m;
    krb5_stream s;
    size_t chunk;

    if (size < 1 || size > 200000)
        return 0;
    chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    if (krb5_parse(data, size, &m))
        check(&m, NULL);
    memset(&s, 0, sizeof(s));
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        krb5_stream_data(&s, data + off, (uint32_t)n, false, check, NULL);
    }
    if (s.buf && s.hdr_len < 4)
        abort();
    krb5_stream_free(&s);
    return 0;
}
