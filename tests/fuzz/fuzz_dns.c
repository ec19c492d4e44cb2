/*
 * fuzz_dns.c - libFuzzer target: one DNS message (the input) through dns.c's writer.
 *
 * Beyond "no crash, no leak, no undefined behaviour" (ASan/UBSan): the writer never
 * fails the buffer, every object it opens is closed (the output is one JSON object,
 * checked by brace balance outside strings), and "malformed" is written exactly when
 * dns_write_message says so.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/jbuf.h"
#include "../../sensor/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_balanced(const char *s, size_t n)
{
    int depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            else if ((unsigned char)c < 0x20)
                abort(); /* a raw control character in a JSON string */
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth < 0)
            abort();
    }
    if (depth != 0 || in_str)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jbuf b;
    bool query = false;

    if (size > 65535)
        return 0;
    if (!jbuf_init(&b, 256, 1 << 20))
        return 0;
    jbuf_obj_open(&b, NULL);
    dns_result r = dns_write_message(&b, data, (uint32_t)size, &query);
    jbuf_obj_close(&b);
    if (jbuf_failed(&b))
        abort();
    const char *out = jbuf_cstr(&b);
    size_t n = b.len;
    check_balanced(out, n);
    if ((r == DNS_MALFORMED) != (memmem(out, n, "\"malformed\":true", 16) != NULL))
        abort();
    if (r == DNS_NOT_DNS && size >= 12)
        abort();
    jbuf_free(&b);
    return 0;
}
