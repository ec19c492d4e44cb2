/* fh_kafka_names.c - see fh_kafka_names.h. */
#include "fh_kafka_names.h"

#include <string.h>

bool fh_topic_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > FH_TOPIC_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}
