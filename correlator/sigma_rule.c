/*
 * sigma_rule.c - evaluating a compiled rule on an event, and freeing it.
 *
 * A rule matches when its logsource's event type matches and any of its
 * conditions holds. Selections are evaluated lazily by the condition (short
 * circuit): a map is the AND of its field conditions, a list of maps their OR.
 */
#include "sigma.h"

#include <stdlib.h>
#include <string.h>

static bool field_match(const field_cond *fc, const event_view *ev)
{
    sv raw;
    const sv *v;

    if (fc->field == FIELD_NONE) { /* keywords: the whole event text */
        raw.type = SV_STR;
        raw.s = ev->raw;
        raw.len = ev->raw_len;
        v = &raw;
    } else {
        v = event_get(ev, fc->field);
    }
    if (fc->all) {
        for (uint32_t i = 0; i < fc->nvalues; i++)
            if (!sigma_value_match(&fc->values[i], v, ev))
                return false;
        return true;
    }
    for (uint32_t i = 0; i < fc->nvalues; i++)
        if (sigma_value_match(&fc->values[i], v, ev))
            return true;
    return false;
}

typedef struct {
    const sigma_rule *r;
    const event_view *ev;
} match_ctx;

static bool selection_match(void *arg, uint32_t idx)
{
    const match_ctx *m = arg;
    const selection *s = &m->r->sels[idx];

    for (uint32_t i = 0; i < s->nmaps; i++) {
        const sel_map *map = &s->maps[i];
        uint32_t j;

        for (j = 0; j < map->nconds; j++)
            if (!field_match(&map->conds[j], m->ev))
                break;
        if (j == map->nconds)
            return true;
    }
    return false;
}

bool sigma_rule_match(const sigma_rule *r, const event_view *ev)
{
    match_ctx m = {r, ev};

    if (r->event_type) {
        const sv *et = event_get(ev, r->event_type_field);

        if (et->type != SV_STR || et->len != r->event_type_len ||
            memcmp(et->s, r->event_type, r->event_type_len) != 0)
            return false;
    }
    for (uint32_t i = 0; i < r->nconds; i++)
        if (sigma_cond_eval(r->conds[i], selection_match, &m))
            return true;
    return false;
}

void sigma_rule_free(sigma_rule *r)
{
    for (uint32_t i = 0; i < r->nsels; i++) {
        selection *s = &r->sels[i];

        for (uint32_t j = 0; j < s->nmaps; j++) {
            for (uint32_t k = 0; k < s->maps[j].nconds; k++) {
                field_cond *fc = &s->maps[j].conds[k];

                for (uint32_t v = 0; v < fc->nvalues; v++)
                    sigma_value_free(&fc->values[v]);
                free(fc->values);
            }
            free(s->maps[j].conds);
        }
        free(s->maps);
        free(s->name);
    }
    free(r->sels);
    for (uint32_t i = 0; i < r->nconds; i++)
        sigma_cond_free(r->conds[i]);
    free(r->conds);
    for (uint32_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    free(r->id);
    free(r->name);
    free(r->title);
    free(r->title_zh);
    free(r->description);
    free(r->status);
    free(r->author);
    free(r->logsource_product);
    free(r->logsource_category);
    free(r->logsource_service);
    free(r->event_type);
    free(r->file);
    memset(r, 0, sizeof(*r));
}
