/* engine/blob.h — immutable, reference-counted byte strings (message bodies).
 * A message owns one reference; results handed to the fronts and records queued for the
 * storage writer take their own, so a body outlives its message while anyone reads it.
 * Reference counts are touched only on the event-loop thread; the writer thread only
 * reads the bytes of blobs whose references the loop holds for it. */
#ifndef ANVIL_BLOB_H
#define ANVIL_BLOB_H

#include <stddef.h>
#include <stdint.h>

struct blob {
    uint32_t refs;
    uint32_t len;
    char data[]; /* len bytes, then a NUL so text bodies can be used as C strings */
};

/* Returns a new blob holding a copy of data (one reference), or NULL when out of memory. */
struct blob *blob_new(const void *data, size_t len);
/* Takes another reference; NULL stays NULL. */
static inline struct blob *blob_ref(struct blob *b)
{
    if (b)
        b->refs++;
    return b;
}
void blob_unref(struct blob *b);

#endif
