/*
 * field.c - see field.h.
 */
#include "field.h"

#include <stdlib.h>
#include <string.h>

void field_table_init(field_table *ft)
{
    memset(ft, 0, sizeof(*ft));
}

void field_table_free(field_table *ft)
{
    for (uint32_t i = 0; i < ft->n; i++)
        free(ft->names[i]);
    memset(ft, 0, sizeof(*ft));
}

field_id field_lookup(const field_table *ft, const char *path)
{
    for (uint32_t i = 0; i < ft->n; i++)
        if (strcmp(ft->names[i], path) == 0)
            return i;
    return FIELD_NONE;
}

field_id field_intern(field_table *ft, const char *path)
{
    field_id id = field_lookup(ft, path);
    if (id != FIELD_NONE)
        return id;
    if (ft->n >= FIELD_MAX)
        return FIELD_NONE;
    char *copy = strdup(path);
    if (!copy)
        return FIELD_NONE;
    ft->names[ft->n] = copy;
    return ft->n++;
}
