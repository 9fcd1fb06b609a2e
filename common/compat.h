/*
 * compat.h: included first by every .c file of Haven. It pulls in the
 * configure results and bans unsafe C library calls at compile time.
 */
#ifndef HAVEN_COMPAT_H
#define HAVEN_COMPAT_H

#include "config.h"
#include "common/banned.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
