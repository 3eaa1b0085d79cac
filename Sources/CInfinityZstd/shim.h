#ifndef C_INFINITY_ZSTD_SHIM_H
#define C_INFINITY_ZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>

// ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are expression macros that Swift
// cannot import; these return their values.
static inline unsigned long long infinity_zstd_contentsize_unknown(void) {
    return ZSTD_CONTENTSIZE_UNKNOWN;
}

static inline unsigned long long infinity_zstd_contentsize_error(void) {
    return ZSTD_CONTENTSIZE_ERROR;
}

#endif
