/*
 * deferred-worker — task libraries: dlopen, the function and handler index.
 *
 * Each library is first opened RTLD_LAZY to read its ABI version (a library
 * built for another ABI gets "rebuild it", not "undefined symbol"), then
 * RTLD_NOW | RTLD_LOCAL; the only symbol looked up is DQ_LIBRARY_SYMBOL
 * ("dq_library"). A name that arrives in a task
 * payload is only ever searched in the sorted index built here, never
 * passed to dlsym(). A library that cannot be opened, has no table, has
 * another ABI version or whose init() refuses is logged, closed and
 * remembered in dq_loader_errors() (the reason dead tasks carry); the
 * worker keeps running with the others. Duplicate names: the first
 * library given wins, the others are logged.
 *
 * The index is built once and read-only afterwards: safe to read from
 * pool threads.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

typedef struct {
    const char          *name;
    dq_fn_entry_t        entry;
    size_t               order;
} dq__fn_slot_t;

typedef struct {
    const char          *url;
    const dq_handler_t  *h;
    size_t               order;
} dq__hd_slot_t;

typedef struct {
    void                *dl;
    const dq_library_t  *lib;
    char                *path;
} dq__lib_t;

struct dq_loader_s {
    dq__lib_t           *libs;
    size_t               nlibs;
    dq__fn_slot_t       *fns;
    size_t               nfns;
    dq__hd_slot_t       *hds;
    size_t               nhds;
    char                *errors;   /* "a.so: reason; b.so: reason" or NULL */
};

static void
dq__loader_error(dq_loader_t *ld, const char *path, const char *reason)
{
    size_t old = ld->errors ? strlen(ld->errors) : 0;
    size_t add = strlen(path) + strlen(reason) + 5;
    char  *e = realloc(ld->errors, old + add);

    dq_log_error("task library \"%s\" not loaded: %s", path, reason);
    if (e == NULL) {
        return;
    }
    /* dlerror() already starts with the path */
    if (strncmp(reason, path, strlen(path)) == 0) {
        snprintf(e + old, add, "%s%s", old ? "; " : "", reason);
    } else {
        snprintf(e + old, add, "%s%s: %s", old ? "; " : "", path, reason);
    }
    ld->errors = e;
}

/* strcmp of a C string with a counted one (which may hold NULs). */
static int
dq__cmp_str(const char *a, dq_str_t b)
{
    size_t alen = strlen(a);
    int    c = memcmp(a, b.ptr, alen < b.len ? alen : b.len);

    if (c) {
        return c;
    }
    return alen < b.len ? -1 : alen > b.len;
}

static int
dq__fn_cmp(const void *a, const void *b)
{
    const dq__fn_slot_t *x = a, *y = b;
    int                  c = strcmp(x->name, y->name);

    if (c) {
        return c;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

static int
dq__hd_cmp(const void *a, const void *b)
{
    const dq__hd_slot_t *x = a, *y = b;
    int                  c = strcmp(x->url, y->url);

    if (c) {
        return c;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * The library's ABI version, read before any of its symbols is bound: a
 * library built against another include/deferred/ may call entry points
 * this worker no longer exports (renamed in ABI 2), which RTLD_NOW would
 * refuse with a bare "undefined symbol" before the version could be read.
 * RTLD_LAZY binds no function yet; the handle is closed again (its
 * constructors, if any, have run once), and the real load is RTLD_NOW.
 * 0 and why filled: the library cannot be used.
 */
static int
dq__check_abi(const char *path, char *why, size_t len)
{
    void               *dl;
    const dq_library_t *lib;
    const char         *e;
    int                 ok;

    dlerror();
    dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (dl == NULL) {
        e = dlerror();
        snprintf(why, len, "%s", e ? e : "dlopen failed");
        return 0;
    }
    lib = dlsym(dl, DQ_LIBRARY_SYMBOL);
    ok = 0;
    if (lib == NULL) {
        snprintf(why, len, "no \"%s\" symbol (define it with DQ_LIBRARY)",
                 DQ_LIBRARY_SYMBOL);
    } else if (lib->abi_version != DQ_TASK_ABI_VERSION) {
        snprintf(why, len, "built for task ABI %u, this worker speaks %u: "
                 "rebuild it against include/deferred/ of this version",
                 lib->abi_version, DQ_TASK_ABI_VERSION);
    } else {
        ok = 1;
    }
    dlclose(dl);
    return ok;
}

static int
dq__load_one(dq_loader_t *ld, const char *path)
{
    void               *dl;
    const dq_library_t *lib;
    char                why[512];
    const char         *e;

    if (!dq__check_abi(path, why, sizeof(why))) {
        dq__loader_error(ld, path, why);
        return -1;
    }
    dlerror();
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        e = dlerror();
        dq__loader_error(ld, path, e ? e : "dlopen failed");
        return -1;
    }
    lib = dlsym(dl, DQ_LIBRARY_SYMBOL);
    if (lib == NULL || lib->abi_version != DQ_TASK_ABI_VERSION) {
        snprintf(why, sizeof(why), "\"%s\" changed between two opens",
                 DQ_LIBRARY_SYMBOL);
        goto fail;
    }
    if (lib->functions == NULL) {
        snprintf(why, sizeof(why), "no function table");
        goto fail;
    }
    if (lib->init != NULL && lib->init() != 0) {
        snprintf(why, sizeof(why), "its init() refused to load");
        goto fail;
    }

    ld->libs[ld->nlibs].dl = dl;
    ld->libs[ld->nlibs].lib = lib;
    ld->libs[ld->nlibs].path = strdup(path);
    ld->nlibs++;
    return 0;

fail:
    dq__loader_error(ld, path, why);
    dlclose(dl);
    return -1;
}

dq_loader_t *
dq_loader_new(char *const *paths, size_t n)
{
    dq_loader_t         *ld;
    const dq_library_t  *lib;
    const char          *lname;
    size_t               nf = 0, nh = 0, order = 0, i, j, k;

    ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        return NULL;
    }
    ld->libs = calloc(n ? n : 1, sizeof(*ld->libs));
    if (ld->libs == NULL) {
        free(ld);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        dq__load_one(ld, paths[i]);
    }

    for (i = 0; i < ld->nlibs; i++) {
        lib = ld->libs[i].lib;
        for (j = 0; lib->functions[j].name != NULL; j++) {
            nf++;
        }
        for (j = 0; lib->handlers && lib->handlers[j].url != NULL; j++) {
            nh++;
        }
    }
    ld->fns = calloc(nf ? nf : 1, sizeof(*ld->fns));
    ld->hds = calloc(nh ? nh : 1, sizeof(*ld->hds));
    if (ld->fns == NULL || ld->hds == NULL) {
        dq_loader_free(ld);
        return NULL;
    }

    for (i = 0; i < ld->nlibs; i++) {
        lib = ld->libs[i].lib;
        lname = lib->name ? lib->name : ld->libs[i].path;
        for (j = 0; lib->functions[j].name != NULL; j++) {
            const dq_function_t *f = &lib->functions[j];

            if (!dq_func_name_valid(dq_str_c(f->name)) || f->fn == NULL) {
                dq_log_error("task library \"%s\": function \"%s\" skipped: "
                             "invalid name or NULL function", lname, f->name);
                continue;
            }
            ld->fns[ld->nfns].name = f->name;
            ld->fns[ld->nfns].entry.fn = f;
            ld->fns[ld->nfns].entry.library = lname;
            ld->fns[ld->nfns].order = order++;
            ld->nfns++;
        }
        for (j = 0; lib->handlers && lib->handlers[j].url != NULL; j++) {
            const dq_handler_t *h = &lib->handlers[j];

            if (!dq_url_valid(dq_str_c(h->url)) || h->handle == NULL) {
                dq_log_error("task library \"%s\": handler for \"%s\" "
                             "skipped: invalid URL or NULL handler", lname,
                             h->url);
                continue;
            }
            ld->hds[ld->nhds].url = h->url;
            ld->hds[ld->nhds].h = h;
            ld->hds[ld->nhds].order = order++;
            ld->nhds++;
        }
        dq_log_info("task library \"%s\" loaded from %s", lname,
                    ld->libs[i].path);
    }

    /* sort, then drop later duplicates (the first registration wins) */
    qsort(ld->fns, ld->nfns, sizeof(*ld->fns), dq__fn_cmp);
    for (i = 0, k = 0; i < ld->nfns; i++) {
        if (k > 0 && strcmp(ld->fns[k - 1].name, ld->fns[i].name) == 0) {
            dq_log_warn("function \"%s\" of \"%s\" ignored: already "
                        "registered by \"%s\"", ld->fns[i].name,
                        ld->fns[i].entry.library,
                        ld->fns[k - 1].entry.library);
            continue;
        }
        ld->fns[k++] = ld->fns[i];
    }
    ld->nfns = k;

    qsort(ld->hds, ld->nhds, sizeof(*ld->hds), dq__hd_cmp);
    for (i = 0, k = 0; i < ld->nhds; i++) {
        if (k > 0 && strcmp(ld->hds[k - 1].url, ld->hds[i].url) == 0) {
            dq_log_warn("handler for \"%s\" ignored: already registered",
                        ld->hds[i].url);
            continue;
        }
        ld->hds[k++] = ld->hds[i];
    }
    ld->nhds = k;
    return ld;
}

void
dq_loader_free(dq_loader_t *ld)
{
    size_t i;

    if (ld == NULL) {
        return;
    }
    for (i = ld->nlibs; i-- > 0;) {
        if (ld->libs[i].lib->fini != NULL) {
            ld->libs[i].lib->fini();
        }
        /* Under ASan, keep the code mapped so leak reports can symbolize;
         * the process exits right after this anyway. */
#if !defined(__SANITIZE_ADDRESS__)
        dlclose(ld->libs[i].dl);
#endif
        free(ld->libs[i].path);
    }
    free(ld->libs);
    free(ld->fns);
    free(ld->hds);
    free(ld->errors);
    free(ld);
}

const dq_fn_entry_t *
dq_loader_function(const dq_loader_t *ld, dq_str_t name)
{
    size_t lo = 0, hi = ld->nfns, mid;
    int    c;

    if (name.ptr == NULL) {
        return NULL;
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = dq__cmp_str(ld->fns[mid].name, name);
        if (c == 0) {
            return &ld->fns[mid].entry;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const dq_handler_t *
dq_loader_handler(const dq_loader_t *ld, dq_str_t url)
{
    size_t lo = 0, hi = ld->nhds, mid;
    int    c;

    if (url.ptr == NULL) {
        return NULL;
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = dq__cmp_str(ld->hds[mid].url, url);
        if (c == 0) {
            return ld->hds[mid].h;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const char *
dq_loader_errors(const dq_loader_t *ld)
{
    return ld->errors;
}
