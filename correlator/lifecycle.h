/*
 * lifecycle.h - the rectification lifecycle of an incident (an alert): its
 * states and which moves between them are legal. Shared by the correlator
 * (reopening on recurrence) and the console (people moving incidents).
 *
 *   new ─► acknowledged ─► rectifying ─► rectified ─► closed
 *    │          │              ▲  │          │
 *    │          │              │  │          └─► reopened ─► rectifying
 *    └──────────┴──────────────┴──┴─► false_positive | duplicate | accepted_risk
 *                                                                   │
 *                              rectifying ◄── (expiry, or revoked) ─┘
 *
 * Side exits (false_positive, duplicate, accepted_risk) are open from every
 * state before `rectified`. `closed`, `false_positive` and `duplicate` are
 * final. A move to the state an incident is already in is refused too (a bulk
 * action reports it per incident rather than recording a no-op).
 */
#ifndef FH_LIFECYCLE_H
#define FH_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    INC_NEW = 0,
    INC_ACKNOWLEDGED,
    INC_RECTIFYING,
    INC_RECTIFIED,
    INC_CLOSED,
    INC_REOPENED,
    INC_FALSE_POSITIVE,
    INC_DUPLICATE,
    INC_ACCEPTED_RISK,
    INC_STATE_COUNT
} incident_state;

/* "new", "acknowledged", ... (the store's and the API's spelling); NULL if out of range. */
const char *incident_state_name(incident_state s);
/* The state of a name, or -1. */
int incident_state_parse(const char *name);
/* 待处理, 已确认, 整改中, 已整改, 已关闭, 已重开, 误报, 重复, 风险接受 */
const char *incident_state_name_zh(incident_state s);

/* Open: counted as waiting for rectification (new, acknowledged, rectifying, reopened). */
bool incident_state_open(incident_state s);

/*
 * Whether from -> to is legal. When not, writes the reason to why, naming both
 * states: "an incident that is closed cannot become rectifying (closed is final)".
 */
bool incident_transition_ok(incident_state from, incident_state to, char *why, size_t len);

#endif
