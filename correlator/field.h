/*
 * field.h - the field table: the event paths loaded rules reference
 * ("dest_port", "tls.sni", "src_asset.zone"), interned to small ids that index
 * an event's value slots (event.h). Built once when rules are loaded, so
 * interning and lookup are plain linear scans; nothing here runs per event.
 */
#ifndef FH_FIELD_H
#define FH_FIELD_H

#include <stdint.h>

typedef uint32_t field_id;
#define FIELD_NONE UINT32_MAX
#define FIELD_MAX  1024 /* distinct paths all loaded rules may reference */

/* Interned field paths. */
typedef struct {
    char *names[FIELD_MAX];
    uint32_t n;
} field_table;

void field_table_init(field_table *ft);
void field_table_free(field_table *ft);
/* Returns the id of `path` (adding it if new), or FIELD_NONE when the table is full. */
field_id field_intern(field_table *ft, const char *path);
/* Returns the id of `path`, or FIELD_NONE if no rule references it. */
field_id field_lookup(const field_table *ft, const char *path);

#endif
