/*
 * fuzz_yara_prefilter.c - libFuzzer target: YARA rule source text (the input) through
 * yara_prefilter.c's reader, then the filter it made over a few buffers.
 *
 * The reader runs on sources libyara compiled, but it must hold on any text: an admin's
 * file that libyara refuses is still read by nothing else first, and a reader that trusts
 * its input is a reader that breaks on the next YARA release's syntax. Beyond "no crash,
 * no leak, no undefined behaviour" (ASan/UBSan): the counts it reports add up (no more
 * "always" rules than rules), and the filter answers for the input itself, its halves and
 * the empty buffer without error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sensor/yara_prefilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    yara_prefilter_info info;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the sources are NUL-terminated, as read from their files */
    const char *texts[1] = {text};
    size_t lens[1] = {size};
    yara_prefilter *p = yara_prefilter_new(texts, lens, 1, &info);
    if (info.always > info.rules || (p && yara_prefilter_always_count(p) != info.always))
        abort();
    if (p) {
        void *s = yara_prefilter_scratch_new(p);
        (void)yara_prefilter_may_match(p, s, data, size);
        (void)yara_prefilter_may_match(p, s, data, size / 2);
        (void)yara_prefilter_may_match(p, s, data + size / 2, size - size / 2);
        (void)yara_prefilter_may_match(p, s, "", 0);
        yara_prefilter_scratch_free(s);
        yara_prefilter_free(p);
    }
    free(text);
    return 0;
}
