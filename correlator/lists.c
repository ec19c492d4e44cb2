/*
 * lists.c - placeholder list files; see lists.h.
 */
#include "lists.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_VALUE_MAX 1024
#define LIST_NAME_MAX  128

static int cmp_list(const void *a, const void *b)
{
    return strcmp(((const named_list *)a)->name, ((const named_list *)b)->name);
}

static fh_err load_one(named_list *l, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[LIST_VALUE_MAX + 2];
    unsigned lineno = 0;

    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return FH_ERR_IO;
    }
    while (fgets(line, sizeof(line), f)) {
        char *s = line, *e;
        char **v;

        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%u: value longer than %d bytes", path, lineno,
                     LIST_VALUE_MAX);
            fclose(f);
            return FH_ERR_PARSE;
        }
        while (isspace((unsigned char)*s))
            s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (!*s || *s == '#')
            continue;
        v = realloc(l->values, (l->n + 1) * sizeof(*v));
        if (!v || !(v[l->n] = strdup(s))) {
            if (v)
                l->values = v;
            fclose(f);
            return FH_ERR_NOMEM;
        }
        l->values = v;
        l->n++;
    }
    fclose(f);
    return FH_OK;
}

fh_err lists_load(list_store *ls, const char *dir, char *err, size_t errlen)
{
    DIR *d;
    struct dirent *de;
    fh_err e = FH_OK;

    memset(ls, 0, sizeof(*ls));
    if (!(d = opendir(dir)))
        return errno == ENOENT ? FH_OK
                               : (snprintf(err, errlen, "%s: %s", dir, strerror(errno)), FH_ERR_IO);
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        char path[4096];
        named_list *nl;

        if (de->d_name[0] == '.' || n < 5 || strcmp(de->d_name + n - 4, ".txt") != 0)
            continue;
        if (n - 4 > LIST_NAME_MAX)
            continue;
        nl = realloc(ls->lists, (ls->n + 1) * sizeof(*nl));
        if (!nl) {
            e = FH_ERR_NOMEM;
            break;
        }
        ls->lists = nl;
        nl = &ls->lists[ls->n++];
        memset(nl, 0, sizeof(*nl));
        nl->name = strndup(de->d_name, n - 4);
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if ((e = load_one(nl, path, err, errlen)) != FH_OK)
            break;
    }
    closedir(d);
    if (e) {
        lists_free(ls);
        return e;
    }
    qsort(ls->lists, ls->n, sizeof(*ls->lists), cmp_list);
    return FH_OK;
}

void lists_free(list_store *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        for (size_t j = 0; j < ls->lists[i].n; j++)
            free(ls->lists[i].values[j]);
        free(ls->lists[i].values);
        free(ls->lists[i].name);
    }
    free(ls->lists);
    memset(ls, 0, sizeof(*ls));
}

fh_err lists_get(const list_store *ls, const char *name, const char *const **values, size_t *n)
{
    named_list key = {.name = (char *)name};
    const named_list *l =
        ls->n ? bsearch(&key, ls->lists, ls->n, sizeof(*ls->lists), cmp_list) : NULL;

    if (!l)
        return FH_ERR_NOTFOUND;
    *values = (const char *const *)l->values;
    *n = l->n;
    return FH_OK;
}
