// sync_file_range needs _GNU_SOURCE, which the Swift Glibc module does not define; the other
// declarations of the target are inline in its header.
#define _GNU_SOURCE
#include <fcntl.h>
#include "CInfinitySystem.h"

int infinity_start_writeback(int descriptor) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(descriptor, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)descriptor;
    return 0;
#endif
}

int infinity_direct_io_flag(void) {
#ifdef O_DIRECT
    return O_DIRECT;
#else
    return 0;
#endif
}
