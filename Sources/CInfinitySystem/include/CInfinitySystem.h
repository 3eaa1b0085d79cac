#ifndef C_INFINITY_SYSTEM_H
#define C_INFINITY_SYSTEM_H

// System calls the Swift Glibc module leaves out: extended attributes and O_NOATIME.
#include <fcntl.h>
#include <sys/types.h>
#include <sys/xattr.h>

#ifdef O_NOATIME
static const int infinity_O_NOATIME = O_NOATIME;
#else
static const int infinity_O_NOATIME = 0;
#endif

#endif
