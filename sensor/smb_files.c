/*
 * smb_files.c - see smb_files.h.
 */
#include "smb_files.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

struct smb_chunk {
    smb_chunk *next;
    uint64_t off;
    uint32_t len;
    uint8_t data[];
};

/* Gives the file the held chunks that now follow on (or, with all, every chunk, after a gap
 * where bytes are missing). */
static void drain(pworker *p, smb_pfile *pf, bool all)
{
    while (pf->held && (all || pf->held->off <= pf->next)) {
        smb_chunk *c = pf->held;
        uint64_t end = c->off + c->len;

        pf->held = c->next;
        pf->held_bytes -= c->len;
        if (c->off > pf->next) {
            file_gap(&pf->f);
            pf->next = c->off;
        }
        if (end > pf->next) {
            file_data(p, &pf->f, c->data + (pf->next - c->off), (size_t)(end - pf->next));
            pf->next = end;
        }
        free(c);
    }
}

/* Keeps a copy of data at off, by offset; false when it would pass SMB_REORDER_MAX. */
static bool hold(smb_pfile *pf, uint64_t off, const uint8_t *data, size_t len)
{
    smb_chunk **at = &pf->held, *c;

    if (len > SMB_REORDER_MAX - pf->held_bytes)
        return false;
    c = malloc(sizeof(*c) + len);
    if (!c)
        return false;
    c->off = off;
    c->len = (uint32_t)len;
    memcpy(c->data, data, len);
    while (*at && (*at)->off <= off)
        at = &(*at)->next;
    c->next = *at;
    *at = c;
    pf->held_bytes += (uint32_t)len;
    return true;
}

void smb_files_data(pworker *p, smb_files *s, int i, int dir, const char *name, uint64_t off,
                    const uint8_t *data, size_t len)
{
    smb_pfile *pf = &s->slot[i];
    uint64_t end = off + len;

    if (!pf->f.open) {
        file_open(p, &pf->f, dir, name, strlen(name));
        p->pw.cnt.smb_files++;
        pf->next = 0;
        pf->tx_id = s->opened++;
    }
    if (pf->f.dir != dir || end <= pf->next)
        return; /* read back after being written, or bytes seen already */
    if (off > pf->next) {
        if (hold(pf, off, data, len))
            return;
        drain(p, pf, true); /* too much out of order: give up the wait */
        if (off > pf->next) {
            file_gap(&pf->f);
            pf->next = off;
        }
    }
    if (end > pf->next) {
        file_data(p, &pf->f, data + (pf->next - off), (size_t)(end - pf->next));
        pf->next = end;
    }
    drain(p, pf, false);
}

void smb_files_gap(smb_files *s, int i)
{
    if (s->slot[i].f.open)
        file_gap(&s->slot[i].f);
}

typedef struct {
    const char *share;
} smb_ctx_arg;

/* The "smb" object of the fileinfo event: the share the file is on, when known. */
static void write_ctx(jbuf *b, void *arg)
{
    const smb_ctx_arg *a = arg;

    if (!a->share || !a->share[0])
        return; /* its tree connect was not seen */
    jbuf_obj_open(b, "smb");
    jbuf_str(b, "share", a->share);
    jbuf_obj_close(b);
}

void smb_files_close(pworker *p, flow *fl, smb_files *s, int i, const char *share, bool complete,
                     uint64_t ts_us)
{
    smb_pfile *pf = &s->slot[i];
    smb_ctx_arg a = {share};

    if (!pf->f.open)
        return;
    drain(p, pf, true);
    file_close(p, fl, &pf->f, ts_us, "smb", pf->tx_id, complete, write_ctx, &a);
    pf->next = 0;
}

void smb_files_discard(pworker *p, smb_files *s)
{
    for (int i = 0; i < SMB_MAX_FILES; i++) {
        smb_pfile *pf = &s->slot[i];

        while (pf->held) {
            smb_chunk *c = pf->held;
            pf->held = c->next;
            free(c);
        }
        pf->held_bytes = 0;
        file_discard(p, &pf->f);
    }
}

size_t smb_files_mem(const smb_files *s)
{
    size_t n = sizeof(*s);

    for (int i = 0; i < SMB_MAX_FILES; i++)
        n += s->slot[i].held_bytes;
    return n;
}
