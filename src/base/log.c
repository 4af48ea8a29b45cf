/* log.c - key=value log lines on stderr (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "time.h"
#include "banned.h"

int log_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void log_write(int level, const char *fmt, ...)
{
	char line[2048];
	char ts[TIME_INSTANT_MAX];
	va_list ap;
	int n, m;

	time_format_instant(time_now_ms(), ts);
	n = snprintf(line, sizeof(line), "ts=%s level=%s ", ts,
		     level_names[level < 0 ? 0 : level > LOG_DEBUG ? LOG_DEBUG : level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* One line, no embedded newlines: a log line is one event. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* One write(2) so concurrent threads do not interleave within a line. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
