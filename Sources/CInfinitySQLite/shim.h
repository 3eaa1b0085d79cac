#ifndef C_INFINITY_SQLITE_SHIM_H
#define C_INFINITY_SQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
// These helpers bind with SQLITE_TRANSIENT so SQLite copies the bytes before the call
// returns: the Swift buffer only has to live for the duration of the call. They take
// `const void *` so Swift can pass any raw buffer without rebinding its memory.
//
// An empty Swift buffer may have a NULL base address, and SQLite binds NULL (not an empty
// blob or string) for a NULL pointer, so an empty buffer is bound from a static "".

static inline int infinity_sqlite3_bind_blob_transient(sqlite3_stmt *statement, int index,
                                                       const void *bytes, sqlite3_uint64 count) {
    return sqlite3_bind_blob64(statement, index, bytes ? bytes : "", count, SQLITE_TRANSIENT);
}

static inline int infinity_sqlite3_bind_text_transient(sqlite3_stmt *statement, int index,
                                                       const void *utf8, sqlite3_uint64 count) {
    return sqlite3_bind_text64(statement, index, utf8 ? (const char *)utf8 : "", count,
                               SQLITE_TRANSIENT, SQLITE_UTF8);
}

#endif
