/*
 * ftp_expect.c - announced FTP data endpoints (see ftp_expect.h). A plain array under one
 * mutex: FTP_EXPECT_MAX entries are few, and it is touched per FTP command, not per packet.
 */
#include "ftp_expect.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t ip[16];
    uint8_t ipv;
    uint16_t port;
    bool used, claimed;
    uint64_t ctrl;
    uint64_t at_us; /* announced (packet time) */
    uint64_t seq;   /* order of announcement: the newest of a control connection is named */
    char cmd[5];
    char name[256];
} entry;

struct ftp_expect_table {
    pthread_mutex_t lock;
    atomic_uint used;
    uint64_t seq;
    entry e[FTP_EXPECT_MAX];
};

ftp_expect_table *ftp_expect_new(void)
{
    ftp_expect_table *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->used, 0);
    return t;
}

void ftp_expect_free(ftp_expect_table *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

bool ftp_expect_empty(const ftp_expect_table *t)
{
    return !t || atomic_load_explicit(&t->used, memory_order_relaxed) == 0;
}

static bool same(const entry *e, int ipv, const uint8_t *ip, uint16_t port)
{
    return e->used && e->ipv == ipv && e->port == port && !memcmp(e->ip, ip, ipv == 4 ? 4 : 16);
}

static void drop(ftp_expect_table *t, entry *e)
{
    e->used = false;
    atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
}

void ftp_expect_add(ftp_expect_table *t, uint64_t ctrl, int ipv, const uint8_t *ip, uint16_t port,
                    uint64_t now_us)
{
    entry *slot = NULL, *oldest = NULL;

    if (!t || !port || (ipv != 4 && ipv != 6))
        return;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < FTP_EXPECT_MAX; i++) {
        entry *e = &t->e[i];

        if (e->used && !e->claimed && now_us > e->at_us + FTP_EXPECT_TTL_US)
            drop(t, e); /* announced and never used */
        if (same(e, ipv, ip, port)) {
            slot = e; /* announced again (a port reused): the newest announcement wins */
            drop(t, e);
            break;
        }
        if (!e->used && !slot)
            slot = e;
        if (e->used && !e->claimed && (!oldest || e->seq < oldest->seq))
            oldest = e;
    }
    if (!slot && oldest) {
        slot = oldest;
        drop(t, slot);
    }
    if (slot) {
        memset(slot, 0, sizeof(*slot));
        memcpy(slot->ip, ip, ipv == 4 ? 4 : 16);
        slot->ipv = (uint8_t)ipv;
        slot->port = port;
        slot->ctrl = ctrl;
        slot->at_us = now_us;
        slot->seq = ++t->seq;
        slot->used = true;
        atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&t->lock);
}

void ftp_expect_name(ftp_expect_table *t, uint64_t ctrl, const char *cmd, const char *arg,
                     size_t arg_len)
{
    entry *newest = NULL;

    if (!t || ftp_expect_empty(t))
        return;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < FTP_EXPECT_MAX; i++) {
        entry *e = &t->e[i];

        if (e->used && e->ctrl == ctrl && !e->cmd[0] && (!newest || e->seq > newest->seq))
            newest = e;
    }
    if (newest) {
        snprintf(newest->cmd, sizeof(newest->cmd), "%s", cmd);
        if (arg_len >= sizeof(newest->name))
            arg_len = sizeof(newest->name) - 1;
        memcpy(newest->name, arg, arg_len);
        newest->name[arg_len] = '\0';
    }
    pthread_mutex_unlock(&t->lock);
}

bool ftp_expect_claim(ftp_expect_table *t, int ipv, const uint8_t *ip, uint16_t port,
                      uint64_t now_us)
{
    bool found = false;

    if (ftp_expect_empty(t))
        return false;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < FTP_EXPECT_MAX && !found; i++) {
        entry *e = &t->e[i];

        if (same(e, ipv, ip, port) && !e->claimed && now_us <= e->at_us + FTP_EXPECT_TTL_US) {
            e->claimed = true;
            found = true;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

void ftp_expect_lookup(ftp_expect_table *t, int ipv, const uint8_t *ip, uint16_t port, char *cmd,
                       char *name, size_t name_len)
{
    cmd[0] = '\0';
    if (name_len)
        name[0] = '\0';
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < FTP_EXPECT_MAX; i++) {
        entry *e = &t->e[i];

        if (same(e, ipv, ip, port) && e->claimed) {
            memcpy(cmd, e->cmd, sizeof(e->cmd));
            if (name_len)
                snprintf(name, name_len, "%s", e->name);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

void ftp_expect_clear(ftp_expect_table *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < FTP_EXPECT_MAX; i++)
        if (t->e[i].used)
            drop(t, &t->e[i]);
    pthread_mutex_unlock(&t->lock);
}

void ftp_expect_release(ftp_expect_table *t, int ipv, const uint8_t *ip, uint16_t port)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < FTP_EXPECT_MAX; i++)
        if (same(&t->e[i], ipv, ip, port) && t->e[i].claimed) {
            drop(t, &t->e[i]);
            break;
        }
    pthread_mutex_unlock(&t->lock);
}
