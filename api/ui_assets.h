/* api/ui_assets.h — the dashboard's static files (api/ui/), compiled into the binary by
 * scripts/embed.py at build time: the table ends with an entry whose name is NULL. */
#ifndef ANVIL_UI_ASSETS_H
#define ANVIL_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;          /* the file's base name: served at /ui/<name> */
    const char *content_type;
    const unsigned char *data; /* len bytes (and a NUL) */
    size_t len;
    const char *etag;          /* quoted, as the ETag header carries it */
};

extern const struct ui_asset ui_assets[];

#endif
