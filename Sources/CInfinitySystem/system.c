// The target is a header of declarations; this file gives the build a translation unit.
#include "CInfinitySystem.h"
