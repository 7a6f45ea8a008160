/* api/sqs_out.c — the SQS front's answers, in the shape of the protocol that asked:
 *   query protocol: <ActionResponse xmlns=...><ActionResult>...</ActionResult>
 *                   <ResponseMetadata><RequestId>..</RequestId></ResponseMetadata></ActionResponse>
 *                   lists and maps flattened (one element per item or entry);
 *   JSON protocol:  one object, lists as arrays, maps as objects.
 * The actions write through these calls only, so each answer is written once for both. */
#include "sqs.h"

#include <stdio.h>
#include <string.h>

#define XMLNS "http://queue.amazonaws.com/doc/2012-11-05/"

static bool xml(const struct sqs_call *c)
{
    return c->out.protocol == SQS_QUERY;
}

void so_xml_escape(struct jw *w, const char *text, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (text[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        case '\r': rep = "&#xD;"; break; /* a parser would turn a bare CR into LF */
        default:
            if ((unsigned char)text[i] < 0x20 && text[i] != '\n' && text[i] != '\t') {
                /* not representable in XML 1.0: U+FFFD (only v3-posted bodies can hold it) */
                rep = "&#xFFFD;";
            }
        }
        size_t skip = 1;
        if (!rep && (unsigned char)text[i] == 0xef && i + 2 < len && (unsigned char)text[i + 1] == 0xbf &&
            ((unsigned char)text[i + 2] == 0xbe || (unsigned char)text[i + 2] == 0xbf)) {
            rep = "&#xFFFD;"; /* U+FFFE and U+FFFF are not XML characters either */
            skip = 3;
        }
        if (!rep)
            continue;
        jw_raw(w, text + start, i - start);
        jw_lit(w, rep);
        start = i + skip;
        i += skip - 1;
    }
    jw_raw(w, text + start, len - start);
}

/* JSON: a comma when something came before at this depth. */
static void sep(struct sqs_call *c)
{
    struct sqs_out *o = &c->out;
    if (o->comma[o->depth])
        jw_lit(&o->w, ",");
    o->comma[o->depth] = true;
}

static void open_level(struct sqs_call *c, const char *bracket)
{
    struct sqs_out *o = &c->out;
    jw_lit(&o->w, bracket);
    if (o->depth + 1 < (int)(sizeof(o->comma) / sizeof(o->comma[0])))
        o->depth++;
    o->comma[o->depth] = false;
}

static void close_level(struct sqs_call *c, const char *bracket)
{
    struct sqs_out *o = &c->out;
    jw_lit(&o->w, bracket);
    if (o->depth > 0)
        o->depth--;
}

static void json_key(struct sqs_call *c, const char *name)
{
    sep(c);
    jw_str(&c->out.w, name, strlen(name));
    jw_lit(&c->out.w, ":");
}

static void xml_open(struct sqs_call *c, const char *name)
{
    jw_lit(&c->out.w, "<");
    jw_lit(&c->out.w, name);
    jw_lit(&c->out.w, ">");
}

static void xml_close(struct sqs_call *c, const char *name)
{
    jw_lit(&c->out.w, "</");
    jw_lit(&c->out.w, name);
    jw_lit(&c->out.w, ">");
}

void so_begin(struct sqs_call *c, bool has_result)
{
    struct jw *w = &c->out.w;
    c->out.depth = 0;
    c->out.comma[0] = false;
    if (!xml(c)) {
        open_level(c, "{");
        return;
    }
    jw_lit(w, "<?xml version=\"1.0\"?><");
    jw_lit(w, c->action);
    jw_lit(w, "Response xmlns=\"" XMLNS "\">");
    if (has_result) {
        jw_lit(w, "<");
        jw_lit(w, c->action);
        jw_lit(w, "Result>");
    }
    c->out.result_open = has_result;
}

void so_end(struct sqs_call *c)
{
    struct jw *w = &c->out.w;
    if (!xml(c)) {
        close_level(c, "}");
        return;
    }
    if (c->out.result_open) {
        jw_lit(w, "</");
        jw_lit(w, c->action);
        jw_lit(w, "Result>");
    }
    jw_lit(w, "<ResponseMetadata><RequestId>");
    jw_lit(w, c->request_id);
    jw_lit(w, "</RequestId></ResponseMetadata></");
    jw_lit(w, c->action);
    jw_lit(w, "Response>");
}

void so_string(struct sqs_call *c, const char *name, const char *value, size_t len)
{
    if (xml(c)) {
        xml_open(c, name);
        so_xml_escape(&c->out.w, value, len);
        xml_close(c, name);
        return;
    }
    json_key(c, name);
    jw_str(&c->out.w, value, len);
}

void so_text(struct sqs_call *c, const char *name, const char *value)
{
    so_string(c, name, value, strlen(value));
}

void so_u64(struct sqs_call *c, const char *name, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    so_text(c, name, text);
}

void so_bool(struct sqs_call *c, const char *name, bool v)
{
    if (xml(c)) {
        so_text(c, name, v ? "true" : "false");
        return;
    }
    json_key(c, name);
    jw_lit(&c->out.w, v ? "true" : "false");
}

void so_list_begin(struct sqs_call *c, const char *json_name)
{
    if (xml(c))
        return;
    json_key(c, json_name);
    open_level(c, "[");
}

void so_list_end(struct sqs_call *c)
{
    if (!xml(c))
        close_level(c, "]");
}

void so_item_begin(struct sqs_call *c, const char *xml_item)
{
    if (xml(c)) {
        xml_open(c, xml_item);
        return;
    }
    sep(c);
    open_level(c, "{");
}

void so_item_end(struct sqs_call *c, const char *xml_item)
{
    if (xml(c))
        xml_close(c, xml_item);
    else
        close_level(c, "}");
}

void so_item_text(struct sqs_call *c, const char *xml_item, const char *value)
{
    if (xml(c)) {
        so_text(c, xml_item, value);
        return;
    }
    sep(c);
    jw_str(&c->out.w, value, strlen(value));
}

void so_map_begin(struct sqs_call *c, const char *json_name)
{
    if (xml(c))
        return;
    json_key(c, json_name);
    open_level(c, "{");
}

void so_map_end(struct sqs_call *c)
{
    if (!xml(c))
        close_level(c, "}");
}

void so_map_text(struct sqs_call *c, const char *xml_entry, const char *key, const char *value)
{
    if (xml(c)) {
        xml_open(c, xml_entry);
        so_text(c, "Name", key);
        so_text(c, "Value", value);
        xml_close(c, xml_entry);
        return;
    }
    json_key(c, key);
    jw_str(&c->out.w, value, strlen(value));
}

void so_map_object_begin(struct sqs_call *c, const char *xml_entry, const char *key)
{
    if (xml(c)) {
        xml_open(c, xml_entry);
        so_text(c, "Name", key);
        xml_open(c, "Value");
        return;
    }
    json_key(c, key);
    open_level(c, "{");
}

void so_map_object_end(struct sqs_call *c, const char *xml_entry)
{
    if (xml(c)) {
        xml_close(c, "Value");
        xml_close(c, xml_entry);
        return;
    }
    close_level(c, "}");
}
