/* base.h - everything in src/base/, for modules that use most of it. */
#ifndef CK_BASE_H
#define CK_BASE_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/id.h"
#include "base/json.h"
#include "base/log.h"
#include "base/time.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
