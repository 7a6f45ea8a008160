/* engine/push.c — a push queue's settings (see push.h). Every change is built on a copy
 * and swapped in whole, so a failed allocation leaves the queue as it was. */
#include "push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void subscriber_clear(struct eng_subscriber *s)
{
    free(s->name);
    free(s->url);
    for (uint32_t i = 0; i < s->n_headers; i++) {
        free(s->headers[i].name);
        free(s->headers[i].value);
    }
    free(s->headers);
    memset(s, 0, sizeof(*s));
}

static void subscribers_free(struct eng_subscriber *subs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        subscriber_clear(&subs[i]);
    free(subs);
}

static int subscriber_copy(struct eng_subscriber *to, const struct eng_subscriber *from)
{
    memset(to, 0, sizeof(*to));
    to->name = strdup(from->name);
    to->url = strdup(from->url);
    if (from->n_headers)
        to->headers = calloc(from->n_headers, sizeof(*to->headers));
    if (!to->name || !to->url || (from->n_headers && !to->headers)) {
        subscriber_clear(to);
        return -1;
    }
    for (uint32_t i = 0; i < from->n_headers; i++) {
        to->headers[i].name = strdup(from->headers[i].name);
        to->headers[i].value = strdup(from->headers[i].value);
        to->n_headers = i + 1;
        if (!to->headers[i].name || !to->headers[i].value) {
            subscriber_clear(to);
            return -1;
        }
    }
    return 0;
}

static struct eng_subscriber *subscribers_copy(const struct eng_subscriber *subs, uint32_t n)
{
    struct eng_subscriber *out = calloc(n ? n : 1, sizeof(*out));
    for (uint32_t i = 0; out && i < n; i++)
        if (subscriber_copy(&out[i], &subs[i]) != 0) {
            subscribers_free(out, i);
            return NULL;
        }
    return out;
}

void push_settings_free(struct push_settings *ps)
{
    if (!ps)
        return;
    subscribers_free(ps->subscribers, ps->n_subscribers);
    free(ps->error_queue);
    free(ps);
}

enum eng_status push_check(const struct push_settings *current, const char *name,
                           enum queue_type type, const struct eng_queue_config *cfg)
{
    const struct eng_push_config *pc = &cfg->push;
    if (type == QUEUE_PULL)
        return cfg->has_push ? ENG_PUSH_ON_PULL : ENG_OK;
    if (cfg->has_dead_letter_queue && cfg->dead_letter_queue[0])
        return ENG_DEAD_LETTER_ON_PUSH;
    uint32_t after = pc->has_subscribers ? pc->n_subscribers : current ? current->n_subscribers : 0;
    if (after == 0)
        return ENG_NO_SUBSCRIBERS;
    if (after > PUSH_SUBSCRIBERS_MAX)
        return ENG_TOO_MANY_SUBSCRIBERS;
    if (pc->has_error_queue && strcmp(pc->error_queue, name) == 0)
        return ENG_ERROR_QUEUE_SELF;
    return ENG_OK;
}

int push_apply(struct push_settings **ps, const struct eng_push_config *cfg)
{
    struct push_settings *cur = *ps;
    struct eng_subscriber *subs = NULL;
    char *error_queue = NULL;
    if (cfg->has_subscribers && !(subs = subscribers_copy(cfg->subscribers, cfg->n_subscribers)))
        return -1;
    if (cfg->has_error_queue && cfg->error_queue[0] && !(error_queue = strdup(cfg->error_queue))) {
        subscribers_free(subs, cfg->n_subscribers);
        return -1;
    }
    if (!cur) {
        if (!(cur = calloc(1, sizeof(*cur)))) {
            subscribers_free(subs, cfg->n_subscribers);
            free(error_queue);
            return -1;
        }
        cur->retries = PUSH_RETRIES_DEFAULT;
        cur->retries_delay_s = PUSH_RETRIES_DELAY_DEFAULT_S;
        *ps = cur;
    }
    if (cfg->has_subscribers) {
        subscribers_free(cur->subscribers, cur->n_subscribers);
        cur->subscribers = subs;
        cur->n_subscribers = cfg->n_subscribers;
    }
    if (cfg->has_error_queue) {
        free(cur->error_queue);
        cur->error_queue = error_queue;
    }
    if (cfg->has_retries)
        cur->retries = cfg->retries;
    if (cfg->has_retries_delay)
        cur->retries_delay_s = cfg->retries_delay_s;
    return 0;
}

static const struct eng_subscriber *find_named(const struct eng_subscriber *subs, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(subs[i].name, name) == 0)
            return &subs[i];
    return NULL;
}

enum eng_status push_edit(struct push_settings *ps, enum eng_subscriber_edit edit,
                          const struct eng_subscriber *subs, size_t n)
{
    /* The list after the edit, as borrowed pointers: kept ones (updated in place by name
     * for an add), then new ones in request order. */
    size_t cap = (size_t)ps->n_subscribers + n;
    const struct eng_subscriber **next = calloc(cap ? cap : 1, sizeof(*next));
    if (!next)
        return ENG_NO_MEMORY;
    size_t count = 0;
    if (edit != SUBSCRIBERS_REPLACE)
        for (uint32_t i = 0; i < ps->n_subscribers; i++) {
            const struct eng_subscriber *mine = &ps->subscribers[i];
            const struct eng_subscriber *named = find_named(subs, n, mine->name);
            if (edit == SUBSCRIBERS_REMOVE && named)
                continue;
            next[count++] = edit == SUBSCRIBERS_ADD && named ? named : mine;
        }
    if (edit != SUBSCRIBERS_REMOVE)
        for (size_t i = 0; i < n; i++) {
            bool known = edit == SUBSCRIBERS_ADD &&
                         find_named(ps->subscribers, ps->n_subscribers, subs[i].name);
            if (!known)
                next[count++] = &subs[i];
        }
    enum eng_status st = ENG_OK;
    if (count == 0)
        st = ENG_NO_SUBSCRIBERS;
    else if (count > PUSH_SUBSCRIBERS_MAX)
        st = ENG_TOO_MANY_SUBSCRIBERS;
    struct eng_subscriber *built = st == ENG_OK ? calloc(count, sizeof(*built)) : NULL;
    if (st == ENG_OK && !built)
        st = ENG_NO_MEMORY;
    for (size_t i = 0; st == ENG_OK && i < count; i++)
        if (subscriber_copy(&built[i], next[i]) != 0) {
            subscribers_free(built, (uint32_t)i);
            built = NULL;
            st = ENG_NO_MEMORY;
        }
    free(next);
    if (st != ENG_OK)
        return st;
    subscribers_free(ps->subscribers, ps->n_subscribers);
    ps->subscribers = built;
    ps->n_subscribers = (uint32_t)count;
    return ENG_OK;
}

int push_fill_info(const struct push_settings *ps, struct eng_push_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!ps)
        return 0;
    info->retries = ps->retries;
    info->retries_delay_s = ps->retries_delay_s;
    if (ps->error_queue && !(info->error_queue = strdup(ps->error_queue)))
        return -1;
    if (!(info->subscribers = subscribers_copy(ps->subscribers, ps->n_subscribers)))
        return -1;
    info->n_subscribers = ps->n_subscribers;
    return 0;
}

void push_info_free(struct eng_push_info *info)
{
    subscribers_free(info->subscribers, info->n_subscribers);
    free(info->error_queue);
    memset(info, 0, sizeof(*info));
}

/* ---- the stored form ---- */

int push_to_row(const struct push_settings *ps, struct store_queue_row *row)
{
    if (!ps)
        return 0;
    row->push_retries = ps->retries;
    row->push_retries_delay_s = ps->retries_delay_s;
    if (ps->error_queue && !(row->error_queue = strdup(ps->error_queue)))
        return -1;
    if (!(row->subscribers = calloc(ps->n_subscribers ? ps->n_subscribers : 1,
                                    sizeof(*row->subscribers))))
        return -1;
    for (uint32_t i = 0; i < ps->n_subscribers; i++) {
        const struct eng_subscriber *s = &ps->subscribers[i];
        struct store_subscriber *out = &row->subscribers[i];
        row->n_subscribers = i + 1;
        size_t len = 0;
        for (uint32_t h = 0; h < s->n_headers; h++)
            len += strlen(s->headers[h].name) + strlen(s->headers[h].value) + 2;
        out->name = strdup(s->name);
        out->url = strdup(s->url);
        out->headers = malloc(len ? len : 1);
        if (!out->name || !out->url || !out->headers)
            return -1; /* the caller frees the row */
        out->headers_len = len;
        char *p = out->headers;
        for (uint32_t h = 0; h < s->n_headers; h++) {
            size_t a = strlen(s->headers[h].name) + 1, b = strlen(s->headers[h].value) + 1;
            memcpy(p, s->headers[h].name, a);
            memcpy(p + a, s->headers[h].value, b);
            p += a + b;
        }
    }
    return 0;
}

static int headers_from_blob(struct eng_subscriber *s, const char *blob, size_t len)
{
    uint32_t strings = 0;
    for (size_t i = 0; i < len; i++)
        strings += blob[i] == '\0';
    if (len && blob[len - 1] != '\0')
        return -1;
    s->n_headers = 0;
    if (strings / 2 && !(s->headers = calloc(strings / 2, sizeof(*s->headers))))
        return -1;
    const char *p = blob, *end = blob + len;
    while (p < end && s->n_headers < strings / 2) {
        struct eng_header *h = &s->headers[s->n_headers++];
        h->name = strdup(p);
        p += strlen(p) + 1;
        h->value = strdup(p);
        p += strlen(p) + 1;
        if (!h->name || !h->value)
            return -1;
    }
    return 0;
}

int push_from_row(struct push_settings **out, const struct store_queue_row *row)
{
    struct push_settings *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return -1;
    ps->retries = row->push_retries;
    ps->retries_delay_s = row->push_retries_delay_s;
    ps->subscribers = calloc(row->n_subscribers ? row->n_subscribers : 1, sizeof(*ps->subscribers));
    if (!ps->subscribers || (row->error_queue && !(ps->error_queue = strdup(row->error_queue)))) {
        push_settings_free(ps);
        return -1;
    }
    for (uint32_t i = 0; i < row->n_subscribers; i++) {
        const struct store_subscriber *in = &row->subscribers[i];
        struct eng_subscriber *s = &ps->subscribers[i];
        ps->n_subscribers = i + 1;
        s->name = strdup(in->name ? in->name : "");
        s->url = strdup(in->url ? in->url : "");
        if (!s->name || !s->url || headers_from_blob(s, in->headers, in->headers_len) != 0) {
            push_settings_free(ps);
            return -1;
        }
    }
    *out = ps;
    return 0;
}

/* ---- the packed form (the PostgreSQL back end's column) ----
 * NUL-terminated strings: retries, retries_delay, error_queue ("" none), n; then per
 * subscriber name, url, header count and name/value per header. */

struct packer {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void pack_str(struct packer *p, const char *s)
{
    size_t n = strlen(s) + 1;
    if (p->failed)
        return;
    if (p->len + n > p->cap) {
        size_t cap = (p->cap ? p->cap * 2 : 256) + n;
        char *grown = realloc(p->buf, cap);
        if (!grown) {
            p->failed = true;
            return;
        }
        p->buf = grown;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
}

static void pack_u32(struct packer *p, uint32_t v)
{
    char t[12];
    snprintf(t, sizeof(t), "%u", v);
    pack_str(p, t);
}

int push_pack(const struct push_settings *ps, char **out, size_t *len)
{
    struct packer p = {0};
    pack_u32(&p, ps->retries);
    pack_u32(&p, ps->retries_delay_s);
    pack_str(&p, ps->error_queue ? ps->error_queue : "");
    pack_u32(&p, ps->n_subscribers);
    for (uint32_t i = 0; i < ps->n_subscribers; i++) {
        const struct eng_subscriber *s = &ps->subscribers[i];
        pack_str(&p, s->name);
        pack_str(&p, s->url);
        pack_u32(&p, s->n_headers);
        for (uint32_t h = 0; h < s->n_headers; h++) {
            pack_str(&p, s->headers[h].name);
            pack_str(&p, s->headers[h].value);
        }
    }
    if (p.failed) {
        free(p.buf);
        return -1;
    }
    *out = p.buf;
    *len = p.len;
    return 0;
}

struct unpacker {
    const char *p, *end;
    bool failed;
};

static char *unpack_str(struct unpacker *u)
{
    const char *nul = u->failed ? NULL : memchr(u->p, '\0', (size_t)(u->end - u->p));
    char *s = nul ? strdup(u->p) : NULL;
    if (!s) {
        u->failed = true;
        return NULL;
    }
    u->p = nul + 1;
    return s;
}

static uint32_t unpack_u32(struct unpacker *u, uint32_t max)
{
    char *s = unpack_str(u), *end = NULL;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || v > max)
        u->failed = true;
    free(s);
    return u->failed ? 0 : (uint32_t)v;
}

int push_unpack(const char *data, size_t len, struct push_settings **out)
{
    struct unpacker u = {data, data + len, false};
    struct push_settings *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return -1;
    ps->retries = unpack_u32(&u, PUSH_RETRIES_MAX);
    ps->retries_delay_s = unpack_u32(&u, PUSH_RETRIES_DELAY_MAX_S);
    ps->error_queue = unpack_str(&u);
    uint32_t n = unpack_u32(&u, PUSH_SUBSCRIBERS_MAX);
    if (ps->error_queue && !ps->error_queue[0]) {
        free(ps->error_queue);
        ps->error_queue = NULL;
    }
    if (!u.failed && !(ps->subscribers = calloc(n ? n : 1, sizeof(*ps->subscribers))))
        u.failed = true;
    for (uint32_t i = 0; !u.failed && i < n; i++) {
        struct eng_subscriber *s = &ps->subscribers[i];
        ps->n_subscribers = i + 1;
        s->name = unpack_str(&u);
        s->url = unpack_str(&u);
        uint32_t nh = unpack_u32(&u, (uint32_t)(len / 2));
        if (!u.failed && nh && !(s->headers = calloc(nh, sizeof(*s->headers))))
            u.failed = true;
        for (uint32_t h = 0; !u.failed && h < nh; h++) {
            s->n_headers = h + 1;
            s->headers[h].name = unpack_str(&u);
            s->headers[h].value = unpack_str(&u);
        }
    }
    if (u.failed || u.p != u.end || !ps->subscribers) {
        push_settings_free(ps);
        return -1;
    }
    *out = ps;
    return 0;
}

struct push_settings *push_copy(const struct push_settings *ps)
{
    char *packed = NULL;
    size_t len = 0;
    struct push_settings *copy = NULL;
    if (ps && push_pack(ps, &packed, &len) == 0 && push_unpack(packed, len, &copy) != 0)
        copy = NULL;
    free(packed);
    return copy;
}
