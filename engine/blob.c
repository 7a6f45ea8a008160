/* engine/blob.c — reference-counted message bodies (see blob.h). */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

struct blob *blob_new(const void *data, size_t len)
{
    if (len > UINT32_MAX - 1)
        return NULL;
    struct blob *b = malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

void blob_unref(struct blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}
