/* log.h - one log macro, levels, one line per event.
 *
 * Lines are key=value: `ts=... level=info event=request method=GET ...`.
 * The level is checked before the message is formatted.  Never log patient
 * data: ids of resources are fine, names, birth dates and content are not. */
#ifndef CK_LOG_H
#define CK_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_level;

void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Parse "error", "warn", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *name);

#define log_at(lvl, ...) \
	do { if ((lvl) <= log_level) log_write((lvl), __VA_ARGS__); } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
