/*
 * lifecycle.c - see lifecycle.h.
 */
#include "lifecycle.h"

#include <stdio.h>
#include <string.h>

static const char *const NAMES[INC_STATE_COUNT] = {
    "new",      "acknowledged",   "rectifying", "rectified",    "closed",
    "reopened", "false_positive", "duplicate",  "accepted_risk"};
static const char *const NAMES_ZH[INC_STATE_COUNT] = {
    "待处理", "已确认", "整改中", "已整改", "已关闭", "已重开", "误报", "重复", "风险接受"};

/* LEGAL[from] = bit set of the states `from` may move to. */
#define B(s) (1u << (s))
#define SIDE (B(INC_FALSE_POSITIVE) | B(INC_DUPLICATE) | B(INC_ACCEPTED_RISK))
static const unsigned LEGAL[INC_STATE_COUNT] = {
    [INC_NEW] = B(INC_ACKNOWLEDGED) | SIDE,
    [INC_ACKNOWLEDGED] = B(INC_RECTIFYING) | SIDE,
    [INC_RECTIFYING] = B(INC_RECTIFIED) | SIDE,
    [INC_RECTIFIED] = B(INC_CLOSED) | B(INC_REOPENED),
    [INC_CLOSED] = 0,
    [INC_REOPENED] = B(INC_RECTIFYING) | SIDE,
    [INC_FALSE_POSITIVE] = 0,
    [INC_DUPLICATE] = 0,
    [INC_ACCEPTED_RISK] = B(INC_RECTIFYING),
};

const char *incident_state_name(incident_state s)
{
    return (unsigned)s < INC_STATE_COUNT ? NAMES[s] : NULL;
}

const char *incident_state_name_zh(incident_state s)
{
    return (unsigned)s < INC_STATE_COUNT ? NAMES_ZH[s] : NULL;
}

int incident_state_parse(const char *name)
{
    for (int i = 0; name && i < INC_STATE_COUNT; i++)
        if (!strcmp(name, NAMES[i]))
            return i;
    return -1;
}

bool incident_state_open(incident_state s)
{
    return s == INC_NEW || s == INC_ACKNOWLEDGED || s == INC_RECTIFYING || s == INC_REOPENED;
}

bool incident_transition_ok(incident_state from, incident_state to, char *why, size_t len)
{
    const char *f = incident_state_name(from), *t = incident_state_name(to);

    if (!f || !t) {
        snprintf(why, len, "unknown state");
        return false;
    }
    if (LEGAL[from] & B(to))
        return true;
    if (from == to)
        snprintf(why, len, "the incident is already %s", f);
    else if (!LEGAL[from])
        snprintf(why, len, "an incident that is %s cannot become %s (%s is final)", f, t, f);
    else if (to == INC_FALSE_POSITIVE || to == INC_DUPLICATE || to == INC_ACCEPTED_RISK)
        snprintf(why, len,
                 "an incident that is %s cannot become %s (only before it is rectified; "
                 "reopen it first)",
                 f, t);
    else {
        char next[128] = "";
        size_t off = 0;

        for (int s = 0; s < INC_STATE_COUNT; s++)
            if (LEGAL[from] & B(s))
                off += (size_t)snprintf(next + off, sizeof(next) - off, "%s%s", off ? ", " : "",
                                        NAMES[s]);
        snprintf(why, len, "an incident that is %s cannot become %s (from %s: %s)", f, t, f, next);
    }
    return false;
}
