#ifndef C_INFINITY_SYSTEM_H
#define C_INFINITY_SYSTEM_H

// System calls the Swift Glibc module leaves out: extended attributes, O_NOATIME, O_DIRECT,
// mallopt, sync_file_range.
#include <fcntl.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <malloc.h>

#ifdef O_NOATIME
static const int infinity_O_NOATIME = O_NOATIME;
#else
static const int infinity_O_NOATIME = 0;
#endif

// Caps glibc's malloc arenas at one: each thread that allocates may otherwise get an arena of its
// own that keeps freed memory, which raises a backup's peak memory for no speed. And maps every
// block of 16 MiB or more (pack buffers, the read buffers of large files) on its own, so that
// freeing it gives it back: by default glibc raises that threshold to the size of the largest
// block freed, after which such blocks come from the heap and their pages stay with the process.
// A first backup of 2.5 GB peaked at 150-170 MiB that way, at 131-136 MiB with the threshold
// fixed, in the same time (a 4 MiB threshold cost 7% more time for the same memory). Fixing it
// also fixes the heap's trim threshold at its default of 128 KiB, which hands pages back after
// nearly every free of a chunk and faults them in again (re-reading a stored file ran at a third
// of its speed): so that one is set to 64 MiB (a backup trims on its own, see HeapTrimmer).
static inline void infinity_tune_malloc(void) {
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 1);
#endif
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
#endif
#ifdef M_TRIM_THRESHOLD
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

// Gives the heap's free pages back to the system (glibc keeps them for reuse otherwise).
static inline void infinity_release_free_memory(void) {
    malloc_trim(0);
}

// Starts writing a file's dirty pages to its disk without waiting for them (Linux); elsewhere it
// does nothing. Returns 0, or -1 with errno set.
int infinity_start_writeback(int descriptor);

// The O_DIRECT open flag (writes that bypass the page cache), or 0 where there is none.
int infinity_direct_io_flag(void);

#endif
