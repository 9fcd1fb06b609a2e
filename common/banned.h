/*
 * banned.h: C library calls that are easy to misuse. Using one is a compile
 * error; use snprintf, the bounded buffer helpers, gmtime_r and mkstemp.
 */
#ifndef HAVEN_BANNED_H
#define HAVEN_BANNED_H

/* The system headers must be seen before the names are poisoned. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef asctime
#define asctime(t) BANNED(asctime)
#undef mktemp
#define mktemp(x) BANNED(mktemp)

#endif
