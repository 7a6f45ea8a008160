/* engine/backend.h — what the back ends behind engine.h share: the head of every engine
 * handle, which says which back end it is. engine/engine.c holds the public calls and passes
 * each to the back end the handle belongs to. One back end today, the embedded one
 * (engine/core.h: in memory, SQLite journal); docs/scale-out.md describes the PostgreSQL
 * back end that will sit beside it. */
#ifndef ANVIL_BACKEND_H
#define ANVIL_BACKEND_H

#include "engine.h"

enum eng_backend { ENG_BACKEND_EMBEDDED = 0 };

/* The first member of every back end's own engine structure. */
struct engine {
    enum eng_backend backend;
};

#endif
