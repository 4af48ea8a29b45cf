/* banned.h - poison string functions that invite overflows.
 *
 * Included last by every chartkeep source file (through base.h).  Use struct
 * buf (buf.h) or snprintf into a sized array instead. */
#ifndef CK_BANNED_H
#define CK_BANNED_H

#define CK_BANNED(fn) sorry_##fn##_is_banned_use_buf_h

#undef strcpy
#define strcpy(a, b) CK_BANNED(strcpy)
#undef strcat
#define strcat(a, b) CK_BANNED(strcat)
#undef strncpy
#define strncpy(a, b, n) CK_BANNED(strncpy)
#undef strncat
#define strncat(a, b, n) CK_BANNED(strncat)
#undef sprintf
#define sprintf(...) CK_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) CK_BANNED(vsprintf)
#undef strtok
#define strtok(a, b) CK_BANNED(strtok)
#undef gets
#define gets(a) CK_BANNED(gets)

#endif
