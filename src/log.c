/* log.c — the log line writer.
 *
 * Every process (master and workers) writes its own lines to the same file
 * descriptor opened with O_APPEND; a line is formatted into a stack buffer and
 * written with one write(2), which keeps lines whole across processes. Long
 * messages are cut, never split. Control characters are replaced so a
 * client-supplied value can never forge a log line.
 */
#include "log.h"
#include "common.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static enum log_level log_threshold = LOG_INFO;
static int log_fd = 2;
static char log_path[1024];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int
log_init(const char *level, const char *file)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
		if (level != NULL && strcasecmp(level, level_names[i]) == 0)
			log_threshold = (enum log_level)i;
	log_path[0] = '\0';
	if (file != NULL && file[0] != '\0') {
		if ((size_t)snprintf(log_path, sizeof(log_path), "%s", file) >=
		    sizeof(log_path)) {
			log_path[0] = '\0';
			return PI_ERR_IO;
		}
	}
	return log_reopen();
}

int
log_reopen(void)
{
	int fd;

	if (log_path[0] == '\0')
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return PI_ERR_IO;
	if (log_fd != 2)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct tm tm;
	time_t now;
	va_list ap;
	int n, m;
	size_t len;

	if (level < log_threshold)
		return;
	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL)
		return;
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02dZ "
	    "polaimg[%ld] %s: ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (long)getpid(),
	    level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	for (size_t i = (size_t)n; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	(void)!write(log_fd, line, len);
}
